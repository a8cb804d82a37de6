// BOOTP/DHCP message codec (RFC 2131 §2, RFC 2132, RFC 3396). Pure: bytes in,
// typed packet out and back; no sockets, no leases, no exceptions for bad input.
import { HEADER_LENGTH, MAGIC_COOKIE, MAX_PACKET_LENGTH, MIN_REPLY_LENGTH, Opt } from './constants.js';
import { hardwareProblem, type HardwareReason } from './hardware.js';

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** the full 16-byte chaddr field */
  chaddr: Buffer;
  /** raw 64-byte sname field (NUL padded), unless it carried overloaded options */
  sname: Buffer;
  /** raw 128-byte file field (NUL padded), unless it carried overloaded options */
  file: Buffer;
  /**
   * Options by code, in order of first appearance. Several instances of one
   * code are joined into one value (RFC 3396), so a long option 82 or 43 reads
   * as one buffer.
   */
  options: Map<number, Buffer>;
}

export type DecodeReason = 'too-short' | 'too-large' | 'bad-magic-cookie' | HardwareReason | 'option-overrun' | 'bad-overload' | 'overload-loop';

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; reason: DecodeReason; detail: string };

function fail(reason: DecodeReason, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;

/**
 * Walks one option area. Returns an error text on overrun; adds values to
 * `into` (joining repeats per RFC 3396) and reports option 52 when seen.
 * Values are copies: the packet must not alias the socket's receive buffer.
 */
function readOptionArea(buf: Buffer, start: number, end: number, into: Map<number, Buffer>, area: string): { error?: string; overload?: number; overloadCount: number } {
  let i = start;
  let overload: number | undefined;
  let overloadCount = 0;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return { overload, overloadCount };
    if (i + 1 >= end) return { error: `option ${code} in ${area} has no length byte`, overloadCount };
    const len = buf[i + 1]!;
    const valueStart = i + 2;
    if (valueStart + len > end) {
      return { error: `option ${code} in ${area} claims ${len} bytes, only ${end - valueStart} left`, overloadCount };
    }
    const value = buf.subarray(valueStart, valueStart + len);
    if (code === Opt.OVERLOAD) {
      overloadCount++;
      overload = len === 1 ? value[0]! : -1;
    } else {
      const earlier = into.get(code);
      into.set(code, earlier ? Buffer.concat([earlier, value]) : Buffer.from(value));
    }
    i = valueStart + len;
  }
  // A missing END is tolerated: several PXE ROMs and relays end at the buffer.
  return { overload, overloadCount };
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length > MAX_PACKET_LENGTH) return fail('too-large', `${buf.length} bytes > ${MAX_PACKET_LENGTH}`);
  if (buf.length < HEADER_LENGTH) return fail('too-short', `${buf.length} bytes < ${HEADER_LENGTH}`);
  if (buf.readUInt32BE(236) !== MAGIC_COOKIE) {
    return fail('bad-magic-cookie', `0x${buf.readUInt32BE(236).toString(16).padStart(8, '0')}`);
  }
  const hlen = buf[2]!;
  const hw = hardwareProblem(buf[1]!, hlen);
  if (hw) return fail(hw.reason, hw.detail);

  const options = new Map<number, Buffer>();
  const main = readOptionArea(buf, HEADER_LENGTH, buf.length, options, 'options');
  if (main.error) return fail('option-overrun', main.error);
  if (main.overloadCount > 1) return fail('bad-overload', 'option 52 appears more than once');
  let fileUsed = false;
  let snameUsed = false;
  if (main.overload !== undefined) {
    if (main.overload < 1 || main.overload > 3) return fail('bad-overload', `option 52 value ${main.overload}`);
    fileUsed = (main.overload & 1) !== 0;
    snameUsed = (main.overload & 2) !== 0;
    // RFC 3396 order: options, then file, then sname.
    for (const [used, offset, length, area] of [
      [fileUsed, FILE_OFFSET, FILE_LENGTH, 'file'],
      [snameUsed, SNAME_OFFSET, SNAME_LENGTH, 'sname'],
    ] as const) {
      if (!used) continue;
      const r = readOptionArea(buf, offset, offset + length, options, area);
      if (r.error) return fail('option-overrun', r.error);
      if (r.overloadCount) return fail('overload-loop', `option 52 inside the ${area} field`);
    }
  }

  return {
    ok: true,
    packet: {
      op: buf[0]!,
      htype: buf[1]!,
      hlen,
      hops: buf[3]!,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: buf.readUInt32BE(12),
      yiaddr: buf.readUInt32BE(16),
      siaddr: buf.readUInt32BE(20),
      giaddr: buf.readUInt32BE(24),
      chaddr: Buffer.from(buf.subarray(28, 44)),
      sname: snameUsed ? Buffer.alloc(SNAME_LENGTH) : Buffer.from(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH)),
      file: fileUsed ? Buffer.alloc(FILE_LENGTH) : Buffer.from(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LENGTH)),
      options,
    },
  };
}

/** Text of a NUL-padded BOOTP string field. */
export function fieldText(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('latin1');
}

export function textField(text: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  out.write(text.slice(0, length - 1), 'latin1');
  return out;
}

/**
 * Stable option order on the wire: message type and server id first (some
 * PXE ROMs look only there), then ascending codes, and relay agent
 * information last as RFC 3046 §2.1 requires.
 */
function wireOrder(codes: Iterable<number>): number[] {
  // An insertion sort: a packet has a dozen options, and Array#sort with a
  // comparator allocated more per reply than the rest of the encoder.
  const out: number[] = [];
  for (const c of codes) {
    const r = wireRank(c);
    let i = out.length;
    while (i > 0 && wireRank(out[i - 1]!) > r) {
      out[i] = out[i - 1]!;
      i--;
    }
    out[i] = c;
  }
  return out;
}

function wireRank(c: number): number {
  return c === Opt.MESSAGE_TYPE ? -2 : c === Opt.SERVER_ID ? -1 : c === Opt.RELAY_AGENT_INFO ? 256 : c;
}

/** Bytes an option takes on the wire, split into 255-byte instances (RFC 3396). */
export function encodedOptionLength(value: Buffer): number {
  const instances = Math.max(1, Math.ceil(value.length / 255));
  return value.length + 2 * instances;
}

function writeOption(out: Buffer, at: number, code: number, value: Buffer): number {
  let offset = 0;
  do {
    const chunk = Math.min(255, value.length - offset);
    out[at++] = code;
    out[at++] = chunk;
    value.copy(out, at, offset, offset + chunk);
    at += chunk;
    offset += chunk;
  } while (offset < value.length);
  return at;
}

export function encodePacket(p: DhcpPacket, minLength = MIN_REPLY_LENGTH): Buffer {
  const order = wireOrder(p.options.keys());
  let optionBytes = 1; // END
  for (const code of order) optionBytes += encodedOptionLength(p.options.get(code)!);
  const length = Math.max(minLength, HEADER_LENGTH + optionBytes);
  const out = Buffer.alloc(length);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  out.writeUInt32BE(p.ciaddr >>> 0, 12);
  out.writeUInt32BE(p.yiaddr >>> 0, 16);
  out.writeUInt32BE(p.siaddr >>> 0, 20);
  out.writeUInt32BE(p.giaddr >>> 0, 24);
  p.chaddr.copy(out, 28, 0, 16);
  p.sname.copy(out, SNAME_OFFSET, 0, SNAME_LENGTH);
  p.file.copy(out, FILE_OFFSET, 0, FILE_LENGTH);
  out.writeUInt32BE(MAGIC_COOKIE, 236);
  let at = HEADER_LENGTH;
  for (const code of order) at = writeOption(out, at, code, p.options.get(code)!);
  out[at] = Opt.END;
  return out; // the rest is already zero: PAD up to the minimum length
}
