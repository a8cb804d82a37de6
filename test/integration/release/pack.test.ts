// The release as an operator gets it: `npm pack` of this checkout (prepack
// builds), then `npm install -g` of the tarball into an empty prefix, then the
// installed `podboot` runs its embedded pod and stops on SIGTERM.
//
// Dependencies come from npm's cache where it has them (--prefer-offline:
// `npm ci` filled it with every tarball, but not with the registry's package
// documents, so a plain --offline install fails with ENOTCACHED and npm still
// asks the registry for those). better-sqlite3 is compiled from source when
// no prebuilt binary can be fetched: about 3 minutes on 2 cores.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const INSTALL_TIMEOUT_MS = 10 * 60_000;
// Asynchronous: a child that runs for minutes must not block the test worker,
// or vitest's own messages to it time out.
const run = promisify(execFile);

describe('release tarball', () => {
  // As root, serve runs each pod as an unprivileged user that must pass through
  // to its state and to the installed code: 0711, not mkdtemp's 0700.
  const tmp = mkdtempSync(join(tmpdir(), 'podboot-release-'));
  chmodSync(tmp, 0o711);
  const prefix = join(tmp, 'prefix');
  let tarball = '';
  let files: string[] = [];

  beforeAll(async () => {
    const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    const name = stdout.trim().split('\n').pop()!;
    tarball = join(tmp, name);
    files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
  }, INSTALL_TIMEOUT_MS);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('holds the built CLI, the license, the changelog and the docs', () => {
    expect(tarball).toMatch(new RegExp(`podboot-${VERSION.replace(/\./g, '\\.')}\\.tgz$`));
    for (const f of [
      'dist/src/cli/main.js',
      'LICENSE',
      'CHANGELOG.md',
      'README.md',
      'package.json',
      'docs/pod-yaml.md',
      'docs/operations.md',
      'docs/pod.schema.json',
      'examples/default-pod.yaml',
      'ui/index.html',
    ]) {
      expect(files).toContain(f);
    }
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
  });

  it('leaves out tests, benches, sources and the build cache', () => {
    expect(files.filter((f) => /^(test|src|bench|\.cache|state)\//.test(f) || /^dist\/(test|bench)\//.test(f))).toEqual([]);
  });

  it(
    'installs with npm install -g into an empty prefix; podboot --version and serve run from there',
    async () => {
      mkdirSync(prefix);
      await run('npm', ['install', '-g', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], {
        cwd: tmp,
        timeout: INSTALL_TIMEOUT_MS,
        maxBuffer: 64 << 20,
      });
      const podboot = join(prefix, 'bin', 'podboot');
      expect(execFileSync(podboot, ['--version'], { encoding: 'utf8' }).trim()).toBe(`podboot ${VERSION}`);

      const state = join(tmp, 'state');
      const child = spawn(podboot, ['serve', '--state', state, '--api', '127.0.0.1:0'], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        await waitFor(
          () => output.includes('pod instance ready'),
          60_000,
          () => output,
        );
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
      expect(output).toContain('central node stopped');
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );
});

async function waitFor(done: () => boolean, ms: number, show: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out; output so far:\n${show()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
