// The lab's I/O: commands, namespaces, detached daemons and the state file
// that records everything `lab up` and `lab boot` create, so `lab down` can
// remove it all, also after a crash of the process that made it.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProgramMissing, programNotFound } from '../host/programs.js';
import type { LabOptions } from './plan.js';

export const STATE_FILE = 'lab-state.json';

export interface RecordedProcess {
  pid: number;
  /** what it is: central, dhcrelay-rack-1, wan-link-rack-1, qemu-r1-vm1, … */
  what: string;
  ns?: string;
  /** /proc/<pid>/stat start time: a recycled pid is never mistaken for ours */
  startTime?: string;
}

export interface LabState {
  version: 1;
  dir: string;
  prefix: string;
  created: string;
  /** 'building' until `lab up` finished; a crash leaves it so and `lab down` still knows what to remove */
  status: 'building' | 'up';
  options: LabOptions;
  /** bridge: no delay or loss asked; netem in the kernel; user-space: lab/wan-link.py */
  wan: 'bridge' | 'netem' | 'user-space';
  /** pods whose stage2 copy has a flipped byte (so a second --tamper does not flip it back) */
  tampered?: string[];
  namespaces: string[];
  processes: RecordedProcess[];
  /** entries of DIR that the lab made (removed by `lab down`) */
  files: string[];
  /** DIR did not exist before `lab up` (removed whole by `lab down`) */
  createdDir: boolean;
}

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

export function readState(dir: string): LabState | undefined {
  const p = statePath(dir);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as LabState;
}

/** Atomic: a crash mid-write leaves the previous state, never half a file. */
export function writeState(state: LabState): void {
  const p = statePath(state.dir);
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, p);
}

export class CommandError extends Error {}

export function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number; input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 120_000,
      input: opts.input,
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    if (opts.allowFail) return '';
    if (isProgramMissing(err)) throw new CommandError(programNotFound(cmd));
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new CommandError(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().slice(-2000)}`);
  }
}

export function ns(name: string, cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  return run('ip', ['netns', 'exec', name, cmd, ...args], opts);
}

export function ipn(name: string, ...args: string[]): string {
  return run('ip', ['-n', name, ...args]);
}

export function listNamespaces(): string[] {
  return run('ip', ['netns', 'list'], { allowFail: true })
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter(Boolean);
}

export function nsPids(name: string): number[] {
  return run('ip', ['netns', 'pids', name], { allowFail: true })
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1);
}

export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may hold spaces and parentheses): field 22 is the start time
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export function alive(p: RecordedProcess): boolean {
  const t = procStartTime(p.pid);
  return t !== undefined && (p.startTime === undefined || p.startTime === t) && !isZombie(p.pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * A daemon in a namespace, detached from this process (its own session), its
 * output appended to `logFile`. `ip netns exec` execs the command in place,
 * so the pid is the daemon's own.
 */
export function spawnDetached(nsName: string | undefined, cmd: string, args: string[], logFile: string, what: string): RecordedProcess {
  const fd = openSync(logFile, 'a');
  try {
    const argv = nsName ? ['netns', 'exec', nsName, cmd, ...args] : args;
    const child = spawn(nsName ? 'ip' : cmd, argv, { detached: true, stdio: ['ignore', fd, fd] });
    child.on('error', () => undefined);
    child.unref();
    if (!child.pid) throw new CommandError(`could not start ${cmd}`);
    return { pid: child.pid, what, ...(nsName ? { ns: nsName } : {}), startTime: procStartTime(child.pid) };
  } finally {
    closeSync(fd);
  }
}

/** Polls `file` until `pattern` appears; fails if `proc` died first or after timeoutMs. Bounded. */
export async function waitForLog(file: string, pattern: RegExp, timeoutMs: number, proc?: RecordedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (pattern.test(text)) return;
    if (proc && !alive(proc)) throw new CommandError(`${proc.what} exited before ${pattern}; ${file}:\n${text.slice(-2000)}`);
    if (Date.now() > deadline) throw new CommandError(`${proc?.what ?? file}: no ${pattern} within ${timeoutMs} ms; ${file}:\n${text.slice(-2000)}`);
    await sleep(100);
  }
}

/** SIGTERM, then SIGKILL after graceMs for what is still there. Only pids whose start time matches the record. */
export async function stopProcesses(procs: RecordedProcess[], graceMs = 5000): Promise<void> {
  const ours = procs.filter(alive);
  for (const p of ours) signal(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (ours.some(alive) && Date.now() < deadline) await sleep(100);
  for (const p of ours.filter(alive)) signal(p.pid, 'SIGKILL');
  const hard = Date.now() + 3000;
  while (ours.some(alive) && Date.now() < hard) await sleep(50);
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(d, bin);
    if (existsSync(p)) return p;
  }
  return undefined;
}
