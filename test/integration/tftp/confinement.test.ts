// What the server refuses, and how: names leaving the boot tree, writes, more
// transfers than the cap, packets that are not requests. Each refusal is a
// TFTP ERROR packet to the client and a log line naming the reason.
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePacket, encodeAck, encodeData, encodeError, encodeRequest, ErrorCode } from '../../../src/tftp/codec.js';
import { exchangeOnce, tftpFetch } from '../../helpers/tftp-client.js';
import { makeTree, patternBytes, runProcess, startTftp, type RunningTftp, type Tree } from '../../helpers/tftp-lab.js';

const KERNEL = patternBytes(20_000, 9);

describe('TFTP confinement and refusals', () => {
  let tree: Tree;
  let tftp: RunningTftp;

  beforeAll(async () => {
    tree = makeTree({ 'stage1/vmlinuz': KERNEL, 'pxelinux.0': patternBytes(3000, 10) }, { 'stage1/kernel': 'vmlinuz', leak: '../secret.txt', hostetc: '/etc' });
    writeFileSync(join(tree.dir, 'secret.txt'), 'outside the tree');
    // Every refusal logged (the rate limit is checked on its own below).
    tftp = await startTftp(tree.root, { badInputLogIntervalMs: 0, maxTransfers: 2, defaultTimeoutMs: 300, maxRetries: 2 });
  });
  afterAll(async () => {
    await tftp?.stop();
    tree?.cleanup();
  });

  const refusalLine = (reason: string) => tftp.lines.filter((l) => l.reason === reason && l.level === 'warn').at(-1);

  it.each([
    ['../etc/passwd', ErrorCode.ACCESS_VIOLATION, 'dot-dot', '../etc/passwd'],
    ['stage1/../../secret.txt', ErrorCode.ACCESS_VIOLATION, 'dot-dot', 'stage1/../../secret.txt'],
    ['/etc/passwd', ErrorCode.FILE_NOT_FOUND, 'not-found', '/etc/passwd'], // one '/' dropped: etc/passwd inside the tree
    ['//etc/passwd', ErrorCode.ACCESS_VIOLATION, 'absolute', '//etc/passwd'],
    ['a\\..\\b', ErrorCode.ACCESS_VIOLATION, 'backslash', 'a\\\\..\\\\b'],
    ['x'.repeat(300), ErrorCode.ACCESS_VIOLATION, 'too-long', 'x'.repeat(300)],
    ['boot\x1b[2Jx', ErrorCode.ACCESS_VIOLATION, 'control-char', 'boot\\x1b[2Jx'],
    ['leak', ErrorCode.ACCESS_VIOLATION, 'outside-root', 'leak'],
    ['hostetc/passwd', ErrorCode.ACCESS_VIOLATION, 'outside-root', 'hostetc/passwd'],
    ['stage1', ErrorCode.ACCESS_VIOLATION, 'directory', 'stage1'],
  ])('refuses %j with error %i (%s) and logs the name escaped', async (name, code, reason, logged) => {
    const r = await tftpFetch({ port: tftp.port, file: name });
    expect(r.error?.code).toBe(code);
    expect(r.bytes).toBe(0);
    expect(refusalLine(reason)).toMatchObject({ pod: 'rack-t', msg: 'tftp read refused', file: logged, client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });

  it('refuses a NUL inside the name: the rest cannot be a valid mode', async () => {
    const raw = Buffer.concat([Buffer.from([0, 1]), Buffer.from('pxelinux.0\0../../etc/passwd\0octet\0', 'latin1')]);
    const r = await tftpFetch({ port: tftp.port, file: '', rawRequest: raw });
    expect(r.error?.code).toBe(ErrorCode.ILLEGAL_OPERATION);
    expect(r.bytes).toBe(0);
    expect(refusalLine('bad-mode')).toMatchObject({ msg: 'tftp request refused: malformed packet', detail: expect.stringContaining('../../etc/passwd') });
  });

  it('tftp-hpa gets the same refusals (it sends names as typed)', async () => {
    const r = await runProcess('tftp', ['-m', 'binary', '127.0.0.1', String(tftp.port), '-c', 'get', '../secret.txt', join(tree.dir, 'x')]);
    expect(r.stdout + r.stderr).toMatch(/Error code 2: Access violation/);
    const leak = await runProcess('tftp', ['-m', 'binary', '127.0.0.1', String(tftp.port), '-c', 'get', 'leak', join(tree.dir, 'x')]);
    expect(leak.stdout + leak.stderr).toMatch(/Error code 2/);
  });

  it('serves a symlink that stays inside the tree, and the leading-slash form PXE ROMs send', async () => {
    const r = await tftpFetch({ port: tftp.port, file: 'stage1/kernel', options: { tsize: 0 } });
    expect(r.ok).toBe(true);
    expect(r.data.equals(KERNEL)).toBe(true);
    const slash = await tftpFetch({ port: tftp.port, file: '/stage1/vmlinuz' });
    expect(slash.data.equals(KERNEL)).toBe(true);
  });

  it('refuses writes: WRQ from tftp-hpa and a raw one get error 2, nothing is written', async () => {
    const local = join(tree.dir, 'upload.bin');
    writeFileSync(local, 'data');
    const r = await runProcess('tftp', ['-m', 'binary', '127.0.0.1', String(tftp.port), '-c', 'put', local, 'new.bin']);
    expect(r.stdout + r.stderr).toMatch(/Error code 2: Access violation \(read-only server\)/);
    const raw = await exchangeOnce(tftp.port, encodeRequest({ op: 'wrq', filename: 'stage1/vmlinuz' }));
    expect(raw && decodePacket(raw.data)).toEqual({ ok: true, packet: { op: 'error', code: 2, message: 'Access violation (read-only server)' } });
    expect(refusalLine('write-request')).toMatchObject({ file: 'stage1/vmlinuz' });
    const still = await tftpFetch({ port: tftp.port, file: 'stage1/vmlinuz' });
    expect(still.data.equals(KERNEL)).toBe(true);
    expect(tftp.server.counters.wrq).toBe(2);
  });

  it('answers packets that are not requests with error 4, and never answers an ERROR', async () => {
    for (const p of [encodeAck(1), encodeData(1, Buffer.from('x')), Buffer.from([0, 9, 1, 2])]) {
      const r = await exchangeOnce(tftp.port, p);
      expect(r && decodePacket(r.data)).toMatchObject({ ok: true, packet: { op: 'error', code: ErrorCode.ILLEGAL_OPERATION } });
    }
    expect(await exchangeOnce(tftp.port, encodeError(0, 'hello'), 400)).toBeUndefined();
  });

  it("ignores a stranger writing to a transfer's port (the socket is connected to its client) and keeps the transfer going", async () => {
    const client = dgram.createSocket('udp4');
    const stranger = dgram.createSocket('udp4');
    await Promise.all([client, stranger].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
    try {
      const first = new Promise<{ data: Buffer; port: number }>((r) => client.once('message', (data, ri) => r({ data, port: ri.port })));
      client.send(encodeRequest({ op: 'rrq', filename: 'pxelinux.0' }), tftp.port, '127.0.0.1');
      const data1 = await first;
      expect(decodePacket(data1.data)).toMatchObject({ ok: true, packet: { op: 'data', block: 1 } });
      // A forged ACK 1 and an ERROR from another port change nothing.
      let strangerGot = 0;
      stranger.on('message', () => strangerGot++);
      stranger.send(encodeAck(1), data1.port, '127.0.0.1');
      stranger.send(encodeError(0, 'stop'), data1.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 100));
      expect(strangerGot).toBe(0);
      // The real client goes on: ACK 1 brings block 2 (3000 bytes = 6 blocks), not a duplicate of anything.
      const next = new Promise<Buffer>((r) => client.once('message', (m) => r(m)));
      client.send(encodeAck(1), data1.port, '127.0.0.1');
      expect(decodePacket(await next)).toMatchObject({ ok: true, packet: { op: 'data', block: 2 } });
      await new Promise((r) => client.send(encodeError(0, 'enough'), data1.port, '127.0.0.1', r));
    } finally {
      client.close();
      stranger.close();
    }
  });

  it('answers the request over the cap (2 transfers here) with an error packet, then serves again', async () => {
    await until(() => tftp.server.counters.active === 0);
    // Two clients that request and then stay silent hold both transfer slots.
    const holders = [dgram.createSocket('udp4'), dgram.createSocket('udp4')];
    await Promise.all(holders.map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
    const tids: number[] = [];
    try {
      for (const h of holders) {
        const got = new Promise<number>((r) => h.once('message', (_m, ri) => r(ri.port)));
        h.send(encodeRequest({ op: 'rrq', filename: 'stage1/vmlinuz' }), tftp.port, '127.0.0.1');
        tids.push(await got);
      }
      expect(tftp.server.counters.active).toBe(2);
      const third = await tftpFetch({ port: tftp.port, file: 'pxelinux.0' });
      expect(third.error).toEqual({ code: 0, message: 'Server busy: 2 transfers running, try again' });
      expect(tftp.lines.filter((l) => l.kind === 'busy').at(-1)).toMatchObject({ msg: 'tftp request refused: transfer limit reached', maxTransfers: 2 });
      // One holder gives up with an ERROR: its slot frees at once.
      holders[0]!.send(encodeError(0, 'cancelled'), tids[0]!, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      const again = await tftpFetch({ port: tftp.port, file: 'pxelinux.0' });
      expect(again.ok).toBe(true);
      // The silent holder's transfer is given up after its retransmissions (300 ms, 600 ms, 1.2 s).
      await until(() => tftp.server.counters.active === 0);
      expect(tftp.server.counters.active).toBe(0);
      expect(tftp.server.counters.errors.timeout).toBe(1);
      expect(tftp.server.counters.errors.clientError).toBeGreaterThanOrEqual(1);
      expect(tftp.lines.filter((l) => l.reason === 'timeout').at(-1)).toMatchObject({ msg: 'tftp transfer failed', file: 'stage1/vmlinuz', blocksAcked: 0 });
    } finally {
      for (const h of holders) h.close();
    }
  });

  it('counts a client that reads tsize from the OACK and ends with an ERROR as a size probe, not a failure', async () => {
    await until(() => tftp.server.counters.active === 0);
    const before = { probes: tftp.server.counters.sizeProbes, clientError: tftp.server.counters.errors.clientError };
    const probe = async (options: Record<string, number>): Promise<Record<string, string> | undefined> => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      try {
        const got = new Promise<{ msg: Buffer; port: number }>((r) => s.once('message', (msg, ri) => r({ msg, port: ri.port })));
        s.send(encodeRequest({ op: 'rrq', filename: 'stage1/vmlinuz', options }), tftp.port, '127.0.0.1');
        const { msg, port } = await got;
        const d = decodePacket(msg);
        // As OVMF: "option negotiation" error 8 in place of ACK 0.
        s.send(encodeError(8, 'User aborted the transfer'), port, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 50));
        return d.ok && d.packet.op === 'oack' ? d.packet.options : undefined;
      } finally {
        s.close();
      }
    };
    expect(await probe({ tsize: 0, blksize: 1468 })).toMatchObject({ tsize: String(KERNEL.length) });
    await until(() => tftp.server.counters.sizeProbes === before.probes + 1);
    expect(tftp.server.counters.errors.clientError).toBe(before.clientError);
    expect(tftp.lines.filter((l) => l.msg === 'tftp size probe: the client read the size and ended the transfer').at(-1)).toMatchObject({ level: 'info', file: 'stage1/vmlinuz', size: KERNEL.length });
    // Without tsize asked, the same ERROR is a client's failure.
    await probe({ blksize: 1468 });
    await until(() => tftp.server.counters.errors.clientError === before.clientError + 1);
    expect(tftp.server.counters.sizeProbes).toBe(before.probes + 1);
  });

  it("ends a transfer at once when the client's port goes away (ICMP port unreachable)", async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const first = new Promise<void>((r) => s.once('message', () => r()));
    s.send(encodeRequest({ op: 'rrq', filename: 'stage1/vmlinuz' }), tftp.port, '127.0.0.1');
    await first;
    const before = tftp.server.counters.errors.clientGone;
    s.close();
    // The first retransmission (300 ms) meets a closed port.
    await until(() => tftp.server.counters.errors.clientGone > before);
    expect(tftp.server.counters.errors.clientGone).toBe(before + 1);
    expect(tftp.server.counters.errors.timeout).toBe(1);
  });
});

describe('TFTP bad-input log rate limit', () => {
  it('logs one line per kind per interval and still answers every request', async () => {
    const tree = makeTree({ 'a.bin': Buffer.from('a') });
    const tftp = await startTftp(tree.root, { badInputLogIntervalMs: 60_000 });
    try {
      for (let i = 0; i < 30; i++) {
        const r = await tftpFetch({ port: tftp.port, file: `../x${i}` });
        expect(r.error?.code).toBe(ErrorCode.ACCESS_VIOLATION);
      }
      const lines = tftp.lines.filter((l) => l.kind === 'refused:dot-dot');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ file: '../x0', suppressed: 0 });
      expect(tftp.server.counters.errors.accessViolation).toBe(30);
    } finally {
      await tftp.stop();
      tree.cleanup();
    }
  });
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
