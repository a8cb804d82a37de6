// `podboot tftp serve`: the standalone server the benchmark runs, as an
// operator would start it.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { makeTree, patternBytes, runProcess, type Tree } from '../../helpers/tftp-lab.js';

describe('podboot tftp serve', () => {
  let tree: Tree;
  let proc: ChildProcess | undefined;
  let output = '';

  beforeAll(() => {
    requireBuild();
    tree = makeTree({ 'boot/file.bin': patternBytes(100_000, 3) });
  });
  afterAll(() => {
    proc?.kill('SIGKILL');
    tree?.cleanup();
  });

  it('rejects wrong usage with exit 2', async () => {
    expect((await runProcess(process.execPath, [PODBOOT, 'tftp', 'serve'])).code).toBe(2);
    const bad = await runProcess(process.execPath, [PODBOOT, 'tftp', 'serve', '--root', tree.root, '--max-blksize', '70000']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-blksize must be an integer in 8..65464');
  });

  it('serves the directory, caps blksize as told, logs JSON with the pod name, stops on SIGTERM', async () => {
    const port = await freeUdpPort();
    proc = spawn(process.execPath, [PODBOOT, 'tftp', 'serve', '--root', tree.root, '--port', String(port), '--name', 'bench', '--max-blksize', '1024'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    for (let i = 0; i < 100 && !output.includes('tftp listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(output).toContain('"msg":"tftp listening"');
    const out = join(tree.dir, 'got');
    const r = await runProcess('curl', ['-sS', '--tftp-blksize', '65464', '-o', out, `tftp://127.0.0.1:${port}/boot/file.bin`]);
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(tree.files.get('boot/file.bin')!)).toBe(true);
    const exited = new Promise<number | null>((res) => proc!.once('exit', (c) => res(c)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    const done = output
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'tftp transfer complete');
    expect(done).toMatchObject({ pod: 'bench', file: 'boot/file.bin', blksize: 1024 });
  });
});

function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) =>
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }),
  );
}
