// X.509 v3 certificates (RFC 5280 §4): bytes → the fields path validation needs.
import { createHash, type KeyObject } from 'node:crypto';
import { DerError, Reader, TAG, ctxTag, decode, items, readBitString, readBoolean, readInteger, readOid, readSmallInt, readTime, type Tlv } from './der.js';
import { publicKeyFromSpki, readSignatureAlgorithm, type SignatureAlgorithm } from './algorithms.js';
import { readExtensionList } from './extensions.js';
import { nameText } from './names.js';
import { OID } from './oids.js';

export const KEY_USAGE_BITS = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

export interface Certificate {
  der: Buffer;
  /** the signed part, exactly as encoded */
  tbs: Buffer;
  signatureAlgorithm: SignatureAlgorithm;
  signature: Buffer;
  serial: bigint;
  /** serial as lower-case hex, how CRLs and the CLI name it */
  serialHex: string;
  issuer: Buffer;
  issuerText: string;
  subject: Buffer;
  subjectText: string;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  publicKey: KeyObject;
  basicConstraints?: { ca: boolean; pathLen?: number };
  keyUsage?: Set<KeyUsage>;
  extKeyUsage?: string[];
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
  subjectAltNames: { dns: string[]; ip: string[] };
  sha256Fingerprint: string;
}

export function serialHex(serial: bigint): string {
  return serial.toString(16).padStart(2, '0');
}

export function readKeyUsage(t: Tlv, what: string): Set<KeyUsage> {
  const { bits } = readBitString(t, what);
  const set = new Set<KeyUsage>();
  KEY_USAGE_BITS.forEach((name, i) => {
    if ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) set.add(name);
  });
  return set;
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) return (b.toString('hex').match(/.{4}/g) ?? []).join(':');
  return `#${b.toString('hex')}`;
}

type Extensions = Pick<Certificate, 'basicConstraints' | 'keyUsage' | 'extKeyUsage' | 'subjectKeyId' | 'authorityKeyId' | 'subjectAltNames'>;

function readExtensions(list: Tlv, what: string): Extensions {
  const out: Extensions = { subjectAltNames: { dns: [], ip: [] } };
  readExtensionList(list, what, (id, value) => {
    const ew = `${what} extension ${id}`;
    const expect = (tag: number, name: string) => {
      if (value.tag !== tag) throw new DerError(`${ew}: ${name} has the wrong type`);
    };
    switch (id) {
      case OID.basicConstraints: {
        expect(TAG.SEQUENCE, 'basicConstraints');
        const br = new Reader(value, ew);
        const caTlv = br.optional(TAG.BOOLEAN);
        const pl = br.optional(TAG.INTEGER);
        br.end();
        out.basicConstraints = { ca: caTlv ? readBoolean(caTlv, ew) : false };
        if (pl) out.basicConstraints.pathLen = readSmallInt(pl, `${ew} pathLenConstraint`);
        return true;
      }
      case OID.keyUsage:
        expect(TAG.BIT_STRING, 'keyUsage');
        out.keyUsage = readKeyUsage(value, ew);
        return true;
      case OID.extKeyUsage:
        expect(TAG.SEQUENCE, 'extKeyUsage');
        out.extKeyUsage = items(value, TAG.OID, ew).map((o) => readOid(o, ew));
        if (out.extKeyUsage.length === 0) throw new DerError(`${ew}: empty extKeyUsage`);
        return true;
      case OID.subjectKeyIdentifier:
        expect(TAG.OCTET_STRING, 'subjectKeyIdentifier');
        out.subjectKeyId = value.content;
        return true;
      case OID.authorityKeyIdentifier: {
        expect(TAG.SEQUENCE, 'authorityKeyIdentifier');
        const keyId = new Reader(value, ew).optional(ctxTag(0, false));
        if (keyId) out.authorityKeyId = keyId.content; // the issuer name + serial form is allowed and not needed
        return true;
      }
      case OID.subjectAltName:
        expect(TAG.SEQUENCE, 'subjectAltName');
        for (const gr = new Reader(value, ew); !gr.done; ) {
          const gn = gr.any('GeneralName');
          if (gn.tag === ctxTag(2, false)) out.subjectAltNames.dns.push(gn.content.toString('latin1'));
          else if (gn.tag === ctxTag(7, false)) out.subjectAltNames.ip.push(ipText(gn.content));
        }
        return true;
      default:
        return false;
    }
  });
  return out;
}

/** Parses one DER certificate. `what` names it in errors ("signer certificate"). */
export function parseCertificate(der: Buffer, what: string): Certificate {
  const top = decode(der);
  if (top.tag !== TAG.SEQUENCE) throw new DerError(`${what}: not a certificate (expected a SEQUENCE)`);
  const cr = new Reader(top, what);
  const tbsTlv = cr.next(TAG.SEQUENCE, 'tbsCertificate');
  const signatureAlgorithm = readSignatureAlgorithm(cr.next(TAG.SEQUENCE, 'signatureAlgorithm'), `${what} signatureAlgorithm`);
  const sigBits = readBitString(cr.next(TAG.BIT_STRING, 'signatureValue'), `${what} signatureValue`);
  cr.end();

  const tr = new Reader(tbsTlv, `${what} tbsCertificate`);
  const versionTlv = tr.optional(ctxTag(0, true));
  const version = versionTlv ? readSmallInt(decode(versionTlv.content), `${what} version`) : 0;
  if (version > 2) throw new DerError(`${what}: unknown certificate version ${version + 1}`);
  const serialTlv = tr.next(TAG.INTEGER, 'serialNumber');
  const serial = readInteger(serialTlv, `${what} serialNumber`);
  const innerAlg = tr.next(TAG.SEQUENCE, 'signature');
  // RFC 5280 §4.1.1.2: the algorithm inside the signed part must equal the outer one.
  if (!innerAlg.bytes.equals(top.content.subarray(tbsTlv.bytes.length, tbsTlv.bytes.length + innerAlg.bytes.length))) {
    throw new DerError(`${what}: signature algorithm inside the certificate differs from the outer one`);
  }
  const issuer = tr.next(TAG.SEQUENCE, 'issuer');
  const validity = new Reader(tr.next(TAG.SEQUENCE, 'validity'), `${what} validity`);
  const notBefore = readTime(validity.any('notBefore'), `${what} notBefore`);
  const notAfter = readTime(validity.any('notAfter'), `${what} notAfter`);
  validity.end();
  const subject = tr.next(TAG.SEQUENCE, 'subject');
  const spki = tr.next(TAG.SEQUENCE, 'subjectPublicKeyInfo');
  tr.optional(ctxTag(1, false));
  tr.optional(ctxTag(2, false));
  const extTlv = tr.optional(ctxTag(3, true));
  tr.end();
  const ext = extTlv ? readExtensions(decode(extTlv.content), what) : { subjectAltNames: { dns: [], ip: [] } };

  return {
    der: top.bytes,
    tbs: tbsTlv.bytes,
    signatureAlgorithm,
    signature: sigBits.bits,
    serial,
    serialHex: serialHex(serial),
    issuer: issuer.bytes,
    issuerText: nameText(issuer, `${what} issuer`),
    subject: subject.bytes,
    subjectText: nameText(subject, `${what} subject`),
    notBefore,
    notAfter,
    spki: spki.bytes,
    publicKey: publicKeyFromSpki(spki.bytes, `${what} public key`),
    ...ext,
    sha256Fingerprint: createHash('sha256').update(top.bytes).digest('hex'),
  };
}
