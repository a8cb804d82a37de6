// The central node supervising three pods from a directory (issue 5, must
// show 1 and 2): kill -9 of one instance restarts only that one while
// perfdhcp against the other two sees no drops, and the killed pod's leases
// survive; a broken file is refused with file:line while the others keep
// serving, its fixed version starts; a changed pool reloads with leases kept;
// a pod flooded by perfdhcp at full speed costs its neighbours nothing; a pod
// that cannot start backs off into a crash loop.
// Each pod's rack is its own namespace wired to the central one.
import Database from 'better-sqlite3';
import { request } from 'node:http';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { perfdhcp, perfResult, perfStat, type Rack, rackPodYaml, wireRacks } from '../../helpers/rack-pods.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const RACKS: Rack[] = ['a', 'b', 'c', 'd'].map((x, i) => ({ pod: `rack-${x}`, ns: `r${x}`, server: `10.99.0.${i + 1}`, relay: `10.${31 + i}.0.1`, octet: 31 + i }));

const mac = (rack: number, i: number) => `52:54:0${rack}:00:00:${i.toString(16).padStart(2, '0')}`;

function count(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, 'g'))].length;
}

async function until(what: string, fn: () => boolean, timeoutMs = 20_000, log?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${log ? `; log:\n${log().slice(-4000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function metricsText(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('central node: one supervised instance per pod', () => {
  const lab = new Lab('pbv');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;

  /** pid of the pod's current instance, from the supervisor's last "starting" line */
  const pidOf = (pod: string): number => {
    const all = [...central.log().matchAll(new RegExp(`"pod":"${pod}","pid":(\\d+),"restarts":\\d+,"msg":"pod instance starting"`, 'g'))];
    return Number(all.at(-1)?.[1]);
  };
  const diagnose = () => {
    const pids = lab
      .exec('central', 'ip', ['netns', 'pids', lab.ns('central')], { allowFail: true })
      .split('\n')
      .filter(Boolean);
    const ps = pids.map((p) => lab.exec('central', 'ps', ['-o', 'pid,stat,wchan:20,etime,args', '-p', p], { allowFail: true })).join('');
    return `${central.log()}\nprocesses in central:\n${ps}`;
  };
  const wait = (what: string, fn: () => boolean, timeoutMs = 20_000) =>
    until(
      what,
      () => {
        // A central node that died will not get there: say so now, with its log.
        if (central.proc.exitCode !== null || central.proc.signalCode !== null)
          throw new Error(`central node exited (${central.proc.exitCode ?? central.proc.signalCode}) waiting for ${what}:\n${central.log().slice(-4000)}`);
        return fn();
      },
      timeoutMs,
      diagnose,
    );
  const readyCount = (pod: string) => count(central.log(), new RegExp(`"pod":"${pod}","pid":\\d+,"listeners":[^\\n]*"msg":"pod instance ready"`));

  function probe(r: Rack, m: string): string | undefined {
    const out = lab.exec(r.ns, process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', `${r.server}:67`, '--relay', `${r.relay}:67`, '--mac', m, '--timeout', '3000'], { allowFail: true });
    const ack = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; yiaddr: string })
      .find((p) => p.type === 'ACK');
    return ack?.yiaddr;
  }

  beforeAll(async () => {
    requireBuild();
    wireRacks(lab, RACKS, '10.99.0.0/24');
    mkdirSync(podsDir);
    for (const r of RACKS.slice(0, 3)) writeFileSync(join(podsDir, `${r.pod}.yaml`), rackPodYaml(r));
    central = lab.spawn('central', process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir], 'central');
    await wait('three instances ready', () => RACKS.slice(0, 3).every((r) => readyCount(r.pod) === 1), 30_000);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it('instances warm their DHCP code up only once every instance that was starting is serving', async () => {
    const instanceLog = (pod: string) => {
      try {
        return readFileSync(join(stateDir, pod, 'instance.log'), 'utf8');
      } catch {
        return '';
      }
    };
    const pods = RACKS.slice(0, 3).map((r) => r.pod);
    await wait('three warm-ups', () => pods.every((p) => instanceLog(p).includes('"msg":"DHCP warm-up done"')));
    const lastReady = Math.max(
      ...pods.map((p) => Date.parse(central.log().match(new RegExp(`"time":"([^"]+)","node":"central","pod":"${p}","pid":\\d+,"listeners":[^\\n]*"msg":"pod instance ready"`))![1]!)),
    );
    for (const p of pods) {
      const done = instanceLog(p).match(/"time":"([^"]+)"[^\n]*"exchanges":(\d+),"ms":(\d+),"msg":"DHCP warm-up done"/);
      expect(done, p).not.toBeNull();
      expect(Number(done![2])).toBe(1500);
      // It began (done − its duration) after the last of the three was ready, not during the starts.
      expect(Date.parse(done![1]!) - Number(done![3]) + 5, p).toBeGreaterThanOrEqual(lastReady);
      expect(count(instanceLog(p), /"msg":"DHCP warm-up done"/), p).toBe(1);
    }
    // serve's default V8 flags reach every instance (a 2 MiB young generation: docs/operations.md, Sizing).
    for (const p of pods) expect(readFileSync(`/proc/${pidOf(p)}/cmdline`, 'utf8').split('\0'), p).toContain('--max-semi-space-size=2');
  }, 30_000);

  it('kill -9 of one instance restarts only it; the other pods see no drops; its leases survive', async () => {
    const [a, b, c] = RACKS as [Rack, Rack, Rack];
    const leased = new Map<string, string>();
    for (let i = 1; i <= 4; i++) {
      const addr = probe(a, mac(1, i));
      expect(addr, `lease for ${mac(1, i)}`).toMatch(/^10\.31\.1\./);
      leased.set(mac(1, i), addr!);
    }
    const before = { a: pidOf(a.pod), b: pidOf(b.pod), c: pidOf(c.pod) };
    const pb = perfdhcp(lab, b, 8, 'perf-b');
    const pc = perfdhcp(lab, c, 8, 'perf-c');
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(before.a, 'SIGKILL');
    await wait('rack-a restarted', () => readyCount(a.pod) === 2);
    const [rb, rc] = [await perfResult(pb), await perfResult(pc)];

    expect(central.log()).toMatch(/"pod":"rack-a","reason":"killed by SIGKILL"[^\n]*"msg":"pod instance exited; restarting after backoff"/);
    expect(pidOf(a.pod)).not.toBe(before.a);
    expect(pidOf(b.pod)).toBe(before.b);
    expect(pidOf(c.pod)).toBe(before.c);
    expect(readyCount(b.pod)).toBe(1);
    expect(readyCount(c.pod)).toBe(1);
    for (const r of [rb, rc]) {
      expect(r.sent, r.out).toBeGreaterThan(300);
      expect(r.drops, r.out).toBe(0);
    }
    // The restarted instance knows every lease: same address for each client, and in its database.
    for (const [m, addr] of leased) expect(probe(a, m), m).toBe(addr);
    const db = new Database(join(stateDir, a.pod, 'pod.db'), { readonly: true });
    const rows = db.prepare("SELECT mac FROM leases WHERE state = 'bound'").all() as { mac: string }[];
    db.close();
    const bound = new Set(rows.map((r) => r.mac));
    for (const m of leased.keys()) expect(bound.has(m), m).toBe(true);
  }, 60_000);

  it('a broken file is refused with file:line, the others keep serving; the fixed file starts its pod', async () => {
    const [, b, c, d] = RACKS as [Rack, Rack, Rack, Rack];
    const pids = { b: pidOf(b.pod), c: pidOf(c.pod) };
    const pb = perfdhcp(lab, b, 4, 'perf-b2');
    const file = join(podsDir, `${d.pod}.yaml`);
    // leaseTime as a list: a type error on line 12 of the file.
    writeFileSync(file, rackPodYaml(d).replace('leaseTime: 1h', 'leaseTime: [1h]'));
    await wait('the refusal', () => central.log().includes('pod file refused'));
    const refusal = central.log().match(/"problems":\["([^"]*rack-d\.yaml:\d+:\d+:[^"]*)"/)?.[1];
    expect(refusal).toMatch(new RegExp(`${file.replace(/[.]/g, '\\.')}:12:\\d+: spec\\.subnets\\[0\\]\\.leaseTime: `));
    const rb = await perfResult(pb);
    expect(rb.sent, rb.out).toBeGreaterThan(150);
    expect(rb.drops, rb.out).toBe(0);
    expect(pidOf(d.pod)).toBeNaN();
    expect({ b: pidOf(b.pod), c: pidOf(c.pod) }).toEqual(pids);

    writeFileSync(file, rackPodYaml(d));
    await wait('rack-d ready', () => readyCount(d.pod) === 1);
    expect(probe(d, mac(4, 1))).toMatch(/^10\.34\.1\./);
    expect({ b: pidOf(b.pod), c: pidOf(c.pod) }).toEqual(pids);
  }, 60_000);

  it('a changed pool reloads the pod without losing its leases', async () => {
    const a = RACKS[0]!;
    const leased = new Map<string, string>();
    for (let i = 1; i <= 4; i++) leased.set(mac(1, i), probe(a, mac(1, i))!);
    const readyBefore = readyCount(a.pod);
    writeFileSync(join(podsDir, `${a.pod}.yaml`), rackPodYaml(a, '10.31.250.250'));
    await wait('rack-a reloaded', () => readyCount(a.pod) === readyBefore + 1);
    expect(central.log()).toMatch(/"pod":"rack-a","reason":"pod file changed \(exit code 0\)","msg":"pod instance restarting"/);
    expect(await metricsText(join(stateDir, a.pod, 'metrics.sock'))).toMatch(/^podboot_dhcp_pool_addresses 63995$/m);
    for (const [m, addr] of leased) expect(probe(a, m), m).toBe(addr);
  }, 60_000);

  it('a flooded pod does not cost its neighbours a single exchange', async () => {
    const [a, b, c] = RACKS as [Rack, Rack, Rack];
    const pids = { a: pidOf(a.pod), b: pidOf(b.pod), c: pidOf(c.pod) };
    // As fast as perfdhcp can send, for 5 s, at rack A; the other racks at their usual pace.
    const flood = lab.spawn(a.ns, 'perfdhcp', ['-4', '-l', a.relay, '-L', '67', '-r', '50000', '-R', '1000000', '-p', '5', '-d', '1', '-W', '500000', a.server], 'flood-a');
    const pb = perfdhcp(lab, b, 5, 'perf-b3');
    const pc = perfdhcp(lab, c, 5, 'perf-c3');
    const [rf, rb, rc] = [await perfResult(flood), await perfResult(pb), await perfResult(pc)];
    expect(perfStat(rf.out, 'DISCOVER-OFFER', 'sent packets'), rf.out).toBeGreaterThan(2000);
    for (const r of [rb, rc]) {
      expect(r.sent, r.out).toBeGreaterThan(200);
      expect(r.drops, r.out).toBe(0);
    }
    // Nobody was restarted: the flooded instance stayed up too.
    expect({ a: pidOf(a.pod), b: pidOf(b.pod), c: pidOf(c.pod) }).toEqual(pids);
  }, 60_000);

  it('an instance that cannot start backs off into a crash loop, with its reason, and stops when its file goes', async () => {
    const [a, b] = RACKS as [Rack, Rack];
    const pids = { a: pidOf(a.pod), b: pidOf(b.pod) };
    // A valid file whose address is on no interface of the central node: bind fails at every start.
    const x: Rack = { pod: 'rack-x', ns: 'rx', server: '10.99.0.9', relay: '10.39.0.1', octet: 39 };
    const file = join(podsDir, 'rack-x.yaml');
    writeFileSync(file, rackPodYaml(x));
    await wait('rack-x in a crash loop', () => /"pod":"rack-x"[^\n]*"msg":"pod instance in a crash loop"/.test(central.log()), 40_000);
    const exits = [...central.log().matchAll(/"pod":"rack-x","reason":"exit code 1","ranMs":\d+,"delayMs":(\d+),"streak":(\d+),"lastLog":"([^\n]*?)","msg"/g)];
    // 0.5 s, 1 s, 2 s, 4 s, then the crash loop (8 s).
    expect(exits.map((m) => Number(m[1]))).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(exits.at(-1)![3]).toMatch(/EADDRNOTAVAIL 10\.99\.0\.9:67/);
    expect({ a: pidOf(a.pod), b: pidOf(b.pod) }).toEqual(pids);
    rmSync(file);
    await wait('rack-x removed', () => /"pod":"rack-x","file":"[^"]*","msg":"pod file removed; stopping its instance"/.test(central.log()));
    const starts = () => count(central.log(), /"pod":"rack-x","pid":\d+,"restarts":\d+,"msg":"pod instance starting"/);
    const n = starts();
    await new Promise((r) => setTimeout(r, 9000));
    expect(starts(), 'no start after the file was removed').toBe(n);
  }, 90_000);
});
