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
  summary: 'create a root CA, a signing CA and their CRLs',
  usage: `usage: podboot ca init --out DIR [--org NAME] [--root-days N] [--ca-days N] [--crl-days N]

Creates DIR with a root CA (root.pem, root.key), a signing CA issued by it
(signing-ca.pem, signing-ca.key) and empty CRLs (crl.pem, root-crl.pem).
Keys are ECDSA P-256, written mode 0600. root.pem is the trust anchor to give
verifiers; move root.key offline once init is done (it is needed again only
to revoke the signing CA).

  --out DIR        new CA directory (refused if it already holds a CA)
  --org NAME       organisation in every certificate name (default podboot)
  --root-days N    root validity (default 7300)
  --ca-days N      signing CA validity (default 3650)
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
      `created CA in ${values.out}\n  root certificate  ${p.rootCert}  (the trust anchor: give it to verifiers)\n  root key          ${p.rootKey}  (move it offline)\n  signing CA        ${p.caCert}\n  CRLs              ${p.crl}, ${p.rootCrl}\n`,
    );
    return EXIT_OK;
  },
};

export const caIssueSignerCommand: Command = {
  summary: 'issue a code-signing certificate for a CI/CD pipeline',
  usage: `usage: podboot ca issue-signer NAME --ca DIR [--days N]

Issues DIR/signers/NAME.pem (extendedKeyUsage codeSigning), its key NAME.key
(mode 0600) and NAME.chain.pem (certificate + signing CA), the file to give
podboot sign --cert.

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
pod's name, each --dns and each --ip), its key POD.key (mode 0600) and
POD.chain.pem (certificate + signing CA) for the pod's HTTPS server.

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
to the CRL of its issuer and re-signs that CRL: DIR/crl.pem for signers and
servers, DIR/root-crl.pem for the signing CA (needs root.key in DIR).
--refresh re-signs crl.pem with a new nextUpdate and revokes nothing: run it
before the CRL's validity (--crl-days at init) ends, or verifiers refuse it.

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
      process.stdout.write(`re-issued ${await ca.refreshCrl()}\n`);
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
