import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import type { InstanceStatus } from '../../../src/pod-vm/instance.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumTrusting, startBrowserCentral } from '../../helpers/browser-central.js';
import { formatIPv4, parseIPv4 } from '../../../src/net/ipv4.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { InstallStateChange, LeaseRecord } from '../../../src/store/types.js';

const PODS = ['rack-a', 'rack-b', 'rack-c'];
/** the server that really talks DHCP to rack-a, through rack-a's relay address */
const MAC = '52:54:00:0b:00:01';
/** a second one that reports a failed install over the pod's HTTPS API */
const MAC_FAILED = '52:54:00:0b:00:02';

/** the hostnames and management address rack-a's pod file gives its two servers */
const KNOWN = { [MAC]: { hostname: 'a01', management: '10.141.0.11' }, [MAC_FAILED]: { hostname: 'a02' } };

/**
 * pod i: listens on 10.99.0.(i+1), its rack behind the relay 10.(41+i).0.1;
 * rack-a knows its two servers by name; rack-c (the large pod) waits an hour
 * between heartbeats, so its seeded servers stay active however slow the run.
 */
function podYaml(name: string, i: number): string {
  const rack = `10.${41 + i}`;
  const spec: Record<string, unknown> = {
    listen: { address: `10.99.0.${i + 1}` },
    relays: [`${rack}.0.1`],
    subnets: [{ cidr: `${rack}.0.0/16`, gateway: `${rack}.0.1`, pool: `${rack}.1.0-${rack}.1.250` }],
  };
  if (i === 0) {
    spec.managementNetwork = { cidr: '10.141.0.0/24' };
    spec.nodes = Object.entries(KNOWN).map(([mac, k]) => ({ mac, hostname: k.hostname, ...('management' in k ? { management: { address: k.management } } : {}) }));
  }
  if (i === 2) spec.heartbeat = { interval: '1h' };
  return stringify({ apiVersion: 'podboot/v1', kind: 'Pod', metadata: { name }, spec });
}

/** rack-c's large pod: BIG servers, the k-th with this MAC and (leased) address */
const BIG = 5000;
const NUMBER = new Intl.NumberFormat('en-US');
const bigMac = (k: number) => `52:54:01:00:${((k >> 8) & 0xff).toString(16).padStart(2, '0')}:${(k & 0xff).toString(16).padStart(2, '0')}`;
const bigIp = (k: number) => formatIPv4(parseIPv4('10.43.16.0')! + k);
/** one server in ten in each of these states, by k % 10 */
const BIG_STATES = ['booted-from-disk', 'booted-from-disk', 'booted-from-disk', 'booted-from-disk', 'booted-from-disk', 'booted-from-disk', 'installed', 'installing', 'pxe', 'failed'];
/** of the booted-from-disk ones, those with k % 100 === 0 went silent; the others report */
const bigLiveness = (k: number) => (BIG_STATES[k % 10] !== 'booted-from-disk' ? undefined : k % 100 === 0 ? 'silent' : 'active');

/**
 * Writes servers into a running pod's database the way its instance does:
 * leases and install-state changes (with their events) in one commit, then
 * heartbeats and liveness, through the store's own API.
 */
function seedServers(stateDir: string, subnet: string, servers: { mac: string; ip: string; states: string[]; reason?: string; image?: string; liveness?: 'active' | 'silent'; seen: number }[]): void {
  const db = openPodDatabase(stateDir);
  try {
    const leases = new SqliteLeaseStore(db);
    const nodes = new SqliteNodeStateStore(db);
    const now = Math.floor(Date.now() / 1000);
    db.transaction(() => {
      const records: LeaseRecord[] = servers.map((s) => ({ address: parseIPv4(s.ip)!, clientKey: s.mac, mac: s.mac, state: 'bound', starts: now - 600, ends: now + 86400, subnet }));
      const changes: InstallStateChange[] = servers.flatMap((s) =>
        s.states.map((state, n) => ({
          mac: s.mac,
          state,
          time: now - 600 + n,
          ...(state === 'failed' ? { reason: s.reason, detail: `failed(${s.reason})` } : {}),
          ...(s.image && (state === 'installed' || state === 'booted-from-disk') ? { image: s.image } : {}),
        })),
      );
      leases.commit(records, { changes, events: [] });
      for (const s of servers) {
        if (s.liveness) nodes.setLiveness(s.mac, s.liveness);
        if (s.liveness === 'active') nodes.recordHeartbeat(s.mac, { time: s.seen, metrics: { uptime: 3600 } });
        else nodes.touch(s.mac, s.seen);
      }
    })();
  } finally {
    db.close();
  }
}

/** what the in-page callbacks touch of an element (the test is compiled without the DOM library) */
interface El {
  dataset: Record<string, string | undefined>;
  className: string;
  textContent: string | null;
  querySelector(selector: string): El | null;
}

describe('the operator page in Chromium', () => {
  const lab = new Lab('pbui');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;
  let api: { url: string; ca: string; tokenFile: string };
  let relay: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  /** console errors and CSP violations, by the phase they happened in */
  const problems: { phase: string; text: string }[] = [];
  let phase = 'load';

  const token = () => readFileSync(api.tokenFile, 'utf8').trim();

  /** a request to the node as a non-browser client, trusting the same CA */
  const fetchNode = (path: string, opts: { token?: string; method?: string } = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const u = new URL(path, base);
      const req = request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', ca: readFileSync(api.ca), headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const instances = async (): Promise<InstanceStatus[]> => JSON.parse((await fetchNode('/api/v1/instances', { token: token() })).body).instances;
  const apiPid = async (pod: string) => (await instances()).find((i) => i.pod === pod)?.pid;

  /** the pod rows as the page shows them, top to bottom */
  const rows = (col: string) =>
    page.$$eval(
      'table#pods > tbody > tr.pod',
      (trs, c) =>
        trs.map((tr) => {
          const cell = (tr as unknown as El).querySelector(`[data-col="${c}"]`);
          return { pod: (tr as unknown as El).dataset.pod!, value: cell?.dataset.value === undefined ? undefined : Number(cell.dataset.value), text: cell?.textContent ?? '' };
        }),
      col,
    );
  const ariaSort = (key: string) => page.getAttribute(`#pods thead th[data-key="${key}"]`, 'aria-sort');
  const clickSort = (key: string) => page.click(`#pods thead th[data-key="${key}"] button`);
  /** resolves after the page's next completed refresh */
  const nextRefresh = async () => {
    const before = await page.getAttribute('#updated', 'data-refreshed');
    // Polled from here: the page's CSP forbids the eval behind a string waitForFunction.
    await expect.poll(() => page.getAttribute('#updated', 'data-refreshed'), { timeout: 15_000, interval: 250 }).not.toBe(before);
  };

  beforeAll(async () => {
    requireBuild();
    ({ central, api, relay, base } = await startBrowserCentral(lab, { podsDir, stateDir, pods: PODS, podYaml, addresses: (i) => [`10.99.0.${i + 1}`, `10.${41 + i}.0.1`] }));
    // CPU % needs two /proc samples (5 s apart): until then the page has nothing to sort by.
    await vi.waitFor(async () => expect((await instances()).filter((i) => i.cpuPercent !== undefined && i.rssBytes !== undefined).map((i) => i.pod)).toEqual(PODS), { timeout: 30_000, interval: 500 });

    context = await chromiumTrusting(lab.dir, api.ca);
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push({ phase, text: `console ${m.type()}: ${m.text()}` });
    });
    page.on('pageerror', (e) => problems.push({ phase, text: `page error: ${e.message}` }));
    // Runs in the page before its own script (injected by the browser, so the page's CSP does not apply to it).
    await page.addInitScript("document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))");
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await new Promise((r) => (relay ? relay.close(r) : r(undefined)));
    await lab.cleanup();
  });

  it('serves the page without a token, with strict headers; the data only with the token', async () => {
    const html = await fetchNode('/');
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.headers['content-security-policy']).toMatch(/^default-src 'self'(;|$)/);
    expect(html.headers['x-content-type-options']).toBe('nosniff');
    expect(html.body).toMatch(/<script type="module" src="\/ui\/app.js"><\/script>/);
    // The token prompt names the file this node reads the token from, not a generic STATE/… path.
    expect(html.body).toContain(`<code id="token-file">${api.tokenFile}</code>`);
    expect(html.body).not.toContain('STATE/central/operator.token');
    // No inline script or style anywhere: the CSP would block it.
    expect(html.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    for (const [path, type] of [
      ['/ui/app.js', 'text/javascript; charset=utf-8'],
      ['/ui/app.css', 'text/css; charset=utf-8'],
      ['/ui/icon.svg', 'image/svg+xml'],
    ]) {
      const r = await fetchNode(path!);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type']).toBe(type);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await fetchNode('/api/v1/instances')).status).toBe(401);
    const data = await fetchNode('/api/v1/instances', { token: token() });
    expect(data.status).toBe(200);
    expect(data.headers['cache-control']).toBe('no-store');
    expect((await fetchNode('/ui/other.js')).status).toBe(401);
    // The node says where the page is, and where its CA and token are, not the token itself.
    const line = central
      .log()
      .split('\n')
      .find((l) => l.includes('"msg":"operator page"'));
    expect(JSON.parse(line!)).toMatchObject({ node: 'central', url: `${api.url}/`, ca: api.ca, tokenFile: api.tokenFile });
  });

  it("is refused by a browser that does not trust the node's CA", async () => {
    const bare = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, env: { ...process.env, HOME: join(lab.dir, 'empty-home') } });
    try {
      const p = await bare.newPage();
      await expect(p.goto(`${base}/`)).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await bare.close();
    }
  });

  it('a wrong token shows a clear error and no data', async () => {
    phase = 'wrong-token';
    const res = await page.goto(`${base}/`);
    // Loaded over HTTPS from the node's own certificate, trusted through its CA.
    const tls = await res!.securityDetails();
    expect(tls?.protocol).toMatch(/^TLS 1\.[23]$/);
    expect(tls?.issuer).toMatch(/podboot/i);
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.isHidden('#board')).toBe(true);
    // The prompt says where this node's token is: the file serve wrote (api.json's tokenFile, STATE/central/operator.token here).
    expect(api.tokenFile).toBe(join(stateDir, 'central', 'operator.token'));
    expect(await page.textContent('#token-file')).toBe(api.tokenFile);
    expect(await page.textContent('#token-help')).toContain(api.tokenFile);
    await page.fill('#token', 'this-is-not-the-operator-token');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toMatch(/did not accept this token \(HTTP 403\)/);
    expect(await page.textContent('#error')).toContain(`Use the operator token from ${api.tokenFile}.`);
    expect(await page.isHidden('#board')).toBe(true);
    expect(await page.$$('table#pods > tbody > tr')).toHaveLength(0);
    expect(await page.evaluate("sessionStorage.getItem('podboot.token')")).toBeNull();
    expect(page.url()).toBe(`${base}/`);
    phase = 'page';
  });

  it('with the operator token, a row per pod with its real PID, CPU and memory; the token stays out of the URL', async () => {
    await page.fill('#token', token());
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#board:not([hidden])');
    await expect.poll(async () => (await rows('pid')).length, { timeout: 10_000 }).toBe(PODS.length);
    expect(await page.isHidden('#error')).toBe(true);
    expect(page.url()).toBe(`${base}/`);
    expect(page.url()).not.toContain(token());
    expect(await page.evaluate("sessionStorage.getItem('podboot.token')")).toBe(token());
    expect(await page.textContent('#summary')).toMatch(/^3 pods: 3 running, 0 degraded, 0 crashed · 0 servers: 0 installing, 0 installed, 0 failed$/);

    const shown = await rows('pid');
    const fromApi = await instances();
    expect(shown.map((r) => r.pod)).toEqual(PODS);
    for (const r of shown) {
      const pid = fromApi.find((i) => i.pod === r.pod)!.pid!;
      expect(r.value, r.pod).toBe(pid);
      expect(r.text).toBe(String(pid));
      // The process behind it is that pod's instance.
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['pod', 'run', join(stateDir, r.pod, 'pod.yaml')]));
    }
    // Memory as the kernel counts it for that process (sampled every 5 s, so within a margin).
    for (const r of await rows('rss')) {
      const pid = fromApi.find((i) => i.pod === r.pod)!.pid!;
      const vmRss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
      expect(r.value! / vmRss, r.pod).toBeGreaterThan(0.7);
      expect(r.value! / vmRss, r.pod).toBeLessThan(1.3);
      expect(r.text).toBe(`${(r.value! / 1048576).toFixed(1)} MiB`);
    }
    for (const r of await rows('cpu')) expect(r.value, r.pod).toBeGreaterThanOrEqual(0);
    for (const r of await rows('state')) expect(r.text).toBe('running');
  });

  it('sorts by PID, CPU and memory in the order the figures imply; a second click reverses; a refresh keeps the order', async () => {
    const byValue = (list: { pod: string; value?: number }[], dir: 1 | -1) => [...list].sort((a, b) => (a.value! - b.value!) * dir || a.pod.localeCompare(b.pod)).map((r) => r.pod);
    for (const key of ['pid', 'cpu', 'rss']) {
      await clickSort(key);
      expect(await ariaSort(key), key).toBe('ascending');
      expect(await ariaSort('name')).toBe('none');
      let shown = await rows(key);
      expect(
        shown.every((r) => typeof r.value === 'number'),
        key,
      ).toBe(true);
      expect(
        shown.map((r) => r.pod),
        key,
      ).toEqual(byValue(shown, 1));
      await clickSort(key);
      expect(await ariaSort(key), key).toBe('descending');
      shown = await rows(key);
      expect(
        shown.map((r) => r.pod),
        key,
      ).toEqual(byValue(shown, -1));
    }
    // PIDs do not move between samples: the order is the API's.
    await clickSort('pid');
    await clickSort('pid');
    expect(await ariaSort('pid')).toBe('descending');
    const pidOrder = (await instances()).sort((a, b) => b.pid! - a.pid!).map((i) => i.pod);
    expect((await rows('pid')).map((r) => r.pod)).toEqual(pidOrder);
    await nextRefresh();
    expect(await ariaSort('pid')).toBe('descending');
    expect((await rows('pid')).map((r) => r.pod)).toEqual(pidOrder);

    await clickSort('name');
    expect((await rows('pid')).map((r) => r.pod)).toEqual(PODS);
    await clickSort('name');
    expect(await ariaSort('name')).toBe('descending');
    expect((await rows('pid')).map((r) => r.pod)).toEqual([...PODS].reverse());
    await clickSort('name');
  });

  it('the filter box narrows the table', async () => {
    const all = (await rows('pid')).map((r) => r.pod);
    await page.fill('#filter', 'rack-b');
    expect((await rows('pid')).map((r) => r.pod)).toEqual(['rack-b']);
    expect(await page.textContent('#shown')).toBe('1 of 3 pods');
    await page.fill('#filter', '');
    expect((await rows('pid')).map((r) => r.pod)).toEqual(all);
  });

  it("shows a server's install progress after a real DHCP exchange, and a failed install in red with its reason", async () => {
    // A PXE client behind rack-a's relay: DISCOVER, OFFER, REQUEST, ACK with a boot file.
    const out = lab.exec('c', process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', '10.99.0.1:67', '--relay', '10.41.0.1:67', '--mac', MAC, '--arch', '0', '--timeout', '5000']);
    const ack = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; yiaddr: string })
      .find((p) => p.type === 'ACK');
    expect(ack?.yiaddr).toMatch(/^10\.41\.1\.\d+$/);

    // A second server gets as far as stage1, then reports a bad signature over the pod's HTTPS API with its own token.
    const leased = lab
      .exec('c', process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', '10.99.0.1:67', '--relay', '10.41.0.1:67', '--mac', MAC_FAILED, '--arch', '0', '--timeout', '5000'])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; yiaddr: string })
      .find((p) => p.type === 'ACK')!.yiaddr;
    // Its boot config (with the install token) goes only to the address the pod leased it; so does the exchange.
    lab.ip('c', 'addr', 'add', `${leased}/32`, 'dev', 'lo');
    const script = lab.exec('c', 'curl', ['-sf', '--max-time', '10', '--interface', leased, `http://10.99.0.1/ipxe/${MAC_FAILED.replace(/:/g, '-')}.ipxe`]);
    const installToken = /podboot\.token=(\S+)/.exec(script)?.[1];
    expect(installToken, script).toBeTruthy();
    const session = lab
      .exec('c', 'curl', ['-sf', '--max-time', '10', '--interface', leased, '--cacert', api.ca, '-X', 'POST', '-H', `Authorization: Bearer ${installToken}`, 'https://10.99.0.1/v1/session'])
      .trim();
    const report = (body: string) =>
      lab.exec('c', 'curl', [
        '-sf',
        '--max-time',
        '10',
        '--cacert',
        api.ca,
        '-H',
        `Authorization: Bearer ${session}`,
        '-H',
        'content-type: application/json',
        '-d',
        body,
        'https://10.99.0.1/v1/events',
      ]);
    expect(JSON.parse(report('{"state":"stage1"}')).state).toBe('stage1');
    expect(JSON.parse(report('{"state":"failed","reason":"signature","detail":"stage2 signature does not verify"}')).state).toBe('failed');

    await expect.poll(() => page.textContent('#summary'), { timeout: 15_000, interval: 250 }).toMatch(/2 servers: 1 installing, 0 installed, 1 failed$/);
    expect(await page.textContent('tr[data-pod="rack-a"] [data-col="servers"]')).toBe('1 installing1 failed');

    await page.click('tr[data-pod="rack-a"] button.expand');
    expect(await page.getAttribute('tr[data-pod="rack-a"] button.expand', 'aria-expanded')).toBe('true');
    const server = `tr[data-detail="rack-a"] tr[data-mac="${MAC}"]`;
    await page.waitForSelector(server);
    const nodes = JSON.parse((await fetchNode('/api/v1/pods/rack-a/nodes', { token: token() })).body).nodes as { mac: string; state: string; ip?: string; attempt: number }[];
    const node = nodes.find((n) => n.mac === MAC)!;
    expect(node).toMatchObject({ state: 'pxe', ip: ack!.yiaddr, attempt: 1 });
    expect(await page.textContent(`${server} [data-col="ip"]`)).toBe(ack!.yiaddr);
    // Its name and management address come from rack-a's pod file, through the API's additive fields.
    expect(node).toMatchObject({ hostname: 'a01', management: '10.141.0.11' });
    expect(await page.textContent(`${server} [data-col="hostname"]`)).toBe('a01');
    expect(await page.textContent(`${server} [data-col="management"]`)).toBe('10.141.0.11');
    expect(await page.textContent(`${server} [data-col="liveness"]`)).toBe('');
    expect(await page.textContent(`${server} [data-col="state"]`)).toBe('pxe');
    expect(await page.textContent(`${server} [data-col="attempt"]`)).toBe('1');
    const steps = () => page.$$eval(`${server} ol.steps li`, (lis) => lis.map((li) => `${(li as unknown as El).dataset.step}:${(li as unknown as El).className}`));
    expect(await steps()).toEqual(['discovered:done', 'pxe:current', 'stage1:todo', 'stage2-fetched:todo', 'verified:todo', 'installing:todo', 'installed:todo']);

    const failed = `tr[data-detail="rack-a"] tr[data-mac="${MAC_FAILED}"]`;
    expect(await page.textContent(`${failed} [data-col="state"]`)).toBe('failed (signature)');
    expect(await page.$$eval(`${failed} ol.steps li`, (lis) => lis.map((li) => (li as unknown as El).className))).toEqual(['done', 'done', 'done', 'failed', 'todo', 'todo', 'todo']);
    expect(await page.getAttribute(`${failed} ol.steps`, 'aria-label')).toBe('install progress: failed after stage1 (signature)');
    const red = await page.$eval(`${failed} ol.steps li.failed`, (li) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(li).backgroundColor);
    expect(red).toBe('rgb(207, 34, 46)');

    // Auto-refresh keeps the pod open (and the sort).
    await nextRefresh();
    await nextRefresh();
    expect(await page.getAttribute('tr[data-pod="rack-a"] button.expand', 'aria-expanded')).toBe('true');
    expect(await page.isVisible(server)).toBe(true);
  });

  it('the reinstall button starts a new install attempt, after confirmation', async () => {
    const failed = `tr[data-detail="rack-a"] tr[data-mac="${MAC_FAILED}"]`;
    await page.click(`${failed} button[data-action="reinstall"]`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toMatch(/attempt 2/);
    await page.fill('#confirm-reason', 'reflashed the BMC');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent(`${failed} [data-col="attempt"]`), { timeout: 10_000 }).toBe('2');
    expect(await page.textContent(`${failed} [data-col="state"]`)).toBe('discovered');
    const one = JSON.parse((await fetchNode(`/api/v1/pods/rack-a/nodes/${MAC_FAILED}`, { token: token() })).body) as { node: { attempt: number }; events: { kind: string; detail: string }[] };
    expect(one.node.attempt).toBe(2);
    expect(one.events.map((e) => `${e.kind} ${e.detail}`).join('\n')).toMatch(/reinstall by operator via the central API \(reflashed the BMC\)/);
  });

  it('the restart button really restarts the instance (a new PID); cancel does nothing', async () => {
    const before = (await apiPid('rack-b'))!;
    const beforeC = (await apiPid('rack-c'))!;
    await page.click('tr[data-pod="rack-c"] button[data-action="restart"]');
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-cancel');
    expect(await page.isHidden('#confirm')).toBe(true);

    await page.click('tr[data-pod="rack-b"] button[data-action="restart"]');
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toContain(`PID ${before}`);
    await page.click('#confirm-ok');
    const shownPid = async () => (await rows('pid')).find((x) => x.pod === 'rack-b')?.value;
    await expect.poll(async () => (await shownPid()) ?? before, { timeout: 30_000, interval: 250 }).not.toBe(before);
    const after = await shownPid();
    expect(await apiPid('rack-b')).toBe(after);
    expect(existsSync(`/proc/${before}`) && readFileSync(`/proc/${before}/cmdline`, 'utf8').includes('rack-b')).toBe(false);
    await expect.poll(() => page.textContent('tr[data-pod="rack-b"] [data-col="state"]'), { timeout: 30_000, interval: 250 }).toBe('running');
    expect(await apiPid('rack-c')).toBe(beforeC);
    // Seconds since its new start against the others' tens of seconds: uptime sorts as a number (as text, "7" would follow "42").
    await expect.poll(async () => (await rows('uptime')).find((r) => r.pod === 'rack-b')?.value, { timeout: 15_000, interval: 250 }).toBeDefined();
    await clickSort('uptime');
    const uptimes = await rows('uptime');
    expect(uptimes[0]!.pod).toBe('rack-b');
    expect(uptimes.map((r) => r.value)).toEqual(uptimes.map((r) => r.value).sort((a, b) => a! - b!));
    await clickSort('name');
    expect(await ariaSort('name')).toBe('ascending');
    const events = JSON.parse((await fetchNode('/api/v1/events', { token: token() })).body).events as { pod?: string; kind: string; message: string }[];
    expect(events.filter((e) => e.kind === 'action').map((e) => `${e.pod} ${e.message}`)).toEqual([expect.stringMatching(/^rack-b operator: restart/)]);
    await expect.poll(() => page.textContent('#events'), { timeout: 10_000 }).toContain('rack-b action');
  });

  it('degrade asks for a reason and the pod shows degraded; resume undoes it', async () => {
    await page.click('tr[data-pod="rack-c"] button[data-action="degrade"]');
    await page.waitForSelector('#confirm[open]');
    await page.fill('#confirm-reason', 'switch swap in row 4');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent('tr[data-pod="rack-c"] [data-col="state"]'), { timeout: 20_000, interval: 250 }).toBe('degraded');
    expect((await instances()).find((i) => i.pod === 'rack-c')).toMatchObject({ degraded: true, degradeReason: 'switch swap in row 4' });
    expect(await page.textContent('#summary')).toMatch(/1 degraded/);
    await page.click('tr[data-pod="rack-c"] button[data-action="undegrade"]');
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent('tr[data-pod="rack-c"] [data-col="state"]'), { timeout: 20_000, interval: 250 }).toBe('running');
    expect((await instances()).find((i) => i.pod === 'rack-c')?.degraded).toBe(false);
  });

  it('a pod of 5,000 servers: counted per state, drawn a page at a time, one found by its MAC; counts in words that agree', async () => {
    const now = Math.floor(Date.now() / 1000);
    const big = Array.from({ length: BIG }, (_, k) => {
      const state = BIG_STATES[k % 10]!;
      // A failed one broke at the digest check after fetching stage2, as stage1 reports it.
      const states = state === 'failed' ? ['stage2-fetched', 'failed'] : [state];
      const liveness = bigLiveness(k);
      // A silent one has not reported for a day: more than 3 of rack-c's hour-long intervals.
      // Installed ones hold the image stage1 reported; every 7th is still on the version before.
      const image = k % 7 === 0 ? 'debian-12@1.0' : 'debian-12@1.1';
      return { mac: bigMac(k), ip: bigIp(k), states, reason: 'digest', image, liveness, seen: liveness === 'silent' ? now - 86400 : now } as const;
    });
    seedServers(join(stateDir, 'rack-c'), '10.43.0.0/16', big);
    seedServers(join(stateDir, 'rack-b'), '10.42.0.0/16', [{ mac: '52:54:00:0c:00:01', ip: '10.42.16.1', states: ['pxe'], seen: now }]);

    // Every pod and server counted, as numbers with separators and nouns that agree with them.
    await expect.poll(() => page.textContent('#summary'), { timeout: 15_000, interval: 250 }).toMatch(/ · 5,003 servers: /);
    expect(await page.textContent('#summary')).toMatch(/^3 pods: 3 running, 0 degraded, 0 crashed · 5,003 servers: 1,002 installing, 3,500 installed, 500 failed$/);
    expect(await page.textContent('tr[data-pod="rack-c"] [data-col="servers"]')).toBe('3,500 installed1,000 installing500 failed');

    // rack-b, a rack of one.
    await page.click('tr[data-pod="rack-b"] button.expand');
    await page.waitForSelector('tr[data-detail="rack-b"] tr[data-mac="52:54:00:0c:00:01"]');
    expect(await page.textContent('tr[data-detail="rack-b"] .rack-counts')).toBe('1 server: 1 pxe');
    expect(await page.textContent('tr[data-detail="rack-b"] .facts')).toMatch(/(^| · )0 leases( · |$)/);

    // rack-c: 5,000 servers, 200 of them in the page.
    const rack = 'tr[data-detail="rack-c"]';
    const macs = () => page.$$eval(`${rack} tr[data-mac]`, (trs) => trs.map((tr) => (tr as unknown as El).dataset.mac!));
    await page.click('tr[data-pod="rack-c"] button.expand');
    await page.waitForSelector(`${rack} tr[data-mac]`, { timeout: 15_000 });
    // Its 5,000-server list is not fetched again at every refresh while its counts stay (rack-a's short one is); the counts are.
    await nextRefresh();
    const asked: string[] = [];
    const onRequest = (r: { url(): string }) => asked.push(new URL(r.url()).pathname);
    page.on('request', onRequest);
    await nextRefresh();
    await nextRefresh();
    page.off('request', onRequest);
    expect(asked.filter((p) => p === '/api/v1/nodes/summary')).toHaveLength(2);
    expect(asked.filter((p) => p === '/api/v1/pods/rack-a/nodes')).toHaveLength(2);
    expect(asked.filter((p) => p === '/api/v1/pods/rack-c/nodes')).toHaveLength(0);
    expect(await page.textContent(`${rack} .rack-counts`)).toBe('5,000 servers: 500 pxe, 500 installing, 500 installed, 3,000 booted-from-disk, 500 failed');
    expect(await page.textContent(`${rack} .found`)).toBe('');
    expect(await page.textContent(`${rack} .pager .page`)).toBe('page 1 of 25 (servers 1–200)');
    expect(await macs()).toEqual(Array.from({ length: 200 }, (_, k) => bigMac(k)));
    // Far fewer rows in the whole document than servers: the other 4,800 are not drawn.
    const domRows = () => page.$$eval('tr', (trs) => trs.length);
    expect(await domRows()).toBeLessThan(250);
    await page.click(`${rack} .pager button[data-page="next"]`);
    expect(await page.textContent(`${rack} .pager .page`)).toBe('page 2 of 25 (servers 201–400)');
    expect(await macs()).toEqual(Array.from({ length: 200 }, (_, k) => bigMac(200 + k)));
    expect(await page.evaluate('document.activeElement?.dataset.page')).toBe('next');
    expect(await domRows()).toBeLessThan(250);

    // One server by its MAC (typed in capitals, as on a label): its row as the API has it.
    const k = 4321;
    const filter = `${rack} input.server-filter`;
    await page.fill(filter, bigMac(k).toUpperCase());
    expect(await macs()).toEqual([bigMac(k)]);
    expect(await page.textContent(`${rack} .found`)).toBe(`1 server matches “${bigMac(k).toUpperCase()}”`);
    expect(await page.$(`${rack} .pager`)).toBeNull();
    const row = `${rack} tr[data-mac="${bigMac(k)}"]`;
    const listed = (
      JSON.parse((await fetchNode('/api/v1/pods/rack-c/nodes', { token: token() })).body).nodes as { mac: string; ip?: string; state: string; liveness?: string; lastSeen?: number }[]
    ).find((n) => n.mac === bigMac(k))!;
    expect(listed).toMatchObject({ ip: bigIp(k), state: 'booted-from-disk', image: 'debian-12@1.1', liveness: 'active', lastSeen: now });
    expect(await page.textContent(`${row} [data-col="image"]`)).toBe('debian-12@1.1');
    expect(await page.textContent(`${row} [data-col="ip"]`)).toBe(bigIp(k));
    expect(await page.textContent(`${row} [data-col="state"]`)).toBe('booted-from-disk');
    expect(await page.textContent(`${row} [data-col="liveness"]`)).toBe('active');
    expect(await page.getAttribute(`${row} [data-col="seen"]`, 'title')).toBe(new Date(now * 1000).toISOString());
    expect(await page.textContent(`${row} [data-col="seen"]`)).toMatch(/ ago$/);
    // The next refresh keeps the filter, the focus and the caret in the box.
    await page.focus(filter);
    await page.keyboard.press('End');
    await nextRefresh();
    expect(await page.inputValue(filter)).toBe(bigMac(k).toUpperCase());
    expect(await page.evaluate('document.activeElement?.dataset.focus')).toBe('server-filter:rack-c');
    expect(await page.evaluate('document.activeElement?.selectionStart')).toBe(bigMac(k).length);
    expect(await macs()).toEqual([bigMac(k)]);

    // By state, by address, by liveness; the same MAC without separators.
    await page.fill(filter, 'failed');
    expect(await page.textContent(`${rack} .found`)).toBe('500 servers match “failed”');
    expect(await page.textContent(`${rack} .pager .page`)).toBe('page 1 of 3 (servers 1–200)');
    expect(await page.$$eval(`${rack} tr[data-mac] [data-col="state"]`, (tds) => new Set(tds.map((td) => (td as unknown as El).textContent)).size)).toBe(1);
    expect(await page.textContent(`${rack} tr[data-mac="${bigMac(9)}"] [data-col="state"]`)).toBe('failed (digest)');
    expect(await page.getAttribute(`${rack} tr[data-mac="${bigMac(9)}"] ol.steps`, 'aria-label')).toBe('install progress: failed after stage2-fetched (digest)');
    // by the image on the disk: the installed servers still on the old version (every 7th; pxe, installing and failed ones hold none)
    await page.fill(filter, 'debian-12@1.0');
    const old = Array.from({ length: BIG }, (_, j) => j).filter((j) => j % 7 === 0 && ['booted-from-disk', 'installed'].includes(BIG_STATES[j % 10]!));
    expect(await page.textContent(`${rack} .found`)).toBe(`${NUMBER.format(old.length)} servers match “debian-12@1.0”`);
    expect(await page.textContent(`${rack} tr[data-mac="${bigMac(old[0]!)}"] [data-col="image"]`)).toBe('debian-12@1.0');
    await page.fill(filter, bigIp(4444));
    expect(await macs()).toEqual([bigMac(4444)]);
    await page.fill(filter, 'silent');
    expect(await page.textContent(`${rack} .found`)).toBe('50 servers match “silent”');
    expect(await page.textContent(`${rack} tr[data-mac="${bigMac(100)}"] [data-col="liveness"]`)).toBe('silent');
    await page.fill(filter, bigMac(k).replace(/:/g, ''));
    expect(await macs()).toEqual([bigMac(k)]);
    await page.fill(filter, 'no-such-server');
    expect(await page.textContent(`${rack} .found`)).toBe('0 servers match “no-such-server”');
    expect(await macs()).toEqual([]);

    // A few of each kind for the picture: the first sixteen (00 to 0f) cover every state.
    await page.fill(filter, '52:54:01:00:00:0');
    expect(await page.textContent(`${rack} .found`)).toBe('16 servers match “52:54:01:00:00:0”');
    // Nowhere on the page a count of one with a plural noun or a count of several with a singular one.
    const body = (await page.textContent('#board')) ?? '';
    expect(body).not.toMatch(/(?<![\d,.])1 (servers|pods|leases|requests)\b/);
    expect(body).not.toMatch(/(?<![\d,.])(0|[2-9]|[1-9][\d,]+) (server|pod|lease|request)\b(?! matches)/);
    if (process.env.PODBOOT_UI_SCREENSHOTS) {
      await page.screenshot({ path: join(process.env.PODBOOT_UI_SCREENSHOTS, 'operator-page.png'), fullPage: true });
    }
    await page.fill(filter, '');
    expect(await page.textContent(`${rack} .found`)).toBe('');
    expect(await page.textContent(`${rack} .pager .page`)).toBe('page 1 of 25 (servers 1–200)');

    // A reinstall in the large pod shows at once: its list is fetched again after the action.
    await page.fill(filter, bigMac(k));
    await page.click(`${row} button[data-action="reinstall"]`);
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent(`${row} [data-col="attempt"]`), { timeout: 10_000 }).toBe('2');
    expect(await page.textContent(`${row} [data-col="state"]`)).toBe('discovered');
    expect(await page.textContent(`${row} [data-col="liveness"]`)).toBe('');
    expect(await page.textContent(`${rack} .rack-counts`)).toBe('5,000 servers: 1 discovered, 500 pxe, 500 installing, 500 installed, 2,999 booted-from-disk, 500 failed');
    await page.fill(filter, '');
  });

  it('a token that stops working while the page is open: the data goes, the page asks again', async () => {
    phase = 'wrong-token';
    await page.evaluate("sessionStorage.setItem('podboot.token', 'a-token-the-node-never-issued')");
    await page.reload();
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toMatch(/no longer accepts this token \(HTTP 403\)/);
    expect(await page.isHidden('#board')).toBe(true);
    expect(await page.isVisible('#login')).toBe(true);
    expect(await page.$$('table#pods > tbody > tr')).toHaveLength(0);
    expect(await page.textContent('#summary')).toBe('');
    expect(await page.evaluate("sessionStorage.getItem('podboot.token')")).toBeNull();
    phase = 'page';
  });

  it('no console errors and no CSP violations; the CSP does block inline script', async () => {
    // The wrong token's 403 is the only thing Chromium may report, as a failed load.
    expect(problems.filter((p) => p.phase === 'wrong-token').every((p) => /Failed to load resource: the server responded with a status of 403/.test(p.text))).toBe(true);
    expect(problems.filter((p) => p.phase !== 'wrong-token')).toEqual([]);
    phase = 'control';
    const ran = await page.evaluate("{ const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.append(s); window.inlineRan === true }");
    expect(ran).toBe(false);
    await expect
      .poll(() => problems.filter((p) => p.phase === 'control').map((p) => p.text), { timeout: 5000 })
      .toEqual(
        // Chromium's own report, and the page's securitypolicyviolation event.
        expect.arrayContaining([
          expect.stringMatching(/^console error: Executing inline script violates the following Content Security Policy directive 'default-src 'self''/),
          'console error: CSP violation: script-src-elem inline',
        ]),
      );
    // Nothing the page holds leaked into the node's log.
    expect(central.log()).not.toContain(token());
  });
});
