// The node and lease stores behind src/store/types.ts: the SQLite one and the
// in-memory double answer the same, and SQLite writes a state change with its
// event (and DHCP's rows with its leases) in one transaction.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openPodDatabase } from '../../../src/store/database.js';
import { MemoryLeaseStore, MemoryNodeStateStore } from '../../../src/store/memory-store.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { LeaseRecord, LeaseStore, NodeStateStore } from '../../../src/store/types.js';

const MAC = '52:54:00:00:0c:01';
const T = 1_700_000_000;
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function sqlite() {
  const dir = mkdtempSync(join(tmpdir(), 'pb-store-'));
  dirs.push(dir);
  const db = openPodDatabase(dir);
  return { db, nodes: new SqliteNodeStateStore(db), leases: new SqliteLeaseStore(db) };
}

function memory() {
  const nodes = new MemoryNodeStateStore();
  return { nodes, leases: new MemoryLeaseStore(nodes) };
}

const lease = (address: number, mac = MAC): LeaseRecord => ({ address, clientKey: mac, mac, state: 'bound', starts: T, ends: T + 3600, subnet: '10.0.0.0/24' });

describe.each([
  ['sqlite', (): { nodes: NodeStateStore; leases: LeaseStore } => sqlite()],
  ['memory', (): { nodes: NodeStateStore; leases: LeaseStore } => memory()],
])('%s stores', (_name, open) => {
  it('a state change comes with its event; the reason lives until the next change', () => {
    const { nodes } = open();
    nodes.changeInstallState({ mac: MAC, state: 'failed', time: T, reason: 'signature', detail: 'failed(signature)' });
    expect(nodes.node(MAC)).toEqual({ mac: MAC, state: 'failed', attempt: 1, updatedAt: T, reason: 'signature', lastSeen: T });
    nodes.changeInstallState({ mac: MAC, state: 'stage1', time: T + 1 });
    expect(nodes.node(MAC)).toEqual({ mac: MAC, state: 'stage1', attempt: 1, updatedAt: T + 1, lastSeen: T + 1 });
    expect(nodes.events(MAC)).toEqual([
      { time: T + 1, mac: MAC, kind: 'stage1' },
      { time: T, mac: MAC, kind: 'failed', detail: 'failed(signature)' },
    ]);
  });

  it('event: false writes the change alone', () => {
    const { nodes } = open();
    nodes.changeInstallState({ mac: MAC, state: 'discovered', time: T, event: false });
    expect(nodes.installState(MAC)).toBe('discovered');
    expect(nodes.events(MAC)).toEqual([]);
  });

  it('a reinstall starts a new attempt from discovered and says who asked', () => {
    const { nodes } = open();
    expect(nodes.reinstall(MAC, T, 'op')).toMatchObject({ state: 'discovered', attempt: 2 });
    nodes.changeInstallState({ mac: MAC, state: 'installed', time: T + 1 });
    expect(nodes.reinstall(MAC, T + 2, 'op')).toMatchObject({ state: 'discovered', attempt: 3 });
    expect(nodes.events(MAC, 1)[0]).toMatchObject({ kind: 'reinstall', detail: 'by op; was installed; attempt 3' });
  });

  it('the image on the disk: set when installed, kept through the boot, a reinstall and a failure before the disk is touched, gone once a new install writes the disk', () => {
    const { nodes } = open();
    nodes.changeInstallState({ mac: MAC, state: 'installing', time: T });
    expect(nodes.node(MAC)).not.toHaveProperty('image');
    nodes.changeInstallState({ mac: MAC, state: 'installed', time: T + 1, image: 'debian-12@1.0' });
    nodes.changeInstallState({ mac: MAC, state: 'booted-from-disk', time: T + 2 });
    expect(nodes.node(MAC)).toMatchObject({ state: 'booted-from-disk', image: 'debian-12@1.0' });
    nodes.reinstall(MAC, T + 3, 'op');
    nodes.changeInstallState({ mac: MAC, state: 'failed', reason: 'signature', time: T + 4 });
    expect(nodes.node(MAC)).toMatchObject({ state: 'failed', image: 'debian-12@1.0' });
    nodes.changeInstallState({ mac: MAC, state: 'installing', time: T + 5 });
    expect(nodes.node(MAC)).not.toHaveProperty('image');
    nodes.changeInstallState({ mac: MAC, state: 'installed', time: T + 6, image: 'debian-12@1.1' });
    expect(nodes.nodes()[0]).toMatchObject({ image: 'debian-12@1.1' });
  });

  it('the lease store commits DHCP rows about servers with the leases', () => {
    const { nodes, leases } = open();
    leases.commit([lease(0x0a000064)], { changes: [{ mac: MAC, state: 'pxe', time: T, detail: 'pxelinux.0' }], events: [{ time: T, mac: '52:54:00:00:0c:02', kind: 'pxe-after-install' }] });
    expect(leases.loadAll()).toEqual([lease(0x0a000064)]);
    expect(nodes.installState(MAC)).toBe('pxe');
    expect(nodes.events().map((e) => e.kind)).toEqual(['pxe-after-install', 'pxe']);
  });

  it('admits every row: nothing bounds a bare store', () => {
    const { nodes } = open();
    const w = { changes: [{ mac: MAC, state: 'discovered', time: T }], events: [] };
    expect(nodes.admit(w)).toBe(w);
  });
});

describe('SQLite: one transaction', () => {
  it('a state change whose event cannot be written leaves no state either', () => {
    const { db, nodes } = sqlite();
    db.exec("CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'events refused'); END");
    expect(() => nodes.changeInstallState({ mac: MAC, state: 'stage1', time: T })).toThrow(/events refused/);
    expect(nodes.node(MAC)).toBeUndefined();
    db.close();
  });

  it("DHCP's group commit is all or nothing: leases, states and events", () => {
    const { db, nodes, leases } = sqlite();
    db.exec("CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'events refused'); END");
    expect(() => leases.commit([lease(0x0a000064)], { changes: [{ mac: MAC, state: 'pxe', time: T }], events: [] })).toThrow(/events refused/);
    expect(leases.loadAll()).toEqual([]);
    expect(nodes.node(MAC)).toBeUndefined();
    db.close();
  });
});
