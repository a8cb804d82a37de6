// Boot storm (TARGETS.md: 200 simulated servers through DHCP → TFTP → HTTPS
// on one pod, 0 failures, time reported): a whole rack powered on at once.
// One pod (`podboot pod run`, the built stage1 laid into its boot tree, a
// signed random stage2 onboarded) in a namespace of its own; the simulated
// rack (bench/storm-client.ts) relays its DHCP from 10.89.0.1 and speaks
// from the addresses it leases (10.89.0.0/16 is local on lo). Pod pinned to
// CPU 1, the rack to CPU 0. No peer: no anchor server walks this whole chain.
// Boot-storm admission is on (spec.imageStreams, below the number of
// servers): the rack waits out the pod's 503s, and the pod's own metrics
// (its metrics socket, read before it stops) give the peak of concurrent
// image streams, the 503s and the DHCP datagrams it dropped.
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPodState } from '../src/store/pod-state.js';
import type { Bench } from './bench.js';
import { cpuSeconds, median, nsCreate, nsDelete, onboardSignedStage2, percentile, pinned, sh, spawnLogged, stopProcess, table, waitUntil, writeRandomFile, PODBOOT_CLI } from './lib.js';
import { PHASES, type ServerResult, type StormConfig } from './storm-client.js';

const NS = 'pbb-storm';
const POD = 'storm';
const POD_ADDR = '10.88.0.1';
const RELAY = '10.89.0.1';
const PORTS = { dhcp: 67, tftp: 69, http: 8080, https: 443 };
const STAGE1 = new URL('../../.cache/stage1', import.meta.url).pathname;
const CLIENT = new URL('./storm-client.js', import.meta.url).pathname;

function flag(flags: string[], name: string, dflt: number): number {
  const f = flags.find((x) => x.startsWith(`--${name}=`));
  return f ? Number(f.split('=')[1]) : dflt;
}

/** What the bench's pod admits: the pod file's defaults, so a 200-server rack is held to 16 streams at a time. */
export const STORM_IMAGE_STREAMS = { perPod: 64, perRack: 16 };

function podYaml(streams: { perPod: number; perRack: number }): string {
  return `apiVersion: podboot/v1
kind: Pod
metadata: { name: ${POD} }
spec:
  listen: { address: ${POD_ADDR}, dhcpPort: ${PORTS.dhcp}, tftpPort: ${PORTS.tftp}, httpPort: ${PORTS.http}, httpsPort: ${PORTS.https} }
  relays: [${RELAY}]
  subnets:
    - { cidr: 10.89.0.0/16, gateway: ${RELAY}, pool: 10.89.1.0-10.89.3.254, leaseTime: 1h }
  unknownNodes: provision
  boot: { stage1: http }
  stage2: { image: stage2-lab, version: "1.0" }
  imageStreams: { perPod: ${streams.perPod}, perRack: ${streams.perRack} }
`;
}

function runClient(cfg: StormConfig, cpu: string | undefined): Promise<{ wallMs: number; results: ServerResult[]; peakStreams: number }> {
  return new Promise((resolve, reject) => {
    const argv = pinned(cpu, ['ip', 'netns', 'exec', NS, process.execPath, CLIENT, JSON.stringify(cfg)]);
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (process.env.STORM_TRACE) process.stderr.write(d);
    });
    // The client bounds itself (deadlineMs); this only catches a hung process.
    const t = setTimeout(() => p.kill('SIGKILL'), cfg.deadlineMs + 30_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      try {
        const r = JSON.parse(out.trim().split('\n').at(-1) ?? '') as { wallMs: number; results: ServerResult[]; peakStreams: number; error?: string };
        if (r.error) return reject(new Error(`storm client: ${r.error}`));
        resolve(r);
      } catch {
        reject(new Error(`storm client exited ${code}: ${err.slice(-2000)}${out.slice(-500)}`));
      }
    });
  });
}

/** The pod's own figures, from its metrics socket (src/pod/channels.ts). */
export interface StormPodMetrics {
  /** most image streams at once (podboot_http_image_streams_peak) */
  peakStreams: number;
  /** image requests answered 503 busy */
  refused: number;
  /** DHCP datagrams the pod dropped, any reason */
  dhcpDropped: number;
}

/** Samples of one family (summed over labels) in Prometheus text. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

function scrape(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path: '/metrics', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`metrics: ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('metrics: timed out')));
    req.on('error', reject);
    req.end();
  });
}

export interface StormRound {
  wallMs: number;
  results: ServerResult[];
  /** most image downloads running at once, as the rack counted them */
  peakStreams: number;
  /** the pod's own count; undefined when its metrics could not be read */
  pod?: StormPodMetrics;
  /** servers the pod's own database has as installed afterwards */
  installed: number;
  /** CPU seconds the pod used during the storm */
  podCpu: number;
  /** error lines from the pod's log */
  podErrors: string[];
}

/**
 * One storm against a fresh pod: namespace, CA, the signed stage2 onboarded,
 * `pod run` with the built stage1, the simulated rack; everything removed
 * afterwards. Also used by test/integration/pod/storm.test.ts.
 */
export async function stormRound(o: {
  work: string;
  name: string;
  servers: number;
  spreadMs: number;
  stage2: string;
  pin?: { pod: string; rack: string };
  imageStreams?: { perPod: number; perRack: number };
}): Promise<StormRound> {
  nsCreate(NS);
  const state = join(o.work, `state-${o.name}`);
  const ca = join(o.work, `ca-${o.name}`);
  const podState = join(state, POD);
  const podFile = join(o.work, `pod-${o.name}.yaml`);
  const logFile = join(o.work, `pod-${o.name}.log`);
  try {
    sh('ip', ['-n', NS, 'addr', 'add', `${POD_ADDR}/32`, 'dev', 'lo']);
    sh('ip', ['-n', NS, 'addr', 'add', `${RELAY}/16`, 'dev', 'lo']);
    onboardSignedStage2(PODBOOT_CLI, o.work, ca, podState, o.stage2);
    writeFileSync(podFile, podYaml(o.imageStreams ?? STORM_IMAGE_STREAMS));
    const pod = spawnLogged(pinned(o.pin?.pod, ['ip', 'netns', 'exec', NS, process.execPath, PODBOOT_CLI, 'pod', 'run', podFile, '--state', state, '--ca', ca, '--stage1', STAGE1]), logFile, {
      PODBOOT_LOG_LEVEL: 'warn',
    });
    try {
      await waitUntil(() => sh('ip', ['netns', 'exec', NS, 'ss', '-Hltn', `sport = :${PORTS.https}`]).trim() !== '' || pod.exitCode !== null, 60_000, 'the pod to listen');
      if (pod.exitCode !== null) throw new Error(`pod exited at start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      const cpu0 = cpuSeconds(pod.pid);
      const cfg: StormConfig = {
        servers: o.servers,
        spreadMs: o.spreadMs,
        pod: POD_ADDR,
        dhcpPort: PORTS.dhcp,
        tftpPort: PORTS.tftp,
        httpsPort: PORTS.https,
        relay: RELAY,
        ca: join(podState, 'tls', 'root.pem'),
        macPrefix: '52:54:00:89:00',
        deadlineMs: 600_000,
      };
      const { wallMs, results, peakStreams } = await runClient(cfg, o.pin?.rack);
      const podCpu = cpuSeconds(pod.pid) - cpu0;
      const metrics = await scrape(join(podState, 'metrics.sock')).catch((err: Error) => {
        process.stdout.write(`  the pod's metrics could not be read: ${err.message}\n`);
        return undefined;
      });
      const podMetrics: StormPodMetrics | undefined = metrics
        ? {
            peakStreams: metricSum(metrics, 'podboot_http_image_streams_peak'),
            refused: metricSum(metrics, 'podboot_http_image_streams_refused_total'),
            dhcpDropped: metricSum(metrics, 'podboot_dhcp_dropped_total'),
          }
        : undefined;
      await stopProcess(pod);
      const podErrors = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => /"level":"(error|fatal)"/.test(l));
      // The pod's own record: every server installed, one row each.
      const view = openPodState(podState, { readonly: true });
      const installed = view?.nodes().filter((n) => n.state === 'installed').length ?? 0;
      view?.close();
      return { wallMs, results, peakStreams, ...(podMetrics ? { pod: podMetrics } : {}), installed, podCpu, podErrors };
    } finally {
      await stopProcess(pod);
    }
  } finally {
    nsDelete(NS);
  }
}

/** Builds stage1 into .cache/stage1 unless it is there (npm test's global setup keeps it). */
export function ensureStage1(): void {
  if (existsSync(join(STAGE1, 'stage1', 'initrd.img'))) return;
  process.stdout.write(`# building stage1 into ${STAGE1}\n`);
  sh(process.execPath, [PODBOOT_CLI, 'images', 'build-stage1', '--out', STAGE1], { timeoutMs: 900_000 });
}

export const stormBench: Bench = {
  name: 'storm',
  summary:
    'boot storm: N simulated servers (default 200) at once through relayed DHCP → TFTP → HTTP → HTTPS stage2 → installed on one pod, image streams admitted 64 per pod and 16 per rack (--servers=N --spread=ms --stage2-mib=N --rounds=N --per-pod=N --per-rack=N)',
  async run(flags) {
    const servers = Math.min(250, Math.max(1, flag(flags, 'servers', 200)));
    const spreadMs = flag(flags, 'spread', 1000);
    const stage2MiB = flag(flags, 'stage2-mib', flags.includes('--quick') ? 8 : 32);
    const rounds = Math.max(1, flag(flags, 'rounds', flags.includes('--quick') ? 1 : 3));
    const imageStreams = { perPod: flag(flags, 'per-pod', STORM_IMAGE_STREAMS.perPod), perRack: flag(flags, 'per-rack', STORM_IMAGE_STREAMS.perRack) };
    ensureStage1();
    const work = mkdtempSync(join(tmpdir(), 'pbb-storm-'));
    chmodSync(work, 0o755);
    const file = join(work, 'stage2.img');
    writeRandomFile(file, stage2MiB * 1024 * 1024);
    process.stdout.write(
      `# ${servers} servers within ${spreadMs} ms, stage2 ${stage2MiB} MiB, ${rounds} rounds, image streams ${imageStreams.perPod} per pod / ${imageStreams.perRack} per rack (one rack); pod on CPU 1, rack on CPU 0; node ${process.version}; load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; logs in ${work}\n`,
    );
    const rows: (string | number)[][] = [];
    let failedTotal = 0;
    let dropsTotal = 0;
    const peaks: string[] = [];
    try {
      for (let round = 1; round <= rounds; round++) {
        const r = await stormRound({ work, name: `round-${round}`, servers, spreadMs, stage2: file, pin: { pod: '1', rack: '0' }, imageStreams });
        const { wallMs, results, installed, podCpu } = r;
        const failed = results.filter((x) => !x.ok);
        failedTotal += failed.length;
        for (const f of failed.slice(0, 5)) process.stdout.write(`  round ${round}: ${f.mac} failed at ${f.failedAt}: ${f.error}\n`);
        if (r.podErrors.length) process.stdout.write(`  round ${round}: the pod logged ${r.podErrors.length} error(s), first: ${r.podErrors[0]!.slice(0, 300)}\n`);
        const ok = results.filter((x) => x.ok);
        const phase = (p: (typeof PHASES)[number]) => ok.map((x) => x.phases[p] ?? NaN);
        const total = ok.map((x) => Object.values(x.phases).reduce((acc, v) => acc + v, 0));
        const bytes = results.reduce((acc, x) => acc + x.bytes, 0);
        const retries = results.reduce((acc, x) => acc + x.dhcpRetries, 0);
        // A DISCOVER without its OFFER or a REQUEST without its ACK: a datagram lost or not answered.
        const drops = results.reduce((acc, x) => acc + (x.dhcp.discovers - x.dhcp.offers) + (x.dhcp.requests - x.dhcp.acks), 0);
        const podDrops = r.pod?.dhcpDropped ?? NaN;
        dropsTotal += drops + (Number.isNaN(podDrops) ? 0 : podDrops);
        const busy = results.reduce((acc, x) => acc + x.busy, 0);
        const waited = results.filter((x) => x.busy > 0).map((x) => x.busyWaitMs / 1000);
        const peak = `${r.pod?.peakStreams ?? '?'} · ${r.peakStreams}`;
        peaks.push(peak);
        rows.push([
          round,
          `${ok.length}/${servers}`,
          installed,
          (wallMs / 1000).toFixed(1),
          `${(median(total) / 1000).toFixed(1)} / ${(percentile(total, 90) / 1000).toFixed(1)} / ${(Math.max(...total) / 1000).toFixed(1)}`,
          ...PHASES.map((p) => `${(median(phase(p)) / 1000).toFixed(2)} / ${(percentile(phase(p), 90) / 1000).toFixed(2)}`),
          retries,
          `${drops} · ${podDrops}`,
          peak,
          `${busy} · ${r.pod?.refused ?? '?'}`,
          `${waited.length} · ${waited.length ? median(waited).toFixed(0) : 0} / ${waited.length ? Math.max(...waited).toFixed(0) : 0}`,
          (bytes / 1e9).toFixed(2),
          podCpu.toFixed(1),
        ]);
        process.stdout.write(
          `  round ${round}: ${ok.length}/${servers} installed (pod DB: ${installed}) in ${(wallMs / 1000).toFixed(1)} s, ${(bytes / 1e9).toFixed(2)} GB, pod CPU ${podCpu.toFixed(1)} s, DHCP retries ${retries}, DHCP drops ${drops} (pod: ${podDrops}), peak image streams ${peak} (pod · rack), 503s ${busy}\n`,
        );
      }
    } finally {
      if (!flags.includes('--keep')) rmSync(work, { recursive: true, force: true });
    }
    process.stdout.write(
      '\n' +
        table([
          [
            'round',
            'ok',
            'installed (pod DB)',
            'wall s',
            'per server s p50 / p90 / max',
            ...PHASES.map((p) => `${p} s p50 / p90`),
            'DHCP retries',
            'DHCP drops rack · pod',
            'peak streams pod · rack',
            '503s rack · pod',
            'servers held · wait s p50 / max',
            'GB',
            'pod CPU s',
          ],
          ...rows,
        ]) +
        '\n',
    );
    const pass = failedTotal === 0 && dropsTotal === 0;
    process.stdout.write(
      `SUMMARY storm: ${servers} servers × ${rounds} rounds, ${failedTotal} failures, ${dropsTotal} DHCP drops, wall ${rows.map((r) => r[3]).join(' · ')} s, peak image streams ${peaks.join(' · ')} (limit ${imageStreams.perPod}/${imageStreams.perRack}) ${pass ? 'PASS' : 'FAIL'}\n`,
    );
  },
};
