// A small, strict DER codec: exactly the subset X.509, CRLs and CMS need.
// Strict on purpose: anything BER allows but DER forbids (indefinite lengths,
// non-minimal lengths or integers, high tag numbers, trailing bytes) is refused,
// so there is one byte string per meaning and the bytes we check signatures over
// are the bytes we parsed.

export class DerError extends Error {}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Identifier octet of a context-specific tag [n]. */
export function ctxTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

export interface Tlv {
  /** the identifier octet (class, constructed bit, tag number ≤ 30) */
  tag: number;
  /** header and content: the exact encoded bytes */
  bytes: Buffer;
  content: Buffer;
}

function tagName(tag: number): string {
  const named = Object.entries(TAG).find(([, v]) => v === tag);
  if (named) return named[0];
  if ((tag & 0xc0) === 0x80) return `[${tag & 0x1f}]`;
  return `tag 0x${tag.toString(16).padStart(2, '0')}`;
}

/** Reads one TLV at `pos`; it must end within `end`. */
export function readTlv(buf: Buffer, pos: number, end: number = buf.length): Tlv {
  if (pos >= end) throw new DerError('truncated: expected an element, found the end of the data');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`high tag numbers are not used here (identifier 0x${tag.toString(16)})`);
  if (pos + 1 >= end) throw new DerError(`truncated ${tagName(tag)} header`);
  const first = buf[pos + 1]!;
  let len: number;
  let header = 2;
  if (first < 0x80) {
    len = first;
  } else if (first === 0x80) {
    throw new DerError(`${tagName(tag)} uses an indefinite length (BER), DER requires definite lengths`);
  } else {
    const n = first & 0x7f;
    if (n > 4) throw new DerError(`${tagName(tag)} length field of ${n} bytes is larger than any input accepted here`);
    if (pos + 2 + n > end) throw new DerError(`truncated ${tagName(tag)} length`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    if (buf[pos + 2]! === 0 || len < 0x80) throw new DerError(`${tagName(tag)} length is not minimally encoded`);
    header += n;
  }
  const start = pos + header;
  if (start + len > end) throw new DerError(`truncated ${tagName(tag)}: needs ${len} bytes, ${end - start} left`);
  return { tag, bytes: buf.subarray(pos, start + len), content: buf.subarray(start, start + len) };
}

/** The one element that makes up all of `buf`. */
export function decode(buf: Buffer): Tlv {
  const t = readTlv(buf, 0);
  if (t.bytes.length !== buf.length) throw new DerError(`${buf.length - t.bytes.length} bytes of trailing data after the ${tagName(t.tag)}`);
  return t;
}

/** Reads the elements of a constructed value one at a time. */
export class Reader {
  private pos = 0;
  constructor(
    private readonly tlv: Tlv,
    private readonly what: string,
  ) {
    if (!(tlv.tag & 0x20)) throw new DerError(`${what}: expected a constructed element, got ${tagName(tlv.tag)}`);
  }

  get done(): boolean {
    return this.pos >= this.tlv.content.length;
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.tlv.content[this.pos];
  }

  /** The next element, which must carry `tag`. */
  next(tag: number, field: string): Tlv {
    if (this.done) throw new DerError(`${this.what}: missing ${field}`);
    const t = readTlv(this.tlv.content, this.pos);
    if (t.tag !== tag) throw new DerError(`${this.what}: ${field} should be ${tagName(tag)}, got ${tagName(t.tag)}`);
    this.pos += t.bytes.length;
    return t;
  }

  /** The next element whatever its tag. */
  any(field: string): Tlv {
    if (this.done) throw new DerError(`${this.what}: missing ${field}`);
    const t = readTlv(this.tlv.content, this.pos);
    this.pos += t.bytes.length;
    return t;
  }

  optional(tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.any('') : undefined;
  }

  end(): void {
    if (!this.done) throw new DerError(`${this.what}: unexpected ${tagName(this.tlv.content[this.pos]!)} after the last field`);
  }
}

/** Every element of a SEQUENCE OF / SET OF. */
export function items(tlv: Tlv, tag: number, what: string): Tlv[] {
  const r = new Reader(tlv, what);
  const out: Tlv[] = [];
  while (!r.done) out.push(r.next(tag, `element ${out.length + 1}`));
  return out;
}

export function readInteger(t: Tlv, what: string): bigint {
  const c = t.content;
  if (c.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) {
    throw new DerError(`${what}: INTEGER is not minimally encoded`);
  }
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0]! & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/** Small non-negative INTEGER (versions, path lengths). */
export function readSmallInt(t: Tlv, what: string): number {
  const v = readInteger(t, what);
  if (v < 0n || v > 1_000_000n) throw new DerError(`${what}: ${v} is out of range`);
  return Number(v);
}

export function readBoolean(t: Tlv, what: string): boolean {
  if (t.content.length !== 1 || (t.content[0] !== 0 && t.content[0] !== 0xff)) throw new DerError(`${what}: BOOLEAN must be 0x00 or 0xFF`);
  return t.content[0] === 0xff;
}

export function readOid(t: Tlv, what: string): string {
  const c = t.content;
  if (c.length === 0 || c.length > 64) throw new DerError(`${what}: bad OBJECT IDENTIFIER length ${c.length}`);
  if (c[c.length - 1]! & 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER ends mid-arc`);
  const arcs: number[] = [];
  let v = 0;
  let fresh = true;
  for (const b of c) {
    if (fresh && b === 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER arc is not minimally encoded`);
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`${what}: OBJECT IDENTIFIER arc too large`);
    fresh = !(b & 0x80);
    if (fresh) {
      arcs.push(v);
      v = 0;
    }
  }
  const firstArc = arcs[0]!;
  const head = firstArc < 40 ? [0, firstArc] : firstArc < 80 ? [1, firstArc - 40] : [2, firstArc - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** BIT STRING content without its unused-bits octet; `unused` says how many trailing bits are padding. */
export function readBitString(t: Tlv, what: string): { bits: Buffer; unused: number } {
  const c = t.content;
  if (c.length === 0) throw new DerError(`${what}: empty BIT STRING`);
  const unused = c[0]!;
  if (unused > 7 || (c.length === 1 && unused !== 0)) throw new DerError(`${what}: bad BIT STRING padding`);
  if (unused && c[c.length - 1]! & ((1 << unused) - 1)) throw new DerError(`${what}: BIT STRING padding bits are not zero`);
  return { bits: c.subarray(1), unused };
}

const TIME_RE = { utc: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/, gen: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ };

/** UTCTime (years 1950–2049) or GeneralizedTime, in the RFC 5280 profile: seconds, 'Z', no fractions. */
export function readTime(t: Tlv, what: string): Date {
  const s = t.content.toString('latin1');
  let m: RegExpMatchArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME && (m = s.match(TIME_RE.utc))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (t.tag === TAG.GENERALIZED_TIME && (m = s.match(TIME_RE.gen))) {
    year = Number(m[1]);
  } else {
    throw new DerError(`${what}: expected UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, got ${tagName(t.tag)} "${s.slice(0, 20)}"`);
  }
  const [mo, d, h, mi, se] = m.slice(2).map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, se));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) throw new DerError(`${what}: no such date "${s}"`);
  return date;
}

// ---- encoding ----

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

export function encode(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export const seq = (...items: Buffer[]): Buffer => encode(TAG.SEQUENCE, ...items);

/** SET OF in DER order: elements sorted by their encodings. */
export function setOf(...items: Buffer[]): Buffer {
  return encode(TAG.SET, ...[...items].sort(Buffer.compare));
}

/** INTEGER from a non-negative bigint, or from big-endian magnitude bytes. */
export function integer(v: bigint | Buffer): Buffer {
  let mag: Buffer;
  if (typeof v === 'bigint') {
    if (v < 0n) throw new RangeError('negative INTEGER not needed here');
    const hex = v.toString(16);
    mag = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  } else {
    mag = v;
  }
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  mag = mag.subarray(i);
  if (mag.length === 0) mag = Buffer.from([0]);
  return encode(TAG.INTEGER, mag[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), mag]) : mag);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: number) => {
    const groups = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) groups.unshift((x & 0x7f) | 0x80);
    out.push(...groups);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return encode(TAG.OID, Buffer.from(out));
}

export const octets = (b: Buffer): Buffer => encode(TAG.OCTET_STRING, b);
export const utf8 = (s: string): Buffer => encode(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const boolTrue = (): Buffer => encode(TAG.BOOLEAN, Buffer.from([0xff]));
export const nul = (): Buffer => encode(TAG.NULL);
export const enumerated = (n: number): Buffer => encode(TAG.ENUMERATED, Buffer.from([n]));

/** BIT STRING of whole bytes (keys, signatures). */
export const bitString = (b: Buffer): Buffer => encode(TAG.BIT_STRING, Buffer.from([0]), b);

/** BIT STRING of named bits (bit 0 is the most significant bit of the first byte), trailing zero bits dropped as DER requires. */
export function namedBits(bitsSet: number[]): Buffer {
  const top = Math.max(...bitsSet);
  const bytes = Buffer.alloc((top >> 3) + 1);
  for (const b of bitsSet) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (top & 7);
  return encode(TAG.BIT_STRING, Buffer.from([unused]), bytes);
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 §4.1.2.5 requires. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return encode(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'latin1'));
  return encode(TAG.GENERALIZED_TIME, Buffer.from(digits, 'latin1'));
}

/** [n] EXPLICIT: the inner encodings wrapped in a constructed context tag. */
export const explicit = (n: number, ...inner: Buffer[]): Buffer => encode(ctxTag(n, true), ...inner);

/** [n] IMPLICIT: an encoded element with its identifier octet replaced. */
export function implicit(n: number, encoded: Buffer): Buffer {
  const out = Buffer.from(encoded);
  out[0] = ctxTag(n, (encoded[0]! & 0x20) !== 0);
  return out;
}
