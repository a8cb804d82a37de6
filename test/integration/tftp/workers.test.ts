// Transfers on worker threads (TftpWorkerPool), the way `podboot tftp serve`
// runs them: real clients, loss, the repeated-request paths, many clients at
// once, and a clean stop that leaves no descriptor open. Needs the compiled
// worker (npm run build).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/tftp/codec.js';
import { TftpWorkerPool } from '../../../src/tftp/worker-pool.js';
import { requireBuild } from '../../helpers/netns.js';
import { tftpFetch } from '../../helpers/tftp-client.js';
import { BUILT_WORKER, makeTree, patternBytes, runProcess, startTftp, type RunningTftp, type Tree } from '../../helpers/tftp-lab.js';

const openFds = () => readdirSync('/proc/self/fd').length;

describe('TFTP transfers on worker threads', () => {
  let tree: Tree;
  let tftp: RunningTftp;
  let pool: TftpWorkerPool;
  let fdsBefore: number;

  beforeAll(async () => {
    requireBuild();
    tree = makeTree({ 'big.bin': patternBytes(3 * 1024 * 1024 + 5, 21), 'small.bin': patternBytes(5000, 22) });
    fdsBefore = openFds();
    pool = new TftpWorkerPool(2, BUILT_WORKER);
    tftp = await startTftp(tree.root, { defaultTimeoutMs: 250 }, { runner: pool });
  });
  afterAll(async () => {
    await tftp?.stop();
    await pool?.close();
    tree?.cleanup();
  });

  it('serves curl at 512, 1468 and 65464 and atftp at windowsize 16, byte-identical', async () => {
    const out = join(tree.dir, 'got');
    for (const bs of [512, 1468, 65464]) {
      const r = await runProcess('curl', ['-sS', '--tftp-blksize', String(bs), '-o', out, `tftp://127.0.0.1:${tftp.port}/big.bin`]);
      expect(r.code).toBe(0);
      expect(readFileSync(out).equals(tree.files.get('big.bin')!)).toBe(true);
    }
    const a = await runProcess('atftp', ['--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', 'big.bin', '-l', out, '127.0.0.1', String(tftp.port)]);
    expect(a.code).toBe(0);
    expect(readFileSync(out).equals(tree.files.get('big.bin')!)).toBe(true);
  });

  it('recovers lost DATA, a lost OACK (the repeated request reaches the worker) and a lost final block', async () => {
    const file = tree.files.get('small.bin')!;
    const r = await tftpFetch({
      port: tftp.port,
      file: 'small.bin',
      options: { blksize: 512, windowsize: 4, tsize: 0 },
      drop: (k, b, a) => a === 1 && ((k === 'oack' && b === 0) || (k === 'data' && (b === 1 || b === 6 || b === 10))),
    });
    expect(r.ok).toBe(true);
    expect(r.data.equals(file)).toBe(true);
    expect(r.oack).toMatchObject({ tsize: String(file.length) });
    expect(r.dataPackets).toBeGreaterThan(10);
  });

  it('runs 60 clients at once on both workers, all byte-identical', async () => {
    const file = tree.files.get('big.bin')!;
    const runs = Array.from({ length: 60 }, (_, i) => tftpFetch({ port: tftp.port, file: 'big.bin', options: i % 2 ? { blksize: 1468, windowsize: 8 } : { blksize: 1468 }, timeoutMs: 1000 }));
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.load).toHaveLength(2);
    expect(Math.min(...pool.load)).toBeGreaterThan(0);
    const results = await Promise.all(runs);
    expect(results.filter((r) => !r.ok || !r.data.equals(file))).toHaveLength(0);
  });

  it('stop() aborts a running transfer with an ERROR to its client; no descriptor stays open', async () => {
    // A client that stops acknowledging: its transfer is still running when the server stops.
    const stalled = tftpFetch({ port: tftp.port, file: 'big.bin', dropAck: (b) => b >= 3, timeoutMs: 5000, maxRetries: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(tftp.server.counters.active).toBe(1);
    await tftp.stop();
    const r = await stalled;
    expect(r.error).toEqual({ code: ErrorCode.NOT_DEFINED, message: 'Transfer aborted' });
    expect(tftp.server.counters.errors.aborted).toBe(1);
    await pool.close();
    // The listening socket and every transfer socket and file are closed (sockets close on the next turn).
    await new Promise((r) => setTimeout(r, 100));
    expect(openFds()).toBeLessThanOrEqual(fdsBefore);
  });
});
