// Reads UDP datagrams out of a classic pcap file written by tcpdump -w (Ethernet
// link type), so tests can check what really crossed the wire.
import { readFileSync } from 'node:fs';

export interface UdpRecord {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: Buffer;
}

const ip4 = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function readUdpPcap(file: string): UdpRecord[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const linkType = u32(20);
  const out: UdpRecord[] = [];
  let at = 24;
  while (at + 16 <= b.length) {
    const caplen = u32(at + 8);
    const frame = b.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    // 1 = Ethernet, 113 = Linux cooked (tcpdump -i any)
    const l3 = linkType === 1 ? 14 : linkType === 113 ? 16 : 0;
    const etherType = linkType === 1 ? frame.readUInt16BE(12) : linkType === 113 ? frame.readUInt16BE(14) : 0x800;
    if (etherType !== 0x800 || frame.length < l3 + 28) continue;
    const ihl = (frame[l3]! & 15) * 4;
    if (frame[l3 + 9] !== 17) continue;
    const udp = l3 + ihl;
    const len = frame.readUInt16BE(udp + 4);
    out.push({
      src: ip4(frame, l3 + 12),
      dst: ip4(frame, l3 + 16),
      sport: frame.readUInt16BE(udp),
      dport: frame.readUInt16BE(udp + 2),
      payload: Buffer.from(frame.subarray(udp + 8, udp + len)),
    });
  }
  return out;
}
