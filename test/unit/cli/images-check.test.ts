// Exit codes of `podboot images check` and serve's --image-check-interval
// that scripts can trust: 2 for a wrong command line, 1 for what is not there.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

let dir: string;
const podboot = (...args: string[]) => spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: dir, timeout: 30_000 });

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'pb-images-check-'));
  writeFileSync(join(dir, 'root.pem'), 'not read before the arguments are checked');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('podboot images check', () => {
  it('exits 2 for a wrong command line', () => {
    for (const [args, message] of [
      [[], /--ca ROOT\.pem is required/],
      [['--ca', 'root.pem', '--pod', '../x'], /--pod \.\.\/x: not a pod name/],
      [['--ca', 'root.pem', 'extra'], /unexpected argument extra/],
    ] as const) {
      const r = podboot('images', 'check', ...args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('exits 1 without a catalog or for a pod with no state, naming what is missing', () => {
    const noCatalog = podboot('images', 'check', '--ca', 'root.pem', '--catalog', join(dir, 'none'), '--state', dir);
    expect(noCatalog.status).toBe(1);
    expect(noCatalog.stderr).toContain(`no catalog in ${join(dir, 'none')} (no index.db)`);
    mkdirSync(join(dir, 'catalog'));
    writeFileSync(join(dir, 'catalog', 'index.db'), '');
    const noPod = podboot('images', 'check', '--ca', 'root.pem', '--catalog', join(dir, 'catalog'), '--state', join(dir, 'state'), '--pod', 'rack-z');
    expect(noPod.status).toBe(1);
    expect(noPod.stderr).toContain(`no pod rack-z in ${join(dir, 'state')}`);
  });

  it('is in --help, and serve refuses a bad --image-check-interval with 2', () => {
    expect(podboot('--help').stdout).toMatch(/^ {2}images check +hash every pod's cached image copies again/m);
    expect(podboot('serve', '--help').stdout).toContain('--image-check-interval DURATION');
    const bad = podboot('serve', '--image-check-interval', '5x', '--state', join(dir, 'serve-state'), '--api', 'off');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--image-check-interval must be a duration such as 30m, 6h or 1d, or 0 for never, not 5x/);
  });
});
