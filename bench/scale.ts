// F11 sizing: how many pod instances one central node carries. For 10, 50
// and 100 pods (all idle): time from `podboot serve` to every instance ready,
// memory per idle instance (RSS, and PSS which counts shared pages once),
// memory the machine lost per instance, and the latency of the central
// node's aggregated /metrics scrape. No peer: the targets are absolute
// (TARGETS.md: ≤ 60 MiB per idle instance, 100 pods within 30 s and 8 GiB,
// scrape of 100 pods < 1 s). Runs in a namespace of its own.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bench } from './bench.js';
import { cpuSeconds, median, nsCreate, nsDelete, percentile, PODBOOT_CLI, sh, spawnLogged, stopProcess, table, waitUntil } from './lib.js';

const NS = 'pbb-scale';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function podYaml(i: number): string {
  const net = `10.${100 + (i >> 8)}.${i & 255}`;
  return `apiVersion: podboot/v1
kind: Pod
metadata:
  name: pod-${String(i).padStart(3, '0')}
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${20000 + i}, tftpPort: ${22000 + i}, httpPort: ${24000 + i}, httpsPort: ${26000 + i} }
  relays: [${net}.1]
  subnets:
    - { cidr: ${net}.0/24, gateway: ${net}.1, pool: ${net}.100-${net}.199 }
`;
}

function kib(file: string, field: string): number {
  try {
    const m = readFileSync(file, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

interface Step {
  pods: number;
  /** serve started → every instance ready (its sockets open) */
  startSec: number;
  /** serve started → every instance's DHCP warm-up done */
  warmSec: number;
  rssMiB: number;
  pssMiB: number;
  machineMiB: number;
  supervisorMiB: number;
  scrapeP50ms: number;
  scrapeP90ms: number;
  fits8GiB: number;
  /** CPU each instance used from its start to the measurement (start-up dominates) */
  cpuSecPerInstance: number;
}

async function runStep(n: number, dir: string, idleSec: number, scrapes: number, nodeOptions: string | undefined): Promise<Step> {
  const podsDir = join(dir, `pods-${n}`);
  const state = join(dir, `state-${n}`);
  mkdirSync(podsDir);
  for (let i = 0; i < n; i++) writeFileSync(join(podsDir, `pod-${i}.yaml`), podYaml(i));
  const logFile = join(dir, `serve-${n}.log`);
  sh('sync', []);
  const availBefore = kib('/proc/meminfo', 'MemAvailable');
  const started = Date.now();
  const proc = spawnLogged(
    [
      'ip',
      'netns',
      'exec',
      NS,
      process.execPath,
      PODBOOT_CLI,
      'serve',
      '--pods',
      podsDir,
      '--state',
      state,
      '--api',
      '127.0.0.1:0',
      ...(nodeOptions ? [`--instance-node-options=${nodeOptions}`] : []),
    ],
    logFile,
    { PODBOOT_LOG_LEVEL: 'info' },
  );
  try {
    const ready = () => (readFileSync(logFile, 'utf8').match(/"msg":"pod instance ready"/g) ?? []).length;
    await waitUntil(() => ready() >= n || proc.exitCode !== null, 300_000, `${n} instances ready`);
    if (proc.exitCode !== null) throw new Error(`podboot serve exited (see ${logFile})`);
    const startSec = (Date.now() - started) / 1000;
    // Then each instance warms its DHCP code up (src/dhcp/warmup.ts), once none is left starting.
    const warmed = () => {
      let k = 0;
      for (let i = 0; i < n; i++) {
        try {
          if (readFileSync(join(state, `pod-${String(i).padStart(3, '0')}`, 'instance.log'), 'utf8').includes('"msg":"DHCP warm-up done"')) k++;
        } catch {
          // not started yet
        }
      }
      return k;
    };
    await waitUntil(() => warmed() >= n || proc.exitCode !== null, 300_000, `${n} instances warmed up`);
    const warmSec = (Date.now() - started) / 1000;
    // Idle, as a pod waiting for its racks is most of the time.
    await sleep(idleSec * 1000);
    const pids = sh('ip', ['netns', 'pids', NS])
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((p) => p !== proc.pid);
    const rss = pids.map((p) => kib(`/proc/${p}/status`, 'VmRSS'));
    const pss = pids.map((p) => kib(`/proc/${p}/smaps_rollup`, 'Pss'));
    const availAfter = kib('/proc/meminfo', 'MemAvailable');
    const cpuSecPerInstance = pids.reduce((a, p) => a + cpuSeconds(p), 0) / pids.length;
    const supervisorRss = kib(`/proc/${proc.pid}/status`, 'VmRSS');
    const api = JSON.parse(readFileSync(join(state, 'central', 'api.json'), 'utf8')) as { url: string; ca: string; tokenFile: string };
    const token = readFileSync(api.tokenFile, 'utf8').trim();
    const times: number[] = [];
    for (let i = 0; i < scrapes; i++) {
      const out = sh('ip', [
        'netns',
        'exec',
        NS,
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{time_total}',
        '--cacert',
        api.ca,
        '-H',
        `Authorization: Bearer ${token}`,
        `${api.url}/metrics`,
      ]);
      const [code, t] = out.trim().split(' ');
      if (code !== '200') throw new Error(`/metrics answered ${code}`);
      times.push(Number(t) * 1000);
    }
    const meanPss = pss.reduce((a, b) => a + b, 0) / pss.length;
    return {
      pods: n,
      startSec,
      warmSec,
      rssMiB: rss.reduce((a, b) => a + b, 0) / rss.length / MiB,
      pssMiB: meanPss / MiB,
      machineMiB: (availBefore - availAfter) / n / MiB,
      supervisorMiB: supervisorRss / MiB,
      scrapeP50ms: median(times),
      scrapeP90ms: percentile(times, 90),
      cpuSecPerInstance,
      fits8GiB: Math.floor((8 * GiB - supervisorRss) / Math.max(meanPss, (availBefore - availAfter) / n)),
    };
  } finally {
    await stopProcess(proc);
  }
}

export const scaleBench: Bench = {
  name: 'scale',
  summary: 'pod instances per central node: start time, idle memory per instance, aggregated scrape latency (10/50/100 pods)',
  async run(flags) {
    const quick = flags.includes('--quick');
    const countsFlag = flags.find((f) => f.startsWith('--pods='));
    const counts = countsFlag ? countsFlag.slice(7).split(',').map(Number) : quick ? [10, 50] : [10, 50, 100];
    const idleSec = quick ? 5 : 15;
    // e.g. --node-options=--max-semi-space-size=1 (passed to serve --instance-node-options)
    const nodeOptions = flags.find((f) => f.startsWith('--node-options='))?.slice(15);
    const dir = mkdtempSync(join(tmpdir(), 'pbb-scale-'));
    // The instances run as their own unprivileged users: they must pass through to their state.
    chmodSync(dir, 0o711);
    process.stdout.write(`# node ${process.version}; instance node options: ${nodeOptions ?? "(serve's default)"}; ${idleSec}s idle before measuring; 20 scrapes each; logs in ${dir}\n`);
    const steps: Step[] = [];
    try {
      for (const n of counts) {
        nsCreate(NS);
        try {
          const s = await runStep(n, dir, idleSec, 20, nodeOptions);
          steps.push(s);
          process.stdout.write(
            `  ${n} pods: all ready in ${s.startSec.toFixed(1)} s, all warmed up in ${s.warmSec.toFixed(1)} s, RSS ${s.rssMiB.toFixed(1)} MiB / PSS ${s.pssMiB.toFixed(1)} MiB per instance, scrape p50 ${s.scrapeP50ms.toFixed(0)} ms\n`,
          );
        } finally {
          nsDelete(NS);
        }
      }
    } finally {
      if (!flags.includes('--keep')) rmSync(dir, { recursive: true, force: true });
    }
    process.stdout.write(
      '\n' +
        table([
          ['pods', 'all ready s', 'all warm s', 'CPU s/inst', 'RSS MiB/inst', 'PSS MiB/inst', 'MemAvailable lost MiB/inst', 'supervisor RSS MiB', 'scrape p50 ms', 'p90 ms', 'fits in 8 GiB'],
          ...steps.map((s) => [
            s.pods,
            s.startSec.toFixed(1),
            s.warmSec.toFixed(1),
            s.cpuSecPerInstance.toFixed(2),
            s.rssMiB.toFixed(1),
            s.pssMiB.toFixed(1),
            s.machineMiB.toFixed(1),
            s.supervisorMiB.toFixed(1),
            s.scrapeP50ms.toFixed(0),
            s.scrapeP90ms.toFixed(0),
            s.fits8GiB,
          ]),
        ]) +
        '\n',
    );
    const last = steps.at(-1);
    if (last) {
      const pass = last.pssMiB <= 60 && (last.pods < 100 || (last.startSec <= 30 && last.scrapeP90ms < 1000));
      process.stdout.write(
        `SUMMARY scale: ${last.pods} pods ready in ${last.startSec.toFixed(1)} s, ${last.pssMiB.toFixed(1)} MiB PSS (${last.rssMiB.toFixed(1)} MiB RSS) per idle instance, scrape p90 ${last.scrapeP90ms.toFixed(0)} ms, ~${last.fits8GiB} fit in 8 GiB ${pass ? 'PASS' : 'FAIL'}\n`,
      );
    }
  },
};
