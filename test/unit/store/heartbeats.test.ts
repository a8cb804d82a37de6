// The node agent's last heartbeat and the server's liveness in both stores:
// a heartbeat replaces the one before and writes no event; liveness and its
// event go together; a state change keeps both, a reinstall drops both; in
// SQLite all of it outlives the process (a restarted pod remembers a silent
// server) and reads the same from outside the pod (src/store/pod-state.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openPodDatabase } from '../../../src/store/database.js';
import { MemoryNodeStateStore } from '../../../src/store/memory-store.js';
import { openPodState } from '../../../src/store/pod-state.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { NodeMetrics, NodeStateStore } from '../../../src/store/types.js';

const MAC = '52:54:00:00:1b:01';
const T = 1_700_000_000;
const FULL: NodeMetrics = { uptime: 12345, load1: 0.52, load5: 0.4, load15: 0.31, memTotal: 2 ** 31, memAvailable: 2 ** 30, diskSize: 270_553_174_016, diskUsed: 26_702_405_632 };
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pb-hb-'));
  dirs.push(d);
  return d;
}

describe.each([
  ['sqlite', (): NodeStateStore => new SqliteNodeStateStore(openPodDatabase(dir()))],
  ['memory', (): NodeStateStore => new MemoryNodeStateStore()],
])('%s store', (_name, open) => {
  it('keeps the last heartbeat (figures as sent, none carried over), moves last seen, writes no event', () => {
    const nodes = open();
    nodes.changeInstallState({ mac: MAC, state: 'booted-from-disk', time: T });
    nodes.recordHeartbeat(MAC, { time: T + 30, metrics: FULL });
    expect(nodes.node(MAC)).toEqual({ mac: MAC, state: 'booted-from-disk', attempt: 1, updatedAt: T, lastSeen: T + 30, heartbeat: { time: T + 30, metrics: FULL } });
    nodes.recordHeartbeat(MAC, { time: T + 60, metrics: { uptime: 12375, load1: 1.5 } });
    expect(nodes.node(MAC)?.heartbeat).toEqual({ time: T + 60, metrics: { uptime: 12375, load1: 1.5 } });
    expect(nodes.nodes()[0]?.heartbeat).toEqual({ time: T + 60, metrics: { uptime: 12375, load1: 1.5 } });
    expect(nodes.node(MAC)?.lastSeen).toBe(T + 60);
    expect(nodes.events(MAC).map((e) => e.kind)).toEqual(['booted-from-disk']);
  });

  it('liveness and its event together; a state change keeps liveness and heartbeat, a reinstall drops them', () => {
    const nodes = open();
    nodes.changeInstallState({ mac: MAC, state: 'booted-from-disk', time: T });
    nodes.setLiveness(MAC, 'active');
    nodes.recordHeartbeat(MAC, { time: T + 1, metrics: { uptime: 5 } });
    nodes.setLiveness(MAC, 'silent', { time: T + 100, mac: MAC, kind: 'silent', detail: 'last seen then' });
    expect(nodes.node(MAC)?.liveness).toBe('silent');
    expect(nodes.events(MAC, 1)).toEqual([{ time: T + 100, mac: MAC, kind: 'silent', detail: 'last seen then' }]);
    // DHCP's pxe-after-install is an event only; a state change through the lease commit path keeps both too.
    nodes.changeInstallState({ mac: MAC, state: 'booted-from-disk', time: T + 101, event: false });
    expect(nodes.node(MAC)).toMatchObject({ liveness: 'silent', heartbeat: { time: T + 1, metrics: { uptime: 5 } } });
    nodes.setLiveness(MAC, undefined);
    expect(nodes.node(MAC)).not.toHaveProperty('liveness');
    nodes.setLiveness(MAC, 'active');
    nodes.reinstall(MAC, T + 200, 'op');
    const after = nodes.node(MAC)!;
    expect(after.state).toBe('discovered');
    expect(after).not.toHaveProperty('liveness');
    expect(after).not.toHaveProperty('heartbeat');
  });
});

describe('sqlite: liveness and the last heartbeat outlive the pod process', () => {
  it('a reopened database (a restarted pod) and a reader from outside see them', () => {
    const d = dir();
    const db = openPodDatabase(d);
    const nodes = new SqliteNodeStateStore(db);
    nodes.changeInstallState({ mac: MAC, state: 'booted-from-disk', time: T });
    nodes.recordHeartbeat(MAC, { time: T + 30, metrics: FULL });
    nodes.setLiveness(MAC, 'silent', { time: T + 200, mac: MAC, kind: 'silent' });
    new SqliteLeaseStore(db).commit([{ address: 0x0a000064, clientKey: MAC, mac: MAC, state: 'bound', starts: T, ends: T + 3600, subnet: '10.0.0.0/24' }]);
    db.close();
    const again = openPodDatabase(d);
    expect(new SqliteNodeStateStore(again).node(MAC)).toMatchObject({ liveness: 'silent', lastSeen: T + 30, heartbeat: { time: T + 30, metrics: FULL } });
    again.close();
    const view = openPodState(d, { readonly: true })!;
    try {
      expect(view.nodesWithLeases(T + 10)).toEqual([expect.objectContaining({ mac: MAC, address: 0x0a000064, liveness: 'silent', heartbeat: { time: T + 30, metrics: FULL } })]);
    } finally {
      view.close();
    }
  });
});
