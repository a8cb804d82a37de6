// PEM armour (RFC 7468): base64 between BEGIN/END lines.

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK_RE)) out.push({ label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') });
  return out;
}

export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The DER objects with `label` in a file that is either PEM (one or more
 * blocks) or a single DER object (starts with a SEQUENCE tag).
 */
export function derObjects(bytes: Buffer, label: string): Buffer[] {
  if (bytes[0] === 0x30) return [bytes];
  return pemBlocks(bytes.toString('latin1'))
    .filter((b) => b.label === label)
    .map((b) => b.der);
}
