// `serve --stage1 DIR` shares the virtual-media ISO with its pods along with
// stage1: copied when present, copied again when only the ISO was rebuilt.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { STAGE1_BOOT_FILES, STAGE1_INITRD } from '../../../src/images/stage1.js';
import { shareStage1 } from '../../../src/pod-vm/stage1-share.js';
import { VMEDIA_ISO, VMEDIA_LAYOUT } from '../../../src/vmedia/iso-build.js';

const tmp = mkdtempSync(join(tmpdir(), 'vm-share-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const log = pino({ level: 'silent' });

function write(dir: string, name: string, text: string): void {
  mkdirSync(dirname(join(dir, name)), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, name), text, { mode: 0o600 });
}

describe('the shared stage1 copy and the vmedia ISO', () => {
  const build = join(tmp, 'build');
  const state = join(tmp, 'state');

  it('leaves the ISO out when there is none, copies it world-readable when built, and again when only it changed', async () => {
    for (const name of [...STAGE1_BOOT_FILES, STAGE1_INITRD]) write(build, name, `${name}\n`);
    write(build, 'stage1/SHA256SUMS', 'sums\n');
    const dest = await shareStage1(build, state, log);
    expect(statSync(join(dest, VMEDIA_ISO), { throwIfNoEntry: false })).toBeUndefined();

    write(build, VMEDIA_ISO, 'iso v1\n');
    write(build, VMEDIA_LAYOUT, '{"sha256":"v1"}\n');
    await shareStage1(build, state, log);
    expect(readFileSync(join(dest, VMEDIA_ISO), 'utf8')).toBe('iso v1\n');
    expect(statSync(join(dest, VMEDIA_ISO)).mode & 0o777).toBe(0o644);
    expect(statSync(join(dest, 'vmedia')).mode & 0o777).toBe(0o755);

    write(build, VMEDIA_ISO, 'iso v2\n');
    write(build, VMEDIA_LAYOUT, '{"sha256":"v2"}\n');
    await shareStage1(build, state, log);
    expect(readFileSync(join(dest, VMEDIA_ISO), 'utf8')).toBe('iso v2\n');
  });
});
