// Shared plumbing for benchmarks: namespaces, pinned processes, medians, test files.
import { randomFillSync } from 'node:crypto';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs, maxBuffer: 512 * 1024 * 1024 });
  } catch (err) {
    if (opts.allowFail) return (err as { stdout?: string }).stdout ?? '';
    throw err;
  }
}

export function nsCreate(name: string): void {
  sh('ip', ['netns', 'del', name], { allowFail: true });
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export function nsDelete(name: string): void {
  for (const pid of sh('ip', ['netns', 'pids', name], { allowFail: true }).split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  sh('ip', ['netns', 'del', name], { allowFail: true });
}

/** argv prefixed with `taskset -c CPUS` when the machine has that CPU. */
export function pinned(cpus: string | undefined, argv: string[]): string[] {
  return cpus ? ['taskset', '-c', cpus, ...argv] : argv;
}

export function spawnLogged(argv: string[], logFile: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  return spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
}

export async function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

export async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i]!)).join('  ')).join('\n');
}

export const PODBOOT_CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

/** A file of `bytes` random bytes (incompressible test images), written in 16 MiB chunks. */
export function writeRandomFile(path: string, bytes: number): void {
  const chunk = Buffer.allocUnsafe(16 << 20);
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let done = 0; done < bytes; done += chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A bench CA (`ca init` into caDir, signer `ci`), `file` signed as
 * stage2-lab 1.0 and laid into the pod's state as `podboot images onboard`
 * leaves it, by hard links: one inode, one page-cache copy for every server.
 */
export function onboardSignedStage2(cli: string, cwd: string, caDir: string, podState: string, file: string): void {
  const podboot = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd });
    if (r.status !== 0) throw new Error(`podboot ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  };
  podboot('ca', 'init', '--out', caDir, '--org', 'podboot bench');
  podboot('ca', 'issue-signer', 'ci', '--ca', caDir);
  podboot('sign', file, '--cert', `${caDir}/signers/ci.chain.pem`, '--key', `${caDir}/signers/ci.key`, '--name', 'stage2-lab', '--version', '1.0');
  const images = join(podState, 'images', 'stage2-lab@1.0');
  mkdirSync(images, { recursive: true });
  linkSync(file, join(images, 'image'));
  for (const [from, to] of [
    ['.p7s', 'image.p7s'],
    ['.manifest.json', 'manifest.json'],
    ['.manifest.json.p7s', 'manifest.json.p7s'],
  ] as const)
    linkSync(`${file}${from}`, join(images, to));
}

/** user+system CPU seconds of one process (USER_HZ is 100 on Linux); NaN once it is gone */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}
