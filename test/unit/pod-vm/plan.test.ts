import { describe, expect, it } from 'vitest';
import { hashText, planScan, type AppliedEntry, type PlanAction, type ScannedFile } from '../../../src/pod-vm/plan.js';
import { nextRestart, DEFAULT_BACKOFF } from '../../../src/pod-vm/backoff.js';
import { cpuPercent, parseIo, parseStat } from '../../../src/pod-vm/proc.js';

const pod = (name: string, address: string, octet: number) => `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${name}
spec:
  listen: { address: ${address} }
  relays: [10.${octet}.0.1]
  subnets:
    - { cidr: 10.${octet}.0.0/24, gateway: 10.${octet}.0.1, pool: 10.${octet}.0.100-10.${octet}.0.199 }
`;

const scan = (file: string, text: string): ScannedFile => ({ file, hash: hashText(text), text });

/** Applies start/reload/refuse to a map the way the supervisor does. */
function applyAll(applied: Map<string, AppliedEntry>, actions: PlanAction[]): void {
  for (const a of actions) {
    if (a.kind === 'start' || a.kind === 'reload') applied.set(a.file, { file: a.file, running: { hash: a.hash, located: a.located } });
    else if (a.kind === 'refuse') applied.set(a.file, { ...(applied.get(a.file) ?? { file: a.file }), refusedHash: a.hash });
    else applied.delete(a.file);
  }
}

describe('planScan', () => {
  it('starts new files, reloads changed ones, stops removed ones, leaves the rest alone', () => {
    const applied = new Map<string, AppliedEntry>();
    const a = scan('/p/a.yaml', pod('rack-a', '10.99.0.1', 31));
    const b = scan('/p/b.yaml', pod('rack-b', '10.99.0.2', 32));
    let actions = planScan(applied, [a, b]);
    expect(actions.map((x) => [x.kind, x.file])).toEqual([
      ['start', '/p/a.yaml'],
      ['start', '/p/b.yaml'],
    ]);
    applyAll(applied, actions);
    expect(planScan(applied, [a, b])).toEqual([]);

    const a2 = scan('/p/a.yaml', pod('rack-a', '10.99.0.1', 31).replace('0.199', '0.250'));
    actions = planScan(applied, [a2]);
    expect(actions.map((x) => [x.kind, x.file])).toEqual([
      ['stop', '/p/b.yaml'],
      ['reload', '/p/a.yaml'],
    ]);
  });

  it('refuses a broken file with its location, once, and keeps the running version of a changed one', () => {
    const applied = new Map<string, AppliedEntry>();
    const a = scan('/p/a.yaml', pod('rack-a', '10.99.0.1', 31));
    applyAll(applied, planScan(applied, [a]));
    const broken = scan('/p/a.yaml', pod('rack-a', '10.99.0.1', 31).replace('address: 10.99.0.1', 'address: [1]'));
    const actions = planScan(applied, [broken]);
    expect(actions).toHaveLength(1);
    const r = actions[0]!;
    expect(r.kind).toBe('refuse');
    if (r.kind !== 'refuse') return;
    expect(r.running).toBe('rack-a');
    expect(r.problems[0]).toMatchObject({ file: '/p/a.yaml', line: 6, path: 'spec.listen.address' });
    applyAll(applied, actions);
    // Same broken bytes again: nothing new to say; the old version still counts as running.
    expect(planScan(applied, [broken])).toEqual([]);
    expect(applied.get('/p/a.yaml')?.running?.located.pod.name).toBe('rack-a');
  });

  it('charges a conflict to the newcomer even when its file sorts first', () => {
    const applied = new Map<string, AppliedEntry>();
    const z = scan('/p/z.yaml', pod('rack-z', '10.99.0.1', 31));
    applyAll(applied, planScan(applied, [z]));
    const a = scan('/p/a.yaml', pod('rack-a', '10.99.0.1', 32));
    const actions = planScan(applied, [a, z]);
    expect(actions.map((x) => [x.kind, x.file])).toEqual([['refuse', '/p/a.yaml']]);
    const r = actions[0]!;
    if (r.kind === 'refuse') expect(r.problems.map((p) => p.message).join()).toMatch(/also used by pod rack-z/);
  });

  it('refuses an unreadable file without touching others', () => {
    const applied = new Map<string, AppliedEntry>();
    const bad: ScannedFile = { file: '/p/x.yaml', hash: 'unreadable', readProblem: { file: '/p/x.yaml', line: 1, col: 1, path: '(file)', message: 'not UTF-8 text' } };
    expect(planScan(applied, [bad])).toEqual([{ kind: 'refuse', file: '/p/x.yaml', hash: 'unreadable', problems: [bad.readProblem], running: undefined }]);
  });
});

describe('nextRestart', () => {
  it('doubles the delay per short run, caps it, calls five in a row a crash loop, and forgives a long run', () => {
    let streak = 0;
    const delays: number[] = [];
    let loop = false;
    for (let i = 0; i < 10; i++) {
      const d = nextRestart(DEFAULT_BACKOFF, streak, 100);
      streak = d.streak;
      delays.push(d.delayMs);
      if (i === 3) expect(d.crashLoop).toBe(false);
      if (i === 4) loop = d.crashLoop;
    }
    expect(delays.slice(0, 5)).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(delays.at(-1)).toBe(60_000);
    expect(loop).toBe(true);
    expect(nextRestart(DEFAULT_BACKOFF, streak, 60_000)).toEqual({ delayMs: 500, streak: 1, crashLoop: false });
  });
});

describe('/proc parsing', () => {
  // Captured from a node process; its name contains a space and a parenthesis.
  const stat = '4242 (node (pod) x) S 1 4242 4242 0 -1 4194560 12063 0 0 0 150 37 0 0 20 0 11 0 123456 1161371648 14000 18446744073709551615 1 1 0 0 0 0 0 4096 134234626 0 0 0 17 1 0 0 0 0 0';
  it('reads state, CPU ticks, priority, threads and RSS from stat', () => {
    expect(parseStat(stat)).toEqual({ state: 'S', cpuTicks: 187, priority: 20, nice: 0, threads: 11, startTicks: 123456, rssBytes: 14000 * 4096 });
  });
  it('reads io counters', () => {
    expect(parseIo('rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n')).toEqual({ rchar: 10, wchar: 20, readBytes: 4096, writeBytes: 8192 });
  });
  it('computes CPU % of one core between two samples', () => {
    const s = parseStat(stat)!;
    const a = { pid: 1, at: 1000, stat: s };
    const b = { pid: 1, at: 3000, stat: { ...s, cpuTicks: s.cpuTicks + 100 } };
    expect(cpuPercent(a, b)).toBe(50);
    expect(cpuPercent(undefined, b)).toBeUndefined();
    expect(cpuPercent({ ...a, pid: 2 }, b)).toBeUndefined();
  });
});

describe('StartLimiter', () => {
  it('lets at most N start at once and hands a freed slot to the next in line', async () => {
    const { StartLimiter } = await import('../../../src/pod-vm/instance.js');
    const gate = new StartLimiter(2);
    const order: string[] = [];
    const r1 = await gate.acquire();
    const r2 = await gate.acquire();
    const third = gate.acquire().then((r) => {
      order.push('third');
      return r;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    r1();
    r1(); // releasing twice frees one slot only
    const r3 = await third;
    expect(order).toEqual(['third']);
    let fourth = false;
    void gate.acquire().then(() => (fourth = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(fourth).toBe(false);
    r2();
    await new Promise((r) => setTimeout(r, 10));
    expect(fourth).toBe(true);
    r3();
  });
});

describe('instance log rotation', () => {
  it("copies past the limit to .1 and empties the file; the writer's next line starts it again", async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { rotateIfLarger } = await import('../../../src/pod-vm/log-rotate.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pbv-log-'));
    const file = path.join(dir, 'instance.log');
    // As the supervisor hands it to an instance: opened for appending.
    const fd = fs.openSync(file, 'a');
    try {
      fs.writeSync(fd, 'x'.repeat(5000) + '\n');
      expect(await rotateIfLarger(file, 8192)).toBe(false);
      fs.writeSync(fd, 'y'.repeat(5000) + '\n');
      expect(await rotateIfLarger(file, 8192)).toBe(true);
      expect(fs.statSync(`${file}.1`).size).toBe(10002);
      fs.writeSync(fd, 'next line\n');
      expect(fs.readFileSync(file, 'utf8')).toBe('next line\n');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is idle only once nobody holds or waits for a slot', async () => {
    const { StartLimiter } = await import('../../../src/pod-vm/instance.js');
    const gate = new StartLimiter(1);
    await gate.idle(); // nothing started: idle at once
    const r1 = await gate.acquire();
    const second = gate.acquire();
    let idle = false;
    void gate.idle().then(() => (idle = true));
    r1(); // the slot passes to the second one: still not idle
    const r2 = await second;
    await new Promise((r) => setTimeout(r, 10));
    expect(idle).toBe(false);
    r2();
    await new Promise((r) => setTimeout(r, 10));
    expect(idle).toBe(true);
  });
});
