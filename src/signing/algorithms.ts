// Signature and digest algorithms: which ones are accepted, and the node:crypto
// calls behind them. Hashing, signing and verifying all go through node:crypto
// (OpenSSL), never through a JavaScript implementation.
import { constants, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { DerError, Reader, TAG, nul, oid, readOid, seq, type Tlv } from './der.js';
import { VerificationError } from './errors.js';
import { OID } from './oids.js';

export type HashName = 'sha256' | 'sha384' | 'sha512';
export type KeyType = 'ec' | 'rsa';

export interface SignatureAlgorithm {
  /** e.g. ecdsa-with-SHA256 */
  label: string;
  hash: HashName;
  keyType: KeyType;
}

const SIGNATURE_ALGORITHMS: Record<string, SignatureAlgorithm & { params: 'absent' | 'null-or-absent' }> = {
  [OID.ecdsaWithSha256]: { label: 'ecdsa-with-SHA256', hash: 'sha256', keyType: 'ec', params: 'absent' },
  [OID.ecdsaWithSha384]: { label: 'ecdsa-with-SHA384', hash: 'sha384', keyType: 'ec', params: 'absent' },
  [OID.ecdsaWithSha512]: { label: 'ecdsa-with-SHA512', hash: 'sha512', keyType: 'ec', params: 'absent' },
  [OID.sha256WithRsa]: { label: 'sha256WithRSAEncryption', hash: 'sha256', keyType: 'rsa', params: 'null-or-absent' },
  [OID.sha384WithRsa]: { label: 'sha384WithRSAEncryption', hash: 'sha384', keyType: 'rsa', params: 'null-or-absent' },
  [OID.sha512WithRsa]: { label: 'sha512WithRSAEncryption', hash: 'sha512', keyType: 'rsa', params: 'null-or-absent' },
};

const DIGEST_ALGORITHMS: Record<string, HashName> = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };

// Curves and RSA sizes a signer may use. Anything weaker is refused, not warned about.
const EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
const MIN_RSA_BITS = 2048;

/** The OID of an AlgorithmIdentifier and whether its parameters are absent, NULL, or something else. */
function readAlgorithmId(t: Tlv, what: string): { oid: string; params: 'absent' | 'null' | 'other' } {
  const r = new Reader(t, what);
  const id = readOid(r.next(TAG.OID, 'algorithm'), what);
  let params: 'absent' | 'null' | 'other' = 'absent';
  if (!r.done) {
    const p = r.any('parameters');
    params = p.tag === TAG.NULL && p.content.length === 0 ? 'null' : 'other';
  }
  r.end();
  return { oid: id, params };
}

/** A signatureAlgorithm field of a certificate or CRL. */
export function readSignatureAlgorithm(t: Tlv, what: string): SignatureAlgorithm {
  const { oid: id, params } = readAlgorithmId(t, what);
  const alg = SIGNATURE_ALGORITHMS[id];
  if (!alg) throw new VerificationError('unsupported', `${what}: signature algorithm ${id} is not accepted (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512 are)`);
  if (params === 'other' || (alg.params === 'absent' && params !== 'absent')) throw new DerError(`${what}: unexpected parameters for ${alg.label}`);
  return { label: alg.label, hash: alg.hash, keyType: alg.keyType };
}

export function readDigestAlgorithm(t: Tlv, what: string): HashName {
  const { oid: id, params } = readAlgorithmId(t, what);
  const hash = DIGEST_ALGORITHMS[id];
  if (!hash) throw new VerificationError('unsupported', `${what}: digest algorithm ${id} is not accepted (SHA-256/384/512 are)`);
  if (params === 'other') throw new DerError(`${what}: unexpected digest algorithm parameters`);
  return hash;
}

/**
 * A CMS SignerInfo signatureAlgorithm: either a combined algorithm
 * (ecdsa-with-SHA256) or, as OpenSSL writes for RSA, the bare key algorithm
 * (rsaEncryption) with the hash taken from the digestAlgorithm field.
 */
export function readCmsSignatureAlgorithm(t: Tlv, digest: HashName, what: string): SignatureAlgorithm {
  const { oid: id, params } = readAlgorithmId(t, what);
  if (id === OID.rsaEncryption && params !== 'other') return { label: 'rsaEncryption', hash: digest, keyType: 'rsa' };
  if (id === OID.ecPublicKey && params === 'absent') return { label: 'id-ecPublicKey', hash: digest, keyType: 'ec' };
  return readSignatureAlgorithm(t, what);
}

/** A public key from SubjectPublicKeyInfo bytes, refused unless it is a key type and size podboot accepts. */
export function publicKeyFromSpki(spki: Buffer, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new DerError(`${what}: public key does not parse (${(err as Error).message})`);
  }
  checkKeyStrength(key, what);
  return key;
}

export function checkKeyStrength(key: KeyObject, what: string): void {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (!EC_CURVES.has(d.namedCurve ?? '')) throw new VerificationError('unsupported', `${what}: EC curve ${d.namedCurve} is not accepted (P-256, P-384, P-521 are)`);
  } else if (key.asymmetricKeyType === 'rsa') {
    if ((d.modulusLength ?? 0) < MIN_RSA_BITS) throw new VerificationError('unsupported', `${what}: RSA key of ${d.modulusLength} bits is too small (at least ${MIN_RSA_BITS})`);
  } else {
    throw new VerificationError('unsupported', `${what}: key type ${key.asymmetricKeyType} is not accepted (EC or RSA)`);
  }
}

/** True when `signature` over `data` verifies with `key` under `alg`; false for a wrong key type or a mangled signature. */
export function verifySignature(alg: SignatureAlgorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  if (key.asymmetricKeyType !== alg.keyType) return false;
  try {
    if (alg.keyType === 'ec') return verify(alg.hash, data, { key, dsaEncoding: 'der' }, signature);
    return verify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
}

/** How podboot signs with `key` (SHA-256), and the AlgorithmIdentifier that says so. */
export function signerFor(key: KeyObject): { algorithmId: Buffer; sign(data: Buffer): Buffer } {
  if (key.asymmetricKeyType === 'ec') {
    return { algorithmId: seq(oid(OID.ecdsaWithSha256)), sign: (data) => sign('sha256', data, { key, dsaEncoding: 'der' }) };
  }
  if (key.asymmetricKeyType === 'rsa') {
    return { algorithmId: seq(oid(OID.sha256WithRsa), nul()), sign: (data) => sign('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }) };
  }
  throw new Error(`cannot sign with a ${key.asymmetricKeyType} key (EC or RSA only)`);
}

/** AlgorithmIdentifier for SHA-256, parameters absent (RFC 5754 §2). */
export const SHA256_ALGORITHM_ID = (): Buffer => seq(oid(OID.sha256));
