// A central node for the operator page's browser tests: `podboot serve` in a
// network namespace of its own with one pod per file, its API reached from
// the host through a TCP relay to its unix socket (bytes only: the TLS
// session is Chromium's with the node).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect, vi } from 'vitest';
import { type Daemon, type Lab, PODBOOT } from './netns.js';

export interface BrowserCentral {
  central: Daemon;
  /** STATE/central/api.json */
  api: { url: string; ca: string; tokenFile: string };
  relay: Server;
  /** the relay's https://127.0.0.1:PORT */
  base: string;
}

/**
 * Writes each pod's file, gives namespace `c` each pod's listen and relay
 * address, starts the node and waits until every pod is ready.
 */
export async function startBrowserCentral(
  lab: Lab,
  o: {
    podsDir: string;
    stateDir: string;
    pods: readonly string[];
    podYaml: (name: string, i: number) => string;
    addresses: (i: number) => string[];
    /** more `podboot serve` options (e.g. --ca DIR --catalog DIR) */
    serveArgs?: readonly string[];
  },
): Promise<BrowserCentral> {
  lab.addNs('c');
  for (let i = 0; i < o.pods.length; i++) for (const a of o.addresses(i)) lab.ip('c', 'addr', 'add', `${a}/32`, 'dev', 'lo');
  mkdirSync(o.podsDir);
  for (const [i, p] of o.pods.entries()) writeFileSync(join(o.podsDir, `${p}.yaml`), o.podYaml(p, i));
  const central = lab.spawn('c', process.execPath, [PODBOOT, 'serve', '--pods', o.podsDir, '--state', o.stateDir, '--api', '127.0.0.1:0', ...(o.serveArgs ?? [])], 'central');
  await central.waitFor(/central API listening/, 30_000);
  const ready = () => o.pods.filter((p) => new RegExp(`"pod":"${p}","pid":\\d+,"listeners"[^\\n]*"msg":"pod instance ready"`).test(central.log()));
  await vi.waitFor(() => expect(ready()).toEqual([...o.pods]), { timeout: 45_000, interval: 250 });
  const api = JSON.parse(readFileSync(join(o.stateDir, 'central', 'api.json'), 'utf8')) as BrowserCentral['api'];

  const socket = join(o.stateDir, 'central', 'api.sock');
  const relay = createServer((c) => {
    const up = connect(socket);
    c.pipe(up).pipe(c);
    const close = () => {
      c.destroy();
      up.destroy();
    };
    c.on('error', close);
    up.on('error', close);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return { central, api, relay, base: `https://127.0.0.1:${(relay.address() as { port: number }).port}` };
}

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Debian's Chromium with the node's root CA trusted: on Linux it takes locally
 * trusted roots from the NSS database in $HOME/.pki/nssdb, so it gets a HOME
 * of its own under `dir` with that database.
 */
export async function chromiumTrusting(dir: string, caFile: string): Promise<BrowserContext> {
  const home = join(dir, 'home');
  const nssdb = join(home, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${nssdb}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${nssdb}`, '-n', 'podboot test root', '-t', 'C,,', '-i', caFile]);
  return chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    env: { ...process.env, HOME: home },
    viewport: { width: 1500, height: 900 },
  });
}

/**
 * Chromium trusting the node's CA, on the operator page and logged in with
 * `token`; every console error or warning, page error and CSP violation is
 * pushed to `problems` for the test to assert empty.
 */
export async function openOperatorPage(dir: string, caFile: string, base: string, token: string, problems: string[]): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromiumTrusting(dir, caFile);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.addInitScript("document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))");
  await page.goto(`${base}/`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#board:not([hidden])');
  return { context, page };
}
