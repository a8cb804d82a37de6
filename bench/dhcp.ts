// DHCP DORA rate, relayed: perfdhcp (acting as the relay, giaddr set) against
// podboot and against Kea memfile with persist on, same topology, same
// steps, alternating server by server. Every podboot lease is committed to
// SQLite before its ACK; Kea appends to its CSV before its ACK.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Bench } from './bench.js';
import { DEFAULT_INSTANCE_NODE_OPTIONS } from '../src/pod-vm/node-options.js';
import { cpuSeconds, median, nsCreate, nsDelete, percentile, pinned, sh, spawnLogged, stopProcess, table, waitUntil, PODBOOT_CLI } from './lib.js';

const SNS = 'pbb-dsrv';
const CNS = 'pbb-dcli';
const SRV = '198.51.100.1';
const RELAY = '10.16.0.2';
const SRV_CPU = process.env.SRV_CPUS ?? '1';
const CLI_CPU = process.env.CLI_CPUS ?? '0';
/** perfdhcp's full output per step, kept for reading after the run */
const RESULTS = join(tmpdir(), 'podboot-bench', 'dhcp');

type Server = 'podboot' | 'kea';

interface Step {
  server: Server;
  rate: number;
  leasesPerSec: number;
  doDrop: number;
  raDrop: number;
  pass: boolean;
  p50ms: number;
  p99ms: number;
  /** server CPU over the step, % of one core */
  cpu: number;
}

function setupNet(): void {
  nsCreate(SNS);
  nsCreate(CNS);
  sh('ip', ['link', 'add', 'pbb0', 'netns', SNS, 'type', 'veth', 'peer', 'name', 'pbb1', 'netns', CNS]);
  sh('ip', ['-n', SNS, 'addr', 'add', `${SRV}/24`, 'dev', 'pbb0']);
  sh('ip', ['-n', SNS, 'link', 'set', 'pbb0', 'up']);
  sh('ip', ['-n', SNS, 'route', 'add', '10.16.0.0/12', 'dev', 'pbb0']);
  sh('ip', ['-n', CNS, 'addr', 'add', `${RELAY}/12`, 'dev', 'pbb1']);
  sh('ip', ['-n', CNS, 'link', 'set', 'pbb1', 'up']);
  sh('ip', ['-n', CNS, 'route', 'add', `${SRV}/32`, 'dev', 'pbb1']);
}

function podYaml(): string {
  return `apiVersion: podboot/v1
kind: Pod
metadata:
  name: bench
spec:
  listen: { address: ${SRV}, dhcpPort: 67 }
  relays: [${RELAY}]
  subnets:
    - { cidr: 10.16.0.0/12, gateway: 10.16.0.1, pool: 10.16.0.10-10.31.255.250, leaseTime: 1h }
`;
}

function keaConf(dir: string): string {
  return JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: [`pbb0/${SRV}`], 'dhcp-socket-type': 'udp' },
      'lease-database': { type: 'memfile', persist: true, name: join(dir, 'kea-leases4.csv'), 'lfc-interval': 0 },
      'valid-lifetime': 3600,
      'renew-timer': 1800,
      'rebind-timer': 3150,
      subnet4: [
        {
          id: 1,
          subnet: '10.16.0.0/12',
          pools: [{ pool: '10.16.0.10 - 10.31.255.250' }],
          relay: { 'ip-addresses': [RELAY] },
          'option-data': [{ name: 'routers', data: '10.16.0.1' }],
        },
      ],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: join(dir, 'kea.log') }], severity: 'WARN' }],
    },
  });
}

async function startServer(server: Server, dir: string): Promise<ChildProcess> {
  rmSync(join(dir, 'state'), { recursive: true, force: true });
  rmSync(join(dir, 'kea-leases4.csv'), { force: true });
  let proc: ChildProcess;
  if (server === 'podboot') {
    writeFileSync(join(dir, 'pod.yaml'), podYaml());
    proc = spawnLogged(
      // With the V8 flags `podboot serve` gives its instances: what ships.
      pinned(SRV_CPU, ['ip', 'netns', 'exec', SNS, process.execPath, ...DEFAULT_INSTANCE_NODE_OPTIONS.split(' '), PODBOOT_CLI, 'pod', 'run', join(dir, 'pod.yaml'), '--state', join(dir, 'state')]),
      join(dir, 'podboot.log'),
      { PODBOOT_LOG_LEVEL: 'warn' },
    );
  } else {
    writeFileSync(join(dir, 'kea.json'), keaConf(dir));
    proc = spawnLogged(pinned(SRV_CPU, ['ip', 'netns', 'exec', SNS, 'kea-dhcp4', '-c', join(dir, 'kea.json')]), join(dir, 'kea.out'), {
      KEA_PIDFILE_DIR: dir,
      KEA_LOCKFILE_DIR: dir,
    });
  }
  await waitUntil(() => sh('ip', ['netns', 'exec', SNS, 'ss', '-Hlun', 'sport = :67']).trim() !== '' || proc.exitCode !== null, 15_000, `${server} to listen`);
  if (proc.exitCode !== null) throw new Error(`${server} exited at start (see ${dir})`);
  return proc;
}

function stat(out: string, section: string, field: string): number {
  const at = out.indexOf(`Statistics for: ${section}`);
  const m = out.slice(at).match(new RegExp(`${field}: ([\\d.]+)`));
  return m ? Number(m[1]) : NaN;
}

/** Per-exchange delays (ms) from perfdhcp -x t timestamp sections. */
function delays(out: string, section: string): number[] {
  const start = out.indexOf(`***Timestamps for packets: ${section}`);
  if (start < 0) return [];
  const rest = out.slice(out.indexOf('\n', start) + 1);
  const end = rest.indexOf('***');
  const body = end < 0 ? rest : rest.slice(0, end);
  const xs: number[] = [];
  for (const m of body.matchAll(/sent \/ received: ([\d.]+) \/ ([\d.]+)/g)) xs.push((Number(m[2]) - Number(m[1])) * 1000);
  return xs;
}

async function runStep(server: Server, rate: number, period: number, dir: string, withLatency: boolean): Promise<Step> {
  const proc = await startServer(server, dir);
  try {
    const args = ['-4', '-l', RELAY, '-L', '67', '-r', String(rate), '-R', '16000000', '-p', String(period), '-d', '1', '-W', '1000000'];
    if (withLatency) args.push('-x', 't');
    const cpu0 = cpuSeconds(proc.pid);
    const t0 = performance.now();
    const out = sh('timeout', [String(period + 30), ...pinned(CLI_CPU, ['ip', 'netns', 'exec', CNS, 'perfdhcp', ...args, SRV])], { allowFail: true });
    const cpu = (100 * (cpuSeconds(proc.pid) - cpu0)) / ((performance.now() - t0) / 1000);
    writeFileSync(join(RESULTS, `perfdhcp-${server}-${rate}${withLatency ? '-latency' : ''}.txt`), out);
    const acks = stat(out, 'REQUEST-ACK', 'received packets');
    const doDrop = stat(out, 'DISCOVER-OFFER', 'drops ratio');
    const raDrop = stat(out, 'REQUEST-ACK', 'drops ratio');
    const leasesPerSec = Math.round(acks / period);
    const all = withLatency ? [...delays(out, 'DISCOVER-OFFER'), ...delays(out, 'REQUEST-ACK')] : [];
    return {
      server,
      rate,
      leasesPerSec,
      doDrop,
      raDrop,
      pass: doDrop < 1 && raDrop < 1 && leasesPerSec >= 0.95 * rate,
      p50ms: percentile(all, 50),
      p99ms: percentile(all, 99),
      cpu,
    };
  } finally {
    await stopProcess(proc);
  }
}

/** Highest passing rate from a stepped ramp, bisecting once after the first failure. */
async function maxRate(server: Server, rates: number[], period: number, dir: string, log: (s: Step) => void): Promise<number> {
  let best = 0;
  for (const rate of rates) {
    const s = await runStep(server, rate, period, dir, false);
    log(s);
    if (s.pass) {
      best = Math.max(best, s.leasesPerSec);
      continue;
    }
    if (best > 0) {
      const mid = Math.round((best + rate) / 2);
      const m = await runStep(server, mid, period, dir, false);
      log(m);
      if (m.pass) best = Math.max(best, m.leasesPerSec);
    }
    break;
  }
  return best;
}

export const dhcpBench: Bench = {
  name: 'dhcp',
  summary: 'relayed DORA leases/s and latency: podboot vs Kea memfile (persist on), perfdhcp, alternating',
  async run(flags) {
    const quick = flags.includes('--quick');
    const rounds = quick ? 1 : 3;
    const period = quick ? 4 : 8;
    const ratesFlag = flags.find((f) => f.startsWith('--rates='));
    const rates = ratesFlag ? ratesFlag.slice(8).split(',').map(Number) : quick ? [2000, 4000, 8000] : [2000, 4000, 6000, 8000, 10000, 12000, 16000, 20000];
    const dir = mkdtempSync(join(tmpdir(), 'pbb-dhcp-'));
    mkdirSync(RESULTS, { recursive: true });
    const versions = `kea-dhcp4 ${sh('kea-dhcp4', ['-v'], { allowFail: true }).trim()}, perfdhcp ${sh('perfdhcp', ['-v'], { allowFail: true }).split('\n')[0]?.trim()}, node ${process.version} (pod: ${DEFAULT_INSTANCE_NODE_OPTIONS})`;
    process.stdout.write(`# ${versions}; perfdhcp output in ${RESULTS}; server pinned to CPU ${SRV_CPU}, perfdhcp to CPU ${CLI_CPU}; ${period}s steps; ${rounds} rounds\n`);
    const best: Record<Server, number[]> = { podboot: [], kea: [] };
    const lat: Record<Server, Step[]> = { podboot: [], kea: [] };
    const log = (s: Step) =>
      process.stdout.write(
        `  ${s.server.padEnd(7)} target ${String(s.rate).padStart(6)}/s → ${String(s.leasesPerSec).padStart(6)} leases/s, drops DO ${s.doDrop}% RA ${s.raDrop}%, server CPU ${s.cpu.toFixed(0)}% ${s.pass ? 'PASS' : 'FAIL'}${Number.isFinite(s.p99ms) ? `, p50 ${s.p50ms.toFixed(2)} ms p99 ${s.p99ms.toFixed(2)} ms` : ''}\n`,
      );
    try {
      setupNet();
      for (let round = 1; round <= rounds; round++) {
        // A B, then B A: neither server always runs on a warmer or quieter machine.
        const order: Server[] = round % 2 ? ['kea', 'podboot'] : ['podboot', 'kea'];
        for (const server of order) {
          process.stdout.write(`round ${round} ${server}\n`);
          best[server].push(await maxRate(server, rates, period, dir, log));
        }
      }
      // Latency for both at one rate: 80% of the lower median maximum, so the
      // comparison is at equal load (and perfdhcp -x t is not itself the limit).
      const latencyRate = Math.round(0.8 * Math.min(median(best.podboot), median(best.kea)));
      for (const server of ['kea', 'podboot'] as Server[]) {
        const rate = latencyRate;
        if (rate > 0) {
          const s = await runStep(server, rate, period, dir, true);
          log(s);
          lat[server].push(s);
        }
      }
    } finally {
      nsDelete(SNS);
      nsDelete(CNS);
      rmSync(dir, { recursive: true, force: true });
    }
    const mp = median(best.podboot);
    const mk = median(best.kea);
    process.stdout.write(
      '\n' +
        table([
          ['server', 'max leases/s (per round)', 'median', 'p50 ms @80% of lower max', 'p99 ms'],
          ...(['podboot', 'kea'] as Server[]).map((s) => [s, best[s].join(' '), median(best[s]), lat[s][0]?.p50ms.toFixed(2) ?? 'n/a', lat[s][0]?.p99ms.toFixed(2) ?? 'n/a']),
        ]) +
        `\nSUMMARY dhcp podboot/kea = ${(mp / mk).toFixed(2)}x (target >= 1.0x; p99 @80% target < 5 ms)\n`,
    );
  },
};
