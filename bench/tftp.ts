// TFTP: podboot against tftpd-hpa and dnsmasq, same namespace, same files,
// same clients, servers alternating round by round.
//
//  - loopback (netns pbb-tftp): one curl client, 64 MiB at blksize 1468 and
//    65464, server pinned to CPU 1 and client to CPU 0; then 100 concurrent
//    curl clients × 8 MiB at blksize 1468 (unpinned: a forking server may use
//    both cores, so may podboot's one process and the kernel);
//  - WAN (netns pbb-wsrv <-> pbb-wcli through delaybridge.py, 25 ms each way):
//    8 MiB with atftp at blksize 1468, windowsize 1 and 16 on podboot, and
//    tftpd-hpa (lock-step: it ignores windowsize) for reference. Lock-step runs
//    are capped and their full time projected from the bytes received, as
//    ../shared/bench/tftp_wan.sh does.
//
// Flags: --quick (1 round, 20 clients, shorter WAN caps), --rounds=N,
// --lockstep (only the single-client curl cases: the per-packet path),
// --no-wan, --no-dnsmasq. TFTP_BENCH_CLI=path/to/main.js runs another build
// of podboot as the podboot side (A/B of two builds against the same peer).
//
// The peers are started by the shared peer scripts themselves
// (../shared/bench/lib.sh + tftp_common.sh, function tftp_start_server), and
// the test files are theirs (tftp_make_files), so both sides serve the same
// bytes from the same directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bench } from './bench.js';
import { median, nsCreate, nsDelete, pinned, sh, spawnLogged, stopProcess, table, waitUntil, PODBOOT_CLI } from './lib.js';

const REPO = new URL('../../', import.meta.url).pathname;
const PEER_DIR = process.env.PEER_BENCH_DIR ?? join(REPO, '..', 'shared', 'bench');
/** The peer scripts' own work area (their $PB): data files, server logs. */
const PB = '/tmp/podboot-bench/tftp-peer';
const TFTP_ROOT = join(PB, 'data', 'tftp');
const DL = '/tmp/podboot-bench/tftp-dl';
const SRV_CPU = process.env.SRV_CPUS ?? '1';
const CLI_CPU = process.env.CLI_CPUS ?? '0';

const LNS = 'pbb-tftp';
const WSRV = 'pbb-wsrv';
const WCLI = 'pbb-wcli';
const WAN_SRV_IP = '198.51.100.1';
const WAN_CLI_IP = '198.51.100.2';

type Server = 'podboot' | 'hpa' | 'dnsmasq';

interface Fetch {
  ok: boolean;
  bytes: number;
  seconds: number;
  capped: boolean;
}

function log(line: string): void {
  process.stdout.write(line + '\n');
}

/** Runs argv to completion (killed after capMs); seconds measured around the whole process, as the peer scripts do. */
export function timed(argv: string[], capMs: number): Promise<{ code: number | null; seconds: number; capped: boolean }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    let capped = false;
    const t = setTimeout(() => {
      capped = true;
      p.kill('SIGKILL');
    }, capMs);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, seconds: (performance.now() - t0) / 1000, capped });
    });
  });
}

function sameAs(out: string, file: string): boolean {
  if (!existsSync(out)) return false;
  const a = readFileSync(out);
  const ok = a.equals(readFileSync(join(TFTP_ROOT, file)));
  return ok;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function curlFetch(ns: string, ip: string, file: string, blksize: number, out: string, cpu: string | undefined, capMs: number): Promise<Fetch> {
  rmSync(out, { force: true });
  const r = await timed(pinned(cpu, ['ip', 'netns', 'exec', ns, 'curl', '-s', '--tftp-blksize', String(blksize), '-o', out, `tftp://${ip}/${file}`]), capMs);
  const ok = r.code === 0 && sameAs(out, file);
  return { ok, bytes: sizeOf(out), seconds: r.seconds, capped: r.capped };
}

async function atftpFetch(ns: string, ip: string, file: string, blksize: number, windowsize: number, out: string, capMs: number, cpu?: string): Promise<Fetch> {
  rmSync(out, { force: true });
  const argv = pinned(cpu, ['ip', 'netns', 'exec', ns, 'atftp', '--option', `blksize ${blksize}`, '--option', `windowsize ${windowsize}`, '-g', '-r', file, '-l', out, ip, '69']);
  const r = await timed(argv, capMs);
  return { ok: r.code === 0 && sameAs(out, file), bytes: sizeOf(out), seconds: r.seconds, capped: r.capped };
}

/** Bash that sources the peer scripts and runs one of their servers until killed (its EXIT trap stops the server). */
function startPeer(server: 'hpa' | 'dnsmasq', ns: string, ip: string, work: string): ChildProcess {
  const script = ['set -u', '. "$PEER/lib.sh"; . "$PEER/tftp_common.sh"', 'pb_traps', 'tftp_start_server "$NS" "$IP" "$SERVER" "$WORK" || exit 1', 'echo READY', 'wait "$TFTP_SRV_PID"'].join('\n');
  mkdirSync(work, { recursive: true });
  return spawnLogged(pinned(SRV_CPU, ['bash', '-c', script]), join(work, 'driver.log'), { PEER: PEER_DIR, PB, NS: ns, IP: ip, SERVER: server, WORK: work, PB_QUIET_MAX: '0' });
}

async function startServer(server: Server, ns: string, ip: string): Promise<ChildProcess> {
  const work = join(PB, 'run', `${server}-${ns}`);
  mkdirSync(work, { recursive: true });
  const proc =
    server === 'podboot'
      ? spawnLogged(
          pinned(SRV_CPU, [
            'ip',
            'netns',
            'exec',
            ns,
            process.execPath,
            process.env.TFTP_BENCH_CLI ?? PODBOOT_CLI,
            'tftp',
            'serve',
            '--root',
            TFTP_ROOT,
            '--address',
            ip,
            '--port',
            '69',
            '--name',
            'bench',
          ]),
          join(work, 'podboot.log'),
          { PODBOOT_LOG_LEVEL: 'warn' },
        )
      : startPeer(server, ns, ip, work);
  await waitUntil(() => sh('ip', ['netns', 'exec', ns, 'ss', '-Hlun', 'sport = :69']).trim() !== '' || proc.exitCode !== null, 15_000, `${server} to listen`);
  if (proc.exitCode !== null) throw new Error(`${server} exited at start (see ${work})`);
  return proc;
}

function loopbackNs(): void {
  nsCreate(LNS);
  // in.tftpd -a needs an address besides 127.0.0.1 to start in a namespace (see lib.sh).
  sh('ip', ['-n', LNS, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
}

async function wanNet(work: string): Promise<ChildProcess> {
  nsCreate(WSRV);
  nsCreate(WCLI);
  sh('ip', ['-n', WSRV, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
  const ready = join(work, 'bridge.ready');
  rmSync(ready, { force: true });
  const bridge = spawnLogged(['/usr/bin/python3', join(PEER_DIR, 'delaybridge.py'), WSRV, 'pbw0', WCLI, 'pbw1', '25', '3600', ready], join(work, 'bridge.log'));
  await waitUntil(() => existsSync(ready) || bridge.exitCode !== null, 10_000, 'delay bridge');
  if (bridge.exitCode !== null) throw new Error(`delaybridge.py exited: ${readFileSync(join(work, 'bridge.log'), 'utf8')}`);
  sh('ip', ['-n', WSRV, 'addr', 'add', WAN_SRV_IP, 'peer', WAN_CLI_IP, 'dev', 'pbw0']);
  sh('ip', ['-n', WSRV, 'link', 'set', 'pbw0', 'up', 'mtu', '1500']);
  sh('ip', ['-n', WCLI, 'addr', 'add', WAN_CLI_IP, 'peer', WAN_SRV_IP, 'dev', 'pbw1']);
  sh('ip', ['-n', WCLI, 'link', 'set', 'pbw1', 'up', 'mtu', '1500']);
  return bridge;
}

class SkipWan extends Error {}

/** key of the windowsize-16 single-client case in the results */
const WINDOWED = -16;

const mbps = (f: Fetch) => f.bytes / f.seconds / 1e6;
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

export const tftpBench: Bench = {
  name: 'tftp',
  summary: 'TFTP: podboot vs tftpd-hpa and dnsmasq (loopback 64 MiB, 100 × 8 MiB), and windowsize 1 vs 16 across 50 ms RTT',
  async run(flags) {
    const quick = flags.includes('--quick');
    // --lockstep: only the single-client curl cases, for A/B runs of the per-packet path.
    const lockstep = flags.includes('--lockstep');
    const roundsFlag = flags.find((f) => f.startsWith('--rounds='));
    const rounds = roundsFlag ? Math.max(1, Number(roundsFlag.slice('--rounds='.length)) || 1) : quick ? 1 : 3;
    const concurrency = quick ? 20 : 100;
    const wanCapMs = quick ? 10_000 : 20_000;
    const servers: Server[] = flags.includes('--no-dnsmasq') ? ['podboot', 'hpa'] : ['podboot', 'hpa', 'dnsmasq'];
    const peerVersions = `tftpd-hpa ${sh('dpkg-query', ['-W', '-f=${Version}', 'tftpd-hpa'], { allowFail: true })}, dnsmasq ${sh('dnsmasq', ['--version'], { allowFail: true }).split(' ')[2] ?? '?'}, curl ${sh('curl', ['--version']).split(' ')[1]}, atftp ${sh('dpkg-query', ['-W', '-f=${Version}', 'atftp'], { allowFail: true })}, node ${process.version}`;
    log(`# ${peerVersions}; ${rounds} round(s); loopback single client: server CPU ${SRV_CPU}, curl CPU ${CLI_CPU}; peer scripts from ${PEER_DIR}`);

    mkdirSync('/tmp/podboot-bench', { recursive: true });
    chmodSync('/tmp/podboot-bench', 0o755); // in.tftpd drops to user tftp and must reach its root
    mkdirSync(DL, { recursive: true });
    // The peer scripts' random files (made once, reused): f64.bin, f8.bin, f1.bin.
    sh('env', [`PB=${PB}`, `PEER=${PEER_DIR}`, 'bash', '-c', '. "$PEER/lib.sh"; . "$PEER/tftp_common.sh"; tftp_make_files'], { timeoutMs: 120_000 });

    const single: Record<Server, Record<number, Fetch[]>> = { podboot: {}, hpa: {}, dnsmasq: {} };
    const conc: Record<Server, { wall: number; failures: number }[]> = { podboot: [], hpa: [], dnsmasq: [] };
    const blksizes = [1468, 65464];
    const f64 = 'f64.bin';
    try {
      loopbackNs();
      for (let round = 1; round <= rounds; round++) {
        const order = round % 2 ? servers : [...servers].reverse();
        for (const server of order) {
          const proc = await startServer(server, LNS, '127.0.0.1');
          try {
            for (const bs of blksizes) {
              const f = await curlFetch(LNS, '127.0.0.1', f64, bs, join(DL, 'one.bin'), CLI_CPU, 120_000);
              (single[server][bs] ??= []).push(f);
              log(`round ${round} ${server.padEnd(7)} 64 MiB @${bs}: ${fmt(f.seconds, 2)} s ${fmt(mbps(f))} MB/s ${f.ok ? 'OK' : 'FAIL'}`);
            }
            if (lockstep) continue;
            // What a windowsize client (UEFI, atftp) gets: the peers ignore the option and stay lock-step.
            const w = await atftpFetch(LNS, '127.0.0.1', f64, 1468, 16, join(DL, 'one.bin'), 120_000, CLI_CPU);
            (single[server][WINDOWED] ??= []).push(w);
            log(`round ${round} ${server.padEnd(7)} 64 MiB @1468 windowsize 16 (atftp): ${fmt(w.seconds, 2)} s ${fmt(mbps(w))} MB/s ${w.ok ? 'OK' : 'FAIL'}`);
            const t0 = performance.now();
            const all = await Promise.all(Array.from({ length: concurrency }, (_, i) => curlFetch(LNS, '127.0.0.1', 'f8.bin', 1468, join(DL, `c${i}.bin`), undefined, 180_000)));
            const wall = (performance.now() - t0) / 1000;
            const failures = all.filter((f) => !f.ok).length;
            conc[server].push({ wall, failures });
            log(`round ${round} ${server.padEnd(7)} ${concurrency} × 8 MiB @1468: wall ${fmt(wall, 2)} s, ${failures} failed`);
            for (let i = 0; i < concurrency; i++) rmSync(join(DL, `c${i}.bin`), { force: true });
          } finally {
            await stopProcess(proc);
          }
        }
      }
    } finally {
      nsDelete(LNS);
    }

    // WAN: windowsize matters once every window costs a round trip.
    const wanWork = join(PB, 'run', 'wan');
    mkdirSync(wanWork, { recursive: true });
    const wan: Record<string, Fetch[]> = {};
    let bridge: ChildProcess | undefined;
    try {
      if (flags.includes('--no-wan') || lockstep) throw new SkipWan();
      bridge = await wanNet(wanWork);
      const rtt = sh('ip', ['netns', 'exec', WCLI, 'ping', '-c', '3', '-i', '0.2', '-W', '2', WAN_SRV_IP], { allowFail: true }).match(/= [\d.]+\/([\d.]+)\//)?.[1] ?? 'n/a';
      log(`# WAN: ping RTT avg ${rtt} ms, MTU 1500, 8 MiB, atftp blksize 1468; lock-step runs capped at ${wanCapMs / 1000} s and projected`);
      const cases: { name: string; server: Server; ws: number }[] = [
        { name: 'podboot ws1', server: 'podboot', ws: 1 },
        { name: 'podboot ws16', server: 'podboot', ws: 16 },
        { name: 'tftpd-hpa (lock-step)', server: 'hpa', ws: 16 },
      ];
      for (let round = 1; round <= rounds; round++) {
        for (const server of (round % 2 ? ['podboot', 'hpa'] : ['hpa', 'podboot']) as Server[]) {
          const proc = await startServer(server, WSRV, WAN_SRV_IP);
          try {
            for (const c of cases.filter((x) => x.server === server)) {
              const f = await atftpFetch(WCLI, WAN_SRV_IP, 'f8.bin', 1468, c.ws, join(DL, 'wan.bin'), c.ws === 1 || server === 'hpa' ? wanCapMs : 120_000);
              const full = f.capped ? (8 * 1024 * 1024 * f.seconds) / Math.max(1, f.bytes) : f.seconds;
              (wan[c.name] ??= []).push({ ...f, seconds: full, bytes: f.capped ? 8 * 1024 * 1024 : f.bytes });
              log(
                `round ${round} ${c.name.padEnd(22)} ${f.capped ? `capped after ${fmt(f.seconds, 1)} s with ${f.bytes} bytes → projected ${fmt(full, 0)} s` : `${fmt(f.seconds, 2)} s ${f.ok ? 'OK' : 'FAIL'}`}`,
              );
            }
          } finally {
            await stopProcess(proc);
          }
        }
      }
    } catch (err) {
      if (!(err instanceof SkipWan)) throw err;
    } finally {
      await stopProcess(bridge);
      nsDelete(WSRV);
      nsDelete(WCLI);
      rmSync(DL, { recursive: true, force: true });
    }

    // Ratios per round (paired), then their median.
    const pairRatio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
    const rows: (string | number)[][] = [['case', 'podboot', 'tftpd-hpa', ...(servers.includes('dnsmasq') ? ['dnsmasq'] : []), 'podboot/hpa (median)', 'target']];
    for (const bs of [...blksizes, WINDOWED]) {
      const v = (s: Server) => (single[s][bs] ?? []).map(mbps);
      rows.push([
        bs === WINDOWED ? '64 MiB @1468 ws16 (atftp), MB/s' : `64 MiB @${bs} (curl), MB/s`,
        v('podboot')
          .map((x) => fmt(x))
          .join(' '),
        v('hpa')
          .map((x) => fmt(x))
          .join(' '),
        ...(servers.includes('dnsmasq')
          ? [
              v('dnsmasq')
                .map((x) => fmt(x))
                .join(' '),
            ]
          : []),
        fmt(pairRatio(v('podboot'), v('hpa')), 2) + 'x',
        bs === WINDOWED ? '(peers: lock-step)' : '>= 1.0x',
      ]);
    }
    const w = (s: Server) => conc[s].map((c) => c.wall);
    const fails = (s: Server) => conc[s].reduce((n, c) => n + c.failures, 0);
    rows.push([
      `${concurrency} × 8 MiB wall s (failures)`,
      `${w('podboot')
        .map((x) => fmt(x, 1))
        .join(' ')} (${fails('podboot')})`,
      `${w('hpa')
        .map((x) => fmt(x, 1))
        .join(' ')} (${fails('hpa')})`,
      ...(servers.includes('dnsmasq')
        ? [
            `${w('dnsmasq')
              .map((x) => fmt(x, 1))
              .join(' ')} (${fails('dnsmasq')})`,
          ]
        : []),
      fmt(pairRatio(w('podboot'), w('hpa')), 2) + 'x',
      '<= 1.0x, 0 failures',
    ]);
    log('\n' + table(rows));
    const ws1 = (wan['podboot ws1'] ?? []).map((f) => f.seconds);
    const ws16 = (wan['podboot ws16'] ?? []).map((f) => f.seconds);
    const hpa = (wan['tftpd-hpa (lock-step)'] ?? []).map((f) => f.seconds);
    log(
      '\n' +
        table([
          ['WAN 50 ms RTT, 8 MiB @1468', 'seconds per round', 'median'],
          ['podboot windowsize 1 (projected)', ws1.map((x) => fmt(x, 0)).join(' '), fmt(median(ws1), 0)],
          ['podboot windowsize 16', ws16.map((x) => fmt(x, 1)).join(' '), fmt(median(ws16), 1)],
          ['tftpd-hpa lock-step (projected)', hpa.map((x) => fmt(x, 0)).join(' '), fmt(median(hpa), 0)],
        ]),
    );
    const speedup = pairRatio(ws1, ws16);
    log(
      `\nSUMMARY tftp podboot/hpa 64MiB@1468 = ${fmt(pairRatio(single.podboot[1468]!.map(mbps), single.hpa[1468]!.map(mbps)), 2)}x, @65464 = ${fmt(pairRatio(single.podboot[65464]!.map(mbps), single.hpa[65464]!.map(mbps)), 2)}x (target >= 1.0x); ` +
        `${concurrency}x8MiB wall podboot/hpa = ${fmt(pairRatio(w('podboot'), w('hpa')), 2)}x, failures ${fails('podboot')} (target <= 1.0x, 0); ` +
        `WAN ws16 vs ws1 = ${fmt(speedup, 1)}x faster (target >= 10x)`,
    );
    writeFileSync(join(PB, 'results-last.txt'), JSON.stringify({ single, conc, wan }, null, 1));
  },
};
