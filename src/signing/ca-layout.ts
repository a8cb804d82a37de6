// What a CA directory holds, shared by the directory itself (ca-dir.ts) and
// the migration from the one-signing-CA layout (ca-migrate.ts): file names,
// the state file's shape, and how the two intermediates are issued.
//
// Two intermediates with different jobs sit under the root, so the key the
// central node needs at run time (the service CA's, for pod TLS) can never
// make a certificate that verifiers accept for code: the service CA carries
// extendedKeyUsage serverAuth, which excludes codeSigning for everything
// below it (EKU chaining, checked by chain.ts and by stage1's verify.sh).
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { issueCertificate, keyIdentifier, randomSerial } from './issue.js';
import { buildName } from './names.js';
import { OID } from './oids.js';
import type { Certificate } from './x509.js';

export const DAY = 86_400_000;
/** Issued certificates start an hour early so a server whose clock lags a little still accepts them. */
export const BACKDATE_MS = 3_600_000;

export const CA_FORMAT = 'podboot-ca/2';
/** root → one signing CA that issued both signers and servers (before the split). */
export const LEGACY_CA_FORMAT = 'podboot-ca/1';

/** Who signs a certificate or a CRL. */
export type Authority = 'root' | 'codesign' | 'service';
export type Intermediate = Exclude<Authority, 'root'>;

export const INTERMEDIATES: Record<Intermediate, { label: string; commonName: (org: string) => string; eku: string[] }> = {
  codesign: { label: 'code-signing CA', commonName: (org) => `${org} podboot code-signing CA`, eku: [OID.codeSigning] },
  service: { label: 'service TLS CA', commonName: (org) => `${org} podboot service TLS CA`, eku: [OID.serverAuth] },
};

export interface IssuedRecord {
  serial: string;
  kind: 'codesign-ca' | 'service-ca' | 'signer' | 'server';
  /** the authority whose CRL lists it when revoked */
  issuer: Authority;
  subject: string;
  notAfter: string;
}

export interface RevokedRecord {
  serial: string;
  date: string;
  reason?: string;
}

export interface CaState {
  format: typeof CA_FORMAT;
  organization: string;
  crlDays: number;
  crlNumber: Record<Authority, number>;
  issued: IssuedRecord[];
  /** per CRL: what each authority has revoked */
  revoked: Record<Authority, RevokedRecord[]>;
  /** set by `ca migrate`: the old signing CA became the code-signing CA */
  migrated?: { from: typeof LEGACY_CA_FORMAT; at: string; legacySigningCa: string };
}

export function caPaths(d: string) {
  return {
    rootCert: join(d, 'root.pem'),
    rootKey: join(d, 'root.key'),
    rootCrl: join(d, 'root-crl.pem'),
    codeSigningCaCert: join(d, 'codesign-ca.pem'),
    codeSigningCaKey: join(d, 'codesign-ca.key'),
    codeSigningCrl: join(d, 'codesign-crl.pem'),
    serviceCaCert: join(d, 'service-ca.pem'),
    serviceCaKey: join(d, 'service-ca.key'),
    serviceCrl: join(d, 'service-crl.pem'),
    signers: join(d, 'signers'),
    servers: join(d, 'servers'),
    /** server certificates the old signing CA issued, set aside by `ca migrate` so the next issuance uses the service CA */
    legacyServers: join(d, 'legacy-servers'),
    state: join(d, 'ca.json'),
  };
}
export type CaPaths = ReturnType<typeof caPaths>;

export const certPathOf = (p: CaPaths, a: Authority) => (a === 'root' ? p.rootCert : a === 'codesign' ? p.codeSigningCaCert : p.serviceCaCert);
export const keyPathOf = (p: CaPaths, a: Authority) => (a === 'root' ? p.rootKey : a === 'codesign' ? p.codeSigningCaKey : p.serviceCaKey);
export const crlPathOf = (p: CaPaths, a: Authority) => (a === 'root' ? p.rootCrl : a === 'codesign' ? p.codeSigningCrl : p.serviceCrl);

/**
 * An intermediate under `root`: pathLen 0 (it issues end entities only) and
 * the extendedKeyUsage of its job, never outliving the root.
 */
export function issueIntermediate(which: Intermediate, o: { root: Certificate; rootKey: KeyObject; key: KeyObject; organization: string; days: number; now: Date }): Buffer {
  const spec = INTERMEDIATES[which];
  return issueCertificate({
    serial: randomSerial(),
    issuerName: o.root.subject,
    subjectName: buildName({ organization: o.organization, commonName: spec.commonName(o.organization) }),
    notBefore: new Date(o.now.getTime() - BACKDATE_MS),
    notAfter: new Date(Math.min(o.root.notAfter.getTime(), o.now.getTime() + o.days * DAY)),
    publicKey: o.key,
    issuerKey: o.rootKey,
    issuerKeyId: keyIdentifier(o.rootKey),
    profile: { kind: 'ca', pathLen: 0, eku: spec.eku },
  });
}
