import { parseArgs } from 'node:util';
import { EXIT_OK, UsageError, type Command } from '../command.js';
import { CaDirectory, REVOCATION_REASONS, type IssuedFiles, type RevocationReason } from '../../signing/index.js';

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${flag} must be a positive number of days, not ${v}`);
  return Number(v);
}

function requireCa(v: string | undefined): string {
  if (!v) throw new UsageError('--ca DIR is required (the directory podboot ca init created)');
  return v;
}

function printIssued(what: string, f: IssuedFiles): void {
  process.stdout.write(`issued ${what}, serial ${f.serial}\n  certificate  ${f.cert}\n  with chain   ${f.chain}\n  private key  ${f.key} (mode 0600)\n`);
}

export const caInitCommand: Command = {
  summary: 'create a root CA, a code-signing CA, a service TLS CA and their CRLs',
  usage: `usage: podboot ca init --out DIR [--org NAME] [--root-days N] [--ca-days N] [--crl-days N]

Creates DIR with a root CA (root.pem, root.key) and two intermediates under
it with different jobs, each with an empty CRL:
  codesign-ca.pem, codesign-ca.key, codesign-crl.pem   code-signing CA (EKU codeSigning):
                                                       issues CI/CD signers only
  service-ca.pem, service-ca.key, service-crl.pem      service TLS CA (EKU serverAuth):
                                                       issues pod and API TLS certificates
and root-crl.pem. Keys are ECDSA P-256, written mode 0600. root.pem is the
trust anchor to give verifiers. Once init is done, move root.key offline, and
move codesign-ca.key to where CI/CD signers are issued: the central node
(serve, pods) needs only service-ca.key (docs/trust-model.md).

  --out DIR        new CA directory (refused if it already holds a CA)
  --org NAME       organisation in every certificate name (default podboot)
  --root-days N    root validity (default 7300)
  --ca-days N      validity of each intermediate (default 3650)
  --crl-days N     CRL validity; re-issue before it ends (default 30)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, org: { type: 'string' }, 'root-days': { type: 'string' }, 'ca-days': { type: 'string' }, 'crl-days': { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.out) throw new UsageError('--out DIR is required');
    const ca = await CaDirectory.init(values.out, {
      ...(values.org ? { organization: values.org } : {}),
      rootDays: positiveInt(values['root-days'], '--root-days'),
      caDays: positiveInt(values['ca-days'], '--ca-days'),
      crlDays: positiveInt(values['crl-days'], '--crl-days'),
    });
    const p = ca.paths;
    process.stdout.write(
      `created CA in ${values.out}\n` +
        `  root certificate  ${p.rootCert}  (the trust anchor: give it to verifiers)\n` +
        `  root key          ${p.rootKey}  (move it offline)\n` +
        `  code-signing CA   ${p.codeSigningCaCert}  (its key ${p.codeSigningCaKey}: move it to where CI/CD signers are issued)\n` +
        `  service TLS CA    ${p.serviceCaCert}  (its key stays with the central node)\n` +
        `  CRLs              ${p.codeSigningCrl}, ${p.serviceCrl}, ${p.rootCrl}\n`,
    );
    return EXIT_OK;
  },
};

export const caMigrateCommand: Command = {
  summary: 'split an old CA directory (one signing CA) into a code-signing CA and a service TLS CA',
  usage: `usage: podboot ca migrate --dir DIR

Moves a CA directory made before the split (signing-ca.pem issuing both
signers and servers) to the current layout, in place:
  - signing-ca.{pem,key} and crl.pem become codesign-ca.{pem,key} and
    codesign-crl.pem: the same CA, so existing signers and the images they
    signed still verify;
  - a new service TLS CA (service-ca.{pem,key}, service-crl.pem) is issued by
    the root: root.key must be in DIR;
  - servers/ moves to legacy-servers/, so each pod's next certificate comes
    from the service CA.
Running it again on a migrated directory changes nothing (exit 0); an
interrupted run is finished by running it again. Afterwards, move
codesign-ca.key (and root.key) off the central node (docs/trust-model.md).`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { dir: { type: 'string' } }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.dir) throw new UsageError('--dir DIR is required (the CA directory to migrate)');
    const { ca, changed } = await CaDirectory.migrate(values.dir);
    if (changed.length === 0) {
      process.stdout.write(`${values.dir} is already in the current layout; nothing changed\n`);
      return EXIT_OK;
    }
    for (const c of changed) process.stdout.write(`${c}\n`);
    process.stdout.write(
      `migrated ${values.dir}\n  code-signing CA   ${ca.paths.codeSigningCaCert} (the old signing CA)\n  service TLS CA    ${ca.paths.serviceCaCert}\n` +
        `now move ${ca.paths.codeSigningCaKey} and ${ca.paths.rootKey} off the central node, and publish ${ca.paths.codeSigningCrl} where crl.pem was published\n`,
    );
    return EXIT_OK;
  },
};

export const caIssueSignerCommand: Command = {
  summary: 'issue a code-signing certificate for a CI/CD pipeline',
  usage: `usage: podboot ca issue-signer NAME --ca DIR [--days N]

Issues DIR/signers/NAME.pem (extendedKeyUsage codeSigning) from the
code-signing CA (needs DIR/codesign-ca.key), its key NAME.key (mode 0600) and
NAME.chain.pem (certificate + code-signing CA), the file to give podboot sign --cert.

  --days N   validity (default 365)`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { ca: { type: 'string' }, days: { type: 'string' } }, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('expected exactly one signer NAME');
    const ca = await CaDirectory.open(requireCa(values.ca));
    printIssued(`code-signing certificate ${positionals[0]}`, await ca.issueSigner(positionals[0]!, { days: positiveInt(values.days, '--days') }));
    return EXIT_OK;
  },
};

export const caIssueServerCommand: Command = {
  summary: "issue a TLS server certificate for a pod instance's HTTPS server",
  usage: `usage: podboot ca issue-server POD --ca DIR [--ip ADDR]... [--dns NAME]... [--days N]

Issues DIR/servers/POD.pem (extendedKeyUsage serverAuth; subjectAltName: the
pod's name, each --dns and each --ip) from the service TLS CA (needs
DIR/service-ca.key), its key POD.key (mode 0600) and POD.chain.pem
(certificate + service CA) for the pod's HTTPS server.

  --ip ADDR   an address the pod serves on (repeatable)
  --dns NAME  another DNS name (repeatable)
  --days N    validity (default 365)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ca: { type: 'string' }, ip: { type: 'string', multiple: true }, dns: { type: 'string', multiple: true }, days: { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one POD name');
    const ca = await CaDirectory.open(requireCa(values.ca));
    const files = await ca.issueServer(positionals[0]!, { ip: values.ip ?? [], dns: values.dns ?? [], days: positiveInt(values.days, '--days') });
    printIssued(`TLS server certificate for pod ${positionals[0]}`, files);
    return EXIT_OK;
  },
};

export const caRevokeCommand: Command = {
  summary: 'revoke a certificate by serial and re-issue the CRL',
  usage: `usage: podboot ca revoke SERIAL --ca DIR [--reason REASON]
       podboot ca revoke --refresh --ca DIR

Adds SERIAL (hex, as issue-signer printed it or openssl x509 -serial shows it)
to the CRL of its issuer and re-signs that CRL with that issuer's key only:
DIR/codesign-crl.pem for signers (needs codesign-ca.key), DIR/service-crl.pem
for servers (needs service-ca.key), DIR/root-crl.pem for either intermediate
(needs root.key in DIR).
--refresh re-signs, with a new nextUpdate, every CRL whose CA key is in DIR
and revokes nothing: run it before the CRLs' validity (--crl-days at init)
ends, wherever each key lives, or verifiers refuse them.

  --reason REASON  ${Object.keys(REVOCATION_REASONS).join(', ')}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ca: { type: 'string' }, reason: { type: 'string' }, refresh: { type: 'boolean' } },
      allowPositionals: true,
    });
    const ca = await CaDirectory.open(requireCa(values.ca));
    if (values.refresh) {
      if (positionals.length) throw new UsageError('--refresh takes no SERIAL');
      for (const f of await ca.refreshCrl()) process.stdout.write(`re-issued ${f}\n`);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError('expected exactly one SERIAL');
    const serial = positionals[0]!;
    if (!/^(0x)?[0-9a-fA-F:]+$/.test(serial)) throw new UsageError(`${serial} is not a hexadecimal serial number`);
    const reason = values.reason;
    if (reason !== undefined && !(reason in REVOCATION_REASONS)) throw new UsageError(`--reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')}`);
    const r = await ca.revoke(serial, reason ? { reason: reason as RevocationReason } : {});
    process.stdout.write(`revoked ${serial} (${r.subject}); CRL re-issued: ${r.crl}\n`);
    return EXIT_OK;
  },
};
