// Thousands of random and mutated datagrams at a live server: to its request
// port from several sockets, and into a running transfer from the client's
// own port and from strangers. Nothing may throw; the server keeps serving.
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest } from '../../../src/tftp/codec.js';
import { prng } from '../../helpers/prng.js';
import { tftpFetch } from '../../helpers/tftp-client.js';
import { makeTree, patternBytes, startTftp, type RunningTftp, type Tree } from '../../helpers/tftp-lab.js';

const FILE = patternBytes(300_000, 77);

function mutated(r: ReturnType<typeof prng>): Buffer {
  const seeds = [
    encodeRequest({ op: 'rrq', filename: 'f.bin', options: { blksize: 1468, tsize: 0, windowsize: 8 } }),
    encodeRequest({ op: 'rrq', filename: 'missing', mode: 'netascii', options: { timeout: 1 } }),
    encodeRequest({ op: 'wrq', filename: 'f.bin' }),
    encodeAck(r.int(65536)),
    encodeData(r.int(65536), r.bytes(r.int(100))),
    encodeError(r.int(9), 'x'),
    encodeOack({ blksize: 8 }),
  ];
  if (r.int(4) === 0) return r.bytes(r.int(700));
  const b = Buffer.from(seeds[r.int(seeds.length)]!);
  switch (r.int(4)) {
    case 0:
      for (let i = 0, n = 1 + r.int(5); i < n && b.length; i++) b[r.int(b.length)] = r.int(256);
      return b;
    case 1:
      return b.subarray(0, r.int(b.length + 1));
    case 2:
      return Buffer.concat([b, r.bytes(r.int(300))]);
    default:
      if (b.length > 3) b[2 + r.int(b.length - 2)] = 0;
      return b;
  }
}

async function blast(sockets: dgram.Socket[], port: number, count: number, make: () => Buffer): Promise<void> {
  for (let i = 0; i < count; i++) {
    sockets[i % sockets.length]!.send(make(), port, '127.0.0.1');
    // Let the server (same process) drain its socket: a bounded, paced flood.
    if (i % 50 === 49) await new Promise((res) => setImmediate(res));
  }
}

describe('TFTP live fuzz', () => {
  let tree: Tree;
  let tftp: RunningTftp;
  const sockets: dgram.Socket[] = [];

  beforeAll(async () => {
    tree = makeTree({ 'f.bin': FILE });
    tftp = await startTftp(tree.root, { defaultTimeoutMs: 200, maxRetries: 1 });
    for (let i = 0; i < 8; i++) {
      const s = dgram.createSocket('udp4');
      s.on('message', () => undefined);
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      sockets.push(s);
    }
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await tftp?.stop();
    tree?.cleanup();
  });

  it('survives 5,000 random and mutated datagrams on its request port', async () => {
    const r = prng(0xf022);
    await blast(sockets, tftp.port, 5000, () => mutated(r));
    await new Promise((res) => setTimeout(res, 300));
    const c = tftp.server.counters;
    expect(c.errors.badPacket + c.errors.unknownOpcode).toBeGreaterThan(1000);
    // Bad input is logged, but rate-limited: a handful of lines per kind, not thousands.
    const warns = tftp.lines.filter((l) => l.level === 'warn');
    expect(warns.length).toBeLessThan(100);
    expect(tftp.lines.some((l) => l.level === 'error')).toBe(false);
  });

  it("survives 3,000 datagrams from strangers at a running transfer's port and still completes it", async () => {
    const r = prng(0xa11);
    // The test client pulls the file while garbage arrives at its transfer port.
    let flood: Promise<void> | undefined;
    const got = await tftpFetch({
      port: tftp.port,
      file: 'f.bin',
      options: { blksize: 512, windowsize: 4 },
      timeoutMs: 300,
      onServerTid: (tid) => (flood = blast(sockets, tid, 3000, () => mutated(r))),
    });
    await flood;
    expect(got.ok).toBe(true);
    expect(got.data.equals(FILE)).toBe(true);
    expect(flood).toBeDefined();
  });

  it("survives 2,000 malformed datagrams from the client's own address and port", async () => {
    const r = prng(0xc11e);
    let sent = 0;
    const before = tftp.server.counters.rrq;
    const got = await tftpFetch({
      port: tftp.port,
      file: 'f.bin',
      options: { blksize: 512 },
      timeoutMs: 300,
      maxRetries: 3,
      onServerTid: (_tid, send) => {
        // No ACK or ERROR opcodes: from the client's own address and port those are the client speaking.
        for (let i = 0; i < 2000; i++) {
          const b = mutated(r);
          if (b.length >= 2 && (b.readUInt16BE(0) === 4 || b.readUInt16BE(0) === 5)) continue;
          send(b);
          sent++;
        }
      },
    });
    expect(sent).toBeGreaterThan(1000);
    expect(got.ok).toBe(true);
    expect(got.data.equals(FILE)).toBe(true);
    expect(tftp.server.counters.rrq).toBe(before + 1);
  });

  it('serves files normally afterwards, to tftp-hpa-style and windowed clients', async () => {
    await new Promise((res) => setTimeout(res, 600)); // transfers started by fuzzed requests time out
    for (const options of [undefined, { blksize: 1468, windowsize: 16, tsize: 0 }]) {
      const got = await tftpFetch({ port: tftp.port, file: 'f.bin', options });
      expect(got.ok).toBe(true);
      expect(got.data.equals(FILE)).toBe(true);
    }
    expect(tftp.lines.some((l) => l.level === 'error')).toBe(false);
  });
});
