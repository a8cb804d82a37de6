// TFTP packets as bytes <-> typed values (RFC 1350, option extension RFC 2347).
// Pure: no sockets, no files, no policy. Bad input is a value, never a throw.

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 §5 error codes, plus 8 from RFC 2347 (option negotiation refused). */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export type TransferMode = 'octet' | 'netascii';

/** The options podboot understands; their values as the client sent them (decimal integers). */
export interface RequestOptions {
  blksize?: number;
  tsize?: number;
  timeout?: number;
  windowsize?: number;
}
export type OptionName = keyof RequestOptions;
const KNOWN_OPTIONS: ReadonlySet<string> = new Set<OptionName>(['blksize', 'tsize', 'timeout', 'windowsize']);

export interface RequestPacket {
  op: 'rrq' | 'wrq';
  /** bytes as sent, one char per byte (latin1), so a name check sees every byte */
  filename: string;
  mode: TransferMode;
  options: RequestOptions;
  /** option names left out: unknown, repeated, or with a value that is not a decimal integer */
  ignored: string[];
}
export interface DataPacket {
  op: 'data';
  block: number;
  data: Buffer;
}
export interface AckPacket {
  op: 'ack';
  block: number;
}
export interface ErrorPacket {
  op: 'error';
  code: number;
  message: string;
}
export interface OackPacket {
  op: 'oack';
  /** option names in lower case, values as text */
  options: Record<string, string>;
}
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type DecodeFailure = 'too-short' | 'unknown-opcode' | 'unterminated-string' | 'empty-filename' | 'bad-mode' | 'option-without-value';

export type DecodeResult = { ok: true; packet: TftpPacket } | { ok: false; reason: DecodeFailure; opcode: number | undefined; detail: string };

function fail(reason: DecodeFailure, opcode: number | undefined, detail: string): DecodeResult {
  return { ok: false, reason, opcode, detail };
}

/** NUL-terminated strings from `at` to the end of the packet; undefined when the last one lacks its NUL. */
function splitStrings(buf: Buffer, at: number): string[] | undefined {
  const out: string[] = [];
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) return undefined;
    out.push(buf.toString('latin1', at, end));
    at = end + 1;
  }
  return out;
}

const DECIMAL = /^[0-9]{1,10}$/;

function decodeRequest(buf: Buffer, opcode: number): DecodeResult {
  const strings = splitStrings(buf, 2);
  if (!strings) return fail('unterminated-string', opcode, 'request strings must each end with NUL');
  const [filename, modeText, ...rest] = strings;
  if (filename === undefined || modeText === undefined) return fail('too-short', opcode, 'request needs a file name and a mode');
  if (filename === '') return fail('empty-filename', opcode, 'file name is empty');
  const mode = modeText.toLowerCase();
  if (mode !== 'octet' && mode !== 'netascii') return fail('bad-mode', opcode, `transfer mode ${JSON.stringify(modeText.slice(0, 32))} is not octet or netascii`);
  // Some clients pad the request with NULs after the last option: an empty name ends the list.
  const pairs = rest.slice();
  while (pairs.length && pairs[pairs.length - 1] === '') pairs.pop();
  if (pairs.length % 2 !== 0) return fail('option-without-value', opcode, `option ${JSON.stringify(pairs[pairs.length - 1]!.slice(0, 32))} has no value`);
  const options: RequestOptions = {};
  const ignored: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]!.toLowerCase();
    // atftp 0.8 asks for the size with "tsize enable" instead of "tsize 0".
    const value = name === 'tsize' && opcode === Opcode.RRQ && !DECIMAL.test(pairs[i + 1]!) ? '0' : pairs[i + 1]!;
    if (!KNOWN_OPTIONS.has(name) || options[name as OptionName] !== undefined || !DECIMAL.test(value)) {
      ignored.push(name.slice(0, 32));
      continue;
    }
    options[name as OptionName] = Number(value);
  }
  return { ok: true, packet: { op: opcode === Opcode.RRQ ? 'rrq' : 'wrq', filename, mode, options, ignored } };
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < 2) return fail('too-short', undefined, `${buf.length} byte(s)`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ:
      return decodeRequest(buf, opcode);
    case Opcode.DATA:
      if (buf.length < 4) return fail('too-short', opcode, 'DATA needs a block number');
      return { ok: true, packet: { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    case Opcode.ACK:
      if (buf.length < 4) return fail('too-short', opcode, 'ACK needs a block number');
      // Trailing bytes after the block number are tolerated: some ROMs pad short frames.
      return { ok: true, packet: { op: 'ack', block: buf.readUInt16BE(2) } };
    case Opcode.ERROR: {
      if (buf.length < 4) return fail('too-short', opcode, 'ERROR needs a code');
      const end = buf.indexOf(0, 4);
      const message = buf.toString('latin1', 4, end < 0 ? buf.length : end);
      return { ok: true, packet: { op: 'error', code: buf.readUInt16BE(2), message } };
    }
    case Opcode.OACK: {
      const strings = splitStrings(buf, 2);
      if (!strings) return fail('unterminated-string', opcode, 'OACK strings must each end with NUL');
      if (strings.length % 2 !== 0) return fail('option-without-value', opcode, 'OACK option without a value');
      const options: Record<string, string> = {};
      for (let i = 0; i < strings.length; i += 2) options[strings[i]!.toLowerCase()] = strings[i + 1]!;
      return { ok: true, packet: { op: 'oack', options } };
    }
    default:
      return fail('unknown-opcode', opcode, `opcode ${opcode}`);
  }
}

function strings(op: number, parts: string[]): Buffer {
  const body = parts.map((p) => Buffer.from(p + '\0', 'latin1'));
  const head = Buffer.alloc(2);
  head.writeUInt16BE(op, 0);
  return Buffer.concat([head, ...body]);
}

export function encodeRequest(p: { op: 'rrq' | 'wrq'; filename: string; mode?: string; options?: Record<string, string | number> }): Buffer {
  const opts = Object.entries(p.options ?? {}).flatMap(([k, v]) => [k, String(v)]);
  return strings(p.op === 'rrq' ? Opcode.RRQ : Opcode.WRQ, [p.filename, p.mode ?? 'octet', ...opts]);
}

export function encodeOack(options: Record<string, string | number>): Buffer {
  return strings(
    Opcode.OACK,
    Object.entries(options).flatMap(([k, v]) => [k, String(v)]),
  );
}

/** Block numbers are 16 bits on the wire; callers pass an absolute count and it wraps to 0 after 65535. */
export function writeDataHeader(target: Buffer, offset: number, block: number): void {
  target.writeUInt16BE(Opcode.DATA, offset);
  target.writeUInt16BE(block & 0xffff, offset + 2);
}

export function encodeData(block: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  writeDataHeader(out, 0, block);
  data.copy(out, 4);
  return out;
}

export function encodeAck(block: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt16BE(Opcode.ACK, 0);
  out.writeUInt16BE(block & 0xffff, 2);
  return out;
}

/** Messages are kept to printable ASCII and 200 bytes: they reach firmware consoles. */
export function encodeError(code: number, message: string): Buffer {
  const text = message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  const out = Buffer.alloc(4 + text.length + 1);
  out.writeUInt16BE(Opcode.ERROR, 0);
  out.writeUInt16BE(code, 2);
  out.write(text, 4, 'latin1');
  return out;
}
