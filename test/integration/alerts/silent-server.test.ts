// Must show 4 (issue 16): a server stopped mid-heartbeat turns `silent` and
// the central node's own evaluator (podboot serve --alert-webhook) posts
// PodbootServerSilent firing to a webhook receiver; the server reports
// again: the alert is posted resolved. A real central node supervising a
// real pod in a namespace of its own (prefix pbal); the node agent's
// heartbeats are sent with curl over HTTPS with its node token.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../../src/install/token.js';
import { openExistingPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { WebhookMessage } from '../../../src/alerts/webhook.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const POD = 'rack-al';
const MAC = '52:54:00:a1:00:01';
const ADDR = '10.98.0.1';
const HTTPS = 8443;
const HOOK_PORT = 18080;

const podYaml = `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${POD}
spec:
  listen: { address: ${ADDR}, dhcpPort: 1067, tftpPort: 1069, httpPort: 8080, httpsPort: ${HTTPS} }
  relays: [10.97.0.1]
  subnets:
    - { cidr: 10.97.0.0/16, gateway: 10.97.0.1, pool: 10.97.1.0-10.97.1.250 }
  heartbeat: { interval: 5s }
  nodes:
    - { mac: "${MAC}", hostname: alpha }
`;

/** Prints every POST body on one line: the central node's receiver. */
const RECEIVER = `require('node:http').createServer((q, s) => { let b = ''; q.on('data', (d) => (b += d)); q.on('end', () => { console.log('HOOK ' + JSON.stringify(JSON.parse(b))); s.end(); }); }).listen(${HOOK_PORT}, '127.0.0.1', () => console.log('receiver listening'));`;

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number, detail: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('a silent server raises an alert through the central node', () => {
  const lab = new Lab('pbal');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;
  let hook: Daemon;
  let token = '';

  const hooks = (): WebhookMessage[] =>
    hook
      .log()
      .split('\n')
      .filter((l) => l.startsWith('HOOK '))
      .map((l) => JSON.parse(l.slice(5)) as WebhookMessage);
  const silentPosts = (status: 'firing' | 'resolved') => hooks().filter((m) => m.groupLabels.alertname === 'PodbootServerSilent' && m.alerts.some((a) => a.status === status && a.labels.mac === MAC));
  const report = (body: Record<string, unknown>) =>
    lab.exec(
      'c',
      'curl',
      [
        '-s',
        '--max-time',
        '10',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        join(stateDir, POD, 'tls', 'root.pem'),
        '-H',
        `Authorization: Bearer ${token}`,
        '-H',
        'content-type: application/json',
        '-d',
        JSON.stringify(body),
        `https://${ADDR}:${HTTPS}/v1/events`,
      ],
      { allowFail: true },
    );
  const detail = () => `${central.log()}\n${hook.log()}`;

  beforeAll(async () => {
    requireBuild();
    lab.addNs('c');
    lab.ip('c', 'addr', 'add', `${ADDR}/32`, 'dev', 'lo');
    mkdirSync(podsDir);
    writeFileSync(join(podsDir, `${POD}.yaml`), podYaml);
    hook = lab.spawn('c', process.execPath, ['-e', RECEIVER], 'hook');
    await hook.waitFor(/receiver listening/, 10_000);
    central = lab.spawn(
      'c',
      process.execPath,
      [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0', '--alert-webhook', `http://127.0.0.1:${HOOK_PORT}/hook`, '--alert-interval', '1'],
      'central',
    );
    await central.waitFor(/alert evaluator running/, 30_000);
    await until('the pod ready', () => (new RegExp(`"pod":"${POD}","pid":\\d+,"listeners"`).test(central.log()) ? true : undefined), 30_000, detail);
    // The install is the boot tests' business: here the server has installed.
    const db = await until('the pod database', () => openExistingPodDatabase(join(stateDir, POD), false), 10_000, detail);
    const nodes = new SqliteNodeStateStore(db);
    nodes.changeInstallState({ mac: MAC, state: 'installed', time: Math.floor(Date.now() / 1000) });
    const attempt = nodes.node(MAC)?.attempt ?? 1;
    db.close();
    const secret = readFileSync(join(stateDir, POD, 'token.key'));
    token = issueToken(secret, { scope: 'node', mac: MAC, attempt, expires: Math.floor(Date.now() / 1000) + 3600 });
  }, 90_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it('heartbeats, then silence: PodbootServerSilent fires; a heartbeat again: resolved', async () => {
    expect(report({ state: 'booted-from-disk' })).toBe('200');
    for (let i = 0; i < 3; i++) {
      expect(report({ state: 'heartbeat', uptime: 100 + i, load1: 0.1, memTotal: 1000, memAvailable: 500, diskSize: 100, diskUsed: 10 })).toBe('200');
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(silentPosts('firing')).toEqual([]);
    // The agent stops mid-heartbeat: 3 intervals of 5 s, the pod's check, then the evaluator.
    const fired = await until('PodbootServerSilent firing', () => silentPosts('firing')[0], 60_000, detail);
    expect(fired).toMatchObject({ version: '4', receiver: 'podboot', status: 'firing', groupKey: '{}:{alertname="PodbootServerSilent"}' });
    const alert = fired.alerts.find((a) => a.labels.mac === MAC)!;
    expect(alert.labels).toMatchObject({ alertname: 'PodbootServerSilent', pod: POD, mac: MAC, severity: 'warning' });
    expect(alert.annotations.summary).toBe(`server ${MAC} of pod ${POD} is silent`);
    expect(alert.endsAt).toBe('0001-01-01T00:00:00Z');
    expect(central.log()).toMatch(/"alert":"PodbootServerSilent".*"state":"firing"/);

    expect(report({ state: 'heartbeat', uptime: 200 })).toBe('200');
    const resolved = await until('PodbootServerSilent resolved', () => silentPosts('resolved')[0], 30_000, detail);
    expect(resolved.status).toBe('resolved');
    const r = resolved.alerts.find((a) => a.labels.mac === MAC)!;
    expect(r.fingerprint).toBe(alert.fingerprint);
    expect(r.startsAt).toBe(alert.startsAt);
    expect(Date.parse(r.endsAt)).toBeGreaterThanOrEqual(Date.parse(r.startsAt));
    // Firing once, resolved once: no repeat within the repeat interval.
    expect(silentPosts('firing')).toHaveLength(1);
    // The webhook URL is never logged, only its host.
    expect(central.log()).not.toMatch(/127\.0\.0\.1:18080\/hook/);
  }, 120_000);
});
