// The pure parts of pod confinement: the cgroup plan for v1 and v2 machines,
// uid allocation, spec.limits in the pod file, and the commands that enter
// the cgroups and switch user. Plus: limits that cannot be written leave the
// pod running and say why.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { cgroupLayout, cgroupPlan, hierarchyMounts, parseOomKills } from '../../../src/pod-vm/cgroup.js';
import { PodConfinement } from '../../../src/pod-vm/confine.js';
import { allocate, asUser, inCgroups, systemIds } from '../../../src/pod-vm/pod-user.js';
import { parsePod } from '../../../src/config/pod-file.js';
import { formatProblem } from '../../../src/config/types.js';

// Captured on a Debian machine in hybrid mode (v1 controllers, v2 with none) and on a v2-only one.
const HYBRID_MOUNTINFO = `25 30 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid shared:13 - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 /sub /sys/fs/cgroup/blkio rw,nosuid shared:15 - cgroup cgroup rw,blkio`;
const HYBRID_CGROUP = `9:name=systemd:/system.slice/podboot.service
8:pids:/system.slice/podboot.service
4:memory:/process_api/abc
1:cpu,cpuacct:/
0::/system.slice/podboot.service`;
const V2_MOUNTINFO = `35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate`;
const LIMITS = { memoryBytes: 256 * 1024 * 1024, pids: 64, cpuWeight: 50 };

describe('cgroup plan', () => {
  it("v1 (v2 without controllers): memory, pids and cpu below the node's own cgroup in each hierarchy", () => {
    const layout = cgroupLayout(HYBRID_MOUNTINFO, HYBRID_CGROUP, () => []);
    expect(layout.v2?.controllers).toEqual([]);
    const plan = cgroupPlan(layout, 'podboot-x', 'rack-a', LIMITS)!;
    expect(plan.version).toBe(1);
    expect(plan.procs).toEqual([
      '/sys/fs/cgroup/memory/process_api/abc/podboot-x/rack-a/cgroup.procs',
      '/sys/fs/cgroup/pids/system.slice/podboot.service/podboot-x/rack-a/cgroup.procs',
      '/sys/fs/cgroup/cpu,cpuacct/podboot-x/rack-a/cgroup.procs',
    ]);
    expect(plan.writes.map((w) => `${w.file.split('/').slice(-1)[0]}=${w.value}`)).toEqual([
      'memory.limit_in_bytes=268435456',
      'memory.memsw.limit_in_bytes=268435456',
      'pids.max=64',
      'cpu.shares=512',
    ]);
    expect(plan.oomCounter.file).toBe('/sys/fs/cgroup/memory/process_api/abc/podboot-x/rack-a/memory.oom_control');
    expect(plan.missing).toEqual([]);
  });

  it('v2 with memory and pids: one cgroup, the node moved into a leaf of its own first', () => {
    const layout = cgroupLayout(V2_MOUNTINFO, '0::/system.slice/podboot.service\n', () => ['cpuset', 'cpu', 'io', 'memory', 'pids']);
    const plan = cgroupPlan(layout, 'podboot-x', 'rack-a', LIMITS)!;
    expect(plan.version).toBe(2);
    const base = '/sys/fs/cgroup/system.slice/podboot.service';
    expect(plan.procs).toEqual([`${base}/podboot-x/rack-a/cgroup.procs`]);
    expect(plan.writes.map((w) => `${w.file.slice(base.length)}=${w.value}`)).toEqual([
      `/supervisor/cgroup.procs=${process.pid}`,
      '/cgroup.subtree_control=+memory +pids +cpu',
      '/podboot-x/cgroup.subtree_control=+memory +pids +cpu',
      '/podboot-x/rack-a/memory.max=268435456',
      '/podboot-x/rack-a/memory.swap.max=0',
      '/podboot-x/rack-a/pids.max=64',
      '/podboot-x/rack-a/cpu.weight=50',
    ]);
    expect(plan.oomCounter.file).toBe(`${base}/podboot-x/rack-a/memory.events`);
  });

  it('no memory or pids controller anywhere: no plan', () => {
    expect(
      cgroupPlan(
        cgroupLayout(V2_MOUNTINFO, '0::/x\n', () => ['cpu']),
        'g',
        'rack-a',
        LIMITS,
      ),
    ).toBeUndefined();
  });

  it('without the mounts in sight (ip netns exec), mounts each hierarchy again with its own controller set', () => {
    const procCgroups = '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\ncpuacct\t1\t1\t1\nmemory\t4\t69\t1\npids\t8\t1\t1\nhugetlb\t0\t1\t1\nio\t0\t1\t1\n';
    expect(hierarchyMounts(procCgroups)).toEqual([
      { name: 'cpu,cpuacct', type: 'cgroup', options: 'cpu,cpuacct' },
      { name: 'memory', type: 'cgroup', options: 'memory' },
      { name: 'pids', type: 'cgroup', options: 'pids' },
    ]);
    expect(hierarchyMounts('memory\t0\t1\t1\npids\t0\t1\t1\n')).toEqual([{ name: 'unified', type: 'cgroup2' }]);
  });

  it('reads the OOM-kill counter of v1 and v2', () => {
    expect(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n')).toBe(3);
    expect(parseOomKills('low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n')).toBe(2);
    expect(parseOomKills('oom_kill_disable 0\n')).toBeUndefined();
  });

  it('limits that cannot be written: the pod still runs, unconfined, and status says why', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpu-cg-'));
    try {
      // A "hierarchy" under /proc: nothing can be created there.
      const layout = { v1: { memory: { mount: '/proc/hpu-no-cgroup', self: '/' }, pids: { mount: '/proc/hpu-no-cgroup', self: '/' } } };
      const c = new PodConfinement({ pod: 'rack-a', stateDir: dir, layout, group: 'podboot-x', log: pino({ level: 'silent' }) });
      c.prepare([]);
      const s = c.limits();
      expect(s.enforced).toBe(false);
      expect(s.reason).toMatch(/\/proc\/hpu-no-cgroup/);
      expect(c.wrap('node', ['main.js'])).toEqual({ command: 'node', args: ['main.js'] });
      const off = new PodConfinement({ pod: 'rack-a', stateDir: dir, group: 'g', noLimitsReason: 'the central node does not run as root: it cannot create cgroups', log: pino({ level: 'silent' }) });
      off.prepare([]);
      expect(off.limits()).toMatchObject({ enforced: false, reason: 'the central node does not run as root: it cannot create cgroups', memoryBytes: 512 * 1024 * 1024 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pod users', () => {
  it("a pod keeps its uid; new pods get the lowest free one, never an account's", () => {
    const taken = systemIds('root:x:0:0::/root:/bin/sh\nodd:x:1900000001:100::/:/bin/false\n', 'staff:x:50:\n');
    expect(taken.has(1900000001)).toBe(true);
    const rec: Record<string, number> = { 'rack-a': 1900000000 };
    expect(allocate(rec, 'rack-a', taken)).toEqual({ uid: 1900000000, added: false });
    expect(allocate(rec, 'rack-b', taken)).toEqual({ uid: 1900000002, added: true });
    expect(() => allocate({ a: 10, b: 11 }, 'c', new Set(), 10, 2)).toThrow(/no free pod uid/);
  });

  it("the command: into the cgroups, then the pod's user with only net_bind_service, in one process", () => {
    const user = asUser({ uid: 1900000003, gid: 1900000003 }, 'node', ['main.js', 'pod', 'run']);
    expect([user.command, ...user.args].join(' ')).toBe(
      'setpriv --reuid 1900000003 --regid 1900000003 --clear-groups --inh-caps -all,+net_bind_service --ambient-caps +net_bind_service --bounding-set -all,+net_bind_service --no-new-privs -- node main.js pod run',
    );
    const wrapped = inCgroups(['/cg/memory/x/cgroup.procs', '/cg/pids/x/cgroup.procs'], user.command, user.args);
    expect(wrapped.command).toBe('/bin/sh');
    expect(wrapped.args.slice(2, 6)).toEqual(['podboot-cgroup', '/cg/memory/x/cgroup.procs', '/cg/pids/x/cgroup.procs', '--']);
    expect(wrapped.args.slice(6, 7)).toEqual(['setpriv']);
  });
});

describe('spec.limits', () => {
  const pod = (limits: string) => `apiVersion: podboot/v1
kind: Pod
metadata:
  name: rack-a
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets:
    - cidr: 10.20.0.0/24
      pool: 10.20.0.100-10.20.0.199
${limits}`;

  it('defaults fill what is not written; sizes in Mi, Gi, M or bytes', () => {
    expect(parsePod(pod(''), 'p.yaml').pod!.limits).toBeUndefined();
    expect(parsePod(pod('  limits: { memory: 256Mi }\n'), 'p.yaml').pod!.limits).toEqual({ memoryBytes: 256 * 1024 * 1024, pids: 128, cpuWeight: 100 });
    expect(parsePod(pod('  limits: { memory: 1Gi, pids: 64, cpuWeight: 200 }\n'), 'p.yaml').pod!.limits).toEqual({ memoryBytes: 1024 ** 3, pids: 64, cpuWeight: 200 });
    expect(parsePod(pod('  limits: { memory: 300000000 }\n'), 'p.yaml').pod!.limits!.memoryBytes).toBe(300000000);
  });

  it('bad values are named by file:line:col and field', () => {
    const problems = parsePod(pod('  limits:\n    memory: 256MB\n    pids: 0\n    cpuWeight: 20000\n    swap: 1Gi\n'), 'p.yaml').problems.map(formatProblem);
    expect(problems).toEqual([
      'p.yaml:12:13: spec.limits.memory: expected a size such as 256Mi, 1Gi or a number of bytes, found "256MB"',
      'p.yaml:13:11: spec.limits.pids: 0 is outside 16..100000',
      'p.yaml:14:16: spec.limits.cpuWeight: 20000 is outside 1..10000',
      'p.yaml:15:5: spec.limits.swap: unknown field (expected one of: memory, pids, cpuWeight)',
    ]);
    expect(parsePod(pod('  limits: { memory: 1Mi }\n'), 'p.yaml').problems.map(formatProblem)).toEqual(['p.yaml:11:21: spec.limits.memory: 1048576 bytes is outside 32Mi..1024Gi']);
  });
});
