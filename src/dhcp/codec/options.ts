// Typed readers and writers for the option values podboot interprets. Each
// reader returns undefined when the option is absent and an OptionError when
// it is present but malformed, so callers can name the bad option.
import { formatIPv4 } from '../../net/ipv4.js';

export class OptionError {
  constructor(
    readonly code: number,
    readonly detail: string,
  ) {}
  toString(): string {
    return `option ${this.code}: ${this.detail}`;
  }
}

export function readU8(code: number, v: Buffer | undefined): number | undefined | OptionError {
  if (!v) return undefined;
  return v.length === 1 ? v[0]! : new OptionError(code, `length ${v.length}, expected 1`);
}

export function readU16(code: number, v: Buffer | undefined): number | undefined | OptionError {
  if (!v) return undefined;
  return v.length === 2 ? v.readUInt16BE(0) : new OptionError(code, `length ${v.length}, expected 2`);
}

export function readIPv4(code: number, v: Buffer | undefined): number | undefined | OptionError {
  if (!v) return undefined;
  return v.length === 4 ? v.readUInt32BE(0) : new OptionError(code, `length ${v.length}, expected 4`);
}

/** Times (options 51, 58, 59): seconds, 32 bits. */
export function readU32(code: number, v: Buffer | undefined): number | undefined | OptionError {
  if (!v) return undefined;
  return v.length === 4 ? v.readUInt32BE(0) : new OptionError(code, `length ${v.length}, expected 4`);
}

/** Address lists (options 3, 6, 42): one or more IPv4 addresses. */
export function readIPv4List(code: number, v: Buffer | undefined): number[] | undefined | OptionError {
  if (!v) return undefined;
  if (v.length === 0 || v.length % 4 !== 0) return new OptionError(code, `length ${v.length}, expected a non-zero multiple of 4`);
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(v.readUInt32BE(i));
  return out;
}

export function readText(v: Buffer | undefined): string | undefined {
  if (!v) return undefined;
  // Some firmware NUL-terminates strings it should not; the NUL is not part of the value.
  const nul = v.indexOf(0);
  return v.subarray(0, nul < 0 ? v.length : nul).toString('latin1');
}

/** Option 93: one or more 16-bit architecture types (RFC 4578 §2.1). */
export function readClientArch(code: number, v: Buffer | undefined): number[] | undefined | OptionError {
  if (!v) return undefined;
  if (v.length === 0 || v.length % 2 !== 0) return new OptionError(code, `length ${v.length}, expected a non-zero even length`);
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/** Option 94: interface type 1 (UNDI) and its major/minor revision. */
export function readClientNdi(code: number, v: Buffer | undefined): { type: number; major: number; minor: number } | undefined | OptionError {
  if (!v) return undefined;
  if (v.length !== 3) return new OptionError(code, `length ${v.length}, expected 3`);
  return { type: v[0]!, major: v[1]!, minor: v[2]! };
}

/** Option 97: type 0 then a 16-byte SMBIOS UUID, printed in the dashed form dmidecode shows. */
export function readClientUuid(code: number, v: Buffer | undefined): string | undefined | OptionError {
  if (!v) return undefined;
  if (v.length !== 17 || v[0] !== 0) return new OptionError(code, `expected type 0 and 16 bytes, got ${v.length} bytes`);
  // SMBIOS stores the first three fields little-endian and firmware sends the
  // raw bytes; swap them so the text matches dmidecode, the BMC and the pod file.
  const b = v.subarray(1);
  const swapped = Buffer.concat([Buffer.from(b.subarray(0, 4)).reverse(), Buffer.from(b.subarray(4, 6)).reverse(), Buffer.from(b.subarray(6, 8)).reverse(), b.subarray(8)]);
  const h = swapped.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Option 77. RFC 3004 defines a list of length-prefixed class names, but iPXE
 * and most PXE ROMs send one bare string; accept both.
 */
export function readUserClass(v: Buffer | undefined): string[] | undefined {
  if (!v) return undefined;
  const items: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [readText(v)!];
    items.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return items.length ? items : [readText(v)!];
}

/**
 * Encapsulated sub-options (code, length, value) as used by options 43, 82
 * and 175. Returns an OptionError naming the overrun.
 */
export function readSubOptions(code: number, v: Buffer | undefined): Map<number, Buffer> | undefined | OptionError {
  if (!v) return undefined;
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < v.length) {
    const sub = v[i]!;
    if (sub === 0 && code !== 82) {
      i++;
      continue;
    }
    if (sub === 255 && code !== 82) break;
    if (i + 1 >= v.length) return new OptionError(code, `sub-option ${sub} has no length byte`);
    const len = v[i + 1]!;
    if (i + 2 + len > v.length) return new OptionError(code, `sub-option ${sub} claims ${len} bytes, only ${v.length - i - 2} left`);
    out.set(sub, v.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

export function encodeSubOptions(subs: Iterable<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of subs) parts.push(Buffer.from([code, value.length]), value);
  return Buffer.concat(parts);
}

// Option values are small and written in full: from Node's pooled slab
// (allocUnsafe) rather than one zeroed ArrayBuffer each (alloc), which was
// most of what a reply allocated.
export function u8(n: number): Buffer {
  const b = Buffer.allocUnsafe(1);
  b[0] = n & 255;
  return b;
}

export function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function ipList(addrs: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(addrs.length * 4);
  for (let i = 0; i < addrs.length; i++) b.writeUInt32BE(addrs[i]! >>> 0, i * 4);
  return b;
}

export function text(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

export function isOptionError(v: unknown): v is OptionError {
  return v instanceof OptionError;
}

export function describeIPv4(v: number | undefined): string | undefined {
  return v === undefined ? undefined : formatIPv4(v);
}
