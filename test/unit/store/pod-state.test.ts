// openPodState: the one way into a pod's state from outside the pod.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openPodDatabase, podDatabaseFile, SCHEMA_VERSION } from '../../../src/store/database.js';
import { openPodState, podStateVersion } from '../../../src/store/pod-state.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';

const T = Math.floor(Date.now() / 1000);
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function podDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pb-podstate-'));
  dirs.push(dir);
  return dir;
}

/** What the pod itself writes: two servers, one holding a live lease and an expired one. */
function seed(dir: string): void {
  const db = openPodDatabase(dir);
  const nodes = new SqliteNodeStateStore(db);
  nodes.changeInstallState({ mac: '52:54:00:00:0d:01', state: 'pxe', time: T - 5, detail: 'pxelinux.0' });
  nodes.changeInstallState({ mac: '52:54:00:00:0d:02', state: 'installed', time: T - 4 });
  const lease = (mac: string, address: number, ends: number) => ({ address, clientKey: mac, mac, state: 'bound' as const, starts: T - 10, ends, subnet: '10.0.0.0/24' });
  new SqliteLeaseStore(db).commit([lease('52:54:00:00:0d:01', 0x0a000064, T + 60), lease('52:54:00:00:0d:02', 0x0a000065, T - 1), lease('52:54:00:00:0d:09', 0x0a000066, T + 60)]);
  db.close();
}

describe('openPodState', () => {
  it('is undefined for a pod that has recorded nothing, and creates nothing', () => {
    const dir = podDir();
    expect(openPodState(join(dir, 'none'), { readonly: true })).toBeUndefined();
    expect(openPodState(join(dir, 'none'), { readonly: false })).toBeUndefined();
    expect(existsSync(join(dir, 'none'))).toBe(false);
    expect(podStateVersion(join(dir, 'none'))).toBeUndefined();
  });

  it('read-only: servers with their live lease, one server, its events', () => {
    const dir = podDir();
    seed(dir);
    const s = openPodState(dir, { readonly: true })!;
    try {
      expect(s.nodesWithLeases(T).map((n) => [n.mac, n.state, n.address])).toEqual([
        ['52:54:00:00:0d:01', 'pxe', 0x0a000064],
        ['52:54:00:00:0d:02', 'installed', undefined],
      ]);
      expect(s.nodes()).toHaveLength(2);
      expect(s.node('52:54:00:00:0d:02')).toMatchObject({ state: 'installed', attempt: 1 });
      expect(s.events('52:54:00:00:0d:01')).toEqual([{ time: T - 5, mac: '52:54:00:00:0d:01', kind: 'pxe', detail: 'pxelinux.0' }]);
      // Typed without reinstall; and the connection itself refuses to write.
      expect(() => (s as unknown as { reinstall: (m: string, t: number, b: string) => unknown }).reinstall('52:54:00:00:0d:02', T, 'x')).toThrow(/read-only/);
    } finally {
      s.close();
    }
  });

  it("read-write: the operator's reinstall, seen by the pod's own store", () => {
    const dir = podDir();
    seed(dir);
    const admin = openPodState(dir, { readonly: false })!;
    expect(admin.reinstall('52:54:00:00:0d:02', T, 'operator test')).toMatchObject({ state: 'discovered', attempt: 2 });
    admin.close();
    const db = openPodDatabase(dir);
    expect(new SqliteNodeStateStore(db).events('52:54:00:00:0d:02', 1)[0]).toMatchObject({ kind: 'reinstall', detail: 'by operator test; was installed; attempt 2' });
    db.close();
  });

  it('its version changes when the pod commits, not when it is read', () => {
    const dir = podDir();
    seed(dir);
    const pod = openPodDatabase(dir);
    const v1 = podStateVersion(dir);
    openPodState(dir, { readonly: true })!.close();
    const v2 = podStateVersion(dir);
    openPodState(dir, { readonly: true })!.close();
    expect(podStateVersion(dir)).toBe(v2);
    expect(v1).toBeDefined();
    new SqliteNodeStateStore(pod).changeInstallState({ mac: '52:54:00:00:0d:03', state: 'discovered', time: T });
    expect(podStateVersion(dir)).not.toBe(v2);
    pod.close();
  });

  it('read-only never migrates: an older schema is named, a newer one refused', () => {
    const dir = podDir();
    mkdirSync(dir, { recursive: true });
    const old = new Database(podDatabaseFile(dir));
    old.exec('CREATE TABLE nodes (mac TEXT)');
    old.pragma('user_version = 1');
    old.close();
    expect(() => openPodState(dir, { readonly: true })).toThrow(/schema version 1 predates this podboot/);
    const newer = new Database(podDatabaseFile(dir));
    newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    newer.close();
    expect(() => openPodState(dir, { readonly: true })).toThrow(/newer than this podboot/);
    expect(() => openPodState(dir, { readonly: false })).toThrow(/newer than this podboot/);
  });

  it('a database the pod is creating right now (schema 0) reads as nothing yet', () => {
    const dir = podDir();
    new Database(podDatabaseFile(dir)).close();
    expect(openPodState(dir, { readonly: true })).toBeUndefined();
  });
});
