// The running DHCP server on loopback: the rows an exchange decides about a
// server (install state, its event) are committed in the group commit with
// the leases, before the reply leaves; a failed commit sends nothing.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageType, Opt } from '../../../src/dhcp/codec/constants.js';
import { decodePacket, type DhcpPacket } from '../../../src/dhcp/codec/packet.js';
import { DhcpServer } from '../../../src/dhcp/server.js';
import { DhcpService } from '../../../src/dhcp/service.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { LeaseRecord, LeaseStore, NodeWrites } from '../../../src/store/types.js';
import { requestBytes } from '../../helpers/dhcp-packets.js';
import { captureLogger } from '../../helpers/logs.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const PORT = 35000 + Math.floor(Math.random() * 5000);
const RELAY = ip('127.0.0.1');
const SERVER = ip('127.0.0.1');

describe('running DHCP server: install state in the group commit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podboot-dhcp-group-'));
  const db = openPodDatabase(dir);
  const sqlite = new SqliteLeaseStore(db);
  const nodes = new SqliteNodeStateStore(db);
  const commits: { leases: number; nodes?: NodeWrites; repliesBefore: number }[] = [];
  const replies: DhcpPacket[] = [];
  let failing = false;
  // The SQLite store, watched: what each commit carried and how many replies had left before it.
  const leases: LeaseStore = {
    loadAll: () => sqlite.loadAll(),
    commit: (records: readonly LeaseRecord[], w?: NodeWrites) => {
      commits.push({ leases: records.length, nodes: w, repliesBefore: replies.length });
      if (failing) throw new Error('disk full');
      sqlite.commit(records, w);
    },
  };
  const { log, lines } = captureLogger({ pod: 'rack-g' });
  const pod = testPod({
    name: 'rack-g',
    listen: { address: '127.0.0.1', dhcpPort: PORT, tftpPort: 69, httpPort: 80, httpsPort: 443 },
    relays: [RELAY],
    subnets: [subnet('127.0.0.0/24', ['127.0.0.100', '127.0.0.199'])],
    boot: { ...testPod().boot, nextServer: '127.0.0.1' },
  });
  const service = new DhcpService(pod, leases, nodes, log);
  const server = new DhcpServer(service, leases, log, { address: '127.0.0.1', port: PORT });
  const relay = dgram.createSocket('udp4');

  beforeAll(async () => {
    await server.start();
    relay.on('message', (m) => {
      const d = decodePacket(m);
      if (d.ok) replies.push(d.packet);
    });
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
  });

  afterAll(async () => {
    relay.close();
    await server.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pxe = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, relayAgentInfo: Buffer.from([19, 0]) };
  const ask = async (spec: { type: MessageType; mac: string; xid: number; requestedIp?: number; serverId?: number }, wait = 5000): Promise<DhcpPacket | undefined> => {
    const before = replies.length;
    relay.send(requestBytes({ ...spec, giaddr: RELAY, ...pxe }), PORT, '127.0.0.1');
    const deadline = Date.now() + wait;
    while (replies.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return replies[before];
  };

  it('commits discovered with the OFFER and pxe with the ACK, each state with its event, before the reply leaves', async () => {
    const mac = '52:54:00:00:0b:01';
    const offer = await ask({ type: MessageType.DISCOVER, mac, xid: 1 });
    expect(offer?.options.get(Opt.MESSAGE_TYPE)?.[0]).toBe(MessageType.OFFER);
    const first = commits.at(-1)!;
    expect(first).toMatchObject({ leases: 0, repliesBefore: 0 });
    expect(first.nodes?.changes).toEqual([expect.objectContaining({ mac, state: 'discovered' })]);
    const ack = await ask({ type: MessageType.REQUEST, mac, xid: 2, requestedIp: offer!.yiaddr, serverId: SERVER });
    expect(ack?.options.get(Opt.MESSAGE_TYPE)?.[0]).toBe(MessageType.ACK);
    const second = commits.at(-1)!;
    // One transaction: the lease and the install state together, before the ACK.
    expect(second).toMatchObject({ leases: 1, repliesBefore: 1 });
    expect(second.nodes?.changes.map((c) => c.state)).toEqual(['pxe']);
    expect(nodes.node(mac)).toMatchObject({ state: 'pxe' });
    expect(nodes.events(mac).map((e) => e.kind)).toEqual(['pxe', 'discovered']);
  });

  it('a failed commit sends no reply and writes no row; the next exchange decides (and commits) again', async () => {
    const mac = '52:54:00:00:0b:02';
    failing = true;
    expect(await ask({ type: MessageType.DISCOVER, mac, xid: 3 }, 500)).toBeUndefined();
    expect(service.counters.commitFailures).toBe(1);
    expect(lines.some((l) => l.msg === 'lease commit failed; ACKs withheld')).toBe(true);
    expect(nodes.node(mac)).toBeUndefined();
    failing = false;
    const offer = await ask({ type: MessageType.DISCOVER, mac, xid: 4 });
    expect(offer?.options.get(Opt.MESSAGE_TYPE)?.[0]).toBe(MessageType.OFFER);
    expect(nodes.node(mac)).toMatchObject({ state: 'discovered' });
    expect(nodes.events(mac).map((e) => e.kind)).toEqual(['discovered']);
  });

  it('a plain client (no network boot) commits nothing for its OFFER', async () => {
    const n = commits.length;
    const before = replies.length;
    relay.send(requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:00:0b:03', xid: 5, giaddr: RELAY, relayAgentInfo: Buffer.from([19, 0]) }), PORT, '127.0.0.1');
    const deadline = Date.now() + 5000;
    while (replies.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(replies.length).toBe(before + 1);
    expect(commits.length).toBe(n);
  });
});
