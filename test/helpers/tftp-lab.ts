// In-process TFTP server on 127.0.0.1 (a free port) over a temporary boot
// tree, with its pino lines captured, plus an async runner for the real
// client programs (a sync exec would block the server in this process).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BootTreeResolver, FirstMatchResolver, type FileResolver } from '../../src/tftp/resolver.js';
import type { TransferRunner } from '../../src/tftp/runner.js';
import { DEFAULT_TFTP_TUNING, TftpServer, type TftpServerOptions } from '../../src/tftp/server.js';
import { captureLogger } from './logs.js';
import { prng } from './prng.js';

/** Deterministic pseudo-random bytes: a failed comparison can be reproduced. */
export function patternBytes(size: number, seed: number): Buffer {
  const r = prng(seed);
  const out = Buffer.allocUnsafe(size + 3);
  for (let i = 0; i < size; i += 4) out.writeUInt32LE(r.next(), i);
  return out.subarray(0, size);
}

export interface Tree {
  dir: string;
  root: string;
  files: Map<string, Buffer>;
  cleanup(): void;
}

/** A boot tree under a temp dir: `files` by relative path, `links` as name → target. */
export function makeTree(files: Record<string, Buffer>, links: Record<string, string> = {}): Tree {
  const dir = mkdtempSync(join(tmpdir(), 'pbt-tftp-'));
  const root = join(dir, 'root');
  mkdirSync(root);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), data);
  }
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(root, name));
  return { dir, root, files: new Map(Object.entries(files)), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface RunningTftp {
  server: TftpServer;
  port: number;
  lines: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** The compiled worker (vitest runs the sources; worker threads need JavaScript): `npm run build` first. */
export const BUILT_WORKER = new URL('../../dist/src/tftp/worker.js', import.meta.url);

export interface StartOptions {
  /** resolvers asked before the boot tree (generated files) */
  extra?: FileResolver[];
  /** where transfers run; default: the server's own thread */
  runner?: TransferRunner;
}

export async function startTftp(root: string, over: Partial<TftpServerOptions> = {}, using: StartOptions = {}): Promise<RunningTftp> {
  const { log, lines } = captureLogger({ pod: 'rack-t' });
  const tree = await BootTreeResolver.open(root);
  const resolver = using.extra?.length ? new FirstMatchResolver([...using.extra, tree]) : tree;
  const server = new TftpServer({ ...DEFAULT_TFTP_TUNING, address: '127.0.0.1', port: 0, maxBlockSize: 65464, maxWindowSize: 64, maxTransfers: 200, ...over }, resolver, log, using.runner);
  await server.start();
  return { server, port: server.port, lines, stop: () => server.stop() };
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop; killed after timeoutMs. */
export function runProcess(cmd: string, args: string[], timeoutMs = 60_000): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The server's "read accepted" debug line for a client port, to check what was negotiated. */
export function acceptedLine(lines: Record<string, unknown>[], file: string): Record<string, unknown> | undefined {
  return lines.filter((l) => l.msg === 'tftp read accepted' && l.file === file).at(-1);
}
