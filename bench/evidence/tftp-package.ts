// Evidence for docs/decisions.md: what the `tftp` npm package (node-tftp
// 0.1.2) does where podboot's TFTP server must be correct, next to podboot's
// server and tftpd-hpa. Run: npm run bench -- tftp-package
//
//  1. one lost DATA packet, client re-sends its last ACK on its timeout (as
//     tftp-hpa and UEFI do), windowsize 1, 4 and 16;
//  2. a symlink in the root pointing outside it;
//  3. an upload (WRQ) from tftp-hpa with the server's default options;
//  4. speed: 8 MiB with curl at blksize 1468, alternating with tftpd-hpa.
import { createRequire } from 'node:module';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bench } from '../bench.js';
import { median, table } from '../lib.js';
import { createLogger } from '../../src/log.js';
import { BootTreeResolver } from '../../src/tftp/resolver.js';
import { DEFAULT_TFTP_TUNING, TftpServer } from '../../src/tftp/server.js';
import { tftpFetch } from '../../test/helpers/tftp-client.js';
import { timed } from '../tftp.js';

const require = createRequire(import.meta.url);

interface NodeTftpServer {
  on(ev: string, fn: (...a: unknown[]) => void): void;
  listen(): void;
  close(): void;
}

const PORTS = { nodeTftp: 17069, podboot: 17070, hpa: 17071 };

/** A client's output, without blocking this process's event loop (the servers under test run in it). */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 10_000 }, (_err, stdout, stderr) => resolve((stdout + stderr).trim())));
}

async function startNodeTftp(root: string): Promise<NodeTftpServer> {
  const tftp = require('tftp') as { createServer(o: Record<string, unknown>): NodeTftpServer };
  // Its defaults, as an application would start it (it caps windowsize at 4 and blksize at 1468 by default).
  const server = tftp.createServer({ host: '127.0.0.1', port: PORTS.nodeTftp, root });
  const errors: string[] = [];
  server.on('error', (e) => errors.push(String(e)));
  await new Promise<void>((resolve) => {
    server.on('listening', () => resolve());
    server.listen();
  });
  return server;
}

export const tftpPackageEvidence: Bench = {
  name: 'tftp-package',
  summary: 'evidence on the `tftp` npm package: recovery after a lost packet, symlinks out of the root, uploads, speed vs tftpd-hpa',
  async run(flags) {
    const rounds = flags.includes('--quick') ? 1 : 5;
    const dir = mkdtempSync(join(tmpdir(), 'pbb-tftppkg-'));
    const root = join(dir, 'root');
    mkdirSync(root);
    const file = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < file.length; i++) file[i] = (i * 2654435761) >>> 24;
    writeFileSync(join(root, 'f.bin'), file);
    writeFileSync(join(root, 'f8.bin'), Buffer.concat(Array.from({ length: 8 }, () => file)));
    writeFileSync(join(dir, 'secret.txt'), 'outside the root\n');
    symlinkSync('../secret.txt', join(root, 'leak'));
    // Anyone can write the root, as a TFTP root that accepts uploads would need.
    rmSync(join(root, 'up.bin'), { force: true });

    // Uncaught exceptions inside the package (its callbacks) would end this run: record them instead.
    const crashes: string[] = [];
    const onCrash = (err: Error) => crashes.push(err.message);
    process.on('uncaughtException', onCrash);

    const nodeTftp = await startNodeTftp(root);
    const podboot = new TftpServer(
      { ...DEFAULT_TFTP_TUNING, address: '127.0.0.1', port: PORTS.podboot, maxBlockSize: 65464, maxWindowSize: 64, maxTransfers: 200 },
      await BootTreeResolver.open(root),
      createLogger({ pod: 'evidence' }, { level: 'silent' }),
    );
    await podboot.start();
    const hpa = spawn('in.tftpd', ['-L', '-s', '-u', 'root', '-a', `127.0.0.1:${PORTS.hpa}`, root], { stdio: 'ignore' });
    await sleep(300);
    try {
      // 1. One lost DATA packet (block 5, first time); the client re-sends its last ACK every 500 ms for
      //    12 s, well past node-tftp's own 3 s retransmission timeout.
      const rows: (string | number)[][] = [['lost DATA 5 once', 'node-tftp', 'podboot']];
      const cases = [
        { ws: 1, ackOnGap: false },
        { ws: 4, ackOnGap: false },
        { ws: 4, ackOnGap: true },
        { ws: 16, ackOnGap: false },
        { ws: 16, ackOnGap: true },
      ];
      for (const { ws, ackOnGap } of cases) {
        const cells: string[] = [];
        for (const port of [PORTS.nodeTftp, PORTS.podboot]) {
          crashes.length = 0;
          const t0 = performance.now();
          const drop = (k: string, b: number, a: number) => k === 'data' && b === 5 && a === 1;
          const r = await tftpFetch({ port, file: 'f.bin', options: { blksize: 1468, windowsize: ws }, drop, ackOnGap, timeoutMs: 500, maxRetries: 24 });
          const s = ((performance.now() - t0) / 1000).toFixed(1);
          const whole = r.ok && r.data.equals(file);
          cells.push(
            whole ? `complete in ${s} s` : `stalled: ${r.bytes} of ${file.length} bytes after ${s} s${r.error ? `, error "${r.error.message}"` : ''}${crashes.length ? `; threw "${crashes[0]}"` : ''}`,
          );
          await sleep(200);
        }
        rows.push([`windowsize ${ws}${ackOnGap ? ', client ACKs the gap at once' : ''}`, ...cells]);
      }
      process.stdout.write(table(rows) + '\n\n');

      // 2. A symlink leaving the root.
      for (const [name, port] of [
        ['node-tftp', PORTS.nodeTftp],
        ['podboot', PORTS.podboot],
      ] as const) {
        const r = await tftpFetch({ port, file: 'leak' });
        process.stdout.write(`symlink leak -> ../secret.txt from ${name}: ${r.ok ? `served ${JSON.stringify(r.data.toString())}` : `refused (error ${r.error?.code}: ${r.error?.message})`}\n`);
      }

      // 3. An upload with default options (a name per server: a server may finish writing after the client exits).
      const local = join(dir, 'upload.bin');
      writeFileSync(local, 'uploaded by a client\n');
      for (const [name, port] of [
        ['node-tftp', PORTS.nodeTftp],
        ['podboot', PORTS.podboot],
      ] as const) {
        const target = `up-${name}.bin`;
        const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', local, target]);
        await sleep(500);
        const written = existsSync(join(root, target));
        process.stdout.write(`WRQ ${target} to ${name}: ${written ? 'accepted, file written into the root' : 'refused, nothing written'}${r ? ` (client said: ${r})` : ''}\n`);
      }

      // 4. Speed, lock-step (curl has no windowsize), alternating servers. podboot is left out here: it
      //    shares this process with the harness; `npm run bench -- tftp` measures it on its own.
      const secs: Record<string, number[]> = { 'node-tftp': [], 'tftpd-hpa': [] };
      const out = join(dir, 'dl.bin');
      for (let round = 0; round < rounds; round++) {
        for (const [name, port] of [
          ['tftpd-hpa', PORTS.hpa],
          ['node-tftp', PORTS.nodeTftp],
        ] as const) {
          const r = await timed(['curl', '-s', '--tftp-blksize', '1468', '-o', out, `tftp://127.0.0.1:${port}/f8.bin`], 60_000);
          secs[name]!.push(r.code === 0 ? r.seconds : NaN);
        }
      }
      const m = (k: string) => median(secs[k]!);
      process.stdout.write(
        '\n' +
          table([
            ['8 MiB, curl, blksize 1468', 'seconds per round', 'median', 'vs tftpd-hpa'],
            ...Object.keys(secs).map((k) => [k, secs[k]!.map((x) => x.toFixed(2)).join(' '), m(k).toFixed(2), `${(m(k) / m('tftpd-hpa')).toFixed(2)}x the time`]),
          ]) +
          '\n',
      );
    } finally {
      process.off('uncaughtException', onCrash);
      nodeTftp.close();
      await podboot.stop();
      hpa.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
