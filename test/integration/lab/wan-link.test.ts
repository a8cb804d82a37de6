// lab/wan-link.py, the user-space WAN the lab uses where the kernel has no
// netem: two namespaces joined through a third by the link. It must carry
// ARP, ICMP and TCP intact (offloads off), add the asked delay each way, lose
// frames only when asked (from a seeded PRNG), and exit by
// itself at the end of its lifetime.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../helpers/netns.js';

const SCRIPT = new URL('../../../lab/wan-link.py', import.meta.url).pathname;
const lab = new Lab('pbwl');
const OFF = ['-K', 'x', 'tx', 'off', 'tso', 'off', 'gso', 'off', 'sg', 'off', 'gro', 'off'];

function startLink(args: string[]): { proc: ChildProcess; exited: Promise<number | null>; log: () => string } {
  const log: Buffer[] = [];
  const proc = spawn('ip', ['netns', 'exec', lab.ns('w'), 'python3', SCRIPT, '--a', 'ca', '--b', 'cb', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => log.push(d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  return { proc, exited, log: () => Buffer.concat(log).toString() };
}

async function stopLink(l: ReturnType<typeof startLink>): Promise<void> {
  if (l.proc.exitCode === null) l.proc.kill('SIGTERM');
  await l.exited;
}

function pingRtts(count: number, intervalS = '0.2'): { rtts: number[]; received: number } {
  const out = lab.exec('a', 'ping', ['-n', '-c', String(count), '-i', intervalS, '-W', '2', '10.98.0.2'], { allowFail: true });
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { rtts, received: rtts.length };
}

beforeAll(() => {
  for (const n of ['a', 'w', 'b']) lab.addNs(n);
  lab.veth({ ns: 'a', ifname: 'x', addr: '10.98.0.1/30' }, { ns: 'w', ifname: 'ca' });
  lab.veth({ ns: 'b', ifname: 'x', addr: '10.98.0.2/30' }, { ns: 'w', ifname: 'cb' });
  for (const n of ['a', 'b']) lab.exec(n, 'ethtool', OFF);
  for (const i of ['ca', 'cb']) {
    lab.exec(
      'w',
      'ethtool',
      OFF.map((x) => (x === 'x' ? i : x)),
    );
    lab.exec('w', 'sysctl', ['-qw', `net.ipv6.conf.${i}.disable_ipv6=1`]);
    lab.ip('w', 'link', 'set', i, 'promisc', 'on');
  }
});

afterAll(async () => {
  await lab.cleanup();
});

describe('lab/wan-link.py', () => {
  it('adds the delay each way and carries TCP intact; counters on exit', async () => {
    const link = startLink(['--delay-ms', '25', '--seed', '7']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const { rtts } = pingRtts(5);
      expect(rtts).toHaveLength(5);
      // 25 ms each way: no round trip can be shorter than 50 ms
      for (const t of rtts) expect(t).toBeGreaterThanOrEqual(50);

      const file = join(lab.dir, 'blob');
      const data = randomBytes(4 << 20);
      writeFileSync(file, data);
      const server = lab.spawn('b', 'python3', ['-m', 'http.server', '8099', '--bind', '10.98.0.2', '--directory', lab.dir], 'http');
      await server.waitFor(/Serving HTTP/, 10_000).catch(() => undefined);
      const got = lab.exec('a', 'sh', ['-c', `curl -sS --max-time 60 --retry 5 --retry-connrefused http://10.98.0.2:8099/blob | sha256sum`]);
      expect(got.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      await server.stop();
    } finally {
      await stopLink(link);
    }
    expect(link.log()).toMatch(/"msg": "wan link down"/);
    expect(link.log()).toMatch(/"reason": "SIGTERM"/);
  }, 120_000);

  it('loses frames when asked; exits at its lifetime', async () => {
    const link = startLink(['--loss', '0.3', '--seed', '42', '--lifetime', '30']);
    await new Promise((r) => setTimeout(r, 300));
    const { received } = pingRtts(40, '0.05');
    await stopLink(link);
    const down = link
      .log()
      .split('\n')
      .find((l) => l.includes('wan link down'))!;
    const stats = JSON.parse(down) as Record<string, { in: number; lost: number }>;
    expect(stats['ca->cb']!.lost + stats['cb->ca']!.lost).toBeGreaterThan(0);
    // 30% each way: some round trips lost, not all
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(40);

    const short = startLink(['--lifetime', '1']);
    const code = await Promise.race([short.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code).toBe(0);
    expect(short.log()).toMatch(/"reason": "lifetime"/);
  }, 120_000);
});
