import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInitramfs, decodeCpio, decodeInitramfs, encodeCpio, type CpioEntry } from '../../../src/images/cpio.js';
import { stage1Overlay } from '../../../src/images/stage1.js';

const entries = (): CpioEntry[] => [
  { type: 'file', name: 'init', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { type: 'symlink', name: 'bin/sh', target: '/bin/busybox' },
  { type: 'file', name: '/bin/busybox', data: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]), mode: 0o755 },
  { type: 'chardev', name: 'dev/console', major: 5, minor: 1 },
  { type: 'file', name: 'lib/modules/x.ko', data: Buffer.alloc(4097, 7) },
];

const tmp = mkdtempSync(join(tmpdir(), 'cpio-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('newc cpio codec', () => {
  it('same entries in any order → the same bytes; parents added; fixed mtime/uid/gid', () => {
    const a = buildInitramfs(entries());
    const b = buildInitramfs(entries().reverse());
    expect(a.equals(b)).toBe(true);
    // gzip header: no name flag, mtime 0, OS 255
    expect(a[3]).toBe(0);
    expect(a.readUInt32LE(4)).toBe(0);
    expect(a[9]).toBe(0xff);
    const decoded = decodeCpio(gunzipSync(a));
    expect(decoded.map((e) => e.name)).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init', 'lib', 'lib/modules', 'lib/modules/x.ko']);
    for (const e of decoded) {
      expect(e.mtime).toBe(0);
      expect(e.uid).toBe(0);
      expect(e.gid).toBe(0);
    }
    const sh = decoded.find((e) => e.name === 'bin/sh')!;
    expect(sh.mode).toBe(0o120777);
    expect(sh.data.toString()).toBe('/bin/busybox');
    const con = decoded.find((e) => e.name === 'dev/console')!;
    expect([con.mode & 0o170000, con.rdevmajor, con.rdevminor]).toEqual([0o020000, 5, 1]);
    expect(decoded.find((e) => e.name === 'lib/modules/x.ko')!.data.length).toBe(4097);
  });

  it('GNU cpio reads what we write (files, modes, symlinks)', () => {
    const archive = join(tmp, 'a.cpio');
    writeFileSync(archive, encodeCpio(entries().filter((e) => e.type !== 'chardev')));
    const out = join(tmp, 'x');
    execFileSync('mkdir', ['-p', out]);
    execFileSync('sh', ['-c', `cd ${out} && cpio -id --quiet < ${archive}`]);
    expect(readFileSync(join(out, 'init'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(join(out, 'init')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(out, 'bin/sh'))).toBe('/bin/busybox');
    const listing = execFileSync('sh', ['-c', `cpio -tv --quiet < ${archive}`], { encoding: 'utf8' });
    expect(listing).toMatch(/lib\/modules\/x\.ko/);
  });

  it('refuses duplicates, .. and a file where a directory is needed', () => {
    expect(() =>
      encodeCpio([
        { type: 'dir', name: 'a' },
        { type: 'dir', name: 'a/' },
      ]),
    ).toThrow(/duplicate/);
    expect(() => encodeCpio([{ type: 'file', name: 'a/../b', data: Buffer.alloc(0) }])).toThrow(/\.\./);
    expect(() =>
      encodeCpio([
        { type: 'file', name: 'a', data: Buffer.alloc(1) },
        { type: 'file', name: 'a/b', data: Buffer.alloc(1) },
      ]),
    ).toThrow(/directory/);
  });

  it('overlay: base + overlay read as one initramfs, the root CA at etc/podboot/root.pem', () => {
    const pem = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const overlay = stage1Overlay(pem);
    expect(stage1Overlay(pem).equals(overlay)).toBe(true);
    const all = decodeInitramfs(Buffer.concat([buildInitramfs(entries()), overlay]));
    expect(all.get('etc/podboot/root.pem')!.data.equals(pem)).toBe(true);
    expect(all.get('init')!.data.toString()).toContain('echo hi');
    expect(() => stage1Overlay(Buffer.from('not a cert'))).toThrow(/PEM/);
  });
});
