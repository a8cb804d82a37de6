// HTTPS stage2 download: podboot's pod (`podboot pod run`, the real
// /v1/stage2/image route with a bearer token) against nginx with TLS 1.3 only
// (the ../shared/bench/https_bench.sh configuration: sendfile on, tcp_nopush,
// worker_processes auto), both serving the same file (one inode, hard links)
// with the same certificate and key (the pod's CA-issued ECDSA P-256 pair),
// curl clients trusting only the pod's root CA. Everything runs on loopback
// inside a private network namespace (pbb-https); clients speak from the
// pod's subnet (127.77.0.0/24, all local on lo).
//
//  - 1 client: server pinned to CPU 1, curl to CPU 0 (as the dhcp and tftp
//    benches);
//  - N concurrent clients (default 16), one token and one source address
//    each, aggregate = clients × size / wall time, twice:
//      "pinned": server on CPU 1, all curls on CPU 0: what one core of server
//        does, whatever its process model;
//      "unpinned": nobody pinned, as ../shared/bench/https_bench.sh does.
//        nginx (worker_processes auto) then runs 2 workers on the 2 cores
//        while a pod is one process with one event loop, and on loopback every
//        write wakes a local curl that preempts the server on its own core.
//        Real clients are other machines; this case shows the scheduling
//        effect, the pinned one the server's own cost.
//
// Before each measurement the file is read through once (this host's DAMON
// reclaim pages out cold page cache between runs), and the disk reads during
// the measurement are printed.
// Each measurement starts its server afresh with that case's pinning; servers
// alternate podboot/nginx, then nginx/podboot the next round. No kTLS on this
// kernel: neither side can sendfile() under TLS (nginx reads and SSL_write()s).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bench } from './bench.js';
import { median, nsCreate, nsDelete, onboardSignedStage2, pinned, sh, spawnLogged, stopProcess, table, waitUntil, writeRandomFile, PODBOOT_CLI } from './lib.js';

const NS = 'pbb-https';
const SRV_CPU = process.env.SRV_CPUS ?? '1';
const CLI_CPU = process.env.CLI_CPUS ?? '0';
const POD = 'bench';
const PORTS = { dhcp: 10067, tftp: 10069, http: 8080, https: 443, nginx: 8443 };
const PATH = '/v1/stage2/image';
/** another podboot build to measure (e.g. the previous commit's dist/src/cli/main.js) */
const CLI = process.env.PODBOOT_BENCH_CLI ?? PODBOOT_CLI;

type Server = 'podboot' | 'nginx';
type Case = 'single' | 'pinned' | 'unpinned';
const CASES: Case[] = ['single', 'pinned', 'unpinned'];

interface Measure {
  /** MB/s: curl's speed_download for one client, clients × bytes / wall for many */
  mbps: number;
  ok: number;
  seconds: number;
  /** server CPU over the transfer, % of one core */
  serverCpu: number;
  /** server CPU seconds per GB delivered: the cost per byte, which other users of the machine disturb far less than speed */
  cpuPerGB: number;
  /** all curl processes' CPU over the transfer, % of one core */
  clientCpu: number;
  /** the machine's busy % just before */
  preBusy: number;
  /** MB read from block devices during the transfer (should be ~0: the file is in the page cache) */
  diskMB: number;
}

function flag(flags: string[], names: string[], dflt: number): number {
  for (const name of names) {
    const f = flags.find((x) => x.startsWith(`--${name}=`));
    if (f) return Number(f.split('=')[1]);
  }
  return dflt;
}

const log = (line: string) => process.stdout.write(line + '\n');
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

const mac = (i: number) => `52:54:00:77:01:${i.toString(16).padStart(2, '0')}`;
const clientAddr = (i: number) => `127.77.0.${10 + i}`;

function podYaml(clients: number): string {
  const nodes = Array.from({ length: clients }, (_, i) => `    - { mac: "${mac(i)}", hostname: n${i}, address: ${clientAddr(i)} }`).join('\n');
  return `apiVersion: podboot/v1
kind: Pod
metadata: { name: ${POD} }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${PORTS.dhcp}, tftpPort: ${PORTS.tftp}, httpPort: ${PORTS.http}, httpsPort: ${PORTS.https} }
  relays: [127.77.0.1]
  subnets:
    - { cidr: 127.77.0.0/24, gateway: 127.77.0.1, pool: 127.77.0.100-127.77.0.199 }
  nodes:
${nodes}
  unknownNodes: ignore
  stage2: { image: stage2-lab, version: "1.0" }
`;
}

function nginxConf(work: string, file: string, tls: { cert: string; key: string }): string {
  // As ../shared/bench/https_bench.sh, with the pod's certificate and the pod's URL.
  return `worker_processes auto;
pid ${work}/nginx/nginx.pid;
error_log ${work}/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${work}/nginx/tmp; proxy_temp_path ${work}/nginx/tmp; fastcgi_temp_path ${work}/nginx/tmp;
  uwsgi_temp_path ${work}/nginx/tmp; scgi_temp_path ${work}/nginx/tmp;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${PORTS.nginx} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.3;
    location = ${PATH} { alias ${file}; }
  }
}
`;
}

/** user+system seconds of a process and its descendants */
function treeCpu(pid: number | undefined): number {
  if (!pid) return NaN;
  let total = 0;
  const seen = [pid];
  for (let i = 0; i < seen.length && i < 64; i++) {
    try {
      const f = readFileSync(`/proc/${seen[i]}/stat`, 'utf8').split(') ')[1]!.split(' ');
      total += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      /* gone */
    }
    try {
      for (const t of readdirSync(`/proc/${seen[i]}/task`)) {
        for (const c of readFileSync(`/proc/${seen[i]}/task/${t}/children`, 'utf8').split(' ').filter(Boolean)) seen.push(Number(c));
      }
    } catch {
      /* gone */
    }
  }
  return total;
}

/** user+system seconds of this process's reaped children (every curl, once waited for) */
function childrenCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** KiB read from block devices since boot */
function pgpgin(): number {
  return Number(/^pgpgin (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? NaN);
}

/** Reads the file through (into the page cache); bounded by its size. */
function warm(path: string): void {
  const buf = Buffer.allocUnsafe(16 << 20);
  const fd = openSync(path, 'r');
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

function cpuTotals(): { busy: number; all: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const all = f.reduce((a, b) => a + b, 0);
  return { busy: all - idle, all };
}

/** Waits (bounded) until the machine is at most `pct`% busy over 1 s; returns the last figure. */
async function waitQuiet(pct: number, maxSeconds: number): Promise<number> {
  const deadline = Date.now() + maxSeconds * 1000;
  for (;;) {
    const a = cpuTotals();
    await sleep(1000);
    const b = cpuTotals();
    const busy = (100 * (b.busy - a.busy)) / Math.max(1, b.all - a.all);
    if (busy <= pct || Date.now() >= deadline) return busy;
  }
}

interface CurlResult {
  code: number | null;
  out: string;
}

function curl(args: string[], cpu: string | undefined, capMs: number): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const argv = pinned(cpu, ['ip', 'netns', 'exec', NS, 'curl', ...args]);
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), capMs);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

export const httpsBench: Bench = {
  name: 'https',
  summary: 'stage2 over HTTPS, 1 client and N concurrent (pinned, unpinned): podboot vs nginx TLS 1.3, alternating (--size=MiB --rounds=N --clients=N --cases=single,pinned,unpinned)',
  async run(flags) {
    const sizeMiB = flag(flags, ['size', 'size-mib'], flags.includes('--quick') ? 256 : 1024);
    const rounds = Math.max(flags.includes('--quick') ? 1 : 3, flag(flags, ['rounds'], 3));
    const clients = Math.min(64, Math.max(1, flag(flags, ['clients'], 16)));
    const quietMax = flag(flags, ['quiet-max'], 60);
    const casesFlag = flags.find((f) => f.startsWith('--cases='));
    const cases = casesFlag ? CASES.filter((c) => casesFlag.slice(8).split(',').includes(c)) : CASES;
    if (!cases.length) throw new Error(`--cases: one or more of ${CASES.join(',')}`);
    const label = (k: Case) => (k === 'single' ? '1 client' : `${clients} clients ${k}`);
    const bytes = sizeMiB * 1024 * 1024;
    const capMs = Math.max(120_000, ((clients * bytes) / 20e6) * 1000);

    const work = mkdtempSync(join(tmpdir(), 'pbb-https-'));
    chmodSync(work, 0o755);
    const state = join(work, 'state');
    const ca = join(work, 'ca');
    const podState = join(state, POD);
    const tls = { cert: join(podState, 'tls', 'server.pem'), key: join(podState, 'tls', 'server.key'), root: join(podState, 'tls', 'root.pem') };
    const www = join(work, 'www');
    const file = join(www, 'stage2.img');
    let server: ChildProcess | undefined;
    const tokens: string[] = [];

    const start = async (which: Server, cpu: string | undefined): Promise<ChildProcess> => {
      let p: ChildProcess;
      if (which === 'podboot') {
        const logFile = join(work, 'pod.log');
        writeFileSync(logFile, '');
        p = spawnLogged(pinned(cpu, ['ip', 'netns', 'exec', NS, process.execPath, CLI, 'pod', 'run', join(work, 'pod.yaml'), '--state', state, '--ca', ca]), logFile, { PODBOOT_LOG_LEVEL: 'info' });
        await waitUntil(() => readFileSync(logFile, 'utf8').includes('http boot listening') || p.exitCode !== null, 30_000, 'podboot to listen');
        if (p.exitCode !== null) throw new Error(`podboot exited at start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      } else {
        p = spawnLogged(pinned(cpu, ['ip', 'netns', 'exec', NS, 'nginx', '-c', join(work, 'nginx', 'nginx.conf'), '-p', join(work, 'nginx'), '-g', 'daemon off;']), join(work, 'nginx', 'nginx.out'));
        await waitUntil(() => sh('ip', ['netns', 'exec', NS, 'ss', '-Hltn', `sport = :${PORTS.nginx}`]).trim() !== '' || p.exitCode !== null, 15_000, 'nginx to listen');
        if (p.exitCode !== null) throw new Error(`nginx exited at start: ${readFileSync(join(work, 'nginx', 'nginx.out'), 'utf8')}`);
      }
      return p;
    };

    const url = (which: Server) => `https://127.0.0.1:${which === 'podboot' ? PORTS.https : PORTS.nginx}${PATH}`;
    const curlArgs = (which: Server, i: number) => [
      '-s',
      '--interface',
      clientAddr(i),
      '--cacert',
      tls.root,
      '--tlsv1.3',
      '-H',
      `Authorization: Bearer ${tokens[i]}`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{size_download} %{speed_download} %{time_total}',
      url(which),
    ];

    const measure = async (which: Server, kase: Case): Promise<Measure> => {
      const pin = kase !== 'unpinned';
      server = await start(which, pin ? SRV_CPU : undefined);
      try {
        await sleep(500);
        warm(file);
        const preBusy = await waitQuiet(15, quietMax);
        const s0 = treeCpu(server.pid);
        const c0 = childrenCpu();
        const d0 = pgpgin();
        const t0 = performance.now();
        const n = kase === 'single' ? 1 : clients;
        const results = await Promise.all(Array.from({ length: n }, (_, i) => curl(curlArgs(which, i), pin ? CLI_CPU : undefined, capMs)));
        const seconds = (performance.now() - t0) / 1000;
        const diskMB = ((pgpgin() - d0) * 1024) / 1e6;
        const serverCpu = (100 * (treeCpu(server.pid) - s0)) / seconds;
        const clientCpu = (100 * (childrenCpu() - c0)) / seconds;
        const parsed = results.map((r) => r.out.trim().split(' ').map(Number));
        const ok = parsed.filter((r, i) => results[i]!.code === 0 && r[0] === 200 && r[1] === bytes).length;
        if (ok < n) log(`  ${which} ${kase}: ${n - ok} of ${n} downloads failed: ${results.map((r) => `[${r.code}] ${r.out}`).join(' | ')}`);
        const mbps = kase === 'single' ? (ok ? parsed[0]![2]! / 1e6 : 0) : (ok * bytes) / seconds / 1e6;
        if (which === 'podboot') {
          await stopProcess(server);
          const errors = readFileSync(join(work, 'pod.log'), 'utf8')
            .split('\n')
            .filter((l) => /"level":"(error|fatal)"/.test(l));
          if (errors.length) log(`  podboot logged ${errors.length} error(s), first: ${errors[0]!.slice(0, 300)}`);
        }
        const cpuPerGB = ok ? ((serverCpu / 100) * seconds) / ((ok * bytes) / 1e9) : NaN;
        return { mbps, ok, seconds, serverCpu, cpuPerGB, clientCpu, preBusy, diskMB };
      } finally {
        await stopProcess(server);
        server = undefined;
      }
    };

    const results: Record<Case, Record<Server, Measure[]>> = { single: { podboot: [], nginx: [] }, pinned: { podboot: [], nginx: [] }, unpinned: { podboot: [], nginx: [] } };
    try {
      nsCreate(NS);
      mkdirSync(www);
      mkdirSync(join(work, 'nginx', 'tmp'), { recursive: true });
      log(`writing ${sizeMiB} MiB of random data to ${file}`);
      writeRandomFile(file, bytes);
      chmodSync(www, 0o755);
      onboardSignedStage2(PODBOOT_CLI, work, ca, podState, file);
      writeFileSync(join(work, 'pod.yaml'), podYaml(clients));

      // The pod issues its certificate at its first start; nginx then uses the same pair.
      server = await start('podboot', undefined);
      for (let i = 0; i < clients; i++) {
        const r = await curl(['-s', '--interface', clientAddr(i), `http://127.0.0.1:${PORTS.http}/ipxe/${mac(i).replace(/:/g, '-')}.ipxe`], undefined, 10_000);
        const m = / podboot\.token=(\S+)/.exec(r.out);
        if (!m) throw new Error(`no token in the iPXE script for ${mac(i)}: ${r.out}`);
        tokens.push(m[1]!);
      }
      const negotiated: Record<Server, string> = { podboot: '', nginx: '' };
      const probe = async (which: Server) => {
        const r = spawnSync('ip', ['netns', 'exec', NS, 'curl', '-sv', '-I', ...curlArgs(which, 0).slice(1, -5), url(which)], { encoding: 'utf8' });
        negotiated[which] = /SSL connection using (.*)/.exec(r.stderr)?.[1]?.trim() ?? 'unknown';
      };
      await probe('podboot');
      await stopProcess(server);
      server = undefined;
      writeFileSync(join(work, 'nginx', 'nginx.conf'), nginxConf(work, file, tls));
      const t = spawnSync('ip', ['netns', 'exec', NS, 'nginx', '-t', '-c', join(work, 'nginx', 'nginx.conf'), '-p', join(work, 'nginx')], { encoding: 'utf8' });
      if (t.status !== 0) throw new Error(`nginx -t: ${t.stderr}`);
      server = await start('nginx', undefined);
      await probe('nginx');
      await stopProcess(server);
      server = undefined;

      log(
        `# ${spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim()}, node ${process.version} (OpenSSL ${process.versions.openssl}), curl ${/^curl (\S+)/.exec(sh('curl', ['--version']))?.[1] ?? '?'}; ` +
          `${sizeMiB} MiB, ${rounds} rounds, ${clients} concurrent clients; pinned: server on CPU ${SRV_CPU}, curl(s) on CPU ${CLI_CPU}`,
      );
      log(`# negotiated: podboot ${negotiated.podboot}; nginx ${negotiated.nginx}; kTLS: ${existsSync('/proc/net/tls_stat') ? 'yes' : 'no'}`);

      for (let round = 1; round <= rounds; round++) {
        const order: Server[] = round % 2 ? ['podboot', 'nginx'] : ['nginx', 'podboot'];
        for (const kase of cases) {
          for (const which of order) {
            const m = await measure(which, kase);
            results[kase][which].push(m);
            log(
              `round ${round} ${which.padEnd(7)} ${label(kase).padEnd(20)}: ${fmt(m.mbps).padStart(7)} MB/s (${m.ok}/${kase === 'single' ? 1 : clients} ok, ${fmt(m.seconds, 2)} s) server CPU ${fmt(m.serverCpu, 0)}% = ${fmt(m.cpuPerGB, 2)} s/GB, curl CPU ${fmt(m.clientCpu, 0)}%, disk ${fmt(m.diskMB, 0)} MB, pre_busy ${fmt(m.preBusy, 0)}%`,
            );
          }
        }
      }
    } finally {
      await stopProcess(server);
      nsDelete(NS);
      rmSync(work, { recursive: true, force: true });
    }

    const ratio = (k: Case) => median(results[k].podboot.map((m, i) => m.mbps / results[k].nginx[i]!.mbps));
    const rows: (string | number)[][] = [['case', 'server', 'MB/s per round', 'median MB/s', 'server CPU s/GB (median)', 'median ratio podboot/nginx']];
    for (const k of cases) {
      for (const s of ['podboot', 'nginx'] as Server[]) {
        const ms = results[k][s];
        rows.push([
          label(k),
          s,
          ms.map((m) => fmt(m.mbps, 0)).join(' '),
          fmt(median(ms.map((m) => m.mbps)), 0),
          fmt(median(ms.map((m) => m.cpuPerGB)), 2),
          s === 'podboot' ? `${fmt(ratio(k), 2)}x` : '',
        ]);
      }
    }
    const met = (r: number) => (r >= 0.9 ? 'met' : 'NOT met');
    log(`\n${table(rows)}\n`);
    for (const k of cases) log(`median ratio podboot/nginx, ${label(k)}: ${fmt(ratio(k), 2)}x (target >= 0.9x: ${met(ratio(k))})`);
    log(`SUMMARY https size_mib:${sizeMiB} rounds:${rounds} podboot/nginx ${cases.map((k) => `${label(k).replace(/ /g, '_')}=${fmt(ratio(k), 2)}x`).join(' ')} (target >= 0.9x)`);
  },
};
