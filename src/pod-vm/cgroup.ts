// Resource limits for one pod instance (memory, processes, CPU weight)
// through cgroups, below the central node's own cgroup in each hierarchy.
// cgroup v2 when the unified hierarchy has the memory and pids controllers;
// otherwise the v1 memory, pids and cpu hierarchies (Debian machines with
// systemd in hybrid mode mount v2 with no controllers). The plan (which
// directories, which values) is pure and tested on captured /proc text; the
// I/O part below only carries it out.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { PodLimits } from '../config/types.js';

/** A cgroup hierarchy the central node can place pods in. */
export interface Hierarchy {
  /** where it is mounted */
  mount: string;
  /** the central node's own cgroup in it, '/'-rooted */
  self: string;
}

export interface CgroupLayout {
  v2?: Hierarchy & { controllers: string[] };
  v1: { memory?: Hierarchy; pids?: Hierarchy; cpu?: Hierarchy };
}

export interface CgroupWrite {
  file: string;
  value: string;
  /** a missing file is skipped (e.g. memsw without swap accounting) rather than a failure */
  optional?: boolean;
}

export interface CgroupPlan {
  version: 1 | 2;
  /** created in this order; removed in reverse when the pod goes */
  dirs: string[];
  writes: CgroupWrite[];
  /** the child writes its own pid to each before it runs node */
  procs: string[];
  /** the pod's cgroups as /proc/PID/cgroup names them (controller:path), the same in every mount namespace */
  names: string[];
  /** where the kernel counts OOM kills of this cgroup, and the line to read */
  oomCounter: { file: string; key: string };
  /** the limits in force, for status */
  limits: PodLimits;
  /** limits that cannot be applied here (a controller that is not mounted) */
  missing: string[];
}

/**
 * Directory below the node's own cgroup that holds one cgroup per pod, named
 * after the node's state root: two central nodes in one cgroup (tests, labs)
 * never share, nor remove, each other's pod cgroups.
 */
export function podsCgroupName(stateRoot: string): string {
  return `podboot-${createHash('sha256').update(resolve(stateRoot)).digest('hex').slice(0, 12)}`;
}

/** /proc/self/mountinfo → cgroup mounts (v1 by controller, the v2 mount). */
export function parseCgroupMounts(mountinfo: string): { v2?: string; v1: Record<string, string> } {
  const out: { v2?: string; v1: Record<string, string> } = { v1: {} };
  for (const line of mountinfo.split('\n')) {
    // fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    const mountpoint = f[4];
    // Only a hierarchy mounted at its root: a bind mount of a sub-cgroup (containers) has another root.
    if (!mountpoint || f[3] !== '/') continue;
    if (fstype === 'cgroup2') out.v2 ??= mountpoint;
    else if (fstype === 'cgroup') for (const c of (superOpts ?? '').split(',')) if (['memory', 'pids', 'cpu'].includes(c)) out.v1[c] ??= mountpoint;
  }
  return out;
}

/** /proc/self/cgroup → the node's cgroup per v1 controller, and in v2 ('' key). */
export function parseProcCgroup(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^\d+:([^:]*):(.*)$/);
    if (!m) continue;
    if (m[1] === '') out[''] = m[2]!;
    else for (const c of m[1]!.split(',')) out[c] = m[2]!;
  }
  return out;
}

export function cgroupLayout(mountinfo: string, procCgroup: string, v2Controllers: (dir: string) => string[]): CgroupLayout {
  const mounts = parseCgroupMounts(mountinfo);
  const own = parseProcCgroup(procCgroup);
  const layout: CgroupLayout = { v1: {} };
  if (mounts.v2 && own[''] !== undefined) layout.v2 = { mount: mounts.v2, self: own['']!, controllers: v2Controllers(join(mounts.v2, own['']!)) };
  for (const c of ['memory', 'pids', 'cpu'] as const) {
    const mount = mounts.v1[c];
    if (mount && own[c] !== undefined) layout.v1[c] = { mount, self: own[c]! };
  }
  return layout;
}

const MIB = 1024 * 1024;

/**
 * The cgroup directories and values for one pod. v2 is used only with both
 * memory and pids available in it: a v2 hierarchy with no controllers (as on
 * hybrid machines) limits nothing.
 */
export function cgroupPlan(layout: CgroupLayout, group: string, pod: string, limits: PodLimits): CgroupPlan | undefined {
  const v2 = layout.v2;
  if (v2?.controllers.includes('memory') && v2.controllers.includes('pids')) {
    // v2's "no internal processes" rule: the node's cgroup can hand controllers
    // to children only once it holds no process itself, so the node moves into
    // a leaf of its own first (what systemd's Delegate= expects).
    const base = join(v2.mount, v2.self);
    const parent = join(base, group);
    const dir = join(parent, pod);
    const enable = ['+memory', '+pids', ...(v2.controllers.includes('cpu') ? ['+cpu'] : [])].join(' ');
    return {
      version: 2,
      dirs: [join(base, 'supervisor'), parent, dir],
      writes: [
        { file: join(base, 'supervisor', 'cgroup.procs'), value: String(process.pid) },
        { file: join(base, 'cgroup.subtree_control'), value: enable },
        { file: join(parent, 'cgroup.subtree_control'), value: enable },
        { file: join(dir, 'memory.max'), value: String(limits.memoryBytes) },
        // No swap: a pod past its limit is killed, not slowed down by swapping.
        { file: join(dir, 'memory.swap.max'), value: '0', optional: true },
        { file: join(dir, 'pids.max'), value: String(limits.pids) },
        ...(v2.controllers.includes('cpu') ? [{ file: join(dir, 'cpu.weight'), value: String(limits.cpuWeight) }] : []),
      ],
      procs: [join(dir, 'cgroup.procs')],
      names: [`0::${join(v2.self, group, pod)}`],
      oomCounter: { file: join(dir, 'memory.events'), key: 'oom_kill' },
      limits,
      missing: v2.controllers.includes('cpu') ? [] : ['cpuWeight (no cpu controller in cgroup v2)'],
    };
  }
  const { memory, pids, cpu } = layout.v1;
  if (!memory && !pids) return undefined;
  const dirs: string[] = [];
  const writes: CgroupWrite[] = [];
  const procs: string[] = [];
  const names: string[] = [];
  const missing: string[] = [];
  const leaf = (h: Hierarchy, controller: string) => {
    const parent = join(h.mount, h.self, group);
    const dir = join(parent, pod);
    dirs.push(parent, dir);
    procs.push(join(dir, 'cgroup.procs'));
    names.push(`${controller}:${join(h.self, group, pod)}`);
    return dir;
  };
  let oomCounter = { file: '', key: 'oom_kill' };
  if (memory) {
    const dir = leaf(memory, 'memory');
    writes.push(
      { file: join(dir, 'memory.limit_in_bytes'), value: String(limits.memoryBytes) },
      // memory + swap no larger than memory: no swapping past the limit (only with swap accounting).
      { file: join(dir, 'memory.memsw.limit_in_bytes'), value: String(limits.memoryBytes), optional: true },
    );
    oomCounter = { file: join(dir, 'memory.oom_control'), key: 'oom_kill' };
  } else missing.push(`memory (no memory controller mounted)`);
  if (pids) writes.push({ file: join(leaf(pids, 'pids'), 'pids.max'), value: String(limits.pids) });
  else missing.push('pids (no pids controller mounted)');
  // v1 cpu.shares 1024 is v2's cpu.weight 100.
  if (cpu) writes.push({ file: join(leaf(cpu, 'cpu'), 'cpu.shares'), value: String(Math.max(2, Math.round((limits.cpuWeight * 1024) / 100))) });
  else missing.push('cpuWeight (no cpu controller mounted)');
  return { version: 1, dirs, writes, procs, names, oomCounter, limits, missing };
}

/** What status says about a pod's limits. */
export interface LimitsStatus {
  enforced: boolean;
  /** cgroup2 or cgroup1 when enforced */
  via?: string;
  memoryBytes: number;
  pids: number;
  cpuWeight: number;
  /** why they are not (or only partly) enforced */
  reason?: string;
  /** the pod's cgroups, as /proc/PID/cgroup names them (controller:path) */
  cgroups?: string[];
}

export function describeLimits(l: PodLimits): string {
  return `memory ${Math.round(l.memoryBytes / MIB)} MiB, pids ${l.pids}, cpu weight ${l.cpuWeight}`;
}

/** The OOM-kill count from memory.oom_control (v1) or memory.events (v2); undefined when unreadable. */
export function parseOomKills(text: string, key = 'oom_kill'): number | undefined {
  const m = text.match(new RegExp(`^${key} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

// ---- I/O ----

export function readLayout(): CgroupLayout {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const controllers = (dir: string) => read(join(dir, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean);
  const own = read('/proc/self/cgroup');
  const layout = cgroupLayout(read('/proc/self/mountinfo'), own, controllers);
  if (layout.v2 || layout.v1.memory || layout.v1.pids) return layout;
  // Started by \`ip netns exec\` (labs, tests), the node sees a fresh /sys
  // without the cgroup mounts, in a mount namespace of its own: the kernel's
  // hierarchies are mounted again there, where only this node sees them.
  for (const m of hierarchyMounts(read('/proc/cgroups'))) {
    const dir = join(OWN_MOUNTS, m.name);
    try {
      mkdirSync(dir, { recursive: true });
      execFileSync('mount', ['-t', m.type, ...(m.options ? ['-o', m.options] : []), m.type, dir], { stdio: 'ignore', timeout: 5000 });
    } catch {
      /* not permitted here: the pods run without limits, and status says so */
    }
  }
  return cgroupLayout(read('/proc/self/mountinfo'), own, controllers);
}

const OWN_MOUNTS = '/run/podboot-cgroup';

/**
 * /proc/cgroups → what to mount to see the memory, pids and cpu controllers:
 * each v1 hierarchy with the very controller set it was made with (mounting
 * cpu alone where it shares a hierarchy with cpuacct is refused), and
 * cgroup2 for controllers on no v1 hierarchy.
 */
export function hierarchyMounts(procCgroups: string): { name: string; type: 'cgroup' | 'cgroup2'; options?: string }[] {
  const byHierarchy = new Map<number, string[]>();
  for (const line of procCgroups.split('\n')) {
    const [name, h, , enabled] = line.split(/\s+/);
    if (!name || name.startsWith('#') || enabled !== '1') continue;
    const list = byHierarchy.get(Number(h)) ?? [];
    list.push(name);
    byHierarchy.set(Number(h), list);
  }
  const out: { name: string; type: 'cgroup' | 'cgroup2'; options?: string }[] = [];
  let v2 = false;
  for (const [h, names] of byHierarchy) {
    if (!names.some((n) => ['memory', 'pids', 'cpu'].includes(n))) continue;
    if (h === 0) v2 = true;
    else out.push({ name: names.join(','), type: 'cgroup', options: names.join(',') });
  }
  if (v2) out.push({ name: 'unified', type: 'cgroup2' });
  return out;
}

/**
 * Creates the pod's cgroups and writes its limits. Throws with the first write
 * that failed (read-only cgroupfs, no permission): the caller runs the pod
 * without limits and says why.
 */
export function applyCgroupPlan(plan: CgroupPlan): void {
  for (const d of plan.dirs) {
    if (!existsSync(d)) mkdirSync(d);
  }
  for (const w of plan.writes) {
    if (w.optional && !existsSync(w.file)) continue;
    try {
      writeFileSync(w.file, w.value);
    } catch (err) {
      // v2: the node may already sit in its leaf, or the controllers be on already.
      if (plan.version === 2 && /cgroup\.(procs|subtree_control)$/.test(w.file) && (err as NodeJS.ErrnoException).code === 'EBUSY') continue;
      throw new Error(`cannot write ${w.value} to ${w.file}: ${(err as Error).message}`);
    }
  }
}

export function oomKills(plan: CgroupPlan): number | undefined {
  try {
    return parseOomKills(readFileSync(plan.oomCounter.file, 'utf8'), plan.oomCounter.key);
  } catch {
    return undefined;
  }
}

/**
 * Every process still in the pod's cgroups, killed: what a pod left behind
 * (a daemonised child of a compromised instance) must not outlive it.
 */
export function killLeftovers(plan: CgroupPlan): number {
  let killed = 0;
  for (const f of plan.procs) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const pid of text.split('\n').filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        /* gone already */
      }
    }
  }
  return killed;
}

/** Removes the pod's cgroups (not the shared parents); retried briefly while killed processes are reaped. */
export async function removeCgroups(plan: CgroupPlan): Promise<void> {
  const leaves = plan.procs.map((p) => join(p, '..'));
  for (let attempt = 0; attempt < 20; attempt++) {
    killLeftovers(plan);
    let left = 0;
    for (const d of leaves) {
      try {
        rmdirSync(d);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left++;
      }
    }
    if (left === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // The node's group directory goes with its last pod (it fails while others remain: fine).
  for (const d of new Set(leaves.map((l) => join(l, '..')))) {
    try {
      rmdirSync(d);
    } catch {
      /* other pods still there */
    }
  }
}
