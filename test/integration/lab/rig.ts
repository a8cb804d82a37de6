// What the lab's integration tests share: the CLI as a child process, and
// the checks that a lab left nothing behind (namespaces with its prefix,
// processes, host links).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { labPrefix } from '../../../src/lab/plan.js';
import { PODBOOT, requireBuild, run } from '../../helpers/netns.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function podboot(args: string[], timeoutMs = 600_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export const labNamespaces = (prefix: string) =>
  run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${prefix}-`));
export const hostLinks = () =>
  new Set(
    run('ip', ['-o', 'link', 'show'])
      .split('\n')
      .map((l) => l.split(':')[1]?.trim() ?? '')
      .filter((n) => n !== ''),
  );

/** a live (not zombie) process with this pid */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** pids of live processes whose command line mentions the lab directory */
export function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text) && running(Number(e))) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** pids the lab recorded plus whatever runs in its namespaces now */
export function labPids(dir: string, prefix: string): number[] {
  const state = JSON.parse(readFileSync(`${dir}/lab-state.json`, 'utf8')) as { processes: { pid: number }[] };
  const inNamespaces = labNamespaces(prefix).flatMap((ns) => run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number));
  return [...new Set([...state.processes.map((p) => p.pid), ...inNamespaces])];
}

export interface Timeline {
  ok: boolean;
  vms: Record<string, { rack: string; result: string; message?: string; phases: Record<string, number>; hostname?: string }>;
}

const PHASE_ORDER = ['power-on', 'pxe', 'stage1', 'verified', 'installed', 'booted-from-disk'];

/** A VM that got to its disk: every phase has a time, in chain order. */
export function expectBootedInOrder(vm: Timeline['vms'][string]): void {
  expect(vm.result).toBe('booted-from-disk');
  const at = PHASE_ORDER.map((p) => vm.phases[p]);
  for (const t of at) expect(typeof t).toBe('number');
  expect([...at].sort((a, b) => a! - b!)).toEqual(at);
}

/** `lab boot` with its JUnit and timeline written to the test's directory as junit-<tag>.xml / timeline-<tag>.json. */
export async function labBoot(t: LabTestDir, tag: string, args: string[], timeoutMs = 600_000): Promise<{ boot: Ran; timeline: Timeline; junit: string }> {
  const junit = join(t.work, `junit-${tag}.xml`);
  const timeline = join(t.work, `timeline-${tag}.json`);
  const boot = await podboot(['lab', 'boot', '--dir', t.dir, '--junit', junit, '--timeline', timeline, ...args], timeoutMs);
  return { boot, timeline: JSON.parse(readFileSync(timeline, 'utf8')) as Timeline, junit: readFileSync(junit, 'utf8') };
}

export interface LabTestDir {
  /** the test's own directory: reports it asks for go here */
  work: string;
  /** the lab's directory, made by the lab itself, so `lab down` must remove all of it */
  dir: string;
  prefix: string;
  /** host links that were not there when the test file started */
  newLinks: () => string[];
}

/** A lab directory for one test file; after the file, `lab down` runs whatever happened (a failed assertion must not leave a lab behind). */
export function labTestDir(tag: string): LabTestDir {
  const work = mkdtempSync(join(tmpdir(), `pb-${tag}-`));
  // The lab's pods run as their own unprivileged users: they pass through here to their state.
  chmodSync(work, 0o711);
  const dir = join(work, 'lab');
  let before = new Set<string>();
  beforeAll(() => {
    requireBuild();
    before = hostLinks();
  });
  afterAll(async () => {
    await podboot(['lab', 'down', '--dir', dir], 120_000);
    rmSync(work, { recursive: true, force: true });
  });
  return { work, dir, prefix: labPrefix(dir), newLinks: () => [...hostLinks()].filter((l) => !before.has(l)) };
}

/** `lab down`, then: no namespace, none of `pids`, no process naming the directory, no new host link, no directory. */
export async function downLeavesNothing(t: LabTestDir, pids: number[]): Promise<void> {
  const down = await podboot(['lab', 'down', '--dir', t.dir], 120_000);
  expect(down.code, down.stdout + down.stderr).toBe(0);
  expect(labNamespaces(t.prefix)).toEqual([]);
  expect(pids.filter(running)).toEqual([]);
  expect(processesMentioning(t.dir)).toEqual([]);
  expect(t.newLinks()).toEqual([]);
  expect(existsSync(t.dir)).toBe(false);
}
