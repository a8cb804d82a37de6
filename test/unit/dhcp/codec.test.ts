import { describe, expect, it } from 'vitest';
import { MessageType, Opt } from '../../../src/dhcp/codec/constants.js';
import { decodePacket, encodePacket, fieldText } from '../../../src/dhcp/codec/packet.js';
import { readSubOptions, readUserClass } from '../../../src/dhcp/codec/options.js';
import { requestBytes, requestPacket } from '../../helpers/dhcp-packets.js';
import { ip } from '../../helpers/pods.js';

function decodeOk(buf: Buffer) {
  const r = decodePacket(buf);
  if (!r.ok) throw new Error(`decode failed: ${r.reason} ${r.detail}`);
  return r.packet;
}

/** A raw packet: 240-byte header with cookie, then the given option bytes. */
function raw(options: number[], patch?: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(240 + options.length);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0x63825363, 236);
  Buffer.from(options).copy(b, 240);
  patch?.(b);
  return b;
}

describe('DHCP codec', () => {
  it('round-trips header fields and options', () => {
    const p = requestPacket({
      type: MessageType.REQUEST,
      mac: '52:54:00:aa:bb:cc',
      xid: 0xdeadbeef,
      giaddr: ip('10.20.0.1'),
      ciaddr: ip('10.20.0.5'),
      hops: 3,
      flags: 0x8000,
      requestedIp: ip('10.20.0.7'),
      arch: 7,
      vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
    });
    const back = decodeOk(encodePacket(p));
    expect(back.xid).toBe(0xdeadbeef);
    expect(back.giaddr).toBe(ip('10.20.0.1'));
    expect(back.ciaddr).toBe(ip('10.20.0.5'));
    expect(back.hops).toBe(3);
    expect(back.flags).toBe(0x8000);
    expect(back.chaddr.subarray(0, 6).toString('hex')).toBe('525400aabbcc');
    expect([...back.options.keys()]).toEqual(expect.arrayContaining([53, 50, 93, 60]));
    expect(back.options.get(Opt.VENDOR_CLASS)!.toString()).toBe('PXEClient:Arch:00007:UNDI:003016');
  });

  it('pads replies to 300 bytes and orders options 53, 54 first and 82 last', () => {
    const p = requestPacket({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:01', relayAgentInfo: Buffer.from([1, 2, 0xaa, 0xbb]) });
    p.options.set(Opt.SERVER_ID, Buffer.from([10, 0, 0, 1]));
    p.options.set(Opt.SUBNET_MASK, Buffer.from([255, 255, 255, 0]));
    const bytes = encodePacket(p);
    expect(bytes.length).toBe(300);
    const codes: number[] = [];
    for (let i = 240; bytes[i] !== 255; i += 2 + bytes[i + 1]!) codes.push(bytes[i]!);
    expect(codes[0]).toBe(53);
    expect(codes[1]).toBe(54);
    expect(codes.at(-1)).toBe(82);
    expect(codes).toEqual([53, 54, 1, 55, 82]);
  });

  it('orders any set of options, whatever order they were set in', () => {
    const p = requestPacket({ type: MessageType.OFFER, mac: '52:54:00:00:00:03' });
    p.options.clear();
    for (const code of [250, 82, 67, 66, 54, 51, 43, 6, 3, 53, 1]) p.options.set(code, Buffer.from([code]));
    const bytes = encodePacket(p);
    const codes: number[] = [];
    for (let i = 240; bytes[i] !== 255; i += 2 + bytes[i + 1]!) codes.push(bytes[i]!);
    expect(codes).toEqual([53, 54, 1, 3, 6, 43, 51, 66, 67, 250, 82]);
  });

  it('splits options longer than 255 bytes and joins them again (RFC 3396)', () => {
    const long = Buffer.alloc(600, 7);
    long[0] = 1;
    long[599] = 9;
    const p = requestPacket({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:02', extra: [[Opt.VENDOR_SPECIFIC, long]] });
    const bytes = encodePacket(p);
    let instances = 0;
    for (let i = 240; bytes[i] !== 255; i += 2 + bytes[i + 1]!) if (bytes[i] === Opt.VENDOR_SPECIFIC) instances++;
    expect(instances).toBe(3);
    expect(decodeOk(bytes).options.get(Opt.VENDOR_SPECIFIC)!.equals(long)).toBe(true);
  });

  it('reads options from file and sname when option 52 says so, in RFC 3396 order', () => {
    const b = raw([53, 1, 1, 52, 1, 3, 12, 2, 0x61, 0x62, 255], (buf) => {
      // file (offset 108): hostname continues, then vendor class; sname (44): user class
      Buffer.from([12, 1, 0x63, 60, 3, 0x50, 0x58, 0x45, 255]).copy(buf, 108);
      Buffer.from([77, 4, 0x69, 0x50, 0x58, 0x45, 255]).copy(buf, 44);
    });
    const p = decodeOk(b);
    expect(p.options.get(Opt.HOSTNAME)!.toString()).toBe('abc');
    expect(p.options.get(Opt.VENDOR_CLASS)!.toString()).toBe('PXE');
    expect(p.options.get(Opt.USER_CLASS)!.toString()).toBe('iPXE');
    expect(fieldText(p.file)).toBe('');
    expect(fieldText(p.sname)).toBe('');
  });

  it('skips PAD anywhere and tolerates a missing END', () => {
    const p = decodeOk(raw([0, 0, 53, 1, 1, 0, 0, 0, 61, 2, 1, 2]));
    expect(p.options.get(Opt.MESSAGE_TYPE)).toEqual(Buffer.from([1]));
    expect(p.options.get(Opt.CLIENT_ID)).toEqual(Buffer.from([1, 2]));
    expect(p.options.has(0)).toBe(false);
  });

  it.each([
    ['too-short', Buffer.alloc(239)],
    ['too-large', Buffer.alloc(9217)],
    ['bad-magic-cookie', raw([53, 1, 1], (b) => b.writeUInt32BE(0x63825364, 236))],
    ['bad-hlen', raw([53, 1, 1], (b) => (b[2] = 17))],
    ['option-overrun', raw([53, 1, 1, 60, 40, 1, 2, 3])],
    ['option-overrun', raw([53, 1, 1, 60])],
    ['bad-overload', raw([53, 1, 1, 52, 1, 4, 255])],
    ['bad-overload', raw([53, 1, 1, 52, 1, 1, 52, 1, 1, 255])],
    ['overload-loop', raw([53, 1, 1, 52, 1, 1, 255], (b) => Buffer.from([52, 1, 1, 255]).copy(b, 108))],
    ['option-overrun', raw([53, 1, 1, 52, 1, 2, 255], (b) => Buffer.from([12, 200]).copy(b, 44 + 62))],
  ] as const)('refuses %s', (reason, buf) => {
    const r = decodePacket(buf);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe(reason);
      expect(r.detail.length).toBeGreaterThan(0);
    }
  });

  it('reads user class in RFC 3004 form and as a bare string', () => {
    expect(readUserClass(Buffer.from('iPXE'))).toEqual(['iPXE']);
    expect(readUserClass(Buffer.from([4, 0x69, 0x50, 0x58, 0x45, 2, 0x61, 0x62]))).toEqual(['iPXE', 'ab']);
  });

  it('reports a sub-option overrun inside option 82', () => {
    const r = readSubOptions(82, Buffer.from([1, 4, 0xaa]));
    expect(String(r)).toMatch(/option 82: sub-option 1 claims 4 bytes, only 1 left/);
  });

  it('decodes the request it was given byte for byte (no aliasing of the input buffer)', () => {
    const bytes = requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:03', vendorClass: 'PXEClient' });
    const p = decodeOk(bytes);
    bytes.fill(0);
    expect(p.options.get(Opt.VENDOR_CLASS)!.toString()).toBe('PXEClient');
    expect(p.chaddr.subarray(0, 6).toString('hex')).toBe('525400000003');
  });
});

describe('option 97', () => {
  it('prints the SMBIOS UUID as dmidecode does (first three fields byte-swapped)', async () => {
    const { readClientUuid } = await import('../../../src/dhcp/codec/options.js');
    // QEMU -uuid 8f3c2b1a-6d5e-4f70-8192-a3b4c5d6e7f8 arrives as 1a2b3c8f 5e6d 704f 8192 a3b4c5d6e7f8
    const wire = Buffer.from('00' + '1a2b3c8f5e6d704f8192a3b4c5d6e7f8', 'hex');
    expect(readClientUuid(97, wire)).toBe('8f3c2b1a-6d5e-4f70-8192-a3b4c5d6e7f8');
  });
});
