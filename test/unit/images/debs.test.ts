// Files taken from an unpacked .deb never come from the host: packages built
// here with `dpkg-deb -b` hold the kinds of links Debian ships (ipxe's
// usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi) and links that climb out.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DebCache, debFileName, packageFile, resolveInPackage, type DebInfo } from '../../../src/images/debs.js';

const tmp = mkdtempSync(join(tmpdir(), 'debs-test-'));
const cache = new DebCache(join(tmp, 'cache'));
const info: DebInfo = { package: 'podboot-linktest', version: '1:1.0-1', architecture: 'all' };
// An absolute target no host has: the old extractor, which followed it on the host, could never find it.
const HOST_ABSENT = `/boot/podboot-linktest-${process.pid}.efi`;

beforeAll(() => {
  const src = join(tmp, 'src');
  mkdirSync(join(src, 'DEBIAN'), { recursive: true });
  writeFileSync(join(src, 'DEBIAN', 'control'), `Package: ${info.package}\nVersion: ${info.version}\nArchitecture: all\nMaintainer: podboot tests <t@example.invalid>\nDescription: symlink cases\n`);
  mkdirSync(join(src, 'boot'), { recursive: true });
  mkdirSync(join(src, 'usr/lib/thing'), { recursive: true });
  mkdirSync(join(src, 'usr/share/thing'), { recursive: true });
  writeFileSync(join(src, HOST_ABSENT), 'from the package, absolute link\n');
  writeFileSync(join(src, 'usr/share/thing/data.bin'), 'from the package, relative link\n');
  // a file the host also has, with other bytes: the package's must win
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/hostname'), 'package-hostname\n');
  symlinkSync(HOST_ABSENT, join(src, 'usr/lib/thing/abs.efi'));
  symlinkSync('../../share/thing/data.bin', join(src, 'usr/lib/thing/rel.bin'));
  symlinkSync('/etc/hostname', join(src, 'usr/lib/thing/hostname'));
  symlinkSync('../../../../../etc/passwd', join(src, 'usr/lib/thing/escape'));
  symlinkSync('/usr/share/thing', join(src, 'usr/lib/thing/dirlink'));
  symlinkSync('loop-b', join(src, 'usr/lib/thing/loop-a'));
  symlinkSync('loop-a', join(src, 'usr/lib/thing/loop-b'));
  execFileSync('dpkg-deb', ['-b', '--root-owner-group', src, join(cache.dir, debFileName(info))], { stdio: 'pipe' });
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('files from an unpacked Debian package', () => {
  it('an absolute symlink resolves inside the package, not on the host', () => {
    expect(existsSync(HOST_ABSENT)).toBe(false);
    const p = cache.file(info, 'usr/lib/thing/abs.efi');
    expect(readFileSync(p, 'utf8')).toBe('from the package, absolute link\n');
    expect(p.startsWith(join(cache.dir, 'x'))).toBe(true);
  });

  it("an absolute symlink to a path the host has too gives the package's file", () => {
    expect(readFileSync(cache.file(info, 'usr/lib/thing/hostname'), 'utf8')).toBe('package-hostname\n');
  });

  it('a relative symlink resolves from its own directory', () => {
    expect(readFileSync(cache.file(info, 'usr/lib/thing/rel.bin'), 'utf8')).toBe('from the package, relative link\n');
  });

  it('a symlinked directory in the middle of a path is followed inside the package', () => {
    expect(readFileSync(cache.file(info, 'usr/lib/thing/dirlink/data.bin'), 'utf8')).toBe('from the package, relative link\n');
  });

  it('a symlink that leads out of the package is an error naming the package and the link', () => {
    expect(() => cache.file(info, 'usr/lib/thing/escape')).toThrow(
      /package podboot-linktest: .*symlink \/usr\/lib\/thing\/escape -> \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd leads out of the package/,
    );
  });

  it('a path that climbs above the root, a missing file, a loop and a directory are errors', () => {
    const root = cache.extract(info).root;
    expect(() => resolveInPackage(root, '../../etc/passwd', info.package)).toThrow(/leads out of the package/);
    expect(() => packageFile(root, 'usr/lib/thing/absent', info.package)).toThrow(/\/usr\/lib\/thing\/absent is not in the package/);
    expect(() => packageFile(root, 'usr/lib/thing/loop-a', info.package)).toThrow(/more than 40 symlinks/);
    expect(() => packageFile(root, 'usr/lib/thing', info.package)).toThrow(/is not a regular file/);
  });
});
