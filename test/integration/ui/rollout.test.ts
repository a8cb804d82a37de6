// The operator page's Releases and rollout panel in Chromium, against a real
// `podboot serve` with a real image catalog: a start refused by the API (its
// error on the page), a start that goes through (the pod's copies placed from
// the catalog), the pod's own rollout driver moving the canary on, Promote
// shown only in canary-passed and clicked through to the API, Pause and
// Rollback; and a rollout paused by itself, written into another pod's
// database through the rollout store, showing why.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Catalog } from '../../../src/catalog/catalog.js';
import type { RolloutStatus } from '../../../src/rollout/central.js';
import { RolloutStore } from '../../../src/rollout/store.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { openOperatorPage, startBrowserCentral } from '../../helpers/browser-central.js';
import { admitSigned } from '../../helpers/catalog.js';
import { captureLogger } from '../../helpers/logs.js';
import { Lab, PODBOOT, requireBuild } from '../../helpers/netns.js';

const PODS = ['rack-a', 'rack-b'];
const mac = (pod: number, k: number) => `52:54:00:3e:0${pod}:${k.toString(16).padStart(2, '0')}`;
/** rack-a: three web servers and a database server; rack-b: two servers */
const SERVERS: Record<string, { mac: string; hostname: string; labels: Record<string, string> }[]> = {
  'rack-a': [
    { mac: mac(1, 1), hostname: 'web1', labels: { role: 'web' } },
    { mac: mac(1, 2), hostname: 'web2', labels: { role: 'web' } },
    { mac: mac(1, 3), hostname: 'web3', labels: { role: 'web' } },
    { mac: mac(1, 4), hostname: 'db1', labels: { role: 'db' } },
  ],
  'rack-b': [
    { mac: mac(2, 1), hostname: 'b1', labels: { role: 'web' } },
    { mac: mac(2, 2), hostname: 'b2', labels: { role: 'web' } },
  ],
};
const HOSTILE = '<img src=x onerror="window.pwned = 1">';
const B_ROLLOUT = 'b0b0b0b0b0b0';
const B_REASON = '1 server(s) failed, --max-failures 1: paused by itself, nothing more is started';

function podYaml(name: string, i: number): string {
  const rack = `10.${61 + i}`;
  return stringify({
    apiVersion: 'podboot/v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      listen: { address: `10.97.0.${i + 1}` },
      relays: [`${rack}.0.1`],
      subnets: [{ cidr: `${rack}.0.0/16`, gateway: `${rack}.0.1`, pool: `${rack}.1.0-${rack}.1.250` }],
      heartbeat: { interval: '1h' },
      stage2: { image: 'lab', version: '1' },
      nodes: SERVERS[name],
    },
  });
}

/** what the in-page callbacks touch of an element (the test is compiled without the DOM library) */
interface El {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  querySelector(selector: string): El | null;
}

describe('releases and rollouts on the operator page, in Chromium', () => {
  const lab = new Lab('pbui3');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  const ca = join(lab.dir, 'ca');
  const catalogDir = join(lab.dir, 'catalog');
  let api: { url: string; ca: string; tokenFile: string };
  let relay: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const A = 'tr[data-detail="rack-a"] section.rollout';
  const B = 'tr[data-detail="rack-b"] section.rollout';

  const token = () => readFileSync(api.tokenFile, 'utf8').trim();
  const getStatus = (pod: string) =>
    new Promise<RolloutStatus>((resolve, reject) => {
      const u = new URL(`/api/v1/pods/${pod}/rollout`, base);
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, ca: readFileSync(api.ca), headers: { authorization: `Bearer ${token()}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as RolloutStatus) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
      });
      req.on('error', reject);
      req.end();
    });
  const podboot = (...args: string[]) => {
    const r = spawnSync(process.execPath, [PODBOOT, ...args], { cwd: lab.dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
  };
  /** writes into a pod's database as the pod and the central node do */
  const withDb = <T>(pod: string, fn: (rollouts: RolloutStore, nodes: SqliteNodeStateStore) => T): T => {
    const db = openPodDatabase(join(stateDir, pod));
    try {
      return fn(new RolloutStore(db), new SqliteNodeStateStore(db));
    } finally {
      db.close();
    }
  };
  /** a server's install as the pod records it, ending on its disk with `image` */
  const installed = (nodes: SqliteNodeStateStore, m: string, image: string, time: number) => {
    for (const state of ['stage1', 'installing']) nodes.changeInstallState({ mac: m, state, time });
    nodes.changeInstallState({ mac: m, state: 'installed', time, image });
    nodes.changeInstallState({ mac: m, state: 'booted-from-disk', time });
  };
  const texts = (selector: string) => page.$$eval(selector, (els) => els.map((e) => (e as unknown as El).textContent ?? ''));
  const buttons = (panel: string) => page.$$eval(`${panel} [data-rollout-action]`, (els) => els.map((e) => (e as unknown as El).dataset.rolloutAction ?? ''));
  const phase = (panel: string) => page.getAttribute(`${panel} [data-phase]`, 'data-phase');
  const rows = (panel: string) =>
    page.$$eval(`${panel} table.rollout-servers tbody tr`, (trs) =>
      trs.map((tr) => {
        const t = tr as unknown as El;
        const col = (c: string) => t.querySelector(`[data-col="${c}"]`)?.textContent ?? '';
        return [col('mac'), col('hostname'), col('pass'), col('canary'), col('batch'), col('state'), col('image'), col('detail')];
      }),
    );

  beforeAll(async () => {
    requireBuild();
    // A CA, two signed versions of one image, both admitted to the central catalog.
    podboot('ca', 'init', '--out', ca, '--org', 'Rollout Page Test');
    podboot('ca', 'issue-signer', 'ci', '--ca', ca);
    const { log } = captureLogger({ component: 'catalog' });
    const catalog = await Catalog.open(catalogDir, log);
    try {
      for (const version of ['1', '2']) {
        writeFileSync(join(lab.dir, `lab-${version}.img`), randomBytes(64 * 1024));
        podboot('sign', `lab-${version}.img`, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'lab', '--version', version);
        await admitSigned(catalog, join(lab.dir, `lab-${version}.img`), readFileSync(join(ca, 'root.pem')));
      }
    } finally {
      catalog.close();
    }
    ({ api, relay, base } = await startBrowserCentral(lab, {
      podsDir,
      stateDir,
      pods: PODS,
      podYaml,
      addresses: (i) => [`10.97.0.${i + 1}`, `10.${61 + i}.0.1`],
      serveArgs: ['--ca', ca, '--catalog', catalogDir],
    }));

    // Every server installed with lab@1 and booted from its disk, as the pods record it.
    const before = Math.floor(Date.now() / 1000) - 600;
    for (const pod of PODS) {
      withDb(pod, (_r, nodes) => {
        for (const s of SERVERS[pod]!) installed(nodes, s.mac, 'lab@1', before);
      });
    }

    // rack-b: a rollout whose canary failed, paused by itself, as the pod's driver leaves it.
    withDb('rack-b', (store) =>
      store.transaction(() => {
        const t = before + 60;
        const [b1, b2] = SERVERS['rack-b']!.map((s) => s.mac);
        store.insertRollout(
          {
            id: B_ROLLOUT,
            target: 'lab@3',
            previous: 'lab@1',
            selector: 'role=web',
            canary: '1',
            batch: 1,
            maxFailures: 1,
            serverTimeout: 1800,
            phase: 'canary',
            createdAt: t,
            createdBy: 'operator via the central API',
            updatedAt: t,
          },
          [
            { rollout: B_ROLLOUT, pass: 'forward', mac: b1!, ord: 0, canary: true, image: 'lab@3', state: 'pending' },
            { rollout: B_ROLLOUT, pass: 'forward', mac: b2!, ord: 1, canary: false, image: 'lab@3', state: 'pending' },
          ],
        );
        store.updateServer(B_ROLLOUT, 'forward', b1!, { state: 'failed', batch: 1, startedAt: t + 5, finishedAt: t + 90, detail: `install failed (${HOSTILE})` });
        store.setRole({ time: t, ref: 'lab@3', role: 'canary', by: 'operator via the central API', why: `rollout ${B_ROLLOUT}` });
        expect(store.setPhase(B_ROLLOUT, 'canary', 'paused', t + 90, { pausedFrom: 'canary', reason: B_REASON })).toBe(true);
      }),
    );

    ({ context, page } = await openOperatorPage(lab.dir, api.ca, base, token(), problems));
  }, 180_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await new Promise((r) => (relay ? relay.close(r) : r(undefined)));
    await lab.cleanup();
  });

  it('a pod without a rollout shows its release and the start form; a bad target gets the API’s error', async () => {
    await page.click('tr[data-pod="rack-a"] button.expand');
    await page.waitForSelector(`${A} [data-no-rollout]`, { timeout: 15_000 });
    expect(await texts(`${A} .releases [data-role]`)).toEqual(['active lab@1']);
    expect(await buttons(A)).toEqual([]);

    await page.fill(`${A} input[name="target"]`, 'lab');
    await page.click(`${A} form.rollout-start button[type=submit]`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-title')).toBe('Start a rollout of lab?');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent(`${A} [data-start-error]`), { timeout: 10_000, interval: 200 }).toBe('Start refused: HTTP 400: target: an image as name@version');
    // What was typed stays, across a refresh too, so it can be put right.
    const before = await page.getAttribute('#updated', 'data-refreshed');
    await expect.poll(() => page.getAttribute('#updated', 'data-refreshed'), { timeout: 15_000, interval: 250 }).not.toBe(before);
    expect(await page.inputValue(`${A} input[name="target"]`)).toBe('lab');
    // Nothing was started.
    expect((await getStatus('rack-a')).rollout).toBeUndefined();
  });

  it('a start goes through the API: the canary phase, its releases and servers', async () => {
    await page.fill(`${A} input[name="target"]`, 'lab@2');
    await page.fill(`${A} input[name="select"]`, 'role=web');
    await page.fill(`${A} input[name="canary"]`, '1');
    await page.fill(`${A} input[name="batch"]`, '1');
    await page.fill(`${A} input[name="maxFailures"]`, '2');
    await page.click(`${A} form.rollout-start button[type=submit]`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toBe(
      "Pod rack-a: the servers role=web selects will be reinstalled with lab@2, canary 1 first, the rest after a promote, 1 at a time; it pauses by itself after 2 failed. The pod's copies of the images are hashed again first.",
    );
    await page.click('#confirm-ok');
    await page.waitForSelector(`${A} [data-phase]`, { timeout: 30_000 });

    const s = await getStatus('rack-a');
    expect(s.rollout).toMatchObject({ target: 'lab@2', previous: 'lab@1', selector: 'role=web', canary: '1', batch: 1, maxFailures: 2, phase: 'canary' });
    // The pod's copies were checked, and the new one placed from the catalog.
    expect(existsSync(join(stateDir, 'rack-a', 'images', 'lab@2', 'image'))).toBe(true);
    expect(await phase(A)).toBe('canary');
    expect(await page.textContent(`${A} .rollout-head`)).toBe(`Rollout ${s.rollout!.id} to lab@2 (from lab@1): canary`);
    expect(await texts(`${A} .releases [data-role]`)).toEqual(['active lab@1', 'canary lab@2']);
    expect(await texts(`${A} .rollout-facts [data-fact]`)).toEqual([
      'selector role=web',
      'canary 1',
      'batch 1',
      'max failures 2',
      'server timeout 30m 00s',
      expect.stringMatching(/^started \d\d:\d\d:\d\d by operator via the central API$/),
    ]);
    // The three web servers, the canary first; the database server is not in it.
    const canary = s.servers.find((x) => x.canary)!;
    await expect.poll(async () => (await rows(A)).length, { timeout: 10_000 }).toBe(3);
    const shown = await rows(A);
    expect(shown.map((r) => r[0])).toEqual(s.servers.map((x) => x.mac));
    expect(shown[0]!.slice(0, 4)).toEqual([canary.mac, SERVERS['rack-a']!.find((x) => x.mac === canary.mac)!.hostname, 'forward', 'canary']);
    expect(shown.map((r) => r[6])).toEqual(['lab@1', 'lab@1', 'lab@1']);
    expect(shown.map((r) => r[1]).sort()).toEqual(['web1', 'web2', 'web3']);
    // No promote before the canaries passed; no start while this one is open.
    expect(await buttons(A)).toEqual(['pause', 'rollback']);
    expect(await page.$(`${A} form.rollout-start`)).toBeNull();
  });

  it('the pod’s driver asks the canary; once it booted with lab@2 the rollout is canary-passed and Promote appears', async () => {
    const id = (await getStatus('rack-a')).rollout!.id;
    const canary = (await getStatus('rack-a')).servers.find((x) => x.canary)!.mac;
    // The pod's own driver (every 2 s) asks the canary to reboot into its install.
    await expect.poll(async () => (await getStatus('rack-a')).servers.find((x) => x.mac === canary)!.state, { timeout: 15_000, interval: 500 }).toBe('requested');
    await expect.poll(async () => (await rows(A)).find((r) => r[0] === canary)?.slice(4, 6), { timeout: 15_000, interval: 250 }).toEqual(['1', 'requested']);
    // The server takes it and comes back on its disk with lab@2, as the pod records it.
    withDb('rack-a', (store, nodes) => {
      const t = Math.floor(Date.now() / 1000);
      expect(store.updateServer(id, 'forward', canary, { state: 'installing', startedAt: t }, 'requested')).toBe(true);
      installed(nodes, canary, 'lab@2', t);
    });
    await expect.poll(() => phase(A), { timeout: 15_000, interval: 250 }).toBe('canary-passed');
    const row = (await rows(A)).find((r) => r[0] === canary)!;
    expect(row.slice(5)).toEqual(['done', 'lab@2', 'booted from disk with lab@2']);
    expect(await buttons(A)).toEqual(['pause', 'promote', 'rollback']);

    if (process.env.PODBOOT_UI_SCREENSHOTS) {
      await page.locator(A).screenshot({ path: join(process.env.PODBOOT_UI_SCREENSHOTS, 'rollout.png') });
    }
  });

  it('Promote asks first, then moves the rollout to promoting through the API', async () => {
    const id = (await getStatus('rack-a')).rollout!.id;
    // Cancelled: nothing happens.
    await page.click(`${A} [data-rollout-action="promote"]`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-title')).toBe(`Promote rollout ${id}?`);
    expect(await page.textContent('#confirm-text')).toBe(
      "lab@2 becomes pod rack-a's active release (lab@1 previous), and the 2 other selected servers are reinstalled with it, 1 at a time, each batch once the last one booted from its disk with it.",
    );
    await page.click('#confirm-cancel');
    expect((await getStatus('rack-a')).rollout!.phase).toBe('canary-passed');

    await page.click(`${A} [data-rollout-action="promote"]`);
    await page.waitForSelector('#confirm[open]');
    await page.fill('#confirm-reason', 'canary looks fine');
    await page.click('#confirm-ok');
    await expect.poll(() => phase(A), { timeout: 10_000, interval: 200 }).toBe('promoting');
    const s = await getStatus('rack-a');
    expect(s.rollout!.phase).toBe('promoting');
    expect(s.releases.map((r) => `${r.role} ${r.ref}`)).toEqual(expect.arrayContaining(['active lab@2', 'previous lab@1']));
    expect(s.releases.find((r) => r.role === 'active')!.why).toBe('canary looks fine');
    expect(await texts(`${A} .releases [data-role]`)).toEqual(['active lab@2', 'previous lab@1']);
    expect(await buttons(A)).toEqual(['pause', 'rollback']);
    expect(await page.isHidden('#error')).toBe(true);
  });

  it('Pause shows the rollout paused with its reason and offers Resume; Rollback asks, then rolls back', async () => {
    const id = (await getStatus('rack-a')).rollout!.id;
    await page.click(`${A} [data-rollout-action="pause"]`);
    await expect.poll(() => phase(A), { timeout: 10_000, interval: 200 }).toBe('paused');
    expect(await page.textContent(`${A} [data-phase]`)).toBe('paused (from promoting)');
    expect(await page.textContent(`${A} [data-paused-reason]`)).toBe('Paused: pause by operator via the central API');
    expect(await buttons(A)).toEqual(['resume', 'rollback']);

    await page.click(`${A} [data-rollout-action="rollback"]`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-title')).toBe(`Roll back rollout ${id}?`);
    expect(await page.textContent('#confirm-text')).toMatch(/^lab@1 becomes pod rack-a's active release again, and the \d servers? this rollout reinstalled (is|are) reinstalled with it/);
    await page.click('#confirm-ok');
    await expect.poll(() => phase(A), { timeout: 10_000, interval: 200 }).toMatch(/^(rolling-back|rolled-back)$/);
    const s = await getStatus('rack-a');
    expect(s.releases.find((r) => r.role === 'active')!.ref).toBe('lab@1');
    expect(s.servers.some((x) => x.pass === 'back')).toBe(true);
    expect(await texts(`${A} .releases [data-role]`)).toEqual(expect.arrayContaining(['active lab@1']));
  });

  it('a rollout that paused by itself shows why, and only Resume and Rollback; its data is text, never markup', async () => {
    await page.click('tr[data-pod="rack-b"] button.expand');
    await page.waitForSelector(`${B} [data-phase]`, { timeout: 15_000 });
    expect(await page.textContent(`${B} [data-phase]`)).toBe('paused (from canary)');
    expect(await page.textContent(`${B} [data-paused-reason]`)).toBe(`Paused: ${B_REASON}`);
    expect(await buttons(B)).toEqual(['resume', 'rollback']);
    expect(await texts(`${B} .releases [data-role]`)).toEqual(['active lab@1', 'canary lab@3']);
    expect(await rows(B)).toEqual([
      [mac(2, 1), 'b1', 'forward', 'canary', '1', 'failed', 'lab@1', `install failed (${HOSTILE})`],
      [mac(2, 2), 'b2', 'forward', '', '', 'pending', 'lab@1', ''],
    ]);
    expect(await page.textContent(`${B} .rollout-counts`)).toBe('to lab@3: 2 servers (1 failed, 1 pending)');
    expect(await page.$$(`${B} img`)).toHaveLength(0);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
  });

  it('no console errors and no CSP violations (but Chromium’s own line for the start the API refused)', () => {
    expect(problems).toEqual(['console error: Failed to load resource: the server responded with a status of 400 (Bad Request)']);
  });
});
