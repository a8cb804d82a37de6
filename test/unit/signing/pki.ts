// In-memory CA hierarchies for signing tests, built with podboot's own issuer
// (P-256 keys: a whole hierarchy takes milliseconds).
import type { KeyObject } from 'node:crypto';
import { issueCertificate, issueCrl, keyIdentifier, randomSerial, type CertificateProfile, type RevokedEntry } from '../../../src/signing/issue.js';
import { generateKey } from '../../../src/signing/keys.js';
import { buildName } from '../../../src/signing/names.js';
import { toPem } from '../../../src/signing/pem.js';
import { parseCertificate, type Certificate } from '../../../src/signing/x509.js';
import type { SignerIdentity } from '../../../src/signing/sign.js';

export const DAY = 86_400_000;

export interface Issued {
  der: Buffer;
  cert: Certificate;
  key: KeyObject;
}

export interface TestPki {
  root: Issued;
  signingCa: Issued;
  rootPem: Buffer;
  /** a leaf issued by `issuer` (default: the signing CA) */
  leaf(opts?: { profile?: CertificateProfile; notBefore?: Date; notAfter?: Date; issuer?: Issued; name?: string }): Issued;
  /** a signer identity whose chain carries `chain` (default: the signing CA) */
  identity(leaf: Issued, chain?: Issued[]): SignerIdentity;
  crl(opts?: { issuer?: Issued; revoked?: RevokedEntry[]; thisUpdate?: Date; nextUpdate?: Date; signWith?: KeyObject }): Buffer;
}

/**
 * Root (pathLen 1) → signing CA (pathLen 0), valid from a year before `now` to
 * ten years after. Two calls with the same `org` give hierarchies with identical
 * names and different keys.
 */
export function makePki(now: Date, org = 'podboot-test'): TestPki {
  const from = new Date(now.getTime() - 365 * DAY);
  const until = new Date(now.getTime() + 3650 * DAY);
  const issue = (subject: string, profile: CertificateProfile, issuer: Issued | undefined, nb = from, na = until): Issued => {
    const key = generateKey();
    const subjectName = buildName({ organization: org, commonName: subject });
    const der = issueCertificate({
      serial: randomSerial(),
      issuerName: issuer ? issuer.cert.subject : subjectName,
      subjectName,
      notBefore: nb,
      notAfter: na,
      publicKey: key,
      issuerKey: issuer ? issuer.key : key,
      ...(issuer ? { issuerKeyId: keyIdentifier(issuer.key) } : {}),
      profile,
    });
    return { der, cert: parseCertificate(der, subject), key };
  };
  const root = issue('test root CA', { kind: 'ca', pathLen: 1 }, undefined);
  const signingCa = issue('test signing CA', { kind: 'ca', pathLen: 0 }, root);
  return {
    root,
    signingCa,
    rootPem: Buffer.from(toPem('CERTIFICATE', root.der)),
    leaf: (o = {}) =>
      issue(o.name ?? 'ci-pipeline', o.profile ?? { kind: 'code-signing' }, o.issuer ?? signingCa, o.notBefore ?? new Date(now.getTime() - DAY), o.notAfter ?? new Date(now.getTime() + 30 * DAY)),
    // Built directly, without signerIdentity()'s checks, so tests can sign with certificates a verifier must refuse.
    identity: (leaf, chain = [signingCa]) => ({ cert: leaf.cert, chain: chain.map((c) => c.der), key: leaf.key }),
    crl: (o = {}) => {
      const issuer = o.issuer ?? signingCa;
      return Buffer.from(
        toPem(
          'X509 CRL',
          issueCrl({
            issuerName: issuer.cert.subject,
            issuerKey: o.signWith ?? issuer.key,
            issuerKeyId: keyIdentifier(issuer.key),
            thisUpdate: o.thisUpdate ?? new Date(now.getTime() - DAY),
            nextUpdate: o.nextUpdate ?? new Date(now.getTime() + 7 * DAY),
            number: 1n,
            revoked: o.revoked ?? [],
          }),
        ),
      );
    },
  };
}
