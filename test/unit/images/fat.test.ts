// FAT16 time fixing in subdirectories (the lab stage2's EFI/BOOT and
// loader/entries): every entry below the root gets the fixed date, mtools
// still reads the tree, and nothing but time fields changes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixFatTimes } from '../../../src/images/fat.js';

const tmp = mkdtempSync(join(tmpdir(), 'pb-fat-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

describe('fixFatTimes', () => {
  it('fixes the root, subdirectories (with . and ..) and files in them, over a multi-cluster directory', () => {
    const img = join(tmp, 'fat.img');
    execFileSync('truncate', ['-s', '16M', img]);
    // 512-byte clusters: a directory of 20 long-named files spans several clusters
    execFileSync('mkfs.vfat', ['-F', '16', '-s', '1', '--invariant', img], { stdio: 'ignore' });
    execFileSync('mmd', ['-i', img, '::EFI', '::EFI/BOOT', '::many'], { env });
    writeFileSync(join(tmp, 'x.efi'), 'x');
    execFileSync('mcopy', ['-i', img, join(tmp, 'x.efi'), '::EFI/BOOT/BOOTX64.EFI'], { env });
    for (let i = 0; i < 20; i++) execFileSync('mcopy', ['-i', img, join(tmp, 'x.efi'), `::many/a-long-file-name-${i}.conf`], { env });
    const before = readFileSync(img);
    const buf = Buffer.from(before);
    // root: EFI, many; EFI: . .. BOOT; BOOT: . .. BOOTX64.EFI; many: . .. 20 files
    expect(fixFatTimes(buf, 0)).toBe(2 + 3 + 3 + 22);
    writeFileSync(img, buf);
    const listing = execFileSync('mdir', ['-/', '-i', img, '::'], { env, encoding: 'utf8' });
    const dated = listing.split('\n').filter((l) => /\d{4}-\d\d-\d\d/.test(l));
    expect(dated).toHaveLength(2 + 3 + 3 + 22);
    for (const l of dated) expect(l).toMatch(/2000-01-01\s+0:00/);
    expect(listing).toMatch(/a-long-file-name-19\.conf/);
    // only time fields moved: the same image fixed twice is the same, and the byte count that differs is bounded by the entries
    const again = Buffer.from(buf);
    fixFatTimes(again, 0);
    expect(again.equals(buf)).toBe(true);
    let differing = 0;
    for (let i = 0; i < buf.length; i++) if (buf[i] !== before[i]) differing++;
    expect(differing).toBeLessThanOrEqual(30 * 11);
  });
});
