import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { LIMITS, VerificationError, readCapped, verifyImage, type VerifiedImage } from '../../signing/index.js';

function report(v: VerifiedImage): string {
  const lines = [
    `ok: ${v.path}`,
    `  sha256      ${v.sha256} (${v.size} bytes)`,
    `  signer      ${v.signer.subject} (serial ${v.signer.serial}, valid until ${v.signer.notAfter})`,
    `  chain       ${v.chain.join('  <-  ')}`,
  ];
  if (v.signingTime) lines.push(`  signed at   ${v.signingTime}`);
  lines.push(`  revocation  ${v.revocation.unchecked.length ? `not checked for ${v.revocation.unchecked.join('; ')} (give --crl)` : 'checked'}`);
  if (v.manifest) {
    const m = v.manifest;
    lines.push(`  manifest    ${m.name} ${m.version}, created ${m.created}, not after ${m.notAfter ?? '-'}, pods ${m.pods?.join(',') ?? 'any'}`);
  } else {
    lines.push('  manifest    none');
  }
  return lines.join('\n') + '\n';
}

export const verifyCommand: Command = {
  summary: 'verify a signed image (chain, purpose, validity, revocation, digest, manifest)',
  usage: `usage: podboot verify IMAGE --ca ROOT.pem [--sig FILE] [--manifest FILE] [--manifest-sig FILE]
                      [--crl FILE]... [--pod NAME] [--at TIME] [--json]

Checks IMAGE against its detached CMS signature (default IMAGE.p7s): the
signer's chain to the root in ROOT.pem through the code-signing CA carried in
the signature, CA constraints (an issuing CA whose extendedKeyUsage excludes
codeSigning, such as the service TLS CA, is refused), extendedKeyUsage
codeSigning, validity now,
revocation (with --crl), the signature over the signed attributes, and the
streamed sha256 of IMAGE. With a manifest (default IMAGE.manifest.json when
it exists, signature FILE.p7s) also its signature and that it describes this
image: size, sha256, notAfter, and --pod on its allow-list.
Accepts signatures made by openssl cms -sign (with or without -keyid).

Exit 0 verified; 1 refused, with the failed check in brackets:
malformed too-large unsupported chain ca eku expired not-yet-valid crl revoked
content-type signature digest manifest (see docs/trust-model.md).

  --crl FILE  CRL of the code-signing CA (codesign-crl.pem) and/or the root (repeatable)
  --pod NAME  the pod that would install the image
  --at TIME   check validity at TIME (ISO 8601) instead of now
  --json      print the result as JSON`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        ca: { type: 'string' },
        sig: { type: 'string' },
        manifest: { type: 'string' },
        'manifest-sig': { type: 'string' },
        crl: { type: 'string', multiple: true },
        pod: { type: 'string' },
        at: { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one IMAGE');
    if (!values.ca) throw new UsageError('--ca ROOT.pem is required: the root CA the signature must chain to');
    const image = positionals[0]!;
    let now: Date | undefined;
    if (values.at !== undefined) {
      now = new Date(values.at);
      if (Number.isNaN(now.getTime())) throw new UsageError(`--at ${values.at} is not a date`);
    }
    const manifestPath = values.manifest ?? (existsSync(`${image}.manifest.json`) ? `${image}.manifest.json` : undefined);
    try {
      const result = await verifyImage({
        image,
        signature: await readCapped(values.sig ?? `${image}.p7s`, LIMITS.signature, 'signature file'),
        rootCa: await readCapped(values.ca, LIMITS.rootCa, 'root CA file'),
        crl: await Promise.all((values.crl ?? []).map((p) => readCapped(p, LIMITS.crl, `CRL file ${p}`))),
        ...(manifestPath
          ? {
              manifest: await readCapped(manifestPath, LIMITS.manifest, 'manifest file'),
              manifestSignature: await readCapped(values['manifest-sig'] ?? `${manifestPath}.p7s`, LIMITS.signature, 'manifest signature file'),
            }
          : {}),
        ...(values.pod !== undefined ? { pod: values.pod } : {}),
        ...(now ? { now } : {}),
      });
      process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : report(result));
      return EXIT_OK;
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      if (values.json) process.stdout.write(JSON.stringify({ ok: false, check: err.check, message: err.message }) + '\n');
      process.stderr.write(`podboot verify: REFUSED [${err.check}] ${image}: ${err.message}\n`);
      return EXIT_FAILURE;
    }
  },
};
