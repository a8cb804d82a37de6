// lab/wan-link.py, the user-space WAN the lab uses where the kernel has no
// netem or a rate cap is asked: two namespaces joined through a third by the
// link. It must carry ARP, ICMP and TCP intact (offloads off), add the asked
// delay each way, lose frames only when asked (from a seeded PRNG), hold each
// direction to its rate, count the bytes it carries each way (and those of
// counted TCP ports), and exit by itself at the end of its lifetime.
// Namespace a plays the central node (--central ca), b the rack (--rack cb).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWanCountersFile, type WanCounters } from '../../../src/lab/wan-counters.js';
import { Lab } from '../../helpers/netns.js';

const SCRIPT = new URL('../../../lab/wan-link.py', import.meta.url).pathname;
const lab = new Lab('pbwl');
const OFF = ['-K', 'x', 'tx', 'off', 'tso', 'off', 'gso', 'off', 'sg', 'off', 'gro', 'off'];

function startLink(args: string[]): { proc: ChildProcess; exited: Promise<number | null>; log: () => string } {
  const log: Buffer[] = [];
  const proc = spawn('ip', ['netns', 'exec', lab.ns('w'), 'python3', SCRIPT, '--central', 'ca', '--rack', 'cb', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => log.push(d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  return { proc, exited, log: () => Buffer.concat(log).toString() };
}

async function stopLink(l: ReturnType<typeof startLink>): Promise<void> {
  if (l.proc.exitCode === null) l.proc.kill('SIGTERM');
  await l.exited;
}

/** The link's JSON lines with this msg (the last one is the final counters at exit). */
function logLines(l: ReturnType<typeof startLink>, msg: string): Record<string, unknown>[] {
  return l
    .log()
    .split('\n')
    .filter((x) => x.includes(`"msg": "${msg}"`))
    .map((x) => JSON.parse(x) as Record<string, unknown>);
}

// A TCP peer for exact byte counts: the client sends an 8-byte count of what
// it wants back, then `up` bytes, then closes its side; the server reads to
// EOF and sends the count. The client prints what it got and how long it took.
const XFER = `
import json, socket, socketserver, struct, sys, time
CHUNK = bytes(65536)
def send_n(s, n):
    while n > 0:
        k = min(n, len(CHUNK)); s.sendall(CHUNK[:k]); n -= k
def recv_all(s):
    n = 0
    while True:
        b = s.recv(65536)
        if not b: return n
        n += len(b)
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        head = b''
        while len(head) < 8:
            b = self.request.recv(8 - len(head))
            if not b: return
            head += b
        got = recv_all(self.request)
        send_n(self.request, struct.unpack('!Q', head)[0])
        self.request.shutdown(socket.SHUT_WR)
        print(json.dumps({'received': got}), flush=True)
if sys.argv[1] == 'serve':
    socketserver.TCPServer.allow_reuse_address = True
    srv = socketserver.TCPServer((sys.argv[2], int(sys.argv[3])), Handler)
    print('listening', flush=True)
    srv.serve_forever()
else:
    host, port, up, down = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    t0 = time.monotonic()
    for attempt in range(50):
        try:
            s = socket.create_connection((host, port), timeout=30); break
        except ConnectionRefusedError:
            time.sleep(0.1)
    s.sendall(struct.pack('!Q', down)); send_n(s, up); s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    print(json.dumps({'received': got, 'seconds': time.monotonic() - t0}))
`;

function xferScript(): string {
  const file = join(lab.dir, 'xfer.py');
  writeFileSync(file, XFER);
  return file;
}

/** A server in a (the central side), on its address and port. */
async function xferServer(port: number) {
  const d = lab.spawn('a', 'python3', ['-u', xferScript(), 'serve', '10.98.0.1', String(port)], `xfer-${port}`);
  await d.waitFor(/listening/, 10_000);
  return d;
}

/** From b (the rack side): `up` bytes to the server, `down` bytes back. */
function xfer(port: number, up: number, down: number): { received: number; seconds: number } {
  const out = lab.exec('b', 'python3', [xferScript(), 'client', '10.98.0.1', String(port), String(up), String(down)]);
  return JSON.parse(out.trim().split('\n').pop()!) as { received: number; seconds: number };
}

// A bulk transfer's frames cost ~66 bytes of Ethernet/IP/TCP headers per ≤1448 payload bytes (4.6%), and the
// other way one ACK per one or two segments: 8% of both plus a few KiB of handshakes and probes bounds the counts.
const overhead = (n: number, other: number) => Math.ceil(0.08 * (n + other)) + 8192;

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
  it('adds the delay each way and carries TCP intact; counts bytes each way, counted ports apart; counters on exit', async () => {
    mkdirSync(join(lab.dir, 'wan'), { recursive: true });
    const countersFile = join(lab.dir, 'wan', 'rack-1.json');
    const link = startLink(['--delay-ms', '25', '--seed', '7', '--count-tcp-port', '8443', '--counters-file', countersFile]);
    const UP = 300 << 10;
    const DOWN = (1 << 20) + 12345;
    let before: WanCounters | undefined;
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

      // the file is rewritten about once a second: the first one written after the HTTP blob went up (b → a) holds it
      const done = Date.now() / 1000 + 0.1;
      for (let i = 0; i < 100 && !((before?.time ?? 0) > done); i++) {
        await new Promise((r) => setTimeout(r, 100));
        before = readWanCountersFile(countersFile);
      }
      expect(before?.up.bytes).toBeGreaterThanOrEqual(4 << 20);
      expect(before?.up.tcpPorts['8443']).toBe(0);
      const srv = await xferServer(8443);
      expect(xfer(8443, UP, DOWN).received).toBe(DOWN);
      await srv.waitFor(/"received"/, 10_000);
      expect(srv.log()).toContain(`{"received": ${UP}}`);
      await srv.stop();
    } finally {
      await stopLink(link);
    }
    expect(link.log()).toMatch(/"msg": "wan link down"/);
    expect(link.log()).toMatch(/"reason": "SIGTERM"/);
    // the final file is what the last counters line on stderr says
    const after = readWanCountersFile(countersFile)!;
    const final = logLines(link, 'counters').pop()!;
    expect(final.final).toBe(true);
    expect(final.down).toEqual(after.down);
    expect(final.up).toEqual(after.up);
    expect(after).toMatchObject({ rateBps: 0, delayMs: 25, down: { from: 'ca', to: 'cb', dropped: 0 }, up: { from: 'cb', to: 'ca', dropped: 0 } });
    // each direction on its own: the counted port holds the exchange and nothing of the HTTP blob (port 8099)
    const b = before!;
    const down8443 = after.down.tcpPorts['8443']! - b.down.tcpPorts['8443']!;
    const up8443 = after.up.tcpPorts['8443']! - b.up.tcpPorts['8443']!;
    expect(down8443).toBeGreaterThanOrEqual(DOWN);
    expect(down8443).toBeLessThanOrEqual(DOWN + overhead(DOWN, UP));
    expect(up8443).toBeGreaterThanOrEqual(UP + 8);
    expect(up8443).toBeLessThanOrEqual(UP + 8 + overhead(UP, DOWN));
    // totals hold the counted bytes and everything else (the blob, pings, ARP)
    expect(after.down.bytes - b.down.bytes).toBeGreaterThanOrEqual(down8443);
    expect(after.up.bytes).toBeGreaterThanOrEqual((4 << 20) + up8443);
    expect(after.up.bytes - after.up.tcpPorts['8443']!).toBeGreaterThanOrEqual(4 << 20);
    expect(after.down.frames).toBeGreaterThan(DOWN / 1514);
  }, 120_000);

  it('holds each direction to --rate: S bytes take at least S·8/R; the queue bound follows the BDP', async () => {
    const RATE = 4_000_000;
    const link = startLink(['--rate', '4mbit', '--delay-ms', '5', '--count-tcp-port', '8443']);
    const DOWN = 1 << 20;
    const UP = 512 << 10;
    let down: { received: number; seconds: number };
    let up: { received: number; seconds: number };
    try {
      const srv = await xferServer(8443);
      down = xfer(8443, 0, DOWN);
      up = xfer(8443, UP, 0);
      await srv.stop();
    } finally {
      await stopLink(link);
    }
    expect(down.received).toBe(DOWN);
    expect(up.received).toBe(0);
    // lower bounds only: a loaded machine makes a transfer slower, never faster than the link lets it
    expect(down.seconds).toBeGreaterThanOrEqual((DOWN * 8) / RATE);
    expect(up.seconds).toBeGreaterThanOrEqual((UP * 8) / RATE);
    const [upLine] = logLines(link, 'wan link up');
    // 4 Mbit/s × 10 ms round trip is far below the floor: 256 KiB
    expect(upLine).toMatchObject({ rate_bps: RATE, max_bytes: 256 << 10, count_tcp_ports: [8443] });
    const final = logLines(link, 'counters').pop() as unknown as WanCounters;
    expect(final.down.tcpPorts['8443']).toBeGreaterThanOrEqual(DOWN);
    expect(final.up.tcpPorts['8443']).toBeGreaterThanOrEqual(UP);
    expect(final.down.peakQueuedBytes).toBeLessThanOrEqual(256 << 10);

    // a fast link's bound is twice its bandwidth-delay product: 1 Gbit/s × 50 ms round trip × 2
    const fast = startLink(['--rate', '1gbit', '--delay-ms', '25', '--lifetime', '1']);
    await fast.exited;
    expect(logLines(fast, 'wan link up')[0]).toMatchObject({ rate_bps: 1e9, max_bytes: 12_500_000 });
  }, 120_000);

  it('tail-drops what does not fit its queue, and counts it', async () => {
    const link = startLink(['--rate', '1mbit', '--max-bytes', '65535']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      pingRtts(1);
      // 200 datagrams of 1242-byte frames at once: the queue holds 52 of them, the rest are dropped at its tail
      lab.exec('a', 'python3', ['-c', "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(200): s.sendto(bytes(1200), ('10.98.0.2', 9))"]);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await stopLink(link);
    }
    const final = logLines(link, 'counters').pop() as unknown as WanCounters;
    expect(final.down.queueFull).toBeGreaterThanOrEqual(100);
    expect(final.down.dropped).toBe(final.down.queueFull + final.down.lost + final.down.sendErrors);
    expect(final.down.peakQueuedBytes).toBeLessThanOrEqual(65535);
  }, 60_000);

  it('refuses a rate or port it cannot read, saying why', () => {
    for (const [args, why] of [
      [['--rate', '10mbps'], /--rate: '10mbps': expected a rate in bits\/s such as 10mbit/],
      [['--rate', 'fast'], /--rate: 'fast': expected a rate in bits\/s/],
      [['--rate', '10bit'], /between 1kbit and 100gbit/],
      [['--count-tcp-port', '70000'], /expected a TCP port 1\.\.65535/],
    ] as const) {
      const r = spawnSync('ip', ['netns', 'exec', lab.ns('w'), 'python3', SCRIPT, '--central', 'ca', '--rack', 'cb', ...args], { encoding: 'utf8', timeout: 15_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(why);
    }
  });

  it('loses frames when asked; exits at its lifetime', async () => {
    const link = startLink(['--loss', '0.3', '--seed', '42', '--lifetime', '30']);
    await new Promise((r) => setTimeout(r, 300));
    const { received } = pingRtts(40, '0.05');
    await stopLink(link);
    const stats = logLines(link, 'counters').pop() as unknown as WanCounters;
    expect(stats.down.lost + stats.up.lost).toBeGreaterThan(0);
    expect(stats.down.dropped).toBe(stats.down.lost);
    // 30% each way: some round trips lost, not all
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(40);

    const short = startLink(['--lifetime', '1']);
    const code = await Promise.race([short.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code).toBe(0);
    expect(short.log()).toMatch(/"reason": "lifetime"/);
  }, 120_000);
});
