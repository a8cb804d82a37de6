// Pure parts of the image builders, plus checks on the real stage1 build that
// the global setup made (.cache/stage1): contents, reproducibility, install.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInitramfs } from '../../../src/images/cpio.js';
import { debFileName, parseAptCacheDepends, parseAptCacheShow, parseDebFileName } from '../../../src/images/debs.js';
import { fixFatTimes, FIXED_DOS_DATE } from '../../../src/images/fat.js';
import { parseLdd } from '../../../src/images/host-bins.js';
import { renderNodeConfig } from '../../../src/images/lab-stage2.js';
import { moduleDepends, moduleKey, parseModulesBuiltin, readModinfo, resolveLoadOrder } from '../../../src/images/modules.js';
import { busyboxRootfs, findKernel } from '../../../src/images/rootfs.js';
import { buildStage1, installStage1, STAGE1_BOOT_FILES } from '../../../src/images/stage1.js';
import { CACHE_DIR, STAGE1_DIR } from '../../global-setup.js';

const tmp = mkdtempSync(join(tmpdir(), 'images-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** An unpacked .deb the global setup's build left in the cache, by package name prefix; undefined without one. */
function unpacked(prefix: string): string | undefined {
  const x = join(CACHE_DIR, 'debs', 'x');
  const dir = existsSync(x) ? readdirSync(x).find((d) => d.startsWith(prefix)) : undefined;
  return dir && join(x, dir);
}

describe('module load order', () => {
  const deps: Record<string, string[]> = {
    virtio_ring: [],
    virtio: ['virtio_ring'],
    virtio_pci_modern_dev: [],
    virtio_pci_legacy_dev: [],
    virtio_pci: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio'],
    failover: [],
    net_failover: ['failover'],
    virtio_net: ['virtio_ring', 'virtio', 'net_failover'],
    sd_mod: ['scsi_mod', 't10_pi'],
    scsi_mod: ['scsi_common'],
    scsi_common: [],
  };
  it('dependencies first, each module once, in the order wanted', () => {
    const order = resolveLoadOrder(['virtio_pci', 'virtio-net'], (k) => deps[k]);
    expect(order).toEqual(['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio', 'virtio_pci', 'failover', 'net_failover', 'virtio_net']);
    // every module after its dependencies
    for (const [i, m] of order.entries()) for (const d of deps[m]!) expect(order.indexOf(d)).toBeLessThan(i);
  });
  it('built-in modules are skipped; missing ones and cycles are errors', () => {
    expect(resolveLoadOrder(['sd_mod'], (k) => deps[k], new Set(['t10_pi']))).toEqual(['scsi_common', 'scsi_mod', 'sd_mod']);
    expect(() => resolveLoadOrder(['sd_mod'], (k) => deps[k])).toThrow(/t10_pi not found \(needed by sd_mod\)/);
    expect(() => resolveLoadOrder(['a'], (k) => ({ a: ['b'], b: ['a'] })[k])).toThrow(/cycle: a -> b -> a/);
  });
  it('names: dashes and underscores alike; modules.builtin lines', () => {
    expect(moduleKey('crc-t10dif.ko')).toBe('crc_t10dif');
    expect(moduleKey('x.ko.xz')).toBe('x');
    expect([...parseModulesBuiltin('kernel/drivers/ata/ata_generic.ko\nkernel/lib/crc-t10dif.ko\n')]).toEqual(['ata_generic', 'crc_t10dif']);
  });
  it('an on-demand module is packed with the dependencies load-order lacks, not added to load-order', () => {
    const kernel = unpacked('linux-image-');
    const busybox = unpacked('busybox-static_');
    // the global setup built stage1 from these packages; without them that build failed, and so does this test
    if (!kernel || !busybox) throw new Error('no unpacked linux-image-*/busybox-static in .cache/debs/x: the stage1 build of the global setup did not run');
    // sr_mod needs cdrom (not loaded at boot) and scsi_mod (loaded at boot, via sd_mod)
    const r = busyboxRootfs({ busybox: join(busybox, 'bin/busybox'), kernel: findKernel(kernel), modules: ['sd_mod'], onDemandModules: ['sr_mod'], hostPrograms: [], files: [] });
    const file = (name: string) => r.entries.find((e) => e.name === name);
    const text = (name: string) => {
      const e = file(name);
      return e?.type === 'file' ? e.data.toString() : undefined;
    };
    expect(r.onDemandModules).toEqual(['cdrom', 'sr_mod']);
    expect(text('lib/modules/sr_mod.order')).toBe('cdrom\nsr_mod\n');
    expect(text('lib/modules/load-order')!.split('\n')).toContain('scsi_mod');
    expect(text('lib/modules/load-order')!.split('\n')).not.toContain('sr_mod');
    for (const m of ['cdrom', 'sr_mod', 'scsi_mod']) expect(file(`lib/modules/${m}.ko`), m).toBeDefined();
  });
  it('reads depends= from a real Debian module (.modinfo section)', () => {
    const kernel = unpacked('linux-image-');
    if (!kernel) throw new Error('no unpacked linux-image-* in .cache/debs/x: the stage1 build of the global setup did not run');
    const mods = join(kernel, 'lib', 'modules');
    const ver = readdirSync(mods)[0]!;
    const vnet = readFileSync(join(mods, ver, 'kernel/drivers/net/virtio_net.ko'));
    expect(moduleDepends(vnet).sort()).toEqual(['net_failover', 'virtio', 'virtio_ring']);
    expect(readModinfo(vnet).get('license')).toEqual(['GPL']);
    expect(() => readModinfo(Buffer.from('\xfd7zXZ\0 compressed', 'latin1'))).toThrow(/not an ELF/);
  });
});

describe('parsers', () => {
  it('ldd output: libraries and the loader, not the vDSO; "not found" is an error', () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffbd567b000)
\tlibcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4 (0x00007ffbd5575000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007ffbd5374000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007ffbd567d000)
`;
    expect(parseLdd(out)).toEqual(['/lib/x86_64-linux-gnu/libcurl.so.4', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
    expect(() => parseLdd('\tlibfoo.so.1 => not found\n', 'curl')).toThrow(/curl: shared library libfoo.so.1 not found/);
    expect(parseLdd('\tstatically linked\n')).toEqual([]);
  });
  it('apt-cache depends/show and .deb names (epoch as %3a)', () => {
    expect(parseAptCacheDepends('linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n', 'linux-image-')).toBe('linux-image-6.1.0-57-amd64');
    const info = parseAptCacheShow('Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: amd64\n')!;
    expect(debFileName(info)).toBe('busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb');
    expect(parseDebFileName(debFileName(info))).toEqual(info);
  });
  it('node config for the lab stage2: assignments, #end, then the CA; odd values refused', () => {
    const text = renderNodeConfig({ PODBOOT_SERVER: '10.99.0.1', PODBOOT_HOSTNAME: 'n1' }, Buffer.from('-----BEGIN CERTIFICATE-----\n')).toString();
    expect(text).toBe('PODBOOT_SERVER=10.99.0.1\nPODBOOT_HOSTNAME=n1\n#end\n-----BEGIN CERTIFICATE-----\n');
    expect(() => renderNodeConfig({ PODBOOT_HOSTNAME: 'a;reboot' })).toThrow(/characters/);
    expect(() => renderNodeConfig({ PODBOOT_X: 'a'.repeat(5000) })).toThrow(/4096/);
  });
  it('FAT16 root directory times are fixed', () => {
    const img = join(tmp, 'fat.img');
    const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    execFileSync('truncate', ['-s', '16M', img]);
    execFileSync('mkfs.vfat', ['-F', '16', '--invariant', img], { stdio: 'ignore' });
    writeFileSync(join(tmp, 'a.txt'), 'a\n');
    execFileSync('mcopy', ['-i', img, join(tmp, 'a.txt'), '::a.txt'], { env });
    const buf = readFileSync(img);
    expect(fixFatTimes(buf, 0)).toBe(1);
    writeFileSync(img, buf);
    const listing = execFileSync('mdir', ['-i', img, '::'], { env }).toString();
    expect(listing).toMatch(/2000-01-01/);
    expect(FIXED_DOS_DATE).toBe(0x2821);
  });
});

describe('the stage1 build (global setup)', () => {
  // The global setup builds it; when that failed, these fail too (its message is at the top of the run).
  beforeAll(() => {
    if (!existsSync(join(STAGE1_DIR, 'stage1', 'initrd.img'))) throw new Error(`no stage1 in ${STAGE1_DIR}: the global setup could not build it`);
  });
  it('initrd: busybox and applets, modules in load order, curl/openssl with their loader, scripts; no root CA', () => {
    const files = decodeInitramfs(readFileSync(join(STAGE1_DIR, 'stage1', 'initrd.img')));
    for (const f of [
      'init',
      'bin/busybox',
      'usr/bin/curl',
      'usr/bin/openssl',
      'usr/bin/efibootmgr',
      'lib64/ld-linux-x86-64.so.2',
      'lib/podboot/podboot-agent.sh',
      'lib/podboot/verify.sh',
      'lib/podboot/udhcpc.script',
      'dev/console',
    ])
      expect(files.has(f), f).toBe(true);
    expect(files.get('bin/sh')!.data.toString()).toBe('/bin/busybox');
    expect(files.has('etc/podboot/root.pem')).toBe(false);
    const order = files.get('lib/modules/load-order')!.data.toString().trim().split('\n');
    const net = ['virtio_ring', 'virtio', 'virtio_pci', 'failover', 'net_failover', 'virtio_net'].map((m) => order.indexOf(m));
    expect(net.every((i) => i >= 0)).toBe(true);
    expect([...net].sort((a, b) => a - b)).toEqual(net);
    for (const m of ['e1000', 'virtio_blk', 'ahci', 'libahci', 'libata']) expect(order).toContain(m);
    for (const m of order) expect(files.get(`lib/modules/${m}.ko`)!.data.readUInt32BE(0)).toBe(0x7f454c46);
    // the init is executable
    expect(files.get('init')!.mode & 0o111).not.toBe(0);
  });

  it('initrd: efivarfs.ko is packed for init to load under UEFI, not loaded at boot (it fails under BIOS)', () => {
    const files = decodeInitramfs(readFileSync(join(STAGE1_DIR, 'stage1', 'initrd.img')));
    expect(readModinfo(files.get('lib/modules/efivarfs.ko')!.data).get('name')).toEqual(['efivarfs']);
    expect(files.get('lib/modules/load-order')!.data.toString().split('\n')).not.toContain('efivarfs');
    // bookworm's efivarfs depends on nothing: its own list is just itself
    expect(files.get('lib/modules/efivarfs.order')!.data.toString()).toBe('efivarfs\n');
  });

  it('rebuilding from the same inputs gives the same bytes; an unchanged build is skipped', async () => {
    const out = join(tmp, 'rebuild');
    const r = await buildStage1({ outDir: out, cacheDir: join(CACHE_DIR, 'debs'), preferCache: false });
    expect(r.upToDate).toBe(false);
    const sums = readFileSync(join(STAGE1_DIR, 'stage1', 'SHA256SUMS'), 'utf8');
    expect(readFileSync(join(out, 'stage1', 'SHA256SUMS'), 'utf8')).toBe(sums);
    const again = await buildStage1({ outDir: out, cacheDir: join(CACHE_DIR, 'debs'), preferCache: true });
    expect(again.upToDate).toBe(true);
  }, 120_000);

  it('installStage1 lays the files into a boot tree; the initrd is base + CA overlay', () => {
    const boot = join(tmp, 'boot');
    const pem = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----\n');
    installStage1(STAGE1_DIR, boot, pem);
    for (const f of STAGE1_BOOT_FILES) expect(statSync(join(boot, f)).size).toBe(statSync(join(STAGE1_DIR, f)).size);
    const base = readFileSync(join(STAGE1_DIR, 'stage1', 'initrd.img'));
    const initrd = readFileSync(join(boot, 'stage1', 'initrd.img'));
    expect(initrd.subarray(0, base.length).equals(base)).toBe(true);
    expect(decodeInitramfs(initrd).get('etc/podboot/root.pem')!.data.equals(pem)).toBe(true);
    expect(readdirSync(join(boot, 'stage1')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
