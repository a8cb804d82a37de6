import { describe, expect, it } from 'vitest';
import { decodePacket, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, ErrorCode } from '../../../src/tftp/codec.js';
import { negotiate } from '../../../src/tftp/negotiate.js';
import { checkName } from '../../../src/tftp/names.js';
import { prng } from '../../helpers/prng.js';

const bytes = (text: string) => Buffer.from(text, 'latin1');

describe('TFTP codec', () => {
  it('decodes the request curl 7.88 sends (captured), options by name whatever their case', () => {
    const d = decodePacket(bytes('\x00\x01f5.bin\x00octet\x00tsize\x000\x00blksize\x001468\x00timeout\x006\x00'));
    expect(d).toEqual({ ok: true, packet: { op: 'rrq', filename: 'f5.bin', mode: 'octet', options: { tsize: 0, blksize: 1468, timeout: 6 }, ignored: [] } });
    const upper = decodePacket(bytes('\x00\x01A\x00OCTET\x00BlkSize\x00512\x00WINDOWSIZE\x0016\x00'));
    expect(upper.ok && upper.packet).toMatchObject({ mode: 'octet', options: { blksize: 512, windowsize: 16 } });
  });

  it('takes atftp 0.8\'s "tsize enable" as a request for the size', () => {
    const d = decodePacket(bytes('\x00\x01f\x00octet\x00tsize\x00enable\x00blksize\x001468\x00'));
    expect(d.ok && d.packet.op === 'rrq' && d.packet.options).toEqual({ tsize: 0, blksize: 1468 });
  });

  it('ignores unknown, repeated and non-numeric options and says which', () => {
    const d = decodePacket(bytes('\x00\x01f\x00netascii\x00multicast\x00\x00blksize\x00big\x00timeout\x003\x00timeout\x009\x00utimeout\x001000\x00'));
    expect(d.ok && d.packet).toEqual({ op: 'rrq', filename: 'f', mode: 'netascii', options: { timeout: 3 }, ignored: ['multicast', 'blksize', 'timeout', 'utimeout'] });
  });

  it('accepts NUL padding after the last option', () => {
    const d = decodePacket(bytes('\x00\x01f\x00octet\x00blksize\x001024\x00\x00\x00'));
    expect(d.ok && d.packet.op === 'rrq' && d.packet.options).toEqual({ blksize: 1024 });
  });

  it.each([
    ['', 'too-short'],
    ['\x00', 'too-short'],
    ['\x00\x01file', 'unterminated-string'],
    ['\x00\x01file\x00', 'too-short'],
    ['\x00\x01\x00octet\x00', 'empty-filename'],
    ['\x00\x01f\x00mail\x00', 'bad-mode'],
    ['\x00\x01boot\x00../../etc/passwd\x00octet\x00', 'bad-mode'],
    ['\x00\x01f\x00octet\x00blksize\x00', 'option-without-value'],
    ['\x00\x03\x00', 'too-short'],
    ['\x00\x04\x00', 'too-short'],
    ['\x00\x05\x00', 'too-short'],
    ['\x00\x06blksize\x00', 'option-without-value'],
    ['\x00\x09', 'unknown-opcode'],
    ['\xff\xff\x00\x00', 'unknown-opcode'],
  ])('refuses %j as %s', (raw, reason) => {
    const d = decodePacket(bytes(raw));
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.reason).toBe(reason);
      expect(d.detail.length).toBeGreaterThan(0);
    }
  });

  it('round-trips DATA, ACK, ERROR and OACK, with 16-bit block numbers that wrap', () => {
    expect(decodePacket(encodeData(65536 + 7, Buffer.from('abc')))).toEqual({ ok: true, packet: { op: 'data', block: 7, data: Buffer.from('abc') } });
    expect(decodePacket(encodeData(65536, Buffer.alloc(0)))).toEqual({ ok: true, packet: { op: 'data', block: 0, data: Buffer.alloc(0) } });
    expect(decodePacket(encodeAck(65535))).toEqual({ ok: true, packet: { op: 'ack', block: 65535 } });
    expect(decodePacket(encodeError(ErrorCode.ACCESS_VIOLATION, 'no'))).toEqual({ ok: true, packet: { op: 'error', code: 2, message: 'no' } });
    expect(decodePacket(encodeOack({ blksize: 1468, tsize: 33554944 }))).toEqual({ ok: true, packet: { op: 'oack', options: { blksize: '1468', tsize: '33554944' } } });
    const rrq = encodeRequest({ op: 'wrq', filename: 'x', options: { windowsize: 4 } });
    expect(decodePacket(rrq)).toEqual({ ok: true, packet: { op: 'wrq', filename: 'x', mode: 'octet', options: { windowsize: 4 }, ignored: [] } });
  });

  it('keeps error messages printable and short', () => {
    const e = encodeError(1, 'bad\n\x00name' + 'x'.repeat(500));
    expect(e.length).toBe(4 + 200 + 1);
    expect(e.subarray(4, 13).toString('latin1')).toBe('bad??name');
    expect(e[e.length - 1]).toBe(0);
  });

  it('never throws on 100k random and mutated datagrams', () => {
    const r = prng(0x7f7f);
    const seeds = [
      encodeRequest({ op: 'rrq', filename: 'pxelinux.0', options: { blksize: 1468, tsize: 0, windowsize: 16, timeout: 1 } }),
      encodeRequest({ op: 'wrq', filename: 'up.bin', mode: 'netascii' }),
      encodeData(3, Buffer.alloc(40, 1)),
      encodeAck(9),
      encodeError(1, 'File not found'),
      encodeOack({ blksize: 512 }),
    ];
    let ok = 0;
    for (let i = 0; i < 100_000; i++) {
      let b: Buffer;
      if (i % 5 === 0) b = r.bytes(r.int(600));
      else {
        b = Buffer.from(seeds[r.int(seeds.length)]!);
        const kind = r.int(4);
        if (kind === 0) for (let f = 0, n = 1 + r.int(6); f < n && b.length; f++) b[r.int(b.length)] = r.int(256);
        else if (kind === 1) b = b.subarray(0, r.int(b.length + 1));
        else if (kind === 2) b = Buffer.concat([b, r.bytes(r.int(64))]);
        else if (b.length > 2) b[2 + r.int(b.length - 2)] = 0;
      }
      const d = decodePacket(b);
      if (!d.ok) continue;
      ok++;
      if (d.packet.op === 'rrq') {
        // What the server does with a decoded request must not throw either.
        const p = negotiate(d.packet.options, r.int(1 << 30), { maxBlockSize: 1468, maxWindowSize: 64, maxWindowBytes: 1 << 20, defaultTimeoutMs: 1000 });
        expect(p.blksize).toBeGreaterThanOrEqual(8);
        expect(p.blksize).toBeLessThanOrEqual(1468);
        expect(p.windowsize).toBeGreaterThanOrEqual(1);
        checkName(d.packet.filename);
      }
    }
    expect(ok).toBeGreaterThan(10_000);
  });
});
