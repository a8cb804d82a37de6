// The running DHCP server (socket, service, store) on loopback, as a relay
// sees it: requests whose hardware length does not fit their type get no
// answer, no lease and no node row, while a good client beside them is served.
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
import { requestBytes } from '../../helpers/dhcp-packets.js';
import { captureLogger } from '../../helpers/logs.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const PORT = 30000 + Math.floor(Math.random() * 5000);
const RELAY = ip('127.0.0.1');

describe('running DHCP server: hardware length', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podboot-dhcp-hwlen-'));
  const db = openPodDatabase(dir);
  const leases = new SqliteLeaseStore(db);
  const nodes = new SqliteNodeStateStore(db);
  const { log, lines } = captureLogger({ pod: 'rack-l' });
  const pod = testPod({
    name: 'rack-l',
    listen: { address: '127.0.0.1', dhcpPort: PORT, tftpPort: 69, httpPort: 80, httpsPort: 443 },
    relays: [RELAY],
    subnets: [subnet('127.0.0.0/24', ['127.0.0.100', '127.0.0.199'])],
    boot: { ...testPod().boot, nextServer: '127.0.0.1' },
  });
  const service = new DhcpService(pod, leases, nodes, log);
  const server = new DhcpServer(service, leases, log, { address: '127.0.0.1', port: PORT });
  const relay = dgram.createSocket('udp4');
  const replies: DhcpPacket[] = [];

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

  /** A relayed PXE DISCOVER; RFC 8357's sub-option brings the reply back to our port. */
  const discover = (mac: string, xid: number, hw?: [number, number]) => {
    const b = requestBytes({ type: MessageType.DISCOVER, mac, xid, giaddr: RELAY, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, relayAgentInfo: Buffer.from([19, 0]) });
    if (hw) [b[1], b[2]] = hw;
    relay.send(b, PORT, '127.0.0.1');
  };

  it('drops hlen 0, hlen 17 and Ethernet with hlen 5 (named, counted), and still serves the good client', async () => {
    discover('52:54:00:00:08:01', 1, [1, 0]);
    discover('52:54:00:00:08:02', 2, [1, 0]);
    discover('52:54:00:00:08:03', 3, [1, 17]);
    discover('52:54:00:00:08:04', 4, [1, 5]);
    discover('52:54:00:00:08:05', 5);
    const deadline = Date.now() + 5000;
    while (replies.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Anything else in flight would have arrived with it.
    await new Promise((r) => setTimeout(r, 200));
    expect(replies.map((p) => [p.xid, p.options.get(Opt.MESSAGE_TYPE)![0]])).toEqual([[5, MessageType.OFFER]]);
    expect(service.counters.dropped).toEqual({ 'malformed:zero-hlen': 2, 'malformed:bad-hlen': 1, 'malformed:htype-hlen-mismatch': 1 });
    expect(nodes.nodes().map((n) => n.mac)).toEqual(['52:54:00:00:08:05']);
    expect(lines.filter((l) => l.kind === 'malformed:zero-hlen')).toHaveLength(1);
  });
});
