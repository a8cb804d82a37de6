// A CA directory on disk: the root, two intermediates with different jobs,
// the certificates each issued, and their CRLs. Layout (docs/trust-model.md):
//
//   root.pem  root.key                trust anchor; move root.key offline after init
//   codesign-ca.pem  codesign-ca.key  code-signing CA (EKU codeSigning): issues signers only.
//                                     Its key lives where CI/CD signers are issued; the
//                                     central node never needs it (move it off after init)
//   service-ca.pem  service-ca.key    service TLS CA (EKU serverAuth): issues pod and API
//                                     TLS certificates; the central node's run-time key
//   codesign-crl.pem                  CRL of the code-signing CA (signers)
//   service-crl.pem                   CRL of the service CA (servers)
//   root-crl.pem                      CRL of the root (the intermediates)
//   signers/NAME.{pem,key,chain.pem}  code signing for CI/CD (chain: + codesign-ca.pem)
//   servers/POD.{pem,key,chain.pem}   TLS for a pod instance's HTTPS server (chain: + service-ca.pem)
//   legacy-servers/                   after `ca migrate`: servers the old signing CA issued
//   ca.json                           what was issued and revoked, CRL numbers
//
// Every operation reads only the key it signs with, so a directory holding
// just one intermediate's key does that intermediate's job.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifySignature } from './algorithms.js';
import {
  BACKDATE_MS,
  CA_FORMAT,
  DAY,
  INTERMEDIATES,
  LEGACY_CA_FORMAT,
  caPaths,
  certPathOf,
  crlPathOf,
  issueIntermediate,
  keyPathOf,
  type Authority,
  type CaState,
  type Intermediate,
  type IssuedRecord,
  type RevokedRecord,
} from './ca-layout.js';
import { migrateCaDirectory } from './ca-migrate.js';
import type { RevocationReason } from './crl.js';
import { writeFileAtomic } from './files.js';
import { issueCertificate, issueCrl, keyIdentifier, randomSerial, type CertificateProfile } from './issue.js';
import { generateKey, readPrivateKey, writePrivateKey } from './keys.js';
import { IMAGE_NAME_RE, POD_NAME_RE } from './manifest.js';
import { buildName } from './names.js';
import { derObjects, toPem } from './pem.js';
import { parseCertificate, serialHex, type Certificate } from './x509.js';

export type { Authority } from './ca-layout.js';

export interface CaInitOptions {
  organization?: string;
  rootDays?: number;
  /** validity of each intermediate */
  caDays?: number;
  crlDays?: number;
  now?: Date;
  /**
   * Do not keep codesign-ca.key: for a node's self-issued local CA, which
   * issues TLS certificates only and so should hold no key that can make a
   * code signer. Its codesign-crl.pem is signed once, at init.
   */
  discardCodeSigningKey?: boolean;
}

export interface IssuedFiles {
  serial: string;
  cert: string;
  key: string;
  chain: string;
}

/** Where each intermediate's key is wanted, for the message when it is not there. */
const KEY_HOME: Record<Authority, string> = {
  root: 'bring root.key back from offline storage',
  codesign: 'the code-signing CA key lives where CI/CD signers are issued, not on the central node; run this there',
  service: 'the service CA key lives on the central node that issues pod TLS certificates; run this there',
};

export class CaDirectory {
  private constructor(
    readonly dir: string,
    private state: CaState,
    private readonly root: Certificate,
    private readonly intermediates: Partial<Record<Intermediate, Certificate>>,
  ) {}

  get paths() {
    return caPaths(this.dir);
  }

  /** Creates the root, the code-signing CA, the service CA and their (empty) CRLs in a new directory. */
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
    const p = caPaths(dir);
    await writePrivateKey(p.rootKey, rootKey);
    await writeFileAtomic(p.rootCert, toPem('CERTIFICATE', rootDer));

    const state: CaState = {
      format: CA_FORMAT,
      organization,
      crlDays: opts.crlDays ?? 30,
      crlNumber: { root: 0, codesign: 0, service: 0 },
      issued: [],
      revoked: { root: [], codesign: [], service: [] },
    };
    const keys: Partial<Record<Authority, KeyObject>> = { root: rootKey };
    const intermediates: Partial<Record<Intermediate, Certificate>> = {};
    for (const which of ['codesign', 'service'] as const) {
      const key = generateKey();
      const der = issueIntermediate(which, { root, rootKey, key, organization, days: opts.caDays ?? 3650, now });
      const cert = parseCertificate(der, `${INTERMEDIATES[which].label} certificate`);
      if (!(which === 'codesign' && opts.discardCodeSigningKey)) await writePrivateKey(keyPathOf(p, which), key);
      await writeFileAtomic(certPathOf(p, which), toPem('CERTIFICATE', der));
      intermediates[which] = cert;
      keys[which] = key;
      state.issued.push({ serial: cert.serialHex, kind: `${which}-ca`, issuer: 'root', subject: cert.subjectText, notAfter: cert.notAfter.toISOString() });
    }
    const ca = new CaDirectory(dir, state, root, intermediates);
    await ca.writeCrls(keys, now);
    return ca;
  }

  /**
   * Opens a directory in the two-intermediate layout. Only certificates are
   * read here; each operation reads the one key it needs.
   */
  static async open(dir: string): Promise<CaDirectory> {
    const p = caPaths(dir);
    if (!existsSync(p.state)) throw new Error(`${dir} is not a CA directory (no ca.json); create one with podboot ca init --out ${dir}`);
    const state = JSON.parse(await readFile(p.state, 'utf8')) as CaState | { format?: unknown };
    if (state.format === LEGACY_CA_FORMAT) {
      throw new Error(`${dir} holds a CA in the old layout (one signing CA for code and TLS); run podboot ca migrate --dir ${dir} (with root.key in it) first`);
    }
    if (state.format !== CA_FORMAT) throw new Error(`${p.state}: unknown format ${String(state.format)}`);
    const intermediates: Partial<Record<Intermediate, Certificate>> = {};
    for (const which of ['codesign', 'service'] as const) {
      const file = certPathOf(p, which);
      if (existsSync(file)) intermediates[which] = await readCert(file, `${INTERMEDIATES[which].label} certificate`);
    }
    return new CaDirectory(dir, state as CaState, await readCert(p.rootCert, 'root certificate'), intermediates);
  }

  /** Moves a directory of the old layout to this one; see ca-migrate.ts. Idempotent. */
  static async migrate(dir: string, opts: { now?: Date } = {}): Promise<{ ca: CaDirectory; changed: string[] }> {
    const changed = await migrateCaDirectory(dir, opts);
    const ca = await CaDirectory.open(dir);
    // A CRL the migration could not write before ca.json said "done" (an interrupted run) is written now.
    if (!existsSync(ca.paths.serviceCrl) && existsSync(ca.paths.serviceCaKey)) {
      await ca.refreshCrl(opts.now, ['service']);
      changed.push(`wrote ${ca.paths.serviceCrl}`);
    }
    return { ca, changed };
  }

  /** The intermediate's certificate, or why this directory cannot use it. */
  private intermediate(which: Intermediate): Certificate {
    const cert = this.intermediates[which];
    if (!cert) throw new Error(`${certPathOf(this.paths, which)} is missing: this directory has no ${INTERMEDIATES[which].label}`);
    return cert;
  }

  private async key(which: Authority): Promise<KeyObject> {
    const path = keyPathOf(this.paths, which);
    if (!existsSync(path)) throw new Error(`this needs ${path}, which is not here: ${KEY_HOME[which]}`);
    return readPrivateKey(path);
  }

  private async issueLeaf(which: Intermediate, sub: 'signers' | 'servers', name: string, profile: CertificateProfile, days: number, now: Date): Promise<IssuedFiles> {
    const ca = this.intermediate(which);
    const caKey = await this.key(which);
    const key = generateKey();
    const der = issueCertificate({
      serial: randomSerial(),
      issuerName: ca.subject,
      subjectName: buildName({ organization: this.state.organization, commonName: name }),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(Math.min(ca.notAfter.getTime(), now.getTime() + days * DAY)),
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
    await writeFileAtomic(files.chain, toPem('CERTIFICATE', der) + toPem('CERTIFICATE', ca.der));
    this.state.issued.push({ serial: cert.serialHex, kind: sub === 'signers' ? 'signer' : 'server', issuer: which, subject: cert.subjectText, notAfter: cert.notAfter.toISOString() });
    await this.saveState();
    return files;
  }

  /** A code-signing certificate (EKU codeSigning) for a CI/CD pipeline, from the code-signing CA. */
  async issueSigner(name: string, opts: { days?: number; now?: Date } = {}): Promise<IssuedFiles> {
    if (!IMAGE_NAME_RE.test(name)) throw new Error(`signer name ${name} must be 1-128 of A-Z a-z 0-9 . _ -`);
    return this.issueLeaf('codesign', 'signers', name, { kind: 'code-signing' }, opts.days ?? 365, opts.now ?? new Date());
  }

  /** A TLS server certificate for a pod instance (SAN: its name and addresses), from the service CA. */
  async issueServer(pod: string, opts: { dns?: string[]; ip?: string[]; days?: number; now?: Date } = {}): Promise<IssuedFiles> {
    if (!POD_NAME_RE.test(pod)) throw new Error(`pod name ${pod} must be a DNS label (a-z, 0-9, '-')`);
    const dns = [pod, ...(opts.dns ?? []).filter((d) => d !== pod)];
    return this.issueLeaf('service', 'servers', pod, { kind: 'tls-server', dns, ip: opts.ip ?? [] }, opts.days ?? 365, opts.now ?? new Date());
  }

  /**
   * Whether the first certificate in `pem` was issued by this directory's
   * service CA (checked by signature, not by name): a server certificate the
   * old signing CA issued before `ca migrate` is not, and is due for re-issuance.
   */
  isFromServiceCa(pem: Buffer | string): boolean {
    const ca = this.intermediates.service;
    const der = derObjects(Buffer.from(pem), 'CERTIFICATE')[0];
    if (!ca || !der) return false;
    const cert = parseCertificate(der, 'server certificate');
    return cert.issuer.equals(ca.subject) && verifySignature(cert.signatureAlgorithm, ca.publicKey, cert.tbs, cert.signature);
  }

  /**
   * Revokes a certificate by serial (hex, as `openssl x509 -serial` prints it)
   * and re-issues the CRL of its issuer: a signer on the code-signing CA's, a
   * server on the service CA's, an intermediate on the root's (which needs
   * root.key back in the directory). Only that issuer's key is read.
   */
  async revoke(serial: string, opts: { reason?: RevocationReason; now?: Date } = {}): Promise<{ crl: string; subject: string }> {
    const now = opts.now ?? new Date();
    const hex = serialHex(BigInt(`0x${serial.replace(/^0x/i, '').replace(/:/g, '')}`));
    const rec = this.state.issued.find((r) => r.serial === hex);
    if (!rec) throw new Error(`no certificate with serial ${hex} was issued from ${this.dir}`);
    const list = this.state.revoked[rec.issuer];
    if (list.some((r) => r.serial === hex)) throw new Error(`serial ${hex} (${rec.subject}) is already revoked`);
    if (rec.issuer !== 'root') this.intermediate(rec.issuer);
    const key = await this.key(rec.issuer);
    const entry: RevokedRecord = { serial: hex, date: now.toISOString() };
    if (opts.reason) entry.reason = opts.reason;
    list.push(entry);
    await this.writeCrls({ [rec.issuer]: key }, now);
    return { crl: crlPathOf(this.paths, rec.issuer), subject: rec.subject };
  }

  /**
   * Re-signs CRLs with a fresh nextUpdate (run it before crlDays pass): those
   * named in `which`, else every one whose key is in the directory. Returns
   * the files written.
   */
  async refreshCrl(now: Date = new Date(), which?: Authority[]): Promise<string[]> {
    const wanted = which ?? (['codesign', 'service', 'root'] as const).filter((a) => existsSync(keyPathOf(this.paths, a)) && (a === 'root' || this.intermediates[a]));
    if (wanted.length === 0) throw new Error(`no CA key in ${this.dir}: nothing can re-sign a CRL here`);
    const keys: Partial<Record<Authority, KeyObject>> = {};
    for (const a of wanted) {
      if (a !== 'root') this.intermediate(a);
      keys[a] = await this.key(a);
    }
    await this.writeCrls(keys, now);
    return wanted.map((a) => crlPathOf(this.paths, a));
  }

  /** What this directory issued, for listing and tests. */
  get issued(): readonly IssuedRecord[] {
    return this.state.issued;
  }

  private async writeCrls(keys: Partial<Record<Authority, KeyObject>>, now: Date): Promise<void> {
    const nextUpdate = new Date(now.getTime() + this.state.crlDays * DAY);
    for (const a of ['root', 'codesign', 'service'] as const) {
      const key = keys[a];
      if (!key) continue;
      const cert = a === 'root' ? this.root : this.intermediate(a);
      if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(cert.spki)) throw new Error(`the key for ${cert.subjectText} does not match its certificate`);
      this.state.crlNumber[a] += 1;
      const der = issueCrl({
        issuerName: cert.subject,
        issuerKey: key,
        issuerKeyId: keyIdentifier(key),
        thisUpdate: new Date(now.getTime() - BACKDATE_MS),
        nextUpdate,
        number: BigInt(this.state.crlNumber[a]),
        revoked: this.state.revoked[a].map((r) => ({ serial: BigInt(`0x${r.serial}`), date: new Date(r.date), ...(r.reason ? { reason: r.reason as RevocationReason } : {}) })),
      });
      await writeFileAtomic(crlPathOf(this.paths, a), toPem('X509 CRL', der));
    }
    await this.saveState();
  }

  private async saveState(): Promise<void> {
    await writeFileAtomic(this.paths.state, JSON.stringify(this.state, null, 2) + '\n');
  }
}

async function readCert(path: string, what: string): Promise<Certificate> {
  const der = derObjects(await readFile(path), 'CERTIFICATE')[0];
  if (!der) throw new Error(`${path} holds no certificate`);
  return parseCertificate(der, what);
}
