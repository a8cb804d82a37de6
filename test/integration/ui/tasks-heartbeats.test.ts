import { appendFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Lab, requireBuild } from '../../helpers/netns.js';
import { openOperatorPage, startBrowserCentral } from '../../helpers/browser-central.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { HeartbeatSummary } from '../../../src/metrics/fleet-metrics.js';
import type { NodeMetrics } from '../../../src/store/types.js';
import { SqliteTaskStore, taskOutputFile } from '../../../src/tasks/store.js';
import type { Stream } from '../../../src/tasks/rules.js';

const PODS = ['site-a', 'site-b'];

const mac = (k: number) => `52:54:00:2d:00:${k.toString(16).padStart(2, '0')}`;
/**
 * site-a's installed servers and their last heartbeats: a01-a03 report, a04
 * went silent a day ago (its last heartbeat still counts in the figures).
 * Load 0.5/1/1.5/2, memory used 20/40/60/80 %, disk used 30/45/50/75 %.
 */
const SERVERS = [
  { mac: mac(1), hostname: 'a01', liveness: 'active', metrics: { uptime: 3600, load1: 0.5, memTotal: 1000, memAvailable: 800, diskSize: 100, diskUsed: 30 } },
  { mac: mac(2), hostname: 'a02', liveness: 'active', metrics: { uptime: 7200, load1: 1, memTotal: 1000, memAvailable: 600, diskSize: 100, diskUsed: 45 } },
  { mac: mac(3), hostname: 'a03', liveness: 'active', metrics: { uptime: 60, load1: 1.5, memTotal: 1000, memAvailable: 400, diskSize: 100, diskUsed: 50 } },
  { mac: mac(4), hostname: 'a04', liveness: 'silent', metrics: { uptime: 99, load1: 2, memTotal: 1000, memAvailable: 200, diskSize: 100, diskUsed: 75 } },
] as const;
/** still installing: not watched, no heartbeat; named in no pod file */
const INSTALLING = mac(5);

const T_QUEUED = 'a000000000000001';
const T_RUNNING = 'a000000000000002';
const T_DONE = 'a000000000000003';
const T_FAILED = 'a000000000000004';
const HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">';

/** Both pods wait an hour between heartbeats: the seeded active servers stay active however slow the run. */
function podYaml(name: string, i: number): string {
  const rack = `10.${51 + i}`;
  const spec: Record<string, unknown> = {
    listen: { address: `10.98.0.${i + 1}` },
    relays: [`${rack}.0.1`],
    subnets: [{ cidr: `${rack}.0.0/16`, gateway: `${rack}.0.1`, pool: `${rack}.1.0-${rack}.1.250` }],
    heartbeat: { interval: '1h' },
  };
  if (i === 0) spec.nodes = SERVERS.map((s) => ({ mac: s.mac, hostname: s.hostname }));
  return stringify({ apiVersion: 'podboot/v1', kind: 'Pod', metadata: { name }, spec });
}

/** what the in-page callbacks touch of an element (the test is compiled without the DOM library) */
interface El {
  dataset: Record<string, string | undefined>;
  className: string;
  textContent: string | null;
  querySelector(selector: string): El | null;
}

describe('tasks and heartbeats on the operator page, in Chromium', () => {
  const lab = new Lab('pbui2');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  const siteA = join(stateDir, 'site-a');
  let api: { url: string; ca: string; tokenFile: string };
  let relay: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const now = Math.floor(Date.now() / 1000);

  const token = () => readFileSync(api.tokenFile, 'utf8').trim();
  const fetchJson = (path: string, method = 'GET') =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const u = new URL(path, base);
      const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca: readFileSync(api.ca), headers: { authorization: `Bearer ${token()}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
      });
      req.on('error', reject);
      req.end();
    });
  const nextRefresh = async () => {
    const before = await page.getAttribute('#updated', 'data-refreshed');
    await expect.poll(() => page.getAttribute('#updated', 'data-refreshed'), { timeout: 15_000, interval: 250 }).not.toBe(before);
  };

  /** a task's output as the pod writes it: bytes appended to its file, the chunk indexed in the database */
  const writeOutput = (store: SqliteTaskStore, id: string, stream: Stream, text: string, time: number) => {
    const file = taskOutputFile(siteA, id, stream);
    mkdirSync(join(siteA, 'tasks'), { recursive: true });
    const offset = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    appendFileSync(file, text);
    store.addOutput(id, stream, offset, Buffer.byteLength(text), time);
  };
  const withTasks = <T>(fn: (store: SqliteTaskStore) => T): T => {
    const db = openPodDatabase(siteA);
    try {
      return fn(new SqliteTaskStore(db));
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    requireBuild();
    ({ api, relay, base } = await startBrowserCentral(lab, { podsDir, stateDir, pods: PODS, podYaml, addresses: (i) => [`10.98.0.${i + 1}`, `10.${51 + i}.0.1`] }));

    // Servers, heartbeats and liveness, written as the running pod writes them.
    const db = openPodDatabase(siteA);
    try {
      const leases = new SqliteLeaseStore(db);
      const nodes = new SqliteNodeStateStore(db);
      db.transaction(() => {
        const all = [...SERVERS.map((s) => s.mac), INSTALLING];
        const records = all.map((m, k) => ({ address: parseIPv4(`10.51.16.${k + 1}`)!, clientKey: m, mac: m, state: 'bound' as const, starts: now - 600, ends: now + 86400, subnet: '10.51.0.0/16' }));
        const changes = all.map((m) => ({ mac: m, state: m === INSTALLING ? 'installing' : 'booted-from-disk', time: now - 600 }));
        leases.commit(records, { changes, events: [] });
        for (const s of SERVERS) {
          nodes.setLiveness(s.mac, s.liveness);
          nodes.recordHeartbeat(s.mac, { time: s.liveness === 'silent' ? now - 86400 : now, metrics: s.metrics as NodeMetrics });
        }
      })();
    } finally {
      db.close();
    }

    // Tasks in each state the page draws apart, newest first: queued, running, succeeded, failed.
    withTasks((store) => {
      const task = (id: string, k: number, at: number, template: string, hostname?: string) => ({
        id,
        mac: mac(k),
        ...(hostname ? { hostname } : {}),
        template,
        params: {},
        rules: [],
        script: '#!/bin/sh\n',
        sha256: '0'.repeat(64),
        createdAt: at,
        deadline: now + 3600,
        submittedBy: 'operator via the central API',
      });
      store.insert([
        task(T_FAILED, 5, now - 400, 'disk-usage'),
        task(T_DONE, 2, now - 300, 'hello', 'a02'),
        task(T_RUNNING, 1, now - 200, 'service-status', 'a01'),
        task(T_QUEUED, 3, now - 100, 'hello', 'a03'),
      ]);
      for (const id of [T_FAILED, T_DONE, T_RUNNING]) {
        expect(store.transition(id, 'queued', 'delivered', now - 90)).toBe(true);
        expect(store.transition(id, 'delivered', 'running', now - 80, { startedAt: now - 80 })).toBe(true);
      }
      // Three hundred lines: more than the log box shows at once, so it scrolls.
      const many = Array.from({ length: 300 }, (_, k) => `line ${k + 1}\n`).join('');
      writeOutput(store, T_DONE, 'stdout', `hello from a02\n${HOSTILE}\n`, now - 79);
      writeOutput(store, T_DONE, 'stderr', 'warning: disk almost full\n', now - 78);
      writeOutput(store, T_DONE, 'stdout', many, now - 77);
      expect(store.transition(T_DONE, 'running', 'succeeded', now - 70, { finishedAt: now - 70, exitCode: 0 })).toBe(true);
      writeOutput(store, T_FAILED, 'stdout', 'ERROR: /var is 97% full\n', now - 79);
      store.markRuleFailed(T_FAILED, 'rule: stdout /ERROR/ matched');
      expect(store.transition(T_FAILED, 'running', 'failed', now - 75, { finishedAt: now - 75, exitCode: 1 })).toBe(true);
      writeOutput(store, T_RUNNING, 'stdout', 'checking sshd\n', now - 79);
    });

    ({ context, page } = await openOperatorPage(lab.dir, api.ca, base, token(), problems));
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await new Promise((r) => (relay ? relay.close(r) : r(undefined)));
    await lab.cleanup();
  });

  it('sums up each site’s heartbeats on the server side, and the page shows the same numbers', async () => {
    const summary = (await fetchJson('/api/v1/nodes/summary')).body as unknown as { pods: { pod: string; total: number; heartbeats?: HeartbeatSummary }[] };
    const a = summary.pods.find((p) => p.pod === 'site-a')!;
    expect(a.total).toBe(5);
    expect(a.heartbeats).toMatchObject({ active: 3, silent: 1, reporting: 4, time: { min: now - 86400, max: now } });
    expect(a.heartbeats!.load1).toEqual({ min: 0.5, avg: 1.25, max: 2 });
    expect(a.heartbeats!.diskUsedRatio).toEqual({ min: 0.3, avg: 0.5, max: 0.75 });
    expect(a.heartbeats!.memoryUsedRatio!.max).toBeCloseTo(0.8, 10);
    expect(a.heartbeats!.memoryUsedRatio!.avg).toBeCloseTo(0.5, 10);
    // A site that watches no installed server has no summary at all.
    expect(summary.pods.find((p) => p.pod === 'site-b')).toEqual({ pod: 'site-b', total: 0, states: {} });

    await expect.poll(() => page.textContent('tr[data-pod="site-a"] [data-col="heartbeats"]'), { timeout: 15_000, interval: 250 }).toBe('3 active 1 silent');
    expect(await page.getAttribute('tr[data-pod="site-a"] [data-col="heartbeats"] .heartbeat-counts', 'title')).toBe('load avg 1.25, max 2.00 · memory avg 50%, max 80% · disk avg 50%, max 75%');
    expect(await page.textContent('tr[data-pod="site-b"] [data-col="heartbeats"]')).toBe('');

    await page.click('tr[data-pod="site-a"] button.expand');
    const line = 'tr[data-detail="site-a"] p.heartbeats';
    await page.waitForSelector(line);
    expect(await page.textContent(line)).toMatch(/^Heartbeats: 3 active, 1 silent · load avg 1\.25, max 2\.00 · memory avg 50%, max 80% · disk avg 50%, max 75% · newest .+ ago$/);
    expect(await page.getAttribute(`${line} [data-hb="diskUsedRatio"]`, 'data-max')).toBe('0.75');
    expect(await page.getAttribute(line, 'data-active')).toBe('3');
    expect(await page.getAttribute(line, 'data-silent')).toBe('1');
    // The servers' own rows agree: three active, one silent.
    await page.waitForSelector(`tr[data-detail="site-a"] tr[data-mac="${mac(4)}"]`);
    const liveness = await page.$$eval('tr[data-detail="site-a"] tr[data-mac] [data-col="liveness"]', (tds) => tds.map((td) => (td as unknown as El).textContent));
    expect(liveness.sort()).toEqual(['', 'active', 'active', 'active', 'silent']);
  });

  it("lists a pod's tasks newest first with their states, exit codes and reasons", async () => {
    const tasks = 'tr[data-detail="site-a"] section.tasks';
    await page.waitForSelector(`${tasks} tr[data-task]`, { timeout: 15_000 });
    const shown = await page.$$eval(`${tasks} tr[data-task]`, (trs) =>
      trs.map((tr) => {
        const t = tr as unknown as El;
        const col = (c: string) => t.querySelector(`[data-col="${c}"]`)?.textContent ?? '';
        return [t.dataset.task, col('template'), col('server'), col('state'), col('exit'), col('reason'), t.querySelector('button[data-action="cancel-task"]') !== null];
      }),
    );
    expect(shown).toEqual([
      [T_QUEUED, 'hello', 'a03', 'queued', '', '', true],
      [T_RUNNING, 'service-status', 'a01', 'running', '', '', true],
      [T_DONE, 'hello', 'a02', 'succeeded', '0', '', false],
      [T_FAILED, 'disk-usage', mac(5), 'failed', '1', 'rule: stdout /ERROR/ matched', false],
    ]);
    // The API lists the same, in the same order.
    const listed = (await fetchJson('/api/v1/pods/site-a/tasks')).body.tasks as { id: string; state: string }[];
    expect(listed.map((t) => `${t.id} ${t.state}`)).toEqual(shown.map((r) => `${r[0]} ${r[3]}`));
    expect(await page.textContent(`${tasks} .task-counts`)).toBe('4 tasks: 1 queued, 1 running, 1 succeeded, 1 failed');
    expect(await page.getAttribute(`${tasks} tr[data-task="${T_DONE}"] [data-col="created"]`, 'title')).toBe(new Date((now - 300) * 1000).toISOString());
    expect(await page.getAttribute(`${tasks} tr[data-task="${T_DONE}"] [data-col="finished"]`, 'title')).toBe(new Date((now - 70) * 1000).toISOString());
    expect(await page.textContent(`${tasks} tr[data-task="${T_QUEUED}"] [data-col="finished"]`)).toBe('');
    // A pod without tasks says so.
    await page.click('tr[data-pod="site-b"] button.expand');
    await expect.poll(() => page.textContent('tr[data-detail="site-b"] section.tasks'), { timeout: 15_000, interval: 250 }).toBe('Tasks: none yet (podboot tasks run … --pod site-b).');
  });

  it("shows a task's log when clicked, stdout and stderr apart, output as text (never markup); it stays in place across refreshes", async () => {
    const log = `section.tasks [data-task-log="${T_DONE}"]`;
    await page.click(`section.tasks tr[data-task="${T_DONE}"] button.task-open`);
    await page.waitForSelector(`${log} pre.log`, { timeout: 10_000 });
    expect(await page.getAttribute(`section.tasks tr[data-task="${T_DONE}"] button.task-open`, 'aria-expanded')).toBe('true');
    const lines = await page.$$eval(`${log} pre.log .line`, (spans) => spans.map((s) => `${(s as unknown as El).dataset.stream}: ${(s as unknown as El).textContent}`));
    expect(lines.slice(0, 4)).toEqual(['stdout: hello from a02', `stdout: ${HOSTILE}`, 'stderr: warning: disk almost full', 'stdout: line 1']);
    expect(lines).toHaveLength(303);
    expect(lines.at(-1)).toBe('stdout: line 300');
    // The script's markup is text: no element came of it and nothing ran.
    expect(await page.$$(`${log} pre.log script, ${log} pre.log img`)).toHaveLength(0);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    expect(await page.textContent(`${log} pre.log`)).toContain(HOSTILE);
    // stderr is told apart by colour and by its mark, not by colour alone.
    const look = (stream: string) =>
      page.$eval(`${log} pre.log .line[data-stream="${stream}"]`, (s) => {
        const g = globalThis as unknown as { getComputedStyle(e: unknown, pseudo?: string): { color: string; content: string } };
        return [g.getComputedStyle(s).color, g.getComputedStyle(s, '::before').content];
      });
    expect(await look('stderr')).toEqual(['rgb(207, 34, 46)', '"err "']);
    expect((await look('stdout'))[1]).toBe('"out "');
    expect(await page.textContent(`${log} .log-legend`)).toContain('stdout 2,679 bytes, stderr 26 bytes');

    // Scrolled into the middle by the operator, with the keyboard on the task: a refresh keeps both.
    await page.$eval(`${log} pre.log`, (pre) => {
      (pre as unknown as { scrollTop: number }).scrollTop = 400;
    });
    await page.focus(`section.tasks tr[data-task="${T_DONE}"] button.task-open`);
    await nextRefresh();
    expect(await page.$eval(`${log} pre.log`, (pre) => (pre as unknown as { scrollTop: number }).scrollTop)).toBe(400);
    expect(await page.evaluate('document.activeElement?.dataset.focus')).toBe(`task:site-a:${T_DONE}`);

    // Clicked again, the log goes.
    await page.click(`section.tasks tr[data-task="${T_DONE}"] button.task-open`);
    expect(await page.$(log)).toBeNull();
  });

  it("a running task's log grows at the page's refresh; its cancel button cancels it", async () => {
    const row = `section.tasks tr[data-task="${T_RUNNING}"]`;
    const log = `section.tasks [data-task-log="${T_RUNNING}"]`;
    await page.click(`${row} button.task-open`);
    await page.waitForSelector(`${log} pre.log`, { timeout: 10_000 });
    expect(await page.$$eval(`${log} pre.log .line`, (s) => s.map((x) => (x as unknown as El).textContent))).toEqual(['checking sshd']);
    withTasks((store) => {
      writeOutput(store, T_RUNNING, 'stdout', 'sshd is ', now - 60);
      writeOutput(store, T_RUNNING, 'stderr', 'systemctl: 1 unit degraded\n', now - 59);
      writeOutput(store, T_RUNNING, 'stdout', 'active\n', now - 58);
    });
    await expect
      .poll(() => page.$$eval(`${log} pre.log .line`, (s) => s.map((x) => `${(x as unknown as El).dataset.stream}: ${(x as unknown as El).textContent}`)), { timeout: 15_000, interval: 250 })
      .toEqual(['stdout: checking sshd', 'stdout: sshd is active', 'stderr: systemctl: 1 unit degraded']);

    await page.click(`${row} button[data-action="cancel-task"]`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-title')).toBe(`Cancel task ${T_RUNNING}?`);
    expect(await page.textContent('#confirm-text')).toBe(
      `Task ${T_RUNNING}, service-status on a01 (52:54:00:2d:00:01), is running: its agent stops the script (SIGTERM, SIGKILL 5 s later) at its next report; what it did so far stays done.`,
    );
    await page.fill('#confirm-reason', 'wrong server');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent(`${row} [data-col="state"]`), { timeout: 10_000, interval: 250 }).toBe('cancelled');
    const t = (await fetchJson(`/api/v1/pods/site-a/tasks/${T_RUNNING}`)).body as unknown as { state: string; reason: string; finishedAt: number };
    expect(t.state).toBe('cancelled');
    expect(t.reason).toBe('cancelled by operator via the central API (wrong server)');
    expect(await page.textContent(`${row} [data-col="reason"]`)).toBe(t.reason);
    expect(await page.$(`${row} button[data-action="cancel-task"]`)).toBeNull();
    expect(await page.isHidden('#error')).toBe(true);
    // The others are as they were.
    const states = ((await fetchJson('/api/v1/pods/site-a/tasks')).body.tasks as { id: string; state: string }[]).map((x) => `${x.id} ${x.state}`);
    expect(states).toEqual([`${T_QUEUED} queued`, `${T_RUNNING} cancelled`, `${T_DONE} succeeded`, `${T_FAILED} failed`]);
    // An ended task can no longer be cancelled: the API says why.
    expect(await fetchJson(`/api/v1/pods/site-a/tasks/${T_RUNNING}/cancel`, 'POST')).toEqual({ status: 409, body: { error: `task ${T_RUNNING} is already cancelled` } });
  });

  it('no console errors and no CSP violations', () => {
    expect(problems).toEqual([]);
  });
});
