// Detached CMS SignedData (RFC 5652 §5) with one signer: the codec in both
// directions. Checking what it says (chain, signature, digest) is verify.ts's job.
import type { KeyObject } from 'node:crypto';
import { DerError, Reader, TAG, ctxTag, decode, encode, explicit, implicit, integer, items, octets, oid, readOid, readSmallInt, readInteger, readTime, seq, setOf, time, type Tlv } from './der.js';
import { SHA256_ALGORITHM_ID, readCmsSignatureAlgorithm, readDigestAlgorithm, signerFor, type HashName, type SignatureAlgorithm } from './algorithms.js';
import { VerificationError } from './errors.js';
import { OID } from './oids.js';

/** More certificates than any sane chain needs; the cap bounds path building. */
export const MAX_CMS_CERTIFICATES = 16;

export type SignerId = { kind: 'issuerAndSerialNumber'; issuer: Buffer; serial: bigint } | { kind: 'subjectKeyIdentifier'; keyId: Buffer };

export interface SignedAttributes {
  contentType: string;
  messageDigest: Buffer;
  signingTime?: Date;
}

export interface DetachedSignature {
  eContentType: string;
  certificates: Buffer[];
  signerId: SignerId;
  digestAlgorithm: HashName;
  /** the DER SET OF Attribute the signature covers (the [0] tag already replaced by SET, RFC 5652 §5.4) */
  signedAttributesDer: Buffer;
  attributes: SignedAttributes;
  signatureAlgorithm: SignatureAlgorithm;
  signature: Buffer;
}

function singleValue(values: Tlv, name: string): Tlv {
  const r = new Reader(values, `${name} attribute values`);
  const v = r.any('value');
  if (!r.done) throw new DerError(`${name} attribute must have exactly one value`);
  return v;
}

function readSignedAttributes(attrs: Tlv): SignedAttributes {
  const found = new Map<string, Tlv>();
  for (const attr of items(attrs, TAG.SEQUENCE, 'signed attributes')) {
    const r = new Reader(attr, 'signed attribute');
    const type = readOid(r.next(TAG.OID, 'attrType'), 'signed attribute');
    const values = r.next(TAG.SET, 'attrValues');
    r.end();
    if (found.has(type)) throw new DerError(`signed attribute ${type} appears twice`);
    found.set(type, values);
  }
  const ct = found.get(OID.contentType);
  const md = found.get(OID.messageDigest);
  if (!ct) throw new DerError('signed attributes lack contentType (RFC 5652 §11.1)');
  if (!md) throw new DerError('signed attributes lack messageDigest (RFC 5652 §11.2)');
  const ctValue = singleValue(ct, 'contentType');
  const mdValue = singleValue(md, 'messageDigest');
  if (ctValue.tag !== TAG.OID) throw new DerError('contentType attribute value should be an OBJECT IDENTIFIER');
  if (mdValue.tag !== TAG.OCTET_STRING) throw new DerError('messageDigest attribute value should be an OCTET STRING');
  const out: SignedAttributes = { contentType: readOid(ctValue, 'contentType'), messageDigest: mdValue.content };
  const st = found.get(OID.signingTime);
  if (st) out.signingTime = readTime(singleValue(st, 'signingTime'), 'signingTime');
  return out;
}

function readSignerId(t: Tlv): SignerId {
  if (t.tag === TAG.SEQUENCE) {
    const r = new Reader(t, 'issuerAndSerialNumber');
    const issuer = r.next(TAG.SEQUENCE, 'issuer').bytes;
    const serial = readInteger(r.next(TAG.INTEGER, 'serialNumber'), 'signer serial number');
    r.end();
    return { kind: 'issuerAndSerialNumber', issuer, serial };
  }
  if (t.tag === ctxTag(0, false)) return { kind: 'subjectKeyIdentifier', keyId: t.content };
  throw new DerError('signer identifier is neither issuerAndSerialNumber nor subjectKeyIdentifier');
}

/** Parses a DER ContentInfo holding a detached SignedData with exactly one signer. */
export function parseDetachedSignature(der: Buffer): DetachedSignature {
  const ci = new Reader(decode(der), 'ContentInfo');
  const contentType = readOid(ci.next(TAG.OID, 'contentType'), 'ContentInfo');
  if (contentType !== OID.signedData) throw new DerError(`ContentInfo holds ${contentType}, not SignedData`);
  const sd = new Reader(decode(ci.next(ctxTag(0, true), 'content').content), 'SignedData');
  ci.end();
  readSmallInt(sd.next(TAG.INTEGER, 'version'), 'SignedData version');
  for (const alg of items(sd.next(TAG.SET, 'digestAlgorithms'), TAG.SEQUENCE, 'digestAlgorithms')) readDigestAlgorithm(alg, 'SignedData digestAlgorithms');
  const eci = new Reader(sd.next(TAG.SEQUENCE, 'encapContentInfo'), 'encapContentInfo');
  const eContentType = readOid(eci.next(TAG.OID, 'eContentType'), 'encapContentInfo');
  if (!eci.done) throw new VerificationError('unsupported', 'the signature embeds its content; podboot uses detached signatures (openssl cms -sign without -nodetach)');
  const certificates: Buffer[] = [];
  const certSet = sd.optional(ctxTag(0, true));
  if (certSet) {
    for (const r = new Reader(certSet, 'certificates'); !r.done; ) {
      const c = r.any('certificate');
      if (c.tag !== TAG.SEQUENCE) throw new VerificationError('unsupported', 'the signature carries a non-X.509 certificate (attribute or other certificate format)');
      certificates.push(c.bytes);
      if (certificates.length > MAX_CMS_CERTIFICATES) throw new VerificationError('too-large', `the signature carries more than ${MAX_CMS_CERTIFICATES} certificates`);
    }
  }
  sd.optional(ctxTag(1, true)); // embedded CRLs: revocation uses the operator's CRL files instead
  const signers = items(sd.next(TAG.SET, 'signerInfos'), TAG.SEQUENCE, 'signerInfos');
  sd.end();
  if (signers.length !== 1) throw new VerificationError('unsupported', `the signature has ${signers.length} signers; podboot expects exactly one`);

  const si = new Reader(signers[0]!, 'SignerInfo');
  const version = readSmallInt(si.next(TAG.INTEGER, 'version'), 'SignerInfo version');
  const signerId = readSignerId(si.any('sid'));
  const expectedVersion = signerId.kind === 'issuerAndSerialNumber' ? 1 : 3;
  if (version !== expectedVersion) throw new DerError(`SignerInfo version ${version} does not match its ${signerId.kind} identifier (RFC 5652 §5.3 requires ${expectedVersion})`);
  const digestAlgorithm = readDigestAlgorithm(si.next(TAG.SEQUENCE, 'digestAlgorithm'), 'SignerInfo digestAlgorithm');
  const attrs = si.optional(ctxTag(0, true));
  if (!attrs) throw new VerificationError('unsupported', 'the signature has no signed attributes; podboot requires contentType and messageDigest (do not sign with -noattr)');
  const signatureAlgorithm = readCmsSignatureAlgorithm(si.next(TAG.SEQUENCE, 'signatureAlgorithm'), digestAlgorithm, 'SignerInfo signatureAlgorithm');
  const signature = si.next(TAG.OCTET_STRING, 'signature').content;
  si.optional(ctxTag(1, true)); // unsigned attributes (e.g. countersignatures) carry nothing podboot trusts
  si.end();

  const signedAttributesDer = Buffer.from(attrs.bytes);
  signedAttributesDer[0] = TAG.SET;
  return {
    eContentType,
    certificates,
    signerId,
    digestAlgorithm,
    signedAttributesDer,
    attributes: readSignedAttributes(decode(signedAttributesDer)),
    signatureAlgorithm,
    signature,
  };
}

export interface SignerCertificateRef {
  der: Buffer;
  issuer: Buffer;
  serial: bigint;
  subjectKeyId?: Buffer;
}

export interface EncodeSignatureInput {
  /** SHA-256 of the content */
  digest: Buffer;
  signer: SignerCertificateRef;
  /** issuing CA certificates to include, so a verifier needs only the root */
  chain: Buffer[];
  key: KeyObject;
  signingTime: Date;
  /** identify the signer by subjectKeyIdentifier (like openssl cms -keyid) instead of issuer and serial */
  bySubjectKeyId?: boolean;
}

/** A detached SignedData over content whose SHA-256 is `digest`, DER-encoded. */
export function encodeDetachedSignature(input: EncodeSignatureInput): Buffer {
  if (input.digest.length !== 32) throw new RangeError('digest must be a SHA-256 (32 bytes)');
  const attribute = (type: string, value: Buffer) => seq(oid(type), setOf(value));
  const signedAttrs = setOf(attribute(OID.contentType, oid(OID.data)), attribute(OID.signingTime, time(input.signingTime)), attribute(OID.messageDigest, octets(input.digest)));
  const signer = signerFor(input.key);
  let sid: Buffer;
  let version: bigint;
  if (input.bySubjectKeyId) {
    if (!input.signer.subjectKeyId) throw new Error('the signer certificate has no subjectKeyIdentifier to identify it by');
    sid = encode(ctxTag(0, false), input.signer.subjectKeyId);
    version = 3n;
  } else {
    sid = seq(input.signer.issuer, integer(input.signer.serial));
    version = 1n;
  }
  const signerInfo = seq(integer(version), sid, SHA256_ALGORITHM_ID(), implicit(0, signedAttrs), signer.algorithmId, octets(signer.sign(signedAttrs)));
  const signedData = seq(integer(version), setOf(SHA256_ALGORITHM_ID()), seq(oid(OID.data)), implicit(0, setOf(input.signer.der, ...input.chain)), setOf(signerInfo));
  return seq(oid(OID.signedData), explicit(0, signedData));
}
