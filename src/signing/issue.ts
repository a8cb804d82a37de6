// Issuing X.509 certificates and CRLs (RFC 5280 profiles for podboot's
// hierarchy). Encoding only: keys come in, DER goes out; the CA directory
// (ca-dir.ts) decides what to issue and keeps the files.
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { signerFor } from './algorithms.js';
import { REVOCATION_REASONS, type RevocationReason } from './crl.js';
import { Reader, TAG, bitString, boolTrue, ctxTag, decode, encode, enumerated, explicit, integer, namedBits, octets, oid, seq, time } from './der.js';
import { OID } from './oids.js';

export type CertificateProfile =
  /** `eku`: the purposes this CA may vouch for (EKU chaining, as OpenSSL and podboot's verifier apply it); absent = any */
  { kind: 'ca'; pathLen: number; eku?: string[] } | { kind: 'code-signing' } | { kind: 'tls-server'; dns: string[]; ip: string[] };

export interface CertificateRequest {
  serial: bigint;
  issuerName: Buffer;
  subjectName: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  issuerKey: KeyObject;
  /** the issuer's subjectKeyIdentifier; absent for a self-signed root */
  issuerKeyId?: Buffer;
  profile: CertificateProfile;
}

/** 128 random bits, positive and without a leading zero byte (RFC 5280 §4.1.2.2 allows up to 20 octets). */
export function randomSerial(): bigint {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return BigInt(`0x${b.toString('hex')}`);
}

export function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const r = new Reader(decode(spkiOf(publicKey)), 'SubjectPublicKeyInfo');
  r.next(TAG.SEQUENCE, 'algorithm');
  const bits = r.next(TAG.BIT_STRING, 'subjectPublicKey').content.subarray(1);
  return createHash('sha256').update(bits).digest().subarray(0, 20);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), boolTrue(), octets(value)) : seq(oid(id), octets(value));
}

const KU = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

function ipAddressBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('.')) throw new Error(`${text} is not an IPv4 or plain IPv6 address`);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  for (let i = 0; i < all.length; i++) out.writeUInt16BE(all[i]!, i * 2);
  return out;
}

function profileExtensions(req: CertificateRequest): Buffer[] {
  const p = req.profile;
  const exts: Buffer[] = [];
  if (p.kind === 'ca') {
    exts.push(extension(OID.basicConstraints, true, seq(boolTrue(), integer(BigInt(p.pathLen)))));
    exts.push(extension(OID.keyUsage, true, namedBits([KU.keyCertSign, KU.cRLSign])));
    if (p.eku?.length) exts.push(extension(OID.extKeyUsage, false, seq(...p.eku.map((e) => oid(e)))));
  } else {
    exts.push(extension(OID.basicConstraints, true, seq()));
    exts.push(extension(OID.keyUsage, true, namedBits([KU.digitalSignature])));
    exts.push(extension(OID.extKeyUsage, false, seq(oid(p.kind === 'code-signing' ? OID.codeSigning : OID.serverAuth))));
    if (p.kind === 'tls-server') {
      // GeneralName dNSName [2] IA5String and iPAddress [7] OCTET STRING, both IMPLICIT
      const names = [...p.dns.map((d) => encode(ctxTag(2, false), Buffer.from(d, 'latin1'))), ...p.ip.map((a) => encode(ctxTag(7, false), ipAddressBytes(a)))];
      if (names.length === 0) throw new Error('a TLS server certificate needs at least one DNS name or IP address');
      exts.push(extension(OID.subjectAltName, false, seq(...names)));
    }
  }
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(req.publicKey))));
  if (req.issuerKeyId) exts.push(extension(OID.authorityKeyIdentifier, false, seq(encode(ctxTag(0, false), req.issuerKeyId))));
  return exts;
}

/** A signed v3 certificate, DER. */
export function issueCertificate(req: CertificateRequest): Buffer {
  if (req.notAfter <= req.notBefore) throw new Error('notAfter must be later than notBefore');
  const signer = signerFor(req.issuerKey);
  const tbs = seq(
    explicit(0, integer(2n)),
    integer(req.serial),
    signer.algorithmId,
    req.issuerName,
    seq(time(req.notBefore), time(req.notAfter)),
    req.subjectName,
    spkiOf(req.publicKey),
    explicit(3, seq(...profileExtensions(req))),
  );
  return seq(tbs, signer.algorithmId, bitString(signer.sign(tbs)));
}

export interface RevokedEntry {
  serial: bigint;
  date: Date;
  reason?: RevocationReason;
}

export interface CrlRequest {
  issuerName: Buffer;
  issuerKey: KeyObject;
  issuerKeyId: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  number: bigint;
  revoked: RevokedEntry[];
}

/** A signed v2 CRL, DER. */
export function issueCrl(req: CrlRequest): Buffer {
  const signer = signerFor(req.issuerKey);
  const entries = req.revoked.map((r) =>
    r.reason && r.reason !== 'unspecified'
      ? seq(integer(r.serial), time(r.date), seq(extension(OID.crlReason, false, enumerated(REVOCATION_REASONS[r.reason]))))
      : seq(integer(r.serial), time(r.date)),
  );
  const tbs = seq(
    integer(1n),
    signer.algorithmId,
    req.issuerName,
    time(req.thisUpdate),
    time(req.nextUpdate),
    ...(entries.length ? [seq(...entries)] : []), // RFC 5280 §5.1.2.6: absent when empty
    explicit(0, seq(extension(OID.authorityKeyIdentifier, false, seq(encode(ctxTag(0, false), req.issuerKeyId))), extension(OID.crlNumber, false, integer(req.number)))),
  );
  return seq(tbs, signer.algorithmId, bitString(signer.sign(tbs)));
}
