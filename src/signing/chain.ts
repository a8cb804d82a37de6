// Certification path validation for code signing: a deliberately small subset
// of RFC 5280 §6 for podboot's hierarchy (root → code-signing CA → signer). Names are
// matched as DER bytes; every link's signature is checked with node:crypto;
// policies and name constraints are not processed (a certificate that marks
// them critical is refused when parsed).
import { verifySignature } from './algorithms.js';
import type { Crl } from './crl.js';
import { VerificationError } from './errors.js';
import { OID } from './oids.js';
import type { Certificate } from './x509.js';

/** Longest path accepted, root included. podboot's own is 3. */
export const MAX_PATH_LENGTH = 5;
/** Signature checks one path search may spend: certificates that all name each other must not cost thousands. */
const MAX_LINK_CHECKS = 64;

export interface TrustAnchors {
  roots: Certificate[];
  crls: Crl[];
}

export interface ValidatedPath {
  /** leaf first, trusted root last */
  chain: Certificate[];
  /** subjects whose revocation was checked against a CRL, and those with no CRL given */
  revocation: { checked: string[]; unchecked: string[] };
}

const signedBy = (child: Certificate | Crl, issuer: Certificate): boolean => verifySignature(child.signatureAlgorithm, issuer.publicKey, child.tbs, child.signature);

function role(chain: Certificate[], i: number): string {
  const c = chain[i]!;
  if (i === 0) return `signer certificate (${c.subjectText}, serial ${c.serialHex})`;
  if (i === chain.length - 1) return `root CA certificate (${c.subjectText})`;
  return `issuing CA certificate (${c.subjectText}, serial ${c.serialHex})`;
}

/** Issuers from `leaf`'s issuer up to a trusted root, trying every candidate with the right name. */
function buildPath(leaf: Certificate, pool: Certificate[], roots: Certificate[]): Certificate[] {
  const failures: string[] = [];
  let checks = 0;
  const linked = (child: Certificate, issuer: Certificate): boolean => {
    if (++checks > MAX_LINK_CHECKS) throw new VerificationError('chain', `no path found within ${MAX_LINK_CHECKS} signature checks`);
    return signedBy(child, issuer);
  };
  const walk = (cert: Certificate, seen: Certificate[]): Certificate[] | undefined => {
    const name = seen.length === 0 ? 'the signer certificate' : `the CA certificate ${cert.subjectText} (serial ${cert.serialHex})`;
    for (const root of roots) {
      if (!cert.issuer.equals(root.subject)) continue;
      if (linked(cert, root)) return [root];
      failures.push(`${name} names ${root.subjectText} as issuer, but its signature does not verify with the trusted root's key (a different CA with the same name?)`);
    }
    if (seen.length + 3 > MAX_PATH_LENGTH) {
      failures.push(`no trusted root within ${MAX_PATH_LENGTH} certificates`);
      return undefined;
    }
    for (const cand of pool) {
      if (!cand.subject.equals(cert.issuer) || cand === cert || seen.includes(cand) || roots.some((r) => r.der.equals(cand.der))) continue;
      if (!linked(cert, cand)) {
        failures.push(`${name}'s signature does not verify with the key of ${cand.subjectText} (serial ${cand.serialHex}) carried in the signature`);
        continue;
      }
      const rest = walk(cand, [...seen, cand]);
      if (rest) return [cand, ...rest];
    }
    return undefined;
  };
  const path = walk(leaf, []);
  if (path) return [leaf, ...path];
  if (failures.length === 0) {
    throw new VerificationError(
      'chain',
      `no certificate for the signer's issuer ${leaf.issuerText}: the signature must carry the issuing CA certificate, and the path must end at the trusted root (${roots.map((r) => r.subjectText).join('; ')})`,
    );
  }
  throw new VerificationError('chain', `does not chain to the trusted root: ${[...new Set(failures)].slice(0, 3).join('; ')}`);
}

const EKU_NAMES: Record<string, string> = {
  [OID.serverAuth]: 'serverAuth',
  [OID.clientAuth]: 'clientAuth',
  [OID.codeSigning]: 'codeSigning',
  [OID.anyExtendedKeyUsage]: 'anyExtendedKeyUsage',
};

function checkIssuers(chain: Certificate[], purpose: string): void {
  for (let i = 1; i < chain.length; i++) {
    const c = chain[i]!;
    const what = role(chain, i);
    if (!c.basicConstraints?.ca) throw new VerificationError('ca', `${what} is not a CA (basicConstraints cA is not set) yet issued ${chain[i - 1]!.subjectText}`);
    if (c.keyUsage && !c.keyUsage.has('keyCertSign')) throw new VerificationError('ca', `${what} has keyUsage without keyCertSign`);
    const below = i - 1; // CA certificates between this one and the leaf
    if (c.basicConstraints.pathLen !== undefined && below > c.basicConstraints.pathLen) {
      throw new VerificationError('ca', `${what} allows ${c.basicConstraints.pathLen} CA certificates below it (pathLenConstraint), the path has ${below}`);
    }
    // An issuing CA restricted to other purposes may not vouch for code signing (EKU chaining, as
    // OpenSSL does for the purposes it knows, and Windows). This is what keeps the service TLS CA
    // (EKU serverAuth), whose key the central node holds, from minting signers: stage1's verify.sh
    // applies the same rule to the signer's issuing CA.
    if (i < chain.length - 1 && c.extKeyUsage && !c.extKeyUsage.includes(purpose) && !c.extKeyUsage.includes(OID.anyExtendedKeyUsage)) {
      const names = c.extKeyUsage.map((o) => EKU_NAMES[o] ?? o).join(', ');
      throw new VerificationError('eku', `${what} is not a code-signing CA: its extendedKeyUsage (${names}) excludes ${EKU_NAMES[purpose] ?? purpose}, so it may not vouch for a signer`);
    }
  }
}

function checkValidity(chain: Certificate[], now: Date): void {
  chain.forEach((c, i) => {
    if (now < c.notBefore) throw new VerificationError('not-yet-valid', `${role(chain, i)} is not valid before ${c.notBefore.toISOString()} (now ${now.toISOString()})`);
    if (now > c.notAfter) throw new VerificationError('expired', `${role(chain, i)} expired at ${c.notAfter.toISOString()} (now ${now.toISOString()})`);
  });
}

function checkLeaf(chain: Certificate[], purpose: string): void {
  const leaf = chain[0]!;
  const what = role(chain, 0);
  if (leaf.basicConstraints?.ca) throw new VerificationError('eku', `${what} is a CA certificate; images must be signed with an end-entity code-signing certificate`);
  if (!leaf.extKeyUsage?.includes(purpose)) {
    const has = leaf.extKeyUsage ? leaf.extKeyUsage.map((o) => EKU_NAMES[o] ?? o).join(', ') : 'no extendedKeyUsage extension';
    throw new VerificationError('eku', `${what} is not for code signing: extendedKeyUsage lacks ${EKU_NAMES[purpose] ?? purpose} (has ${has})`);
  }
  if (leaf.keyUsage && !leaf.keyUsage.has('digitalSignature')) throw new VerificationError('eku', `${what} has keyUsage without digitalSignature`);
}

function checkRevocation(chain: Certificate[], crls: Crl[], now: Date): ValidatedPath['revocation'] {
  const covered = new Set<number>();
  for (const crl of crls) {
    const at = chain.findIndex((c, i) => i > 0 && c.subject.equals(crl.issuer));
    if (at < 0)
      throw new VerificationError(
        'crl',
        `the CRL issued by ${crl.issuerText} does not belong to this chain (issuers: ${chain
          .slice(1)
          .map((c) => c.subjectText)
          .join('; ')})`,
      );
    const issuer = chain[at]!;
    if (!signedBy(crl, issuer)) throw new VerificationError('crl', `the CRL naming ${crl.issuerText} as issuer has a signature that does not verify with that CA's key`);
    if (issuer.keyUsage && !issuer.keyUsage.has('cRLSign')) throw new VerificationError('crl', `${issuer.subjectText} may not sign CRLs (keyUsage lacks cRLSign)`);
    if (now < crl.thisUpdate) throw new VerificationError('crl', `the CRL from ${crl.issuerText} is not valid before ${crl.thisUpdate.toISOString()}`);
    if (!crl.nextUpdate) throw new VerificationError('crl', `the CRL from ${crl.issuerText} has no nextUpdate, so its freshness cannot be judged`);
    if (now > crl.nextUpdate) throw new VerificationError('crl', `the CRL from ${crl.issuerText} is out of date since ${crl.nextUpdate.toISOString()}; issue a fresh one`);
    const subjectIndex = at - 1;
    const subject = chain[subjectIndex]!;
    const rev = crl.revoked.get(subject.serialHex);
    if (rev) {
      throw new VerificationError('revoked', `${role(chain, subjectIndex)} was revoked on ${rev.date.toISOString()}${rev.reason ? ` (${rev.reason})` : ''}`);
    }
    covered.add(subjectIndex);
  }
  const subjects = chain.slice(0, -1).map((c, i) => ({ c, i }));
  return {
    checked: subjects.filter(({ i }) => covered.has(i)).map(({ c }) => c.subjectText),
    unchecked: subjects.filter(({ i }) => !covered.has(i)).map(({ c }) => c.subjectText),
  };
}

/**
 * Validates `leaf` for `purpose` (an extendedKeyUsage OID) at time `now`: path to
 * a trusted root through `pool`, CA constraints, validity of every certificate,
 * the leaf's purpose, and revocation against the CRLs given. Throws a
 * VerificationError naming the failed check.
 */
export function validatePath(leaf: Certificate, pool: Certificate[], trust: TrustAnchors, now: Date, purpose: string): ValidatedPath {
  const chain = buildPath(leaf, pool, trust.roots);
  checkIssuers(chain, purpose);
  checkValidity(chain, now);
  checkLeaf(chain, purpose);
  return { chain, revocation: checkRevocation(chain, trust.crls, now) };
}
