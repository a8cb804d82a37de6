import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType, Opt } from '../../../src/dhcp/codec/constants.js';
import { decodePacket, fieldText, type DhcpPacket } from '../../../src/dhcp/codec/packet.js';
import { DhcpService, type HandleResult } from '../../../src/dhcp/service.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { PodConfig } from '../../../src/config/types.js';
import { formatIPv4 } from '../../../src/net/ipv4.js';
import { requestBytes, type RequestSpec } from '../../helpers/dhcp-packets.js';
import { captureLogger } from '../../helpers/logs.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const RELAY = ip('10.20.0.1');
const SERVER = ip('10.99.0.1');
const dirs: string[] = [];

afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function harness(pod: PodConfig = testPod(), stateDir?: string) {
  const dir = stateDir ?? mkdtempSync(join(tmpdir(), 'podboot-dhcp-'));
  if (!stateDir) dirs.push(dir);
  const db = openPodDatabase(dir);
  const leases = new SqliteLeaseStore(db);
  const nodes = new SqliteNodeStateStore(db);
  const { log, lines } = captureLogger({ pod: pod.name });
  const svc = new DhcpService(pod, leases, nodes, log);
  let now = 1_700_000_000;
  const send = (spec: RequestSpec, from = { address: '10.20.0.1', port: 67 }): { result: HandleResult; reply?: DhcpPacket } => {
    const result = svc.handle(requestBytes({ giaddr: RELAY, ...spec }), from, now);
    // What the server does: commit (leases and the rows about the server), then send.
    leases.commit(result.commit, result.nodes);
    svc.committed();
    const d = result.send[0];
    if (!d) return { result };
    const dec = decodePacket(d.data);
    if (!dec.ok) throw new Error('reply does not decode');
    return { result, reply: dec.packet };
  };
  const dora = (mac: string, extra: Partial<RequestSpec> = {}) => {
    const offer = send({ type: MessageType.DISCOVER, mac, ...extra }).reply!;
    const ack = send({ type: MessageType.REQUEST, mac, requestedIp: offer.yiaddr, serverId: SERVER, ...extra }).reply!;
    return { offer, ack };
  };
  return {
    svc,
    db,
    dir,
    leases,
    nodes,
    lines,
    send,
    dora,
    tick: (s: number) => (now += s),
    get now() {
      return now;
    },
  };
}

const type = (p: DhcpPacket) => p.options.get(Opt.MESSAGE_TYPE)![0];

describe('DHCP service: relayed DORA', () => {
  it('offers and acks a pool address, replying to the relay on port 67 with giaddr and hops kept', () => {
    const h = harness();
    const r = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:01:01', hops: 2 });
    expect(r.result.send[0]).toMatchObject({ address: '10.20.0.1', port: 67 });
    const offer = r.reply!;
    expect(type(offer)).toBe(MessageType.OFFER);
    expect(offer.giaddr).toBe(RELAY);
    expect(offer.hops).toBe(2);
    expect(formatIPv4(offer.yiaddr)).toBe('10.20.0.100');
    expect(offer.options.get(Opt.SERVER_ID)!.readUInt32BE(0)).toBe(SERVER);
    expect(offer.options.get(Opt.ROUTER)!.readUInt32BE(0)).toBe(ip('10.20.0.1'));
    expect(offer.options.get(Opt.SUBNET_MASK)!.readUInt32BE(0)).toBe(ip('255.255.255.0'));
    expect(offer.options.get(Opt.LEASE_TIME)!.readUInt32BE(0)).toBe(3600);
    const ack = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:01:01', requestedIp: offer.yiaddr, serverId: SERVER });
    expect(type(ack.reply!)).toBe(MessageType.ACK);
    expect(ack.result.commit).toHaveLength(1);
    expect(ack.result.commit[0]).toMatchObject({ address: offer.yiaddr, state: 'bound', mac: '52:54:00:00:01:01' });
  });

  it('echoes option 82 byte for byte and honours RFC 8357 relay source port', () => {
    const h = harness();
    const agent = Buffer.from([1, 6, 0x65, 0x74, 0x68, 0x31, 0x2f, 0x32, 2, 4, 0xde, 0xad, 0xbe, 0xef, 19, 0]);
    const r = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:01:02', relayAgentInfo: agent }, { address: '10.20.0.1', port: 16700 });
    expect(r.reply!.options.get(Opt.RELAY_AGENT_INFO)!.equals(agent)).toBe(true);
    expect(r.result.send[0]!.port).toBe(16700);
    const plain = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:01:03', relayAgentInfo: agent.subarray(0, 14) }, { address: '10.20.0.1', port: 16700 });
    expect(plain.result.send[0]!.port).toBe(67);
  });

  it('drops packets from relays that are not the pod’s, and unrelayed DISCOVERs, with a log line', () => {
    const h = harness();
    const foreign = h.svc.handle(requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:00:01:04', giaddr: ip('10.30.0.1') }), { address: '10.30.0.1', port: 67 }, h.now);
    expect(foreign.send).toHaveLength(0);
    const direct = h.svc.handle(requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:00:01:04' }), { address: '0.0.0.0', port: 68 }, h.now);
    expect(direct.send).toHaveLength(0);
    expect(h.svc.counters.dropped['unknown-relay']).toBe(1);
    expect(h.svc.counters.dropped['not-relayed']).toBe(1);
    expect(h.lines.some((l) => l.kind === 'unknown-relay' && l.giaddr === '10.30.0.1' && l.mac === '52:54:00:00:01:04' && l.pod === 'rack-t')).toBe(true);
  });

  it('selects the subnet by link selection (82.5) when the relay sends it', () => {
    const pod = testPod({ subnets: [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.199']), subnet('10.21.0.0/24', ['10.21.0.50', '10.21.0.60'])] });
    const h = harness(pod);
    const link = Buffer.from([5, 4, 10, 21, 0, 0]);
    const r = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:01:05', relayAgentInfo: link });
    expect(formatIPv4(r.reply!.yiaddr)).toBe('10.21.0.50');
    expect(r.reply!.options.get(Opt.ROUTER)!.readUInt32BE(0)).toBe(ip('10.21.0.1'));
  });

  it('gives a known node its fixed address and hostname, and never gives that address to others', () => {
    const pod = testPod({ nodes: [{ mac: '52:54:00:00:00:11', hostname: 'n1', address: ip('10.20.0.11') }] });
    const h = harness(pod);
    const { ack } = h.dora('52:54:00:00:00:11');
    expect(formatIPv4(ack.yiaddr)).toBe('10.20.0.11');
    expect(ack.options.get(Opt.HOSTNAME)!.toString()).toBe('n1');
    const thief = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:00:99', requestedIp: ip('10.20.0.11'), serverId: SERVER });
    expect(type(thief.reply!)).toBe(MessageType.NAK);
  });

  it('ignores unknown nodes when the pod says so', () => {
    const pod = testPod({ unknownNodes: 'ignore', nodes: [{ mac: '52:54:00:00:00:11', address: ip('10.20.0.11') }] });
    const h = harness(pod);
    expect(h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:12' }).reply).toBeUndefined();
    expect(h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:11' }).reply).toBeDefined();
  });

  it('gives the same client the same address again, and different clients different ones', () => {
    const h = harness();
    const a1 = h.dora('52:54:00:00:02:01').ack.yiaddr;
    const b1 = h.dora('52:54:00:00:02:02').ack.yiaddr;
    expect(a1).not.toBe(b1);
    expect(h.dora('52:54:00:00:02:01').ack.yiaddr).toBe(a1);
  });

  it('identifies clients by option 61 when present', () => {
    const h = harness();
    const id = Buffer.from([1, 0x52, 0x54, 0, 0, 2, 3]);
    const a = h.dora('52:54:00:00:02:03', { clientId: id }).ack.yiaddr;
    // Same client id behind another NIC: same lease.
    expect(h.dora('52:54:00:00:02:04', { clientId: id }).ack.yiaddr).toBe(a);
  });
});

describe('DHCP service: REQUEST states (RFC 2131 §4.3.2)', () => {
  it('SELECTING for another server forgets our offer silently', () => {
    // A one-address pool: the next client can only get it if the hold was dropped.
    const h = harness(testPod({ subnets: [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.100'])] }));
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:03:01' }).reply!;
    const r = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:01', requestedIp: offer.yiaddr, serverId: ip('10.99.0.2') });
    expect(r.result.send).toHaveLength(0);
    // The held address is free again for the next client.
    expect(h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:03:02' }).reply!.yiaddr).toBe(offer.yiaddr);
  });

  it('INIT-REBOOT: ACK for the client’s own address, NAK for a wrong one or a wrong network, silence when unknown', () => {
    const h = harness();
    const mine = h.dora('52:54:00:00:03:03').ack.yiaddr;
    const ok = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:03', requestedIp: mine });
    expect(type(ok.reply!)).toBe(MessageType.ACK);
    const wrong = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:03', requestedIp: mine + 5 });
    expect(type(wrong.reply!)).toBe(MessageType.NAK);
    expect(wrong.reply!.flags & 0x8000).toBe(0x8000);
    const net = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:03', requestedIp: ip('192.168.1.5') });
    expect(type(net.reply!)).toBe(MessageType.NAK);
    expect(net.reply!.options.get(Opt.MESSAGE)!.toString()).toMatch(/not on 10.20.0.0\/24/);
    const unknown = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:04', requestedIp: ip('10.20.0.150') });
    expect(unknown.reply).toBeUndefined();
  });

  it('RENEWING by unicast from the client is answered to ciaddr:68; a spoofed source is dropped', () => {
    const h = harness();
    const mine = h.dora('52:54:00:00:03:05').ack.yiaddr;
    h.tick(1800);
    const renew = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:05', ciaddr: mine, giaddr: 0 }, { address: formatIPv4(mine), port: 68 });
    expect(type(renew.reply!)).toBe(MessageType.ACK);
    expect(renew.result.send[0]).toMatchObject({ address: formatIPv4(mine), port: 68 });
    expect(renew.result.commit[0]!.ends).toBe(h.now + 3600);
    const spoof = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:05', ciaddr: mine, giaddr: 0 }, { address: '10.20.0.77', port: 68 });
    expect(spoof.reply).toBeUndefined();
  });

  it('REBINDING through the relay for someone else’s address is NAKed', () => {
    const h = harness();
    const a = h.dora('52:54:00:00:03:06').ack.yiaddr;
    const r = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:03:07', ciaddr: a });
    expect(type(r.reply!)).toBe(MessageType.NAK);
  });

  it('DECLINE quarantines the address; RELEASE frees it but keeps it for the same client', () => {
    const h = harness();
    const a = h.dora('52:54:00:00:03:08').ack.yiaddr;
    const d = h.send({ type: MessageType.DECLINE, mac: '52:54:00:00:03:08', requestedIp: a, serverId: SERVER });
    expect(d.result.commit[0]).toMatchObject({ address: a, state: 'declined', clientKey: '' });
    const next = h.dora('52:54:00:00:03:08').ack.yiaddr;
    expect(next).not.toBe(a);
    expect(h.dora('52:54:00:00:03:09').ack.yiaddr).not.toBe(a);
    const rel = h.send({ type: MessageType.RELEASE, mac: '52:54:00:00:03:08', ciaddr: next, giaddr: 0 }, { address: formatIPv4(next), port: 68 });
    expect(rel.result.commit[0]).toMatchObject({ address: next, state: 'released' });
    expect(h.dora('52:54:00:00:03:08').ack.yiaddr).toBe(next);
  });

  it('runs out of pool addresses without handing one out twice', () => {
    const pod = testPod({ subnets: [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.109'])] });
    const h = harness(pod);
    const got = new Set<number>();
    for (let i = 0; i < 10; i++) got.add(h.dora(`52:54:00:00:04:${i.toString(16).padStart(2, '0')}`).ack.yiaddr);
    expect(got.size).toBe(10);
    expect(h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:04:ff' }).reply).toBeUndefined();
    expect(h.svc.counters.dropped['pool-exhausted']).toBe(1);
  });

  it('reloads committed leases from the store: a new service instance keeps them', () => {
    const h = harness();
    const a = h.dora('52:54:00:00:05:01').ack.yiaddr;
    h.db.close();
    const h2 = harness(testPod(), h.dir);
    expect(h2.svc.leaseCount).toBe(1);
    expect(h2.dora('52:54:00:00:05:01').ack.yiaddr).toBe(a);
    expect(h2.dora('52:54:00:00:05:02').ack.yiaddr).not.toBe(a);
  });
});

describe('DHCP service: PXE boot files', () => {
  const cases: [string, Partial<RequestSpec>, string, string | undefined][] = [
    ['BIOS (93=0)', { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }, 'undionly.kpxe', 'PXEClient'],
    ['UEFI x64 (93=7)', { arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003016' }, 'snponly.efi', 'PXEClient'],
    ['UEFI arm64 (93=11)', { arch: 11, vendorClass: 'PXEClient:Arch:00011:UNDI:003016' }, 'snponly-arm64.efi', 'PXEClient'],
    ['UEFI HTTP boot (93=16)', { arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003016' }, 'http://10.99.0.1:80/boot/ipxe.efi', 'HTTPClient'],
    ['iPXE', { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: 'iPXE' }, 'http://10.99.0.1:80/ipxe/52-54-00-00-06-01.ipxe', 'PXEClient'],
  ];
  it.each(cases)('%s gets the right boot file', (_name, spec, file, vc) => {
    const h = harness();
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:06:01', ...spec }).reply!;
    expect(offer.options.get(Opt.BOOTFILE)!.toString()).toBe(file);
    expect(fieldText(offer.file)).toBe(file);
    expect(offer.siaddr).toBe(SERVER);
    expect(offer.options.get(Opt.VENDOR_CLASS)?.toString()).toBe(vc);
  });

  it('tells iPXE not to wait for ProxyDHCP (175.176 = 1)', () => {
    const h = harness();
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:06:02', arch: 0, userClass: 'iPXE', vendorClass: 'PXEClient' }).reply!;
    expect(offer.options.get(Opt.IPXE_ENCAP)).toEqual(Buffer.from([176, 1, 1]));
  });

  it('gives a non-PXE client an address but no boot file', () => {
    const h = harness();
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:06:03' }).reply!;
    expect(offer.yiaddr).not.toBe(0);
    expect(offer.options.has(Opt.BOOTFILE)).toBe(false);
    expect(fieldText(offer.file)).toBe('');
    expect(offer.siaddr).toBe(0);
  });

  it('uses a per-node boot file override', () => {
    const pod = testPod({ nodes: [{ mac: '52:54:00:00:06:04', address: ip('10.20.0.14'), boot: { bios: 'pxelinux.0' } }] });
    const h = harness(pod);
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:06:04', arch: 0, vendorClass: 'PXEClient' }).reply!;
    expect(fieldText(offer.file)).toBe('pxelinux.0');
  });

  it('offers no boot file to an installed server and records an event naming it', () => {
    const h = harness();
    h.nodes.changeInstallState({ mac: '52:54:00:00:06:05', state: 'installed', time: h.now });
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:06:05', arch: 0, vendorClass: 'PXEClient' }).reply!;
    expect(offer.yiaddr).not.toBe(0);
    expect(offer.options.has(Opt.BOOTFILE)).toBe(false);
    expect(h.nodes.events('52:54:00:00:06:05')[0]).toMatchObject({ kind: 'pxe-after-install' });
    expect(h.lines.some((l) => l.mac === '52:54:00:00:06:05' && String(l.msg).includes('installed server'))).toBe(true);
  });

  it('records discovered on a network-boot DISCOVER and pxe on the ACK that carries a boot file', () => {
    const h = harness();
    const mac = '52:54:00:00:06:07';
    h.dora(mac, { arch: 0, vendorClass: 'PXEClient' });
    expect(h.nodes.node(mac)).toMatchObject({ state: 'pxe', attempt: 1 });
    expect(h.nodes.events(mac).map((e) => e.kind)).toEqual(['pxe', 'discovered']);
    // A plain client (no PXE options) leaves no install record.
    h.dora('52:54:00:00:06:08');
    expect(h.nodes.node('52:54:00:00:06:08')).toBeUndefined();
  });

  it('returns the rows about a server and writes none: the server commits them with the leases', () => {
    const h = harness();
    const mac = '52:54:00:00:06:0b';
    const discover = () => h.svc.handle(requestBytes({ type: MessageType.DISCOVER, mac, giaddr: RELAY, arch: 0, vendorClass: 'PXEClient' }), { address: '10.20.0.1', port: 67 }, h.now);
    const first = discover();
    expect(first.nodes?.changes).toEqual([{ mac, state: 'discovered', time: h.now, detail: 'undionly.kpxe' }]);
    expect(h.nodes.node(mac)).toBeUndefined();
    // A second DISCOVER before the commit (a redundant relay) sees the decided state: nothing twice.
    expect(discover().nodes).toBeUndefined();
    h.leases.commit(first.commit, first.nodes);
    h.svc.committed();
    expect(h.nodes.events(mac).map((e) => e.kind)).toEqual(['discovered']);
    expect(discover().nodes).toBeUndefined();
  });

  it('a failed commit forgets the decided install states: the next exchange decides them again', () => {
    const h = harness();
    const mac = '52:54:00:00:06:0c';
    const discover = () => h.svc.handle(requestBytes({ type: MessageType.DISCOVER, mac, giaddr: RELAY, arch: 0, vendorClass: 'PXEClient' }), { address: '10.20.0.1', port: 67 }, h.now);
    expect(discover().nodes?.changes).toHaveLength(1);
    h.svc.resync();
    expect(discover().nodes?.changes).toHaveLength(1);
  });

  it('degraded: leases go on, new installs get no boot file, installs under way keep theirs', () => {
    const h = harness();
    h.svc.degraded = true;
    const { ack } = h.dora('52:54:00:00:06:09', { arch: 0, vendorClass: 'PXEClient' });
    expect(ack.yiaddr).not.toBe(0);
    expect(ack.options.has(Opt.BOOTFILE)).toBe(false);
    h.nodes.changeInstallState({ mac: '52:54:00:00:06:0a', state: 'stage2-fetched', time: h.now });
    expect(fieldText(h.dora('52:54:00:00:06:0a', { arch: 0, vendorClass: 'PXEClient' }).ack.file)).toBe('undionly.kpxe');
    h.svc.degraded = false;
    expect(fieldText(h.dora('52:54:00:00:06:09', { arch: 0, vendorClass: 'PXEClient' }).ack.file)).toBe('undionly.kpxe');
  });

  it('an unknown architecture gets an address, no boot file, and a log line', () => {
    const h = harness();
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:06:06', arch: 99, vendorClass: 'PXEClient' }).reply!;
    expect(offer.options.has(Opt.BOOTFILE)).toBe(false);
    expect(h.lines.some((l) => l.kind === 'unknown-arch')).toBe(true);
  });
});

describe('DHCP service: relay sub-options and INFORM', () => {
  it('uses the RFC 5107 server identifier override as option 54 and accepts it in SELECTING', () => {
    const h = harness();
    const agent = Buffer.from([11, 4, 10, 20, 0, 1]);
    const offer = h.send({ type: MessageType.DISCOVER, mac: '52:54:00:00:07:01', relayAgentInfo: agent }).reply!;
    expect(offer.options.get(Opt.SERVER_ID)!.readUInt32BE(0)).toBe(ip('10.20.0.1'));
    const ack = h.send({ type: MessageType.REQUEST, mac: '52:54:00:00:07:01', requestedIp: offer.yiaddr, serverId: ip('10.20.0.1'), relayAgentInfo: agent }).reply!;
    expect(ack.options.get(Opt.MESSAGE_TYPE)![0]).toBe(MessageType.ACK);
    expect(ack.options.get(Opt.RELAY_AGENT_INFO)!.equals(agent)).toBe(true);
  });

  it('answers INFORM with configuration but no lease', () => {
    const h = harness();
    const r = h.send({ type: MessageType.INFORM, mac: '52:54:00:00:07:02', ciaddr: ip('10.20.0.50'), giaddr: 0 }, { address: '10.20.0.50', port: 68 });
    expect(r.result.send[0]).toMatchObject({ address: '10.20.0.50', port: 68 });
    expect(r.result.commit).toHaveLength(0);
    expect(r.reply!.options.get(Opt.MESSAGE_TYPE)![0]).toBe(MessageType.ACK);
    expect(r.reply!.yiaddr).toBe(0);
    expect(r.reply!.options.has(Opt.LEASE_TIME)).toBe(false);
    expect(r.reply!.options.get(Opt.ROUTER)!.readUInt32BE(0)).toBe(ip('10.20.0.1'));
  });
});
