// Liveness of installed servers in a real pod instance: the installed OS
// reports over HTTPS with its node token (checked against the pod's root CA),
// booted-from-disk then heartbeats; with spec.heartbeatSeconds at 1 a server
// that goes quiet is `silent` after 3 s (one event, however many checks), and
// `active` again at its next heartbeat. The pod's database, `podboot nodes`,
// the central API's node view and the pod's liveness gauge all show it; a restarted
// pod still knows a server was silent, and counts silence from its restart.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podNode, podNodes } from '../../../src/api/nodes.js';
import { nodesListCommand, nodesShowCommand } from '../../../src/cli/commands/nodes.js';
import { createLogger } from '../../../src/log.js';
import { render } from '../../../src/metrics/exposition.js';
import { livenessCounts, podFamilies } from '../../../src/metrics/pod-metrics.js';
import { PodInstance } from '../../../src/pod/instance.js';
import { subnet, testPod } from '../../helpers/pods.js';

const POD = 'rack-lv';
const MAC = '52:54:00:1e:00:01';
/** booted-from-disk and active long before the restart below, never heard since */
const OLD = '52:54:00:1e:00:02';
const root = mkdtempSync(join(tmpdir(), 'pb-liveness-'));
const stateDir = join(root, POD);
const base = 30000 + Math.floor(Math.random() * 4000) * 2;
const config = testPod({
  name: POD,
  listen: { address: '127.0.0.1', dhcpPort: base, tftpPort: base + 1, httpPort: 0, httpsPort: 0 },
  subnets: [subnet('127.78.0.0/24', ['127.78.0.100', '127.78.0.199'])],
  nodes: [
    { mac: MAC, hostname: 'alpha' },
    { mac: OLD, hostname: 'bravo' },
  ],
  heartbeatSeconds: 1,
});

const logLines: string[] = [];
const log = createLogger({ pod: POD }, { destination: { write: (s: string) => void logLines.push(s) } });
let pod: PodInstance;
let token = '';

async function startPod(): Promise<PodInstance> {
  const p = new PodInstance(config, log, { stateDir, tlsSource: { caDir: join(root, 'ca'), createCa: true } });
  await p.start();
  return p;
}

/** POST /v1/events as the node agent does: the node token, the pod's root CA and nothing else trusted. */
function report(body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: pod.http!.httpsPort,
        path: '/v1/events',
        method: 'POST',
        ca: readFileSync(join(stateDir, 'tls', 'root.pem')),
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const node = (mac = MAC) => pod.nodeState.node(mac);
const kinds = (mac = MAC) =>
  pod.nodeState
    .events(mac, 1000)
    .map((e) => e.kind)
    .reverse();

/** Waits (at most 15 s) until the server's liveness is `want`. */
async function until(want: string, mac = MAC): Promise<void> {
  const end = Date.now() + 15_000;
  while (node(mac)?.liveness !== want) {
    if (Date.now() > end) throw new Error(`${mac} still ${node(mac)?.liveness} after 15 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The pod's exposition with its servers' liveness counted as its metrics
 * endpoint does (src/pod/channels.ts, which cannot run inside a vitest worker:
 * it talks to its parent over the process's IPC channel).
 */
function metrics(): string {
  const zero = { dhcp: pod.dhcp.counters, leases: 0, poolAddresses: 0, nodesByState: {}, degraded: false, startTimeSec: 0, rssBytes: 0, heapUsedBytes: 0 };
  return render(podFamilies({ ...zero, nodesByLiveness: livenessCounts(pod.nodeState.nodes()) }));
}

/** A `podboot nodes` command run in this process, its standard output captured. */
async function cli(cmd: typeof nodesListCommand, ...args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    expect(await cmd.run([...args, '--pod', POD, '--state', root])).toBe(0);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const BEAT = { state: 'heartbeat', uptime: 93784, load1: 0.52, load5: 0.4, load15: 0.31, memTotal: 2 ** 31, memAvailable: 2 ** 30, diskSize: 40 * 2 ** 30, diskUsed: 10 * 2 ** 30 };

beforeAll(async () => {
  pod = await startPod();
  // The install itself is the boot tests' business: here the server is installed.
  const now = Math.floor(Date.now() / 1000);
  pod.nodeState.changeInstallState({ mac: MAC, state: 'installed', time: now });
  token = pod.issueToken(MAC, 'node');
});

afterAll(async () => {
  await pod?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('liveness of installed servers', () => {
  it('booted-from-disk makes the server active; a heartbeat keeps its figures, not an event', async () => {
    const r = await report({ state: 'booted-from-disk', detail: 'host=alpha' });
    expect(r.status, r.body).toBe(200);
    expect(node()).toMatchObject({ state: 'booted-from-disk', liveness: 'active' });
    // Unknown fields ignored, a bad figure dropped, the rest kept.
    expect((await report({ ...BEAT, load15: 'high', extra: 1 })).status).toBe(200);
    expect((await report(BEAT)).status).toBe(200);
    const { state: _s, ...figures } = BEAT;
    expect(node()!.heartbeat).toEqual({ time: expect.any(Number), metrics: figures });
    expect(node()!.lastSeen).toBe(node()!.heartbeat!.time);
    expect(kinds()).toEqual(['installed', 'booted-from-disk']);
  });

  it('a quiet server turns silent once, with an event naming its last report, and active at its next heartbeat', async () => {
    const lastSeen = node()!.lastSeen!;
    await until('silent');
    expect(kinds()).toEqual(['installed', 'booted-from-disk', 'silent']);
    const silent = pod.nodeState.events(MAC, 1)[0]!;
    expect(silent.detail).toBe(`last seen ${new Date(lastSeen * 1000).toISOString()}`);
    expect(silent.time - lastSeen).toBeGreaterThanOrEqual(3);
    const line = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'server silent: no heartbeat from its node agent');
    expect(line).toMatchObject({ level: 'warn', pod: POD, node: MAC });
    expect(metrics()).toMatch(/^podboot_nodes_liveness\{state="silent"\} 1$/m);
    // More checks (1 s apart) say nothing more.
    await new Promise((r) => setTimeout(r, 2500));
    expect(kinds().filter((k) => k === 'silent')).toHaveLength(1);

    expect((await report(BEAT)).status).toBe(200);
    expect(node()!.liveness).toBe('active');
    expect(kinds()).toEqual(['installed', 'booted-from-disk', 'silent', 'active']);
    const m = metrics();
    expect(m).toMatch(/^podboot_nodes_liveness\{state="active"\} 1$/m);
    expect(m).toMatch(/^podboot_nodes_liveness\{state="silent"\} 0$/m);
  });

  it('podboot nodes and the central API show liveness and the last heartbeat', async () => {
    expect((await report(BEAT)).status).toBe(200);
    const listed = JSON.parse(await cli(nodesListCommand, '--json')) as Record<string, unknown>[];
    const { state: _s, ...figures } = BEAT;
    expect(listed.find((n) => n.mac === MAC)).toMatchObject({ state: 'booted-from-disk', liveness: 'active', heartbeat: { metrics: figures } });
    expect((await cli(nodesListCommand)).split('\n').find((l) => l.startsWith(MAC))).toMatch(/\sactive\s+\S+$/);
    // --wide: the last heartbeat's figures too.
    const table = (await cli(nodesListCommand, '--wide')).split('\n');
    expect(table[0]).toMatch(/LIVENESS\s+POD\s+CHANGED\s+UPTIME\s+LOAD\s+MEM\s+DISK$/);
    // 93784 s = 1 day 2 h; half the memory and a quarter of the disk in use.
    expect(table.find((l) => l.startsWith(MAC))).toMatch(/\sactive\s+\S+\s+\S+\s+1d02h\s+0\.52\/0\.40\/0\.31\s+50%\s+25%$/);
    const shown = (await cli(nodesShowCommand, MAC)).split('\n');
    expect(shown.find((l) => l.startsWith('  state'))).toMatch(/^ {2}state +booted-from-disk /);
    expect(shown.find((l) => l.startsWith('  last seen'))).toMatch(/ active$/);
    expect(shown.find((l) => l.startsWith('  heartbeat'))).toMatch(
      /^ {2}heartbeat +\S+ {2}uptime 1d02h {2}load 0\.52 0\.40 0\.31 {2}memory 1\.0 GiB used of 2\.0 GiB {2}disk 10\.0 GiB used of 40\.0 GiB$/,
    );
    expect(JSON.parse(await cli(nodesShowCommand, MAC, '--json')).node).toMatchObject({ liveness: 'active', heartbeat: { metrics: figures } });
    expect(podNodes(root, POD).find((n) => n.mac === MAC)).toMatchObject({ liveness: 'active', heartbeat: { metrics: figures } });
    expect(podNode(root, POD, MAC).node).toMatchObject({ liveness: 'active', heartbeat: { metrics: figures } });
  });

  it('a restarted pod still knows a silent server, and counts silence from its own start', async () => {
    await until('silent');
    // A server that was active an hour ago, while this pod was down.
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    pod.nodeState.changeInstallState({ mac: OLD, state: 'booted-from-disk', time: hourAgo });
    pod.nodeState.setLiveness(OLD, 'active');
    await pod.stop();
    const restarted = Math.floor(Date.now() / 1000);
    pod = await startPod();
    expect(node()!.liveness).toBe('silent');
    await until('silent', OLD);
    const silent = pod.nodeState.events(OLD, 1)[0]!;
    expect(silent).toMatchObject({ kind: 'silent', detail: `last seen ${new Date(hourAgo * 1000).toISOString()}` });
    expect(silent.time - restarted).toBeGreaterThanOrEqual(3);
    // The restart itself is no sign of life.
    expect(kinds().filter((k) => k === 'active')).toHaveLength(1);
    expect((await report(BEAT)).status).toBe(200);
    expect(node()!.liveness).toBe('active');
  });
});
