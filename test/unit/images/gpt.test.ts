// The GPT writer against util-linux's own reading of what it wrote (sfdisk
// --dump / --verify, fdisk -l from the fdisk package), and the on-disk
// fields a firmware checks: protective MBR, both headers with their CRCs,
// the entry array and its CRC, the backup at the end of the disk.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ENTRY_ARRAY_SECTORS, ESP_TYPE, guidBytes, guidText, LEGACY_BIOS_BOOTABLE, stableGuid, usableRange, writeGpt, type GptLayout } from '../../../src/images/gpt.js';

const tmp = mkdtempSync(join(tmpdir(), 'pb-gpt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LINUX_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const SECTORS = 8192; // 4 MiB
const layout: GptLayout = {
  diskGuid: '504F4442-1111-4222-8333-444455556666',
  partitions: [
    { type: ESP_TYPE, guid: '504F4442-AAAA-4BBB-8CCC-DDDDEEEEFFFF', firstLba: 2048, lastLba: 4095, attributes: LEGACY_BIOS_BOOTABLE, name: 'PODBOOT' },
    { type: LINUX_TYPE, guid: '504F4442-0000-4000-8000-000000000002', firstLba: 4096, lastLba: usableRange(SECTORS).last, name: 'räume' },
  ],
};

function image(): Buffer {
  const img = Buffer.alloc(SECTORS * 512);
  // boot code a BIOS loader would occupy: the writer must leave it alone
  img.fill(0xa5, 0, 440);
  writeGpt(img, layout);
  return img;
}

function file(img: Buffer, name: string): string {
  const p = join(tmp, name);
  writeFileSync(p, img);
  return p;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('GPT writer', () => {
  it('GUIDs: text ↔ mixed-endian bytes; stable GUIDs are version 4 shaped', () => {
    expect(guidBytes(ESP_TYPE).toString('hex')).toBe('28732ac11ff8d211ba4b00a0c93ec93b');
    expect(guidText(guidBytes(ESP_TYPE))).toBe(ESP_TYPE);
    const g = stableGuid(Buffer.alloc(16, 0xff));
    expect(g).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    expect(stableGuid(Buffer.alloc(16, 1))).toBe(stableGuid(Buffer.alloc(16, 1)));
    expect(() => guidBytes('not-a-guid')).toThrow(/not a GUID/);
  });

  it('sfdisk reads back the label, usable range, partitions, names and attributes; --verify finds no error', () => {
    const p = file(image(), 'a.img');
    const dump = sh('sfdisk', ['--dump', p]);
    expect(dump).toMatch(/^label: gpt$/m);
    expect(dump).toMatch(new RegExp(`^label-id: ${layout.diskGuid}$`, 'm'));
    expect(dump).toMatch(/^first-lba: 34$/m);
    expect(dump).toMatch(new RegExp(`^last-lba: ${SECTORS - 34}$`, 'm'));
    const parts = dump.split('\n').filter((l) => l.startsWith(p));
    expect(parts).toHaveLength(2);
    expect(parts[0]).toMatch(new RegExp(`start=\\s*2048, size=\\s*2048, type=${ESP_TYPE}, uuid=${layout.partitions[0]!.guid}, name="PODBOOT", attrs="LegacyBIOSBootable"`));
    expect(parts[1]).toMatch(new RegExp(`start=\\s*4096, size=\\s*${SECTORS - 34 - 4096 + 1}, type=${LINUX_TYPE}, uuid=${layout.partitions[1]!.guid}, name="r\\\\xc3\\\\xa4ume"`)); // UTF-16 on disk; sfdisk prints the UTF-8 bytes escaped
    expect(sh('sfdisk', ['--verify', p])).toMatch(/No errors detected/);
    const fdisk = sh('fdisk', ['-l', p]);
    expect(fdisk).toMatch(/Disklabel type: gpt/);
    expect(fdisk).toMatch(/EFI System/);
    expect(fdisk).toMatch(/Linux filesystem/);
  });

  it('protective MBR, both headers and entry arrays with their CRCs; the boot code is left alone', () => {
    const img = image();
    expect(img.subarray(0, 440).every((b) => b === 0xa5)).toBe(true);
    const pe = 446;
    expect(img[pe]).toBe(0); // not active: the UEFI spec wants 0 here
    expect(img[pe + 4]).toBe(0xee);
    expect(img.readUInt32LE(pe + 8)).toBe(1);
    expect(img.readUInt32LE(pe + 12)).toBe(SECTORS - 1);
    expect(img.subarray(pe + 16, 510).every((b) => b === 0)).toBe(true); // the other three entries are empty
    expect(img.readUInt16LE(510)).toBe(0xaa55);

    const check = (lba: number, myLba: number, alternate: number, entriesLba: number) => {
      const h = Buffer.from(img.subarray(lba * 512, lba * 512 + 512));
      expect(h.subarray(0, 8).toString('latin1')).toBe('EFI PART');
      expect(h.readUInt32LE(8)).toBe(0x00010000);
      expect(h.readUInt32LE(12)).toBe(92);
      expect(Number(h.readBigUInt64LE(24))).toBe(myLba);
      expect(Number(h.readBigUInt64LE(32))).toBe(alternate);
      expect(Number(h.readBigUInt64LE(72))).toBe(entriesLba);
      expect(h.readUInt32LE(80)).toBe(128);
      expect(h.readUInt32LE(84)).toBe(128);
      expect(guidText(h.subarray(56, 72))).toBe(layout.diskGuid);
      const entries = img.subarray(entriesLba * 512, (entriesLba + ENTRY_ARRAY_SECTORS) * 512);
      expect(h.readUInt32LE(88)).toBe(crc32(entries));
      const stored = h.readUInt32LE(16);
      h.writeUInt32LE(0, 16);
      expect(stored).toBe(crc32(h.subarray(0, 92)));
      expect(h.subarray(92).every((b) => b === 0)).toBe(true);
    };
    check(1, 1, SECTORS - 1, 2);
    check(SECTORS - 1, SECTORS - 1, 1, SECTORS - 1 - ENTRY_ARRAY_SECTORS);
    // both arrays hold the same entries; the first one's fields in place
    expect(img.subarray(2 * 512, 34 * 512).equals(img.subarray((SECTORS - 33) * 512, (SECTORS - 1) * 512))).toBe(true);
    const e = img.subarray(2 * 512, 2 * 512 + 128);
    expect(guidText(e.subarray(0, 16))).toBe(ESP_TYPE);
    expect(e.readBigUInt64LE(32)).toBe(2048n);
    expect(e.readBigUInt64LE(40)).toBe(4095n);
    expect(e.readBigUInt64LE(48)).toBe(4n);
  });

  it('util-linux checks the CRCs: a corrupted primary array or header sends it to the intact backup', () => {
    const dumpOf = (img: Buffer, name: string) => {
      const r = spawnSync('sfdisk', ['--dump', file(img, name)], { encoding: 'utf8' });
      return { out: r.stdout, err: r.stderr };
    };
    const clean = dumpOf(image(), 'clean.img');
    expect(clean.err).not.toMatch(/corrupt/);
    for (const [what, offset] of [
      ['entry array', 2 * 512 + 60],
      ['header', 512 + 40],
    ] as const) {
      const img = image();
      img[offset]! ^= 0xff;
      const d = dumpOf(img, `bad-${what.replace(' ', '-')}.img`);
      expect(d.err, what).toMatch(/primary GPT table is corrupt, but the backup appears OK/);
      expect(d.out, what).toMatch(/name="PODBOOT"/);
    }
  });

  it('refuses partitions outside the usable range, overlapping, or with long names', () => {
    const img = Buffer.alloc(SECTORS * 512);
    const p = layout.partitions[0]!;
    expect(() => writeGpt(img, { diskGuid: layout.diskGuid, partitions: [{ ...p, firstLba: 33 }] })).toThrow(/outside/);
    expect(() => writeGpt(img, { diskGuid: layout.diskGuid, partitions: [{ ...p, lastLba: SECTORS - 33 }] })).toThrow(/outside/);
    expect(() => writeGpt(img, { diskGuid: layout.diskGuid, partitions: [p, { ...p, firstLba: 4000, lastLba: 5000, name: 'b' }] })).toThrow(/overlap/);
    expect(() => writeGpt(img, { diskGuid: layout.diskGuid, partitions: [{ ...p, name: 'x'.repeat(37) }] })).toThrow(/36/);
    expect(() => writeGpt(Buffer.alloc(1000), layout)).toThrow(/multiple of 512/);
  });
});
