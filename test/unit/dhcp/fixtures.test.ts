// Real packets captured from ISC dhclient, ISC dhcrelay, QEMU's iPXE ROM,
// perfdhcp and Kea (scripts/capture-dhcp-fixtures.sh). Expected values come
// from an independent decode made at capture time, not from podboot's codec.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MessageType, Opt } from '../../../src/dhcp/codec/constants.js';
import { decodePacket, encodePacket } from '../../../src/dhcp/codec/packet.js';
import { isRequestProblem, readRequest } from '../../../src/dhcp/request.js';
import { formatIPv4 } from '../../../src/net/ipv4.js';

interface Fixture {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: string;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: string;
  messageType: string;
  length: number;
  options: Record<string, string>;
}

const DIR = new URL('../../fixtures/dhcp/', import.meta.url);
const fixtures = JSON.parse(readFileSync(new URL('fixtures.json', DIR), 'utf8')) as Record<string, Fixture>;
const bytes = (name: string) => readFileSync(new URL(`${name}.bin`, DIR));

describe('DHCP codec on captured packets', () => {
  it('has captures from every source the issue names', () => {
    const names = Object.keys(fixtures);
    for (const source of ['dhclient-discover', 'dhcrelay-dhclient-discover', 'dhcrelay-dhclient-request-opt82', 'ipxe-discover', 'perfdhcp-relay-discover', 'kea-offer']) {
      expect(
        names.some((n) => n.startsWith(source)),
        source,
      ).toBe(true);
    }
  });

  it.each(Object.entries(fixtures))('%s decodes to what the capture recorded', (name, f) => {
    const d = decodePacket(bytes(name));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    const p = d.packet;
    expect({ op: p.op, htype: p.htype, hlen: p.hlen, hops: p.hops, flags: p.flags }).toEqual({ op: f.op, htype: f.htype, hlen: f.hlen, hops: f.hops, flags: f.flags });
    expect(p.xid.toString(16).padStart(8, '0')).toBe(f.xid);
    expect([p.ciaddr, p.yiaddr, p.siaddr, p.giaddr].map(formatIPv4)).toEqual([f.ciaddr, f.yiaddr, f.siaddr, f.giaddr]);
    expect(p.chaddr.subarray(0, 6).toString('hex').match(/../g)!.join(':')).toBe(f.chaddr);
    const options = Object.fromEntries([...p.options].map(([code, v]) => [String(code), v.toString('hex')]));
    expect(options).toEqual(f.options);
    // Re-encoding keeps every option value.
    const again = decodePacket(encodePacket(p, 0));
    expect(again.ok && Object.fromEntries([...again.packet.options].map(([c, v]) => [String(c), v.toString('hex')]))).toEqual(f.options);
  });

  it.each(Object.entries(fixtures).filter(([, f]) => f.op === 1))('%s reads as a client request', (name, f) => {
    const d = decodePacket(bytes(name));
    const req = d.ok ? readRequest(d.packet) : undefined;
    expect(req && !isRequestProblem(req)).toBe(true);
    if (!req || isRequestProblem(req)) return;
    expect(MessageType[req.type].toLowerCase()).toBe(f.messageType);
    expect(req.mac).toBe(f.chaddr);
    if (f.options[String(Opt.RELAY_AGENT_INFO)]) expect(req.relayAgentInfo!.toString('hex')).toBe(f.options['82']);
  });

  it("recognises QEMU's iPXE ROM as an iPXE PXE client of architecture 0", () => {
    const name = Object.keys(fixtures).find((n) => n.startsWith('ipxe-discover'))!;
    const d = decodePacket(bytes(name));
    const req = d.ok ? readRequest(d.packet) : undefined;
    if (!req || isRequestProblem(req)) throw new Error('iPXE DISCOVER does not read');
    expect(req.isIpxe).toBe(true);
    expect(req.isPxe).toBe(true);
    expect(req.arch).toEqual([0]);
    expect(req.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    expect(req.ndi?.type).toBe(1);
  });
});
