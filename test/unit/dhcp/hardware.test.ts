// Packets whose hardware length does not fit their hardware type are not
// clients the pod can name: hlen 0 once made two clients share one address
// and left a node row with an empty MAC. Dropped in the codec with a named
// reason, counted as malformed, logged at a bounded rate.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageType } from '../../../src/dhcp/codec/constants.js';
import { hardwareProblem } from '../../../src/dhcp/codec/hardware.js';
import { decodePacket } from '../../../src/dhcp/codec/packet.js';
import { DhcpService } from '../../../src/dhcp/service.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { requestBytes, type RequestSpec } from '../../helpers/dhcp-packets.js';
import { captureLogger } from '../../helpers/logs.js';
import { ip, testPod } from '../../helpers/pods.js';

const RELAY = ip('10.20.0.1');
const SERVER = ip('10.99.0.1');

/** A relayed PXE request with its header's htype and hlen overwritten. */
function withHardware(spec: Omit<RequestSpec, 'giaddr'>, htype: number, hlen: number): Buffer {
  const b = requestBytes({ giaddr: RELAY, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, ...spec });
  b[1] = htype;
  b[2] = hlen;
  return b;
}

describe('hardware type and length', () => {
  it.each([
    [1, 0, 'zero-hlen'],
    [1, 17, 'bad-hlen'],
    [1, 255, 'bad-hlen'],
    [1, 5, 'htype-hlen-mismatch'],
    [1, 7, 'htype-hlen-mismatch'],
    [1, 16, 'htype-hlen-mismatch'],
    [6, 8, 'htype-hlen-mismatch'],
    [32, 0, 'zero-hlen'],
    [0, 0, 'zero-hlen'],
  ] as const)('htype %i with hlen %i: %s', (htype, hlen, reason) => {
    expect(hardwareProblem(htype, hlen)).toMatchObject({ reason });
    const d = decodePacket(withHardware({ type: MessageType.DISCOVER, mac: '52:54:00:00:07:01' }, htype, hlen));
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.reason).toBe(reason);
      expect(d.detail).toMatch(/hlen/);
    }
  });

  it.each([
    [1, 6],
    [6, 6],
    [20, 8],
    [32, 16],
  ] as const)('htype %i with hlen %i decodes', (htype, hlen) => {
    expect(hardwareProblem(htype, hlen)).toBeUndefined();
    expect(decodePacket(withHardware({ type: MessageType.DISCOVER, mac: '52:54:00:00:07:01' }, htype, hlen)).ok).toBe(true);
  });
});

describe('DHCP service: packets whose hardware length does not fit', () => {
  const dirs: string[] = [];
  afterEach(() => {
    while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  it('gives no lease and makes no node row; each is counted as malformed and the log stays bounded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podboot-dhcp-hw-'));
    dirs.push(dir);
    const db = openPodDatabase(dir);
    const leases = new SqliteLeaseStore(db);
    const nodes = new SqliteNodeStateStore(db);
    const { log, lines } = captureLogger({ pod: 'rack-t' });
    const svc = new DhcpService(testPod(), leases, nodes, log);
    const now = 1_700_000_000;
    const from = { address: '10.20.0.1', port: 67 };
    const cases: [number, number, string][] = [
      [1, 0, 'malformed:zero-hlen'],
      [1, 17, 'malformed:bad-hlen'],
      [1, 5, 'malformed:htype-hlen-mismatch'],
    ];
    for (const [htype, hlen] of cases) {
      // Two different clients (chaddr and xid differ) each time, DISCOVER then REQUEST, 100 rounds.
      for (let i = 0; i < 100; i++) {
        for (const mac of ['52:54:00:00:07:01', '52:54:00:00:07:02']) {
          const xid = 0x1000 + i;
          const offer = svc.handle(withHardware({ type: MessageType.DISCOVER, mac, xid }, htype, hlen), from, now);
          const ack = svc.handle(withHardware({ type: MessageType.REQUEST, mac, xid, requestedIp: ip('10.20.0.100'), serverId: SERVER }, htype, hlen), from, now);
          for (const r of [offer, ack]) {
            expect(r.send).toEqual([]);
            expect(r.commit).toEqual([]);
          }
        }
      }
    }
    for (const [, , reason] of cases) expect(svc.counters.dropped[reason]).toBe(400);
    expect(svc.counters.received).toEqual({});
    expect(leases.loadAll()).toEqual([]);
    expect(nodes.nodes()).toEqual([]);
    expect(svc.leaseCount).toBe(0);
    // One line per reason (the default interval is 10 s), naming it.
    const dropLines = lines.filter((l) => String(l.msg).startsWith('dhcp packet dropped'));
    expect(dropLines.map((l) => l.kind).sort()).toEqual(cases.map((c) => c[2]).sort());
    expect(dropLines.find((l) => l.kind === 'malformed:zero-hlen')).toMatchObject({ level: 'warn', detail: 'htype 1 with hlen 0: no hardware address', from: '10.20.0.1' });

    // A well-formed client right after still gets its lease.
    const ok = svc.handle(requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:00:07:03', giaddr: RELAY }), from, now);
    expect(ok.send).toHaveLength(1);
    db.close();
  });
});
