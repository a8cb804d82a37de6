// Least privilege for pod instances (issue 12, must show 1 and 3): each pod
// runs as its own unprivileged uid, and as that uid the CA keys, another
// pod's database and the operator token cannot be read; one pod that
// allocates past its memory limit is killed by the kernel and restarted
// alone, while perfdhcp against the two other pods sees no drops.
//
// How the pod is made to allocate: `podboot serve` runs with
// PODBOOT_DEBUG_ALLOCATE_ON_SIGUSR2=1 (docs/operations.md, Resource limits),
// and the test sends SIGUSR2 to rack-a's instance, which then allocates and
// touches memory without end, as a leaking pod would. Only a local signal
// from root or the pod's own uid can trigger it, never the network.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { perfdhcp, perfResult, type Rack, rackPodYaml, wireRacks } from '../../helpers/rack-pods.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const RACKS: Rack[] = [
  // Idle, an instance uses ~75 MiB: 200 MiB lets it serve and warm up, not leak for long.
  { pod: 'rack-a', ns: 'ra', server: '10.98.0.1', relay: '10.41.0.1', octet: 41, limits: '{ memory: 200Mi, pids: 64, cpuWeight: 50 }' },
  { pod: 'rack-b', ns: 'rb', server: '10.98.0.2', relay: '10.42.0.1', octet: 42 },
  { pod: 'rack-c', ns: 'rc', server: '10.98.0.3', relay: '10.43.0.1', octet: 43 },
];

/** `cat FILE` as uid/gid with no supplementary groups: its exit status and stderr. */
function catAs(uid: number, file: string): { status: number | null; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', 'cat', file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function procStatus(pid: number, field: string): string {
  return readFileSync(`/proc/${pid}/status`, 'utf8')
    .match(new RegExp(`^${field}:[ \\t]*(.*)$`, 'm'))![1]!
    .trim();
}

/** Every file under dir whose name ends in .key (the CA's private keys). */
function keysUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...keysUnder(p));
    else if (e.name.endsWith('.key')) out.push(p);
  }
  return out;
}

describe('pod instances: own unprivileged users, bounded by resource limits', () => {
  const lab = new Lab('hpu');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;

  const pidOf = (pod: string): number => {
    const all = [...central.log().matchAll(new RegExp(`"pod":"${pod}","pid":(\\d+),"restarts":\\d+,"msg":"pod instance starting"`, 'g'))];
    return Number(all.at(-1)?.[1]);
  };
  const readyCount = (pod: string) => [...central.log().matchAll(new RegExp(`"pod":"${pod}","pid":\\d+,"listeners":[^\\n]*"msg":"pod instance ready"`, 'g'))].length;
  async function wait(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) {
      if (central.proc.exitCode !== null) throw new Error(`central node exited waiting for ${what}:\n${central.log().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${central.log().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // The API listens in the central namespace.
  const podStatus = (pod: string) =>
    JSON.parse(lab.exec('central', process.execPath, [PODBOOT, 'pods', 'status', pod, '--state', stateDir])) as {
      runAs?: { uid: number };
      limits?: { enforced: boolean; via?: string; memoryBytes: number; cgroups?: string[] };
      restarts: number;
      lastExit?: { reason: string };
    };

  beforeAll(async () => {
    requireBuild();
    wireRacks(lab, RACKS, '10.98.0.0/24');
    mkdirSync(podsDir);
    for (const r of RACKS) writeFileSync(join(podsDir, `${r.pod}.yaml`), rackPodYaml(r));
    central = lab.spawn('central', process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0'], 'central', { PODBOOT_DEBUG_ALLOCATE_ON_SIGUSR2: '1' });
    await wait('three instances ready', () => RACKS.every((r) => readyCount(r.pod) === 1), 45_000);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it('each pod runs as its own uid ≠ 0, with only net_bind_service, in its own 0700 state directory, never given --ca', () => {
    const uids = new Set<number>();
    for (const r of RACKS) {
      const pid = pidOf(r.pod);
      const uid = Number(procStatus(pid, 'Uid').split(/\s+/)[0]);
      expect(uid, r.pod).not.toBe(0);
      expect(procStatus(pid, 'Uid').split(/\s+/), r.pod).toEqual([String(uid), String(uid), String(uid), String(uid)]);
      expect(Number(procStatus(pid, 'Gid').split(/\s+/)[0]), r.pod).not.toBe(0);
      expect(procStatus(pid, 'Groups'), r.pod).toBe('');
      // CAP_NET_BIND_SERVICE (bit 10) and nothing else, in every set; no way back through setuid.
      for (const set of ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb']) expect(procStatus(pid, set), `${r.pod} ${set}`).toBe('0000000000000400');
      expect(procStatus(pid, 'NoNewPrivs')).toBe('1');
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'), r.pod).not.toContain('--ca');
      const st = statSync(join(stateDir, r.pod));
      expect({ uid: st.uid, mode: (st.mode & 0o777).toString(8) }, r.pod).toEqual({ uid, mode: '700' });
      expect(podStatus(r.pod).runAs?.uid).toBe(uid);
      uids.add(uid);
    }
    expect(uids.size).toBe(3);
    // Recorded in the state root: the same uid at every start.
    const recorded = JSON.parse(readFileSync(join(stateDir, 'pod-users.json'), 'utf8')) as { pods: Record<string, number> };
    for (const r of RACKS) expect(recorded.pods[r.pod], r.pod).toBe(Number(procStatus(pidOf(r.pod), 'Uid').split(/\s+/)[0]));
  });

  it("as a pod's uid, the CA keys, another pod's pod.db and the operator token cannot be read (EACCES); its own state can", () => {
    const uidOf = (pod: string) => Number(procStatus(pidOf(pod), 'Uid').split(/\s+/)[0]);
    const a = uidOf('rack-a');
    const caDir = join(stateDir, 'ca');
    const keys = keysUnder(caDir);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect((statSync(caDir).mode & 0o777).toString(8)).toBe('700');
    const secrets = [
      ...keys,
      join(caDir, 'root.pem'),
      join(stateDir, 'rack-b', 'pod.db'),
      join(stateDir, 'rack-c', 'tls', 'server.key'),
      join(stateDir, 'central', 'operator.token'),
      join(stateDir, 'central', 'register.key'),
    ];
    for (const file of secrets) {
      const r = catAs(a, file);
      expect(r.status, file).not.toBe(0);
      expect(r.stderr, file).toMatch(/Permission denied/);
    }
    // Not a vacuous check: the same uid reads its own database, key and certificate.
    for (const own of ['pod.db', 'tls/server.key', 'tls/server.pem', 'tls/root.pem']) expect(catAs(a, join(stateDir, 'rack-a', own)).status, own).toBe(0);
    // Its certificate came from the node (the pod never opened the CA): it chains to the node's root.
    expect(readFileSync(join(stateDir, 'rack-a', 'tls', 'root.pem'), 'utf8')).toBe(readFileSync(join(caDir, 'root.pem'), 'utf8'));
  });

  it("limits are in the pod's cgroups and in its status", () => {
    const pid = pidOf('rack-a');
    const s = podStatus('rack-a');
    expect(s.limits).toMatchObject({ enforced: true, memoryBytes: 200 * 1024 * 1024 });
    // Named as /proc/PID/cgroup names them; the instance is in each of them.
    const own = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .map((l) => l.replace(/^\d+:/, ''));
    expect(s.limits!.cgroups!.length).toBeGreaterThan(0);
    for (const name of s.limits!.cgroups!) expect(own, name).toContain(name);
    expect(s.limits!.cgroups!.every((n) => n.endsWith('/rack-a'))).toBe(true);
    // The hierarchies as this (host) mount namespace sees them.
    const memory = s.limits!.cgroups!.find((n) => n.startsWith('memory:'));
    const file = memory ? `/sys/fs/cgroup/memory${memory.slice('memory:'.length)}/memory.limit_in_bytes` : `/sys/fs/cgroup${s.limits!.cgroups![0]!.slice(3)}/memory.max`;
    expect(Number(readFileSync(file, 'utf8'))).toBe(200 * 1024 * 1024);
    // The defaults for a pod file that says nothing.
    expect(podStatus('rack-b').limits).toMatchObject({ enforced: true, memoryBytes: 512 * 1024 * 1024 });
  });

  it('a pod allocating past its memory limit is killed and restarted alone; the other pods see no drops', async () => {
    const [a, b, c] = RACKS as [Rack, Rack, Rack];
    const before = { a: pidOf(a.pod), b: pidOf(b.pod), c: pidOf(c.pod) };
    const uidA = procStatus(before.a, 'Uid').split(/\s+/)[0];
    const pb = perfdhcp(lab, b, 8, 'perf-b');
    const pc = perfdhcp(lab, c, 8, 'perf-c');
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(before.a, 'SIGUSR2');
    await wait('rack-a restarted', () => readyCount(a.pod) === 2);
    const [rb, rc] = [await perfResult(pb), await perfResult(pc)];

    expect(central.log()).toMatch(/"pod":"rack-a","reason":"killed by the memory limit \(200 MiB; SIGKILL from the kernel's OOM killer\)"[^\n]*"msg":"pod instance exited; restarting after backoff"/);
    expect(podStatus(a.pod).lastExit?.reason).toMatch(/killed by the memory limit/);
    expect(pidOf(a.pod)).not.toBe(before.a);
    expect(pidOf(b.pod)).toBe(before.b);
    expect(pidOf(c.pod)).toBe(before.c);
    expect(readyCount(b.pod)).toBe(1);
    expect(readyCount(c.pod)).toBe(1);
    for (const r of [rb, rc]) {
      expect(r.sent, r.out).toBeGreaterThan(300);
      expect(r.drops, r.out).toBe(0);
    }
    // The restarted instance is confined as before: same uid, same limits.
    expect(podStatus(a.pod).limits?.enforced).toBe(true);
    expect(procStatus(pidOf(a.pod), 'Uid').split(/\s+/)[0]).toBe(uidA);
  }, 60_000);

  it('a pod whose file is removed leaves no cgroup behind', async () => {
    const names = podStatus('rack-c').limits!.cgroups!;
    const dirs = names.map((n) => (n.startsWith('0::') ? `/sys/fs/cgroup${n.slice(3)}` : `/sys/fs/cgroup/${n.split(':')[0]}${n.slice(n.indexOf(':') + 1)}`));
    expect(
      dirs.every((d) => existsSync(d)),
      dirs.join(' '),
    ).toBe(true);
    rmSync(join(podsDir, 'rack-c.yaml'));
    await wait('rack-c stopped', () => /"pod":"rack-c","file":"[^"]*","msg":"pod file removed; stopping its instance"/.test(central.log()) && dirs.every((d) => !existsSync(d)), 20_000);
  }, 30_000);
});
