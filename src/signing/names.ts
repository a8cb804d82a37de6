// X.501 distinguished names: encoded for issuing, rendered for messages.
// Names are compared as DER bytes (see chain.ts), never as rendered text.
import { Reader, TAG, items, oid, readOid, seq, setOf, utf8, type Tlv } from './der.js';
import { NAME_ATTRIBUTE_LABELS, OID } from './oids.js';

export interface NameParts {
  commonName: string;
  organization?: string;
}

/** O then CN, one attribute per RDN, UTF8String values (RFC 5280 §4.1.2.4). */
export function buildName(parts: NameParts): Buffer {
  const rdns: Buffer[] = [];
  if (parts.organization) rdns.push(setOf(seq(oid(OID.organizationName), utf8(parts.organization))));
  rdns.push(setOf(seq(oid(OID.commonName), utf8(parts.commonName))));
  return seq(...rdns);
}

function stringValue(t: Tlv): string {
  switch (t.tag) {
    case TAG.UTF8_STRING:
      return t.content.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.T61_STRING:
      return t.content.toString('latin1');
    case TAG.BMP_STRING:
      if (t.content.length % 2 === 0) return Buffer.from(t.content).swap16().toString('utf16le');
      return `#${t.bytes.toString('hex')}`;
    default:
      return `#${t.bytes.toString('hex')}`;
  }
}

/** "O=Example, CN=podboot signing CA" in the order the name is encoded. */
export function nameText(name: Tlv, what: string): string {
  const parts: string[] = [];
  for (const rdn of items(name, TAG.SET, `${what} name`)) {
    for (const atv of items(rdn, TAG.SEQUENCE, `${what} name attribute`)) {
      const r = new Reader(atv, `${what} name attribute`);
      const type = readOid(r.next(TAG.OID, 'type'), what);
      const value = r.any('value');
      r.end();
      // Control characters in a name would let a certificate forge log lines.
      parts.push(`${NAME_ATTRIBUTE_LABELS[type] ?? type}=${stringValue(value).replace(/[\x00-\x1f\x7f]/g, '?')}`);
    }
  }
  return parts.join(', ');
}
