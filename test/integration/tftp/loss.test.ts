// Loss on the wire, made by the test client: it drops chosen DATA packets, the
// OACK or its own ACKs, and recovers as tftp-hpa and UEFI firmware do (on its
// timeout it sends its last ACK, or its request, again). Every case must end
// with the whole file, byte-identical, with and without windowsize.
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePacket, encodeAck, encodeError, encodeRequest, type TftpPacket } from '../../../src/tftp/codec.js';
import { tftpFetch, type FetchOptions } from '../../helpers/tftp-client.js';
import { makeTree, patternBytes, startTftp, type RunningTftp, type Tree } from '../../helpers/tftp-lab.js';

const BLK = 512;
/** 40 full blocks and a short 41st */
const FILE = patternBytes(BLK * 40 + 100, 42);
const BLOCKS = 41;

describe('TFTP under loss', () => {
  let tree: Tree;
  let tftp: RunningTftp;

  beforeAll(async () => {
    tree = makeTree({ 'f.bin': FILE, 'exact.bin': FILE.subarray(0, BLK * 40) });
    // A short server timeout keeps the suite quick; the client's is longer, as in the field.
    tftp = await startTftp(tree.root, { defaultTimeoutMs: 250 });
  });
  afterAll(async () => {
    await tftp?.stop();
    tree?.cleanup();
  });

  const fetch = (o: Partial<FetchOptions>) => tftpFetch({ port: tftp.port, file: 'f.bin', timeoutMs: 400, ...o });

  type Case = [string, (ws: number) => FetchOptions['drop']];
  const cases: Case[] = [
    ['the first DATA', () => (k, b, a) => k === 'data' && b === 1 && a === 1],
    ['the first block of the second window', (ws) => (k, b, a) => k === 'data' && b === ws + 1 && a === 1],
    ['a block in the middle of a window', (ws) => (k, b, a) => k === 'data' && b === ws + Math.ceil(ws / 2) + 1 && a === 1],
    ['the last block of a window', (ws) => (k, b, a) => k === 'data' && b === 2 * ws && a === 1],
    ['the final (short) block, twice', () => (k, b, a) => k === 'data' && b === BLOCKS && a <= 2],
    ['every third block once', () => (k, b, a) => k === 'data' && b % 3 === 0 && a === 1],
  ];

  for (const ws of [1, 4, 16]) {
    for (const [what, drop] of cases) {
      for (const ackOnGap of ws > 1 ? [false, true] : [false]) {
        it(`windowsize ${ws}${ackOnGap ? ' (gap ACKs)' : ''}: losing ${what}`, async () => {
          const r = await fetch({ options: { blksize: BLK, windowsize: ws, tsize: 0 }, drop: drop(ws), ackOnGap });
          expect(r.error).toBeUndefined();
          expect(r.ok).toBe(true);
          expect(r.data.equals(FILE)).toBe(true);
          // Something was really lost and resent.
          expect(r.dataPackets).toBeGreaterThan(BLOCKS);
        });
      }
    }
  }

  it('losing the OACK: the client repeats its request and the OACK comes again', async () => {
    const r = await fetch({ options: { blksize: BLK, windowsize: 4, tsize: 0 }, drop: (k, _b, a) => k === 'oack' && a <= 2 });
    expect(r.ok).toBe(true);
    expect(r.data.equals(FILE)).toBe(true);
    expect(r.clientTimeouts).toBeGreaterThan(0);
    expect(r.oack).toMatchObject({ windowsize: '4', tsize: String(FILE.length) });
  });

  it('plain RFC 1350 (no options at all): first, middle and final block lost', async () => {
    const r = await fetch({ drop: (k, b, a) => k === 'data' && [1, 20, BLOCKS].includes(b) && a === 1 });
    expect(r.oack).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.data.equals(FILE)).toBe(true);
  });

  it('a file ending on a block boundary: its empty final block lost', async () => {
    const r = await fetch({ file: 'exact.bin', options: { blksize: BLK, windowsize: 8 }, drop: (k, b, a) => k === 'data' && b === 41 && a === 1 });
    expect(r.ok).toBe(true);
    expect(r.data.equals(FILE.subarray(0, BLK * 40))).toBe(true);
  });

  it.each([1, 16])('windowsize %i: lost ACKs (the first window end; block 40 in lock-step) are recovered by the timers', async (ws) => {
    const r = await fetch({ options: { blksize: BLK, windowsize: ws }, dropAck: (b, a) => (b === ws || b === 40) && a === 1 });
    expect(r.ok).toBe(true);
    expect(r.data.equals(FILE)).toBe(true);
    expect(r.duplicateData).toBeGreaterThan(0);
  });

  it.each([1, 4, 16])('windowsize %i: every ACK sent three times causes no duplicate DATA', async (ws) => {
    const before = tftp.server.counters.duplicateAcks;
    // A long server timeout (RFC 2349 option): any extra DATA here could only come from the repeated ACKs.
    const r = await fetch({ options: { blksize: BLK, windowsize: ws, timeout: 5 }, ackCopies: 3 });
    expect(r.ok).toBe(true);
    expect(r.data.equals(FILE)).toBe(true);
    expect(r.dataPackets).toBe(BLOCKS);
    expect(r.duplicateData).toBe(0);
    // The copies did reach the server and were ignored (the last ones may arrive after the transfer ended).
    await new Promise((res) => setTimeout(res, 50));
    expect(tftp.server.counters.duplicateAcks - before).toBeGreaterThanOrEqual(2 * (Math.ceil(BLOCKS / ws) - 1));
  });

  it("repeated ACKs while a block is really lost do not multiply windows (no Sorcerer's Apprentice)", async () => {
    // The client repeats its last ACK (3 copies) every 60 ms while the server waits for its own 1 s timer.
    const r = await fetch({ options: { blksize: BLK, windowsize: 4, timeout: 1 }, drop: (k, b, a) => k === 'data' && b === 5 && a === 1, ackCopies: 3, timeoutMs: 60 });
    expect(r.ok).toBe(true);
    expect(r.data.equals(FILE)).toBe(true);
    // One window was resent once (4 blocks at most), not once per repeated ACK.
    expect(r.dataPackets).toBeLessThanOrEqual(BLOCKS + 4);
    expect(r.clientTimeouts).toBeGreaterThan(1);
  });

  it('a client that starts over from the same port (a reboot) gets a fresh transfer; the old one is aborted', async () => {
    const s = dgram.createSocket('udp4');
    const got: { from: number; p: TftpPacket }[] = [];
    s.on('message', (m, ri) => {
      const d = decodePacket(m);
      if (d.ok) got.push({ from: ri.port, p: d.packet });
    });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const waitFor = async (n: number) => {
      for (let i = 0; i < 100 && got.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      s.send(encodeRequest({ op: 'rrq', filename: 'f.bin' }), tftp.port, '127.0.0.1');
      await waitFor(1);
      const first = got[0]!.from;
      s.send(encodeAck(1), first, '127.0.0.1');
      await waitFor(2);
      expect(got[1]).toEqual({ from: first, p: { op: 'data', block: 2, data: FILE.subarray(512, 1024) } });
      // Progress was made, so the same request again means the client restarted.
      s.send(encodeRequest({ op: 'rrq', filename: 'f.bin' }), tftp.port, '127.0.0.1');
      await waitFor(4);
      const rest = got.slice(2);
      expect(rest).toContainEqual({ from: first, p: { op: 'error', code: 0, message: 'Transfer aborted' } });
      const fresh = rest.find((g) => g.p.op === 'data');
      expect(fresh?.from).not.toBe(first);
      expect(fresh?.p).toEqual({ op: 'data', block: 1, data: FILE.subarray(0, 512) });
    } finally {
      // End the fresh transfer with an ERROR from the client.
      const last = got.at(-1)?.from;
      if (last) await new Promise((r) => s.send(encodeError(0, 'done'), last, '127.0.0.1', r));
      s.close();
    }
    expect(tftp.server.counters.errors.aborted).toBe(1);
  });

  it('every transfer above ended as complete on the server side, none hangs', async () => {
    await new Promise((res) => setTimeout(res, 100));
    expect(tftp.server.counters.active).toBe(0);
    expect(tftp.server.counters.retransmittedBlocks).toBeGreaterThan(0);
  });
});
