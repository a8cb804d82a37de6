// netascii mode (RFC 1350, RFC 764): line ends go out as CR LF and a bare CR
// as CR NUL. Conversion changes the length, so the converted file is built in
// memory once; netascii is for small text files (configs), not kernels.
import { bufferSource, type FileSource } from './file-source.js';

export const MAX_NETASCII_BYTES = 4 * 1024 * 1024;

export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0x0a || data[i] === 0x0d) extra++;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (c === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (c === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else out[o++] = c;
  }
  return out;
}

/** The netascii form of `src` (closing `src`), or undefined when the file is too big for it. */
export async function netasciiSource(src: FileSource): Promise<FileSource | undefined> {
  try {
    if (src.size > MAX_NETASCII_BYTES) return undefined;
    const raw = Buffer.alloc(src.size);
    const n = await src.read(0, [raw]);
    return bufferSource(toNetascii(raw.subarray(0, n)));
  } finally {
    await src.close();
  }
}
