// Evidence for docs/decisions.md: what the `dhcp` npm package (0.2.20) does with
// the packets podboot must handle. Run: npm run bench -- dhcp-package
import { createRequire } from 'node:module';
import type { Bench } from '../bench.js';
import { MessageType, Opt } from '../../src/dhcp/codec/constants.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../src/dhcp/codec/packet.js';
import { randomBytes } from 'node:crypto';

const require = createRequire(import.meta.url);

function pxeDiscover(): DhcpPacket {
  const options = new Map<number, Buffer>([
    [Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])],
    [Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00007:UNDI:003016')],
    [Opt.CLIENT_ARCH, Buffer.from([0, 7])],
    [Opt.CLIENT_NDI, Buffer.from([1, 3, 16])],
    [Opt.CLIENT_UUID, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)])],
    [Opt.USER_CLASS, Buffer.from('iPXE')],
    [Opt.RELAY_AGENT_INFO, Buffer.from([1, 3, 0x62, 0x72, 0x30, 2, 2, 0xbe, 0xef])],
  ]);
  const chaddr = Buffer.alloc(16);
  Buffer.from('525400000001', 'hex').copy(chaddr);
  return {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 1,
    xid: 0x11223344,
    secs: 0,
    flags: 0,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0x0a140001,
    chaddr,
    sname: Buffer.alloc(64),
    file: Buffer.alloc(128),
    options,
  };
}

export const dhcpPackageEvidence: Bench = {
  name: 'dhcp-package',
  summary: 'evidence on the `dhcp` npm package: option coverage, PAD handling, robustness on mutated packets',
  async run() {
    const protocol = require('dhcp/lib/protocol.js') as { parse(b: Buffer): { options: Record<string, unknown> } };
    const base = encodePacket(pxeDiscover());
    const parsed = protocol.parse(base);
    const seen = Object.keys(parsed.options).map(Number);
    const wanted = [60, 77, 82, 93, 94, 97];
    process.stdout.write(`options podboot needs: ${wanted.join(', ')}; dhcp package returns: ${seen.join(', ')}; missing: ${wanted.filter((w) => !seen.includes(w)).join(', ') || 'none'}\n`);

    // PAD between options (legal per RFC 2132 §3.1): is the option after it still read?
    const padded = Buffer.concat([base.subarray(0, 240), Buffer.from([0, 0]), base.subarray(240)]);
    let padResult: string;
    try {
      const p = protocol.parse(padded);
      padResult = Object.keys(p.options).includes('53') ? 'message type read' : `message type lost (options: ${Object.keys(p.options).join(',')})`;
    } catch (err) {
      padResult = `throws: ${(err as Error).message}`;
    }
    process.stdout.write(`PAD before option 53: ${padResult}\n`);

    // Mutated packets: how often does the parser throw where the packet is well-formed per our decoder?
    const n = 100_000;
    let throws = 0;
    let throwsOnValid = 0;
    let valid = 0;
    for (let i = 0; i < n; i++) {
      const b = Buffer.from(base);
      const flips = 1 + (i % 6);
      const noise = randomBytes(flips * 2);
      for (let f = 0; f < flips; f++) b[240 + (noise[f * 2]! % (b.length - 240))] = noise[f * 2 + 1]!;
      const ours = decodePacket(b);
      if (ours.ok) valid++;
      try {
        protocol.parse(b);
      } catch {
        throws++;
        if (ours.ok) throwsOnValid++;
      }
    }
    process.stdout.write(
      `mutated packets: ${n}; dhcp package throws on ${throws} (${((100 * throws) / n).toFixed(1)}%), ` +
        `of which ${throwsOnValid} are well-formed per RFC 2131/3396 (${((100 * throwsOnValid) / Math.max(1, valid)).toFixed(1)}% of ${valid} well-formed)\n`,
    );
    process.stdout.write('server replies: lib/dhcp.js sendOffer/sendAck/sendNak call _send(config("broadcast")) → port 68 (CLIENT_PORT), never giaddr:67\n');
  },
};
