// Alertmanager's alert fingerprint (prometheus/common model.LabelSet.Fingerprint):
// FNV-1a 64 over the label names in order, each name and value followed by
// the byte 0xff, printed as 16 hex digits. The same alert gets the same
// fingerprint from podboot as from Alertmanager, so receivers can dedupe
// across a move from one to the other.

const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;

export function fingerprint(labels: Record<string, string>): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return OFFSET.toString(16).padStart(16, '0');
  let h = OFFSET;
  const add = (bytes: Uint8Array) => {
    for (const b of bytes) h = ((h ^ BigInt(b)) * PRIME) & MASK;
  };
  const sep = new Uint8Array([0xff]);
  const enc = new TextEncoder();
  for (const n of names) {
    add(enc.encode(n));
    add(sep);
    add(enc.encode(labels[n]!));
    add(sep);
  }
  return h.toString(16).padStart(16, '0');
}
