// The Extensions list shared by certificates and CRLs (RFC 5280 §4.1 and §5.1).
import { DerError, Reader, TAG, decode, items, readBoolean, readOid, type Tlv } from './der.js';
import { VerificationError } from './errors.js';

/**
 * Walks an Extensions SEQUENCE, each extension id at most once. `handle` gets
 * the decoded extnValue and returns whether it understood the extension; one
 * it did not understand that is marked critical is refused (RFC 5280 §4.2).
 */
export function readExtensionList(list: Tlv, what: string, handle: (id: string, value: Tlv) => boolean): void {
  const seen = new Set<string>();
  for (const ext of items(list, TAG.SEQUENCE, `${what} extensions`)) {
    const r = new Reader(ext, `${what} extension`);
    const id = readOid(r.next(TAG.OID, 'extnID'), what);
    const critTlv = r.optional(TAG.BOOLEAN);
    const critical = critTlv ? readBoolean(critTlv, `${what} extension ${id} critical`) : false;
    const value = decode(r.next(TAG.OCTET_STRING, 'extnValue').content);
    r.end();
    if (seen.has(id)) throw new DerError(`${what}: extension ${id} appears twice`);
    seen.add(id);
    if (!handle(id, value) && critical) throw new VerificationError('unsupported', `${what}: critical extension ${id} is not understood`);
  }
}
