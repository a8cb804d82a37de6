// The seed's FAT image, read back with mtools (mdir, mtype) as an
// independent reader: the label NoCloud looks for, the three files under
// their long names with the seed's bytes, 1 MiB, the same bytes for the
// same seed whatever the clock and time zone, and no files left behind.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedImage, SEED_IMAGE_BYTES } from '../../../src/install/seed-image.js';
import type { Seed } from '../../../src/install/seed.js';

const SEED: Seed = {
  'meta-data': 'instance-id: podboot-rack-a-525400000001-1\nlocal-hostname: n1\n',
  'user-data': '#cloud-config\nhostname: n1\nusers: []\n',
  'network-config': 'version: 2\nethernets:\n  mgmt0:\n    match:\n      name: ens4\n    dhcp4: true\n',
};

let root: string;
let work: string;
const saved = { TMPDIR: process.env.TMPDIR, TZ: process.env.TZ, PATH: process.env.PATH };
const mtools = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'pb-seed-image-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A fresh TMPDIR the image is built under, so what it leaves behind can be seen. */
function privateTmp(): string {
  work = mkdtempSync(join(root, 'tmp-'));
  process.env.TMPDIR = work;
  return work;
}

function written(img: Buffer): string {
  const path = join(root, `seed-${Math.random().toString(36).slice(2)}.img`);
  writeFileSync(path, img);
  return path;
}

describe('seed image', () => {
  it('is a 1 MiB FAT file system labelled CIDATA with meta-data, user-data and network-config under their long names', async () => {
    privateTmp();
    const img = await seedImage(SEED);
    expect(img.length).toBe(SEED_IMAGE_BYTES);
    const path = written(img);
    const listing = execFileSync('mdir', ['-i', path, '::'], { env: mtools, encoding: 'utf8' });
    expect(listing).toMatch(/Volume in drive : is CIDATA\s*$/m);
    // Long names, and the 8.3 aliases mtools made for them.
    expect(listing).toMatch(/^META-D~1\s+\d+ .* meta-data$/m);
    const names = execFileSync('mdir', ['-b', '-i', path, '::'], { env: mtools, encoding: 'utf8' }).trim().split('\n');
    expect(names.sort()).toEqual(['::/meta-data', '::/network-config', '::/user-data']);
    for (const name of ['meta-data', 'user-data', 'network-config'] as const) {
      expect(execFileSync('mtype', ['-i', path, `::${name}`], { env: mtools, encoding: 'utf8' })).toBe(SEED[name]);
    }
    // The label is in the boot sector too (offset 43, FAT12/16), where blkid reads it.
    expect(img.subarray(43, 54).toString('latin1')).toBe('CIDATA     ');
    expect(readdirSync(work)).toEqual([]);
  });

  it('leaves network-config out when the seed has none', async () => {
    privateTmp();
    const { 'network-config': _, ...noNetwork } = SEED;
    const path = written(await seedImage(noNetwork));
    const listing = execFileSync('mdir', ['-b', '-i', path, '::'], { env: mtools, encoding: 'utf8' });
    expect(listing.trim().split('\n').sort()).toEqual(['::/meta-data', '::/user-data']);
  });

  it('the same seed gives the same bytes, across a second boundary and in another time zone', async () => {
    privateTmp();
    const first = await seedImage(SEED);
    await new Promise((r) => setTimeout(r, 1100));
    process.env.TZ = 'Pacific/Kiritimati';
    const second = await seedImage(SEED);
    expect(second.equals(first)).toBe(true);
    const other = await seedImage({ ...SEED, 'user-data': `${SEED['user-data']}# changed\n` });
    expect(other.equals(first)).toBe(false);
  });

  it('a failing step is named with its message, and the private directory is removed anyway', async () => {
    const tmp = privateTmp();
    const bin = join(root, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'mcopy'), '#!/bin/sh\necho "Disk full" >&2\nexit 3\n');
    chmodSync(join(bin, 'mcopy'), 0o755);
    process.env.PATH = `${bin}:${saved.PATH}`;
    await expect(seedImage(SEED)).rejects.toThrow('mcopy failed (exit 3): Disk full');
    expect(readdirSync(tmp)).toEqual([]);
  });
});
