// serve's shared copy of a stage1 build: readable by every pod user, made
// again only when the build changed, never half-made.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { STAGE1_BOOT_FILES, STAGE1_INITRD } from '../../../src/images/stage1.js';
import { shareStage1 } from '../../../src/pod-vm/stage1-share.js';

const tmp = mkdtempSync(join(tmpdir(), 'stage1-share-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const log = pino({ level: 'silent' });

function fakeBuild(dir: string, tag: string): void {
  for (const name of [...STAGE1_BOOT_FILES, STAGE1_INITRD]) {
    mkdirSync(dirname(join(dir, name)), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, name), `${name} ${tag}\n`, { mode: 0o600 });
  }
  writeFileSync(join(dir, 'stage1', 'SHA256SUMS'), `sums ${tag}\n`, { mode: 0o600 });
}

describe('the stage1 copy serve shares with its pods', () => {
  const build = join(tmp, 'build');
  const state = join(tmp, 'state');

  it('copies every file world-readable into STATE/central/stage1, whatever the build modes', async () => {
    fakeBuild(build, 'v1');
    const dest = await shareStage1(build, state, log);
    expect(dest).toBe(join(state, 'central', 'stage1'));
    for (const name of [...STAGE1_BOOT_FILES, STAGE1_INITRD]) {
      expect(readFileSync(join(dest, name), 'utf8')).toBe(`${name} v1\n`);
      expect(statSync(join(dest, name)).mode & 0o777).toBe(0o644);
    }
    expect(statSync(join(dest, 'stage1')).mode & 0o777).toBe(0o755);
  });

  it('leaves the copy alone while the build is the same, and copies again when it changes', async () => {
    const dest = join(state, 'central', 'stage1');
    writeFileSync(join(dest, 'undionly.kpxe'), 'touched\n');
    await shareStage1(build, state, log);
    expect(readFileSync(join(dest, 'undionly.kpxe'), 'utf8')).toBe('touched\n');
    fakeBuild(build, 'v2');
    await shareStage1(build, state, log);
    expect(readFileSync(join(dest, 'undionly.kpxe'), 'utf8')).toBe('undionly.kpxe v2\n');
  });

  it('a build missing a file is an error naming it, and the last good copy stays', async () => {
    rmSync(join(build, 'pxelinux.0'));
    writeFileSync(join(build, 'stage1', 'SHA256SUMS'), 'sums v3\n');
    await expect(shareStage1(build, state, log)).rejects.toThrow(/no pxelinux\.0 there/);
    expect(readFileSync(join(state, 'central', 'stage1', 'pxelinux.0'), 'utf8')).toBe('pxelinux.0 v2\n');
  });
});
