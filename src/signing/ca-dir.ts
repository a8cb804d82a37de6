// A CA directory on disk: the root, the signing CA under it, the certificates
// the signing CA issued, and their CRLs. Layout (docs/trust-model.md):
//
//   root.pem  root.key            trust anchor; move root.key offline after init
//   signing-ca.pem  signing-ca.key
//   crl.pem                       CRL of the signing CA (signers, servers)
//   root-crl.pem                  CRL of the root (signing CAs)
//   signers/NAME.{pem,key,chain.pem}   code signing for CI/CD
//   servers/POD.{pem,key,chain.pem}    TLS for a pod instance's HTTPS server
//   ca.json                       what was issued and revoked, CRL numbers
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RevocationReason } from './crl.js';
import { writeFileAtomic } from './files.js';
import { issueCertificate, issueCrl, keyIdentifier, randomSerial, type CertificateProfile } from './issue.js';
import { generateKey, readPrivateKey, writePrivateKey } from './keys.js';
import { IMAGE_NAME_RE, POD_NAME_RE } from './manifest.js';
import { buildName } from './names.js';
import { derObjects, toPem } from './pem.js';
import { parseCertificate, serialHex, type Certificate } from './x509.js';

const DAY = 86_400_000;
/** Issued certificates start an hour early so a server whose clock lags a little still accepts them. */
const BACKDATE_MS = 3_600_000;

export interface CaInitOptions {
  organization?: string;
  rootDays?: number;
  caDays?: number;
  crlDays?: number;
  now?: Date;
}

interface IssuedRecord {
  serial: string;
  kind: 'signing-ca' | 'signer' | 'server';
  subject: string;
  notAfter: string;
}

interface RevokedRecord {
  serial: string;
  date: string;
  reason?: RevocationReason;
}

interface CaState {
  format: 'podboot-ca/1';
  organization: string;
  crlDays: number;
  crlNumber: { root: number; signingCa: number };
  issued: IssuedRecord[];
  /** revoked by the signing CA (signers, servers) */
  revoked: RevokedRecord[];
  /** revoked by the root (signing CAs) */
  rootRevoked: RevokedRecord[];
}

export interface IssuedFiles {
  serial: string;
  cert: string;
  key: string;
  chain: string;
}

export class CaDirectory {
  private constructor(
    readonly dir: string,
    private state: CaState,
    private readonly signingCa: Certificate,
    private readonly root: Certificate,
  ) {}

  get paths() {
    const d = this.dir;
    return {
      rootCert: join(d, 'root.pem'),
      rootKey: join(d, 'root.key'),
      caCert: join(d, 'signing-ca.pem'),
      caKey: join(d, 'signing-ca.key'),
      crl: join(d, 'crl.pem'),
      rootCrl: join(d, 'root-crl.pem'),
      state: join(d, 'ca.json'),
    };
  }

  /** Creates the root, the signing CA and both (empty) CRLs in a new directory. */
  static async init(dir: string, opts: CaInitOptions = {}): Promise<CaDirectory> {
    const now = opts.now ?? new Date();
    const organization = opts.organization ?? 'podboot';
    await mkdir(dir, { recursive: true, mode: 0o755 });
    if (existsSync(join(dir, 'ca.json')) || existsSync(join(dir, 'root.key'))) throw new Error(`${dir} already holds a CA; refusing to overwrite it`);

    const rootKey = generateKey();
    const rootName = buildName({ organization, commonName: `${organization} podboot root CA` });
    const rootDer = issueCertificate({
      serial: randomSerial(),
      issuerName: rootName,
      subjectName: rootName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + (opts.rootDays ?? 7300) * DAY),
      publicKey: rootKey,
      issuerKey: rootKey,
      profile: { kind: 'ca', pathLen: 1 },
    });
    const root = parseCertificate(rootDer, 'root certificate');

    const caKey = generateKey();
    const caDer = issueCertificate({
      serial: randomSerial(),
      issuerName: root.subject,
      subjectName: buildName({ organization, commonName: `${organization} podboot signing CA` }),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(Math.min(root.notAfter.getTime(), now.getTime() + (opts.caDays ?? 3650) * DAY)),
      publicKey: caKey,
      issuerKey: rootKey,
      issuerKeyId: keyIdentifier(rootKey),
      profile: { kind: 'ca', pathLen: 0 },
    });
    const signingCa = parseCertificate(caDer, 'signing CA certificate');

    const state: CaState = {
      format: 'podboot-ca/1',
      organization,
      crlDays: opts.crlDays ?? 30,
      crlNumber: { root: 0, signingCa: 0 },
      issued: [{ serial: signingCa.serialHex, kind: 'signing-ca', subject: signingCa.subjectText, notAfter: signingCa.notAfter.toISOString() }],
      revoked: [],
      rootRevoked: [],
    };
    const ca = new CaDirectory(dir, state, signingCa, root);
    const p = ca.paths;
    await writePrivateKey(p.rootKey, rootKey);
    await writePrivateKey(p.caKey, caKey);
    await writeFileAtomic(p.rootCert, toPem('CERTIFICATE', rootDer));
    await writeFileAtomic(p.caCert, toPem('CERTIFICATE', caDer));
    await ca.writeCrls({ signingCaKey: caKey, rootKey }, now);
    return ca;
  }

  static async open(dir: string): Promise<CaDirectory> {
    const stateFile = join(dir, 'ca.json');
    if (!existsSync(stateFile)) throw new Error(`${dir} is not a CA directory (no ca.json); create one with podboot ca init --out ${dir}`);
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as CaState;
    if (state.format !== 'podboot-ca/1') throw new Error(`${stateFile}: unknown format ${String(state.format)}`);
    const cert = async (file: string, what: string) => {
      const der = derObjects(await readFile(join(dir, file)), 'CERTIFICATE')[0];
      if (!der) throw new Error(`${join(dir, file)} holds no certificate`);
      return parseCertificate(der, what);
    };
    return new CaDirectory(dir, state, await cert('signing-ca.pem', 'signing CA certificate'), await cert('root.pem', 'root certificate'));
  }

  private async issueLeaf(sub: 'signers' | 'servers', name: string, profile: CertificateProfile, days: number, now: Date): Promise<IssuedFiles> {
    const caKey = await readPrivateKey(this.paths.caKey);
    const key = generateKey();
    const der = issueCertificate({
      serial: randomSerial(),
      issuerName: this.signingCa.subject,
      subjectName: buildName({ organization: this.state.organization, commonName: name }),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(Math.min(this.signingCa.notAfter.getTime(), now.getTime() + days * DAY)),
      publicKey: key,
      issuerKey: caKey,
      issuerKeyId: keyIdentifier(caKey),
      profile,
    });
    const cert = parseCertificate(der, 'issued certificate');
    const dir = join(this.dir, sub);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const files = { serial: cert.serialHex, cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), chain: join(dir, `${name}.chain.pem`) };
    await writePrivateKey(files.key, key);
    await writeFileAtomic(files.cert, toPem('CERTIFICATE', der));
    await writeFileAtomic(files.chain, toPem('CERTIFICATE', der) + toPem('CERTIFICATE', this.signingCa.der));
    this.state.issued.push({ serial: cert.serialHex, kind: sub === 'signers' ? 'signer' : 'server', subject: cert.subjectText, notAfter: cert.notAfter.toISOString() });
    await this.saveState();
    return files;
  }

  /** A code-signing certificate (EKU codeSigning) for a CI/CD pipeline. */
  async issueSigner(name: string, opts: { days?: number; now?: Date } = {}): Promise<IssuedFiles> {
    if (!IMAGE_NAME_RE.test(name)) throw new Error(`signer name ${name} must be 1-128 of A-Z a-z 0-9 . _ -`);
    return this.issueLeaf('signers', name, { kind: 'code-signing' }, opts.days ?? 365, opts.now ?? new Date());
  }

  /** A TLS server certificate for a pod instance (SAN: its name and addresses). */
  async issueServer(pod: string, opts: { dns?: string[]; ip?: string[]; days?: number; now?: Date } = {}): Promise<IssuedFiles> {
    if (!POD_NAME_RE.test(pod)) throw new Error(`pod name ${pod} must be a DNS label (a-z, 0-9, '-')`);
    const dns = [pod, ...(opts.dns ?? []).filter((d) => d !== pod)];
    return this.issueLeaf('servers', pod, { kind: 'tls-server', dns, ip: opts.ip ?? [] }, opts.days ?? 365, opts.now ?? new Date());
  }

  /**
   * Revokes a certificate by serial (hex, as `openssl x509 -serial` prints it)
   * and re-issues the CRL that covers it. A signing CA is revoked on the root's
   * CRL, which needs root.key back in the directory.
   */
  async revoke(serial: string, opts: { reason?: RevocationReason; now?: Date } = {}): Promise<{ crl: string; subject: string }> {
    const now = opts.now ?? new Date();
    const hex = serialHex(BigInt(`0x${serial.replace(/^0x/i, '').replace(/:/g, '')}`));
    const rec = this.state.issued.find((r) => r.serial === hex);
    if (!rec) throw new Error(`no certificate with serial ${hex} was issued from ${this.dir}`);
    const list = rec.kind === 'signing-ca' ? this.state.rootRevoked : this.state.revoked;
    if (list.some((r) => r.serial === hex)) throw new Error(`serial ${hex} (${rec.subject}) is already revoked`);
    const entry: RevokedRecord = { serial: hex, date: now.toISOString() };
    if (opts.reason) entry.reason = opts.reason;
    const byRoot = rec.kind === 'signing-ca';
    const key = await readPrivateKey(byRoot ? this.requireRootKey() : this.paths.caKey);
    list.push(entry);
    await this.writeCrls(byRoot ? { rootKey: key } : { signingCaKey: key }, now);
    return { crl: byRoot ? this.paths.rootCrl : this.paths.crl, subject: rec.subject };
  }

  /** Re-signs the signing CA's CRL with a fresh nextUpdate (run it before crlDays pass). */
  async refreshCrl(now: Date = new Date()): Promise<string> {
    await this.writeCrls({ signingCaKey: await readPrivateKey(this.paths.caKey) }, now);
    return this.paths.crl;
  }

  private requireRootKey(): string {
    if (!existsSync(this.paths.rootKey)) throw new Error(`revoking a signing CA needs the root key: bring root.key back into ${this.dir}`);
    return this.paths.rootKey;
  }

  private async writeCrls(keys: { signingCaKey?: KeyObject; rootKey?: KeyObject }, now: Date): Promise<void> {
    const nextUpdate = new Date(now.getTime() + this.state.crlDays * DAY);
    const toEntries = (list: RevokedRecord[]) =>
      list.map((r) => ({ serial: BigInt(`0x${r.serial}`), date: new Date(r.date), ...(r.reason ? { reason: r.reason } : {}) }));
    const jobs: { key: KeyObject; cert: Certificate; which: 'root' | 'signingCa'; list: RevokedRecord[]; path: string }[] = [];
    if (keys.signingCaKey) jobs.push({ key: keys.signingCaKey, cert: this.signingCa, which: 'signingCa', list: this.state.revoked, path: this.paths.crl });
    if (keys.rootKey) jobs.push({ key: keys.rootKey, cert: this.root, which: 'root', list: this.state.rootRevoked, path: this.paths.rootCrl });
    for (const j of jobs) {
      if (!createPublicKey(j.key).export({ type: 'spki', format: 'der' }).equals(j.cert.spki)) throw new Error(`the key for ${j.cert.subjectText} does not match its certificate`);
      this.state.crlNumber[j.which] += 1;
      const der = issueCrl({
        issuerName: j.cert.subject,
        issuerKey: j.key,
        issuerKeyId: keyIdentifier(j.key),
        thisUpdate: new Date(now.getTime() - BACKDATE_MS),
        nextUpdate,
        number: BigInt(this.state.crlNumber[j.which]),
        revoked: toEntries(j.list),
      });
      await writeFileAtomic(j.path, toPem('X509 CRL', der));
    }
    await this.saveState();
  }

  private async saveState(): Promise<void> {
    await writeFileAtomic(this.paths.state, JSON.stringify(this.state, null, 2) + '\n');
  }
}
