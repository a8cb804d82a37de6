// X.509 v2 CRLs (RFC 5280 §5): bytes → issuer, validity window and revoked serials.
import { DerError, Reader, TAG, ctxTag, decode, items, readBitString, readInteger, readSmallInt, readTime } from './der.js';
import { readSignatureAlgorithm, type SignatureAlgorithm } from './algorithms.js';
import { readExtensionList } from './extensions.js';
import { nameText } from './names.js';
import { OID } from './oids.js';
import { serialHex } from './x509.js';

/** CRLReason values (RFC 5280 §5.3.1); 7 is unused. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export interface Revocation {
  date: Date;
  reason?: RevocationReason;
}

export interface Crl {
  der: Buffer;
  tbs: Buffer;
  signatureAlgorithm: SignatureAlgorithm;
  signature: Buffer;
  issuer: Buffer;
  issuerText: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  number?: bigint;
  authorityKeyId?: Buffer;
  /** keyed by serialHex */
  revoked: Map<string, Revocation>;
}

function reasonName(code: number): RevocationReason | undefined {
  return (Object.keys(REVOCATION_REASONS) as RevocationReason[]).find((k) => REVOCATION_REASONS[k] === code);
}

export function parseCrl(der: Buffer, what = 'CRL'): Crl {
  const top = decode(der);
  if (top.tag !== TAG.SEQUENCE) throw new DerError(`${what}: not a CRL (expected a SEQUENCE)`);
  const cr = new Reader(top, what);
  const tbsTlv = cr.next(TAG.SEQUENCE, 'tbsCertList');
  const signatureAlgorithm = readSignatureAlgorithm(cr.next(TAG.SEQUENCE, 'signatureAlgorithm'), `${what} signatureAlgorithm`);
  const sig = readBitString(cr.next(TAG.BIT_STRING, 'signatureValue'), `${what} signatureValue`);
  cr.end();

  const tr = new Reader(tbsTlv, `${what} tbsCertList`);
  const versionTlv = tr.optional(TAG.INTEGER);
  if (versionTlv && readSmallInt(versionTlv, `${what} version`) !== 1) throw new DerError(`${what}: unknown CRL version`);
  const innerAlg = tr.next(TAG.SEQUENCE, 'signature');
  if (!innerAlg.bytes.equals(top.content.subarray(tbsTlv.bytes.length, tbsTlv.bytes.length + innerAlg.bytes.length))) {
    throw new DerError(`${what}: signature algorithm inside the CRL differs from the outer one`);
  }
  const issuer = tr.next(TAG.SEQUENCE, 'issuer');
  const thisUpdate = readTime(tr.any('thisUpdate'), `${what} thisUpdate`);
  const t = tr.peekTag();
  const nextUpdate = t === TAG.UTC_TIME || t === TAG.GENERALIZED_TIME ? readTime(tr.any('nextUpdate'), `${what} nextUpdate`) : undefined;
  const revoked = new Map<string, Revocation>();
  const list = tr.optional(TAG.SEQUENCE);
  if (list) {
    for (const entry of items(list, TAG.SEQUENCE, `${what} revokedCertificates`)) {
      const er = new Reader(entry, `${what} entry`);
      const serial = readInteger(er.next(TAG.INTEGER, 'userCertificate'), `${what} entry serial`);
      const rev: Revocation = { date: readTime(er.any('revocationDate'), `${what} revocationDate`) };
      const exts = er.optional(TAG.SEQUENCE);
      er.end();
      if (exts) {
        readExtensionList(exts, `${what} entry ${serialHex(serial)}`, (id, value) => {
          if (id !== OID.crlReason) return false;
          if (value.tag !== TAG.ENUMERATED || value.content.length !== 1) throw new DerError(`${what}: bad reasonCode`);
          rev.reason = reasonName(value.content[0]!);
          return true;
        });
      }
      revoked.set(serialHex(serial), rev);
    }
  }
  const crl: Crl = {
    der: top.bytes,
    tbs: tbsTlv.bytes,
    signatureAlgorithm,
    signature: sig.bits,
    issuer: issuer.bytes,
    issuerText: nameText(issuer, `${what} issuer`),
    thisUpdate,
    revoked,
  };
  if (nextUpdate) crl.nextUpdate = nextUpdate;
  const extTlv = tr.optional(ctxTag(0, true));
  tr.end();
  if (extTlv) {
    // Indirect and delta CRLs and distribution-point scoping come as critical extensions, which podboot refuses.
    readExtensionList(decode(extTlv.content), what, (id, value) => {
      if (id === OID.crlNumber) {
        if (value.tag !== TAG.INTEGER) throw new DerError(`${what}: cRLNumber should be an INTEGER`);
        crl.number = readInteger(value, `${what} cRLNumber`);
        return true;
      }
      if (id === OID.authorityKeyIdentifier) {
        const keyId = value.tag === TAG.SEQUENCE ? new Reader(value, what).optional(ctxTag(0, false)) : undefined;
        if (keyId) crl.authorityKeyId = keyId.content;
        return true;
      }
      return false;
    });
  }
  return crl;
}
