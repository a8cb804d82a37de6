// The central API's parts behind the operator page: its routes (the page's
// files need no token), the files themselves as the package ships them, and
// the server listings it draws (address from the lease, the step a failed
// install broke after, counts per state).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { podNodeCounts, podNodes } from '../../../src/api/nodes.js';
import { matchRoute } from '../../../src/api/routes.js';
import { uiDir } from '../../../src/api/ui.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';

const root = mkdtempSync(join(tmpdir(), 'pbui-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('operator page routes', () => {
  it('serves the page and its files by GET, and nothing else under /ui', () => {
    expect(matchRoute('GET', '/')).toEqual({ kind: 'ui', asset: 'index.html' });
    expect(matchRoute('GET', '/ui/')).toEqual({ kind: 'ui', asset: 'index.html' });
    expect(matchRoute('HEAD', '/ui/app.js')).toEqual({ kind: 'ui', asset: 'app.js' });
    expect(matchRoute('GET', '/ui/app.css?v=2')).toEqual({ kind: 'ui', asset: 'app.css' });
    expect(matchRoute('GET', '/ui/icon.svg')).toEqual({ kind: 'ui', asset: 'icon.svg' });
    expect(matchRoute('POST', '/')).toEqual({ kind: 'method-not-allowed', allow: 'GET' });
    // Neither another file of the package nor a way out of ui/.
    expect(matchRoute('GET', '/ui/../package.json')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/ui/%2e%2e/package.json')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/ui/constructor')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/api/v1/nodes/summary')).toEqual({ kind: 'nodes-summary' });
    expect(matchRoute('POST', '/api/v1/nodes/summary')).toEqual({ kind: 'method-not-allowed', allow: 'GET' });
  });

  it('ships every file the page refers to, and the page refers to nothing it does not serve', () => {
    const html = readFileSync(join(uiDir(), 'index.html'), 'utf8');
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.sort()).toEqual(['/ui/app.css', '/ui/app.js', '/ui/icon.svg']);
    for (const ref of refs) {
      const route = matchRoute('GET', ref);
      expect(route.kind, ref).toBe('ui');
      if (route.kind === 'ui') expect(readFileSync(join(uiDir(), route.asset)).length, ref).toBeGreaterThan(0);
    }
  });
});

describe('servers as the page lists them', () => {
  const pod = 'rack-u';
  const now = Math.floor(Date.now() / 1000);
  const db = openPodDatabase(join(root, pod));
  const nodes = new SqliteNodeStateStore(db);
  const leases = new SqliteLeaseStore(db);
  const step = (mac: string, state: string, t: number, reason?: string) => nodes.changeInstallState({ mac, state, time: t, reason });
  // one in PXE with a lease, one that failed after stage2-fetched, one installed whose lease ran out
  step('52:54:00:00:00:01', 'discovered', now - 30);
  step('52:54:00:00:00:01', 'pxe', now - 29);
  for (const s of ['discovered', 'pxe', 'stage1', 'stage2-fetched']) step('52:54:00:00:00:02', s, now - 20);
  nodes.addEvent({ time: now - 19, mac: '52:54:00:00:00:02', kind: 'report-refused', detail: 'verified: not allowed' });
  step('52:54:00:00:00:02', 'failed', now - 10, 'signature');
  step('52:54:00:00:00:03', 'installed', now - 100);
  const lease = (mac: string, ip: string, ends: number) => ({ address: parseIPv4(ip)!, clientKey: mac, mac, state: 'bound' as const, starts: now - 100, ends, subnet: '10.41.0.0/16' });
  leases.commit([lease('52:54:00:00:00:01', '10.41.1.7', now + 3600), lease('52:54:00:00:00:03', '10.41.1.9', now - 1)]);
  db.close();

  it('gives each server its leased address, and a failed one the last step it reached', () => {
    const list = podNodes(root, pod);
    expect(list.map((n) => [n.mac, n.state, n.ip, n.failedAfter])).toEqual([
      ['52:54:00:00:00:01', 'pxe', '10.41.1.7', undefined],
      ['52:54:00:00:00:02', 'failed', undefined, 'stage2-fetched'],
      ['52:54:00:00:00:03', 'installed', undefined, undefined],
    ]);
    expect(list[1]!.reason).toBe('signature');
  });

  it('counts servers by install state per pod; a pod without a database has none', () => {
    expect(podNodeCounts(root, [pod, 'rack-empty'])).toEqual([
      { pod, total: 3, states: { pxe: 1, failed: 1, installed: 1 } },
      { pod: 'rack-empty', total: 0, states: {} },
    ]);
  });

  it('counts again once the pod commits a change, not before', () => {
    // The instance keeps its database open: its commits stay in the WAL.
    const live = openPodDatabase(join(root, pod));
    try {
      const store = new SqliteNodeStateStore(live);
      expect(podNodeCounts(root, [pod])[0]!.states).toEqual({ pxe: 1, failed: 1, installed: 1 });
      const first = podNodeCounts(root, [pod])[0];
      expect(podNodeCounts(root, [pod])[0]).toBe(first);
      store.changeInstallState({ mac: '52:54:00:00:00:01', state: 'stage1', time: now });
      expect(podNodeCounts(root, [pod])[0]!.states).toEqual({ stage1: 1, failed: 1, installed: 1 });
      store.changeInstallState({ mac: '52:54:00:00:00:04', state: 'discovered', time: now });
      expect(podNodeCounts(root, [pod])[0]).toEqual({ pod, total: 4, states: { stage1: 1, failed: 1, installed: 1, discovered: 1 } });
    } finally {
      live.close();
    }
  });
});
