// Management addresses from spec.managementNetwork.pool: allocated on first
// need, the same one every time after (across a restart too, for SQLite),
// never one address for two servers, fixed addresses skipped, an exhausted
// pool named. Both stores answer the same.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementPoolExhausted } from '../../../src/store/address-pool.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { MemoryManagementAddressStore } from '../../../src/store/memory-store.js';
import { SqliteManagementAddressStore } from '../../../src/store/sqlite-store.js';
import type { ManagementAddressStore } from '../../../src/store/types.js';
import { ip } from '../../helpers/pods.js';

const T = 1_700_000_000;
const POOL = { start: ip('10.30.0.100'), end: ip('10.30.0.103') };
const NONE: ReadonlySet<number> = new Set();
const mac = (n: number) => `52:54:00:00:0d:${n.toString(16).padStart(2, '0')}`;
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pb-mgmt-'));
  dirs.push(dir);
  return dir;
}

describe.each([
  ['sqlite', (): ManagementAddressStore => new SqliteManagementAddressStore(openPodDatabase(stateDir()))],
  ['memory', (): ManagementAddressStore => new MemoryManagementAddressStore()],
])('%s management address store', (_name, open) => {
  it('hands out the lowest free address once per server and the same one after', () => {
    const s = open();
    expect(s.managementAddress(mac(1), POOL, NONE, T)).toBe(ip('10.30.0.100'));
    expect(s.managementAddress(mac(2), POOL, NONE, T + 1)).toBe(ip('10.30.0.101'));
    expect(s.managementAddress(mac(1), POOL, NONE, T + 2)).toBe(ip('10.30.0.100'));
    expect(s.managementAddresses()).toEqual([
      { mac: mac(1), address: ip('10.30.0.100'), allocatedAt: T },
      { mac: mac(2), address: ip('10.30.0.101'), allocatedAt: T + 1 },
    ]);
  });

  it('skips fixed addresses, and gives up a held one that became fixed or left the pool', () => {
    const s = open();
    const fixed = new Set([ip('10.30.0.100'), ip('10.30.0.102')]);
    expect(s.managementAddress(mac(1), POOL, fixed, T)).toBe(ip('10.30.0.101'));
    expect(s.managementAddress(mac(2), POOL, fixed, T)).toBe(ip('10.30.0.103'));
    // The pod file now fixes 10.30.0.101 for another server: its holder moves to a free one.
    expect(s.managementAddress(mac(1), POOL, new Set([ip('10.30.0.101')]), T)).toBe(ip('10.30.0.100'));
    // The pool moved: a new address in the new pool.
    const moved = { start: ip('10.30.1.10'), end: ip('10.30.1.20') };
    expect(s.managementAddress(mac(2), moved, NONE, T)).toBe(ip('10.30.1.10'));
    expect(new Set(s.managementAddresses().map((a) => a.address)).size).toBe(s.managementAddresses().length);
  });

  it('never gives one address to two servers, and names the pool when it runs out', () => {
    const s = open();
    const got = [1, 2, 3, 4].map((n) => s.managementAddress(mac(n), POOL, NONE, T));
    expect(new Set(got).size).toBe(4);
    expect(() => s.managementAddress(mac(5), POOL, NONE, T)).toThrow(ManagementPoolExhausted);
    expect(() => s.managementAddress(mac(5), POOL, NONE, T)).toThrow('management pool 10.30.0.100-10.30.0.103 (spec.managementNetwork.pool) is exhausted: all 4 addresses are held or fixed');
    // The servers that have one keep it.
    expect(s.managementAddress(mac(3), POOL, NONE, T)).toBe(got[2]);
  });
});

describe('SQLite management addresses', () => {
  it('survive a restart of the pod (a new connection to the same database)', () => {
    const dir = stateDir();
    const db = openPodDatabase(dir);
    const first = new SqliteManagementAddressStore(db);
    const a = first.managementAddress(mac(1), POOL, NONE, T);
    const b = first.managementAddress(mac(2), POOL, NONE, T);
    db.close();
    const again = new SqliteManagementAddressStore(openPodDatabase(dir));
    expect(again.managementAddress(mac(2), POOL, NONE, T + 60)).toBe(b);
    expect(again.managementAddress(mac(1), POOL, NONE, T + 60)).toBe(a);
    expect(again.managementAddress(mac(3), POOL, NONE, T + 60)).toBe(ip('10.30.0.102'));
  });

  it('the database refuses a second server on an address even past the store', () => {
    const db = openPodDatabase(stateDir());
    new SqliteManagementAddressStore(db).managementAddress(mac(1), POOL, NONE, T);
    expect(() => db.prepare('INSERT INTO management_addresses (mac, address, allocated_at) VALUES (?, ?, ?)').run(mac(2), ip('10.30.0.100'), T)).toThrow(/UNIQUE/);
  });
});
