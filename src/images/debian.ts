// The Debian 12 image servers install: one immutable base, the same bytes for
// every server, whose per-server part is only the cloud-init seed stage1
// writes beside it. Built in two cached steps:
//   1. mmdebstrap makes a root file system tarball from Debian packages
//      (SOURCE_DATE_EPOCH set: the same packages give the same tarball),
//      cached by the exact package set apt resolves for it;
//   2. podboot lays it out as a disk: GPT (ESP, seed, root), the kernel and
//      initrd on the ESP with systemd-boot (UEFI) and syslinux (BIOS), the
//      root as ext4 made by `mkfs.ext4 -d` with fixed identifiers, all
//      compressed with zstd for the wire. Nothing is mounted but a private
//      tmpfs, and no loop device is needed.
// See docs/debian-image.md.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { isProgramMissing, programNotFound, runProgram } from '../host/programs.js';
import { DebCache, type Progress } from './debs.js';
import {
  BASIC_DATA_TYPE,
  DISK_GUID,
  ESP_FIRST,
  ESP_PARTUUID,
  ESP_SECTORS,
  LINUX_FS_TYPE,
  ROOT_FIRST,
  ROOT_FS_HASH_SEED,
  ROOT_FS_UUID,
  ROOT_PARTUUID,
  SECTOR_BYTES,
  SEED_FIRST,
  SEED_PARTUUID,
  SEED_SECTORS,
} from './debian-layout.js';
import { sha256File } from '../signing/files.js';
import { fixFatTimes } from './fat.js';
import { ESP_TYPE, gptRegions, LEGACY_BIOS_BOOTABLE } from './gpt.js';
import { packageRoot } from './rootfs.js';
import { type DebRole, resolveDebs } from './stage1.js';

/** Bumped when the rootfs step changes in a way its arguments do not show; the arguments are in the key too. */
const ROOTFS_VERSION = 'debian-rootfs/1';
/** The modules whose code lays the disk out: their text is part of the disk's cache key, so a change to them is never served from an old cache. */
const DISK_CODE = ['debian', 'debian-layout', 'gpt', 'fat'];

export const DEBIAN_SUITE = 'bookworm';
/**
 * What a server gets on top of Debian's minimal base (Essential, required,
 * apt): a kernel and systemd, SSH, cloud-init with the NoCloud datasource
 * and growpart, netplan (cloud-init's renderer for network-config v2, VLANs
 * included) with systemd-networkd and -resolved, and curl for the node agent.
 */
export const DEBIAN_PACKAGES = [
  'linux-image-amd64',
  'systemd-sysv',
  'udev',
  'systemd-resolved',
  'netplan.io',
  'openssh-server',
  'cloud-init',
  'cloud-guest-utils',
  'fdisk',
  'e2fsprogs',
  'curl',
  'ca-certificates',
  'iproute2',
  'sudo',
  'netbase',
  'procps',
] as const;

/** netplan writes systemd-networkd units; networkd and resolved must run for them. */
const ROOTFS_HOOKS = ['--customize-hook=chroot "$1" systemctl enable systemd-networkd systemd-resolved'];

/** Documentation, manuals and translations are left out of a server image (like Debian's own minimal cloud images). */
const PATH_EXCLUDES = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*', '/usr/share/lintian/*'];
const PATH_INCLUDES = ['/usr/share/locale/locale.alias', '/usr/share/doc/*/copyright'];

/** console=ttyS0 last: it becomes /dev/console, where systemd and the node agent write (serial-over-LAN on real servers). */
export const DEBIAN_CMDLINE = `root=PARTUUID=${ROOT_PARTUUID.toLowerCase()} ro console=tty0 console=ttyS0,115200n8`;

export interface DebianImageOptions {
  /** the compressed image (`.img.zst`); a report lands beside it as `.json` */
  out: string;
  /** rootfs tarballs and finished images, by key; outside any checkout so every clone shares them */
  cacheDir: string;
  /** apt sources for mmdebstrap (deb822 or one-line); default: the host's */
  sources?: string;
  /** file times and the file system's creation time */
  sourceDateEpoch?: number;
  /** zstd level (1..19) */
  zstdLevel?: number;
  /** true: both steps again; 'disk': only the disk from the cached tarball (how a test checks the layout step is reproducible) */
  force?: boolean | 'disk';
  progress?: Progress;
}

export interface DebianImageReport {
  out: string;
  /** compressed, as it goes over the wire */
  size: number;
  sha256: string;
  rawSize: number;
  rootfsKey: string;
  diskKey: string;
  packages: number;
  kernelVersion: string;
  /** which steps came from the cache */
  cached: { rootfs: boolean; disk: boolean };
}

/** 2023-06-10 (Debian 12.0): a fixed default, so two builds on two days agree. */
const DEFAULT_EPOCH = 1686355200;

export function hostSources(): string {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (existsSync(f) && readFileSync(f, 'utf8').trim()) return f;
  }
  throw new Error('no apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list): give --sources FILE');
}

function mmdebstrapArgs(suite: string, target: string, sources: string, extra: string[] = []): string[] {
  return [
    '--mode=root',
    '--format=tar',
    '--variant=minbase',
    `--include=${DEBIAN_PACKAGES.join(',')}`,
    '--aptopt=APT::Install-Recommends "false"',
    ...PATH_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    ...PATH_INCLUDES.map((p) => `--dpkgopt=path-include=${p}`),
    ...extra,
    suite,
    target,
    sources,
  ];
}

/** `Inst NAME (VERSION …)` lines of apt's simulation → sorted `NAME=VERSION`. */
export function parsePackageSet(simulation: string): string[] {
  const set = new Set<string>();
  for (const m of simulation.matchAll(/^Inst (\S+) \((\S+) /gm)) set.add(`${m[1]}=${m[2]}`);
  return [...set].sort();
}

/** The exact packages mmdebstrap would install today (its dry run: ~10 s, downloads only the package lists). */
export function resolvePackageSet(suite: string, sources: string): string[] {
  // apt's plan goes to stderr with the rest of mmdebstrap's talk
  const r = spawnSync('mmdebstrap', ['--simulate', '--verbose', ...mmdebstrapArgs(suite, '/dev/null', sources)], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(isProgramMissing(r.error) ? programNotFound('mmdebstrap') : r.error.message);
  if (r.status !== 0) throw new Error(`mmdebstrap --simulate failed: ${r.stderr.trim().slice(-2000)}`);
  const set = parsePackageSet(`${r.stdout}\n${r.stderr}`);
  if (set.length === 0) throw new Error('mmdebstrap --simulate named no packages: is the apt source reachable?');
  return set;
}

const sha256Hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/**
 * Units masked in the image. e2scrub_reap removes e2scrub's leftover LVM
 * snapshots: the image has no LVM, yet at each boot it started LVM's tools,
 * 29 s of CPU at first boot under QEMU TCG.
 */
const MASKED_UNITS = ['e2scrub_reap.service'];

/** Files podboot adds to the root file system, path → content and mode. */
export function overlayFiles(): Record<string, { data: Buffer; mode: number }> {
  const img = (rel: string) => readFileSync(join(packageRoot(), 'images', 'debian', rel));
  const fstab = [
    '# podboot Debian image: partitions by their fixed GPT partition UUIDs',
    `PARTUUID=${ROOT_PARTUUID.toLowerCase()} / ext4 errors=remount-ro 0 1`,
    `PARTUUID=${ESP_PARTUUID.toLowerCase()} /boot/efi vfat umask=0077,nofail 0 2`,
    '',
  ].join('\n');
  return {
    'etc/fstab': { data: Buffer.from(fstab), mode: 0o644 },
    'etc/cloud/cloud.cfg.d/90-podboot.cfg': { data: img('cloud.cfg'), mode: 0o644 },
    'etc/kernel/postinst.d/zz-podboot-esp': { data: img('esp-sync'), mode: 0o755 },
    'etc/initramfs/post-update.d/zz-podboot-esp': { data: img('esp-sync'), mode: 0o755 },
    'usr/lib/podboot/podboot-node-agent': { data: img('podboot-node-agent'), mode: 0o755 },
    'usr/lib/systemd/system/podboot-node-agent.service': { data: img('podboot-node-agent.service'), mode: 0o644 },
  };
}

/** Everything that decides the disk's bytes besides the tarball. */
/** The host packages whose programs write the disk's bytes: another version may write other bytes. */
const DISK_TOOLS = ['e2fsprogs', 'dosfstools', 'mtools', 'syslinux', 'zstd'];

function diskKey(rootfsKey: string, epoch: number, level: number): string {
  const tools = runProgram('dpkg-query', ['-W', '-f', '${Package}=${Version}\\n', ...DISK_TOOLS]);
  const h = createHash('sha256').update(`${rootfsKey}\n${epoch}\n${level}\n${DEBIAN_CMDLINE}\n${tools}`);
  // .ts under vitest, .js when built: the sibling files with this module's own extension
  const self = fileURLToPath(import.meta.url);
  for (const m of DISK_CODE) h.update(readFileSync(join(dirname(self), `${m}${extname(self)}`)));
  for (const [path, f] of Object.entries(overlayFiles()).sort()) h.update(`${path} ${f.mode} ${sha256Hex(f.data)}\n`);
  return h.digest('hex');
}

export async function buildDebianImage(opts: DebianImageOptions): Promise<DebianImageReport> {
  const progress = opts.progress ?? (() => undefined);
  if (process.getuid?.() !== 0) throw new Error('building the Debian image needs root (mmdebstrap --mode=root, file owners in the root file system)');
  const epoch = opts.sourceDateEpoch ?? DEFAULT_EPOCH;
  const level = opts.zstdLevel ?? 6;
  const sources = opts.sources ?? hostSources();
  mkdirSync(opts.cacheDir, { recursive: true, mode: 0o755 });

  progress(`resolve the package set (mmdebstrap --simulate, ${DEBIAN_SUITE})`);
  const packageSet = resolvePackageSet(DEBIAN_SUITE, sources);
  const args = mmdebstrapArgs(DEBIAN_SUITE, '-', '-', ROOTFS_HOOKS).join('\n');
  const rootfsKey = sha256Hex(`${ROOTFS_VERSION}\n${args}\n${epoch}\n${packageSet.join('\n')}\n`);
  const kernelPkg = packageSet.find((p) => /^linux-image-\d/.test(p)) ?? '?';
  progress(`${packageSet.length} packages (${kernelPkg}); rootfs key ${rootfsKey.slice(0, 16)}`);
  const tarball = join(opts.cacheDir, `rootfs-${rootfsKey}.tar`);
  const rootfsCached = opts.force !== true && existsSync(tarball);
  if (rootfsCached) progress(`rootfs: cached ${tarball}`);
  else {
    progress('rootfs: mmdebstrap (downloads ~200 MB of packages; 2-4 min)');
    const tmp = `${tarball}.tmp-${process.pid}`;
    try {
      runProgram('mmdebstrap', mmdebstrapArgs(DEBIAN_SUITE, tmp, sources, ROOTFS_HOOKS), {
        env: { SOURCE_DATE_EPOCH: String(epoch), LC_ALL: 'C' },
      });
      writeFileSync(`${tarball}.packages`, packageSet.join('\n') + '\n');
      renameSync(tmp, tarball);
      prune(opts.cacheDir, /^rootfs-[0-9a-f]{64}\.tar(\.packages)?$/, basename(tarball), progress);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  const dKey = diskKey(rootfsKey, epoch, level);
  const cachedImage = join(opts.cacheDir, `disk-${dKey}.img.zst`);
  const reportOf = async (path: string, info: { rawSize: number; kernelVersion: string }, diskCached: boolean): Promise<DebianImageReport> => ({
    out: opts.out,
    size: statSync(path).size,
    sha256: (await sha256File(path)).sha256.toString('hex'),
    rawSize: info.rawSize,
    rootfsKey,
    diskKey: dKey,
    packages: packageSet.length,
    kernelVersion: info.kernelVersion,
    cached: { rootfs: rootfsCached, disk: diskCached },
  });
  let info: { rawSize: number; kernelVersion: string };
  const diskCached = !opts.force && existsSync(cachedImage) && existsSync(`${cachedImage}.json`);
  mkdirSync(dirname(opts.out), { recursive: true });
  if (diskCached) {
    progress(`disk: cached ${cachedImage}`);
    info = JSON.parse(readFileSync(`${cachedImage}.json`, 'utf8')) as typeof info;
    const tmpOut = `${opts.out}.tmp-${process.pid}`;
    copyFileSync(cachedImage, tmpOut);
    renameSync(tmpOut, opts.out);
  } else if (opts.force === 'disk' && existsSync(cachedImage)) {
    // Laid out again beside the cached one, which stays as it is: the two can be compared.
    info = await assembleDisk({ cacheDir: opts.cacheDir, tarball, out: opts.out, epoch, level, progress });
  } else {
    info = await assembleDisk({ cacheDir: opts.cacheDir, tarball, out: cachedImage, epoch, level, progress });
    writeFileSync(`${cachedImage}.json`, JSON.stringify(info) + '\n');
    prune(opts.cacheDir, /^disk-[0-9a-f]{64}\.img\.zst(\.json)?$/, basename(cachedImage), progress);
    const tmpOut = `${opts.out}.tmp-${process.pid}`;
    copyFileSync(cachedImage, tmpOut);
    renameSync(tmpOut, opts.out);
  }
  const report = await reportOf(opts.out, info, diskCached);
  writeFileSync(opts.out.replace(/(\.img)?\.zst$/, '') + '.json', JSON.stringify({ ...report, packageSet }, null, 2) + '\n');
  return report;
}

interface AssembleInputs {
  cacheDir: string;
  tarball: string;
  out: string;
  epoch: number;
  level: number;
  progress: Progress;
}

const MiB = 1024 * 1024;
const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

async function assembleDisk(a: AssembleInputs): Promise<{ rawSize: number; kernelVersion: string }> {
  const work = mkdtempSync(join(a.cacheDir, '.debian-disk-'));
  const root = join(work, 'root');
  mkdirSync(root);
  // A private tmpfs: the order mkfs.ext4 -d reads directories in is then the
  // order tar wrote them, not a hash order that differs from host to host.
  runProgram('mount', ['-t', 'tmpfs', '-o', 'size=6g,mode=0755,noatime', 'podboot-debian', root]);
  try {
    a.progress('disk: unpack the rootfs into a tmpfs');
    runProgram('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xpf', a.tarball, '-C', root]);
    const kernel = readdirSync(join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!kernel) throw new Error('rootfs has no /boot/vmlinuz-*: linux-image-amd64 missing from the package set?');
    const kernelVersion = kernel.slice('vmlinuz-'.length);
    removeIdentity(root);
    for (const [path, f] of Object.entries(overlayFiles())) {
      const p = join(root, path);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, f.data);
      chmodSync(p, f.mode);
    }
    mkdirSync(join(root, 'etc/podboot'), { recursive: true });
    mkdirSync(join(root, 'boot/efi'), { recursive: true });
    const wants = join(root, 'etc/systemd/system/multi-user.target.wants');
    mkdirSync(wants, { recursive: true });
    rmSync(join(wants, 'podboot-node-agent.service'), { force: true });
    symlinkSync('/usr/lib/systemd/system/podboot-node-agent.service', join(wants, 'podboot-node-agent.service'));
    for (const unit of MASKED_UNITS) {
      rmSync(join(root, 'etc/systemd/system', unit), { force: true });
      symlinkSync('/dev/null', join(root, 'etc/systemd/system', unit));
    }
    // Every file at the same time: the build day must not show in the bytes.
    runProgram('find', [root, '-newermt', `@${a.epoch}`, '-exec', 'touch', '--no-dereference', `--date=@${a.epoch}`, '{}', '+']);

    const used = Number(runProgram('du', ['-s', '-B1', '-x', root]).split(/\s/)[0]);
    // ext4's own metadata, the journal and some room for the first boot; growpart takes the rest of the disk.
    const rootBytes = roundUp(used * 1.08 + 128 * MiB, 64 * MiB);
    const rootImg = join(work, 'root.ext4');
    a.progress(`disk: mkfs.ext4 -d (${Math.round(used / MiB)} MiB of files in ${rootBytes / MiB} MiB)`);
    runProgram(
      'mkfs.ext4',
      ['-q', '-F', '-L', 'podboot-root', '-U', ROOT_FS_UUID, '-E', `hash_seed=${ROOT_FS_HASH_SEED},lazy_itable_init=0,lazy_journal_init=0`, '-d', root, rootImg, `${rootBytes / 1024}k`],
      { env: { E2FSPROGS_FAKE_TIME: String(a.epoch) } },
    );
    fixCtimes(root, rootImg, a.epoch);

    const rootSectors = rootBytes / SECTOR_BYTES;
    const totalSectors = ROOT_FIRST + rootSectors + 2048;
    const rawSize = totalSectors * SECTOR_BYTES;
    const disk = join(work, 'disk.img');
    runProgram('truncate', ['-s', String(rawSize), disk]);
    const { head, tail } = gptRegions(totalSectors, {
      diskGuid: DISK_GUID,
      partitions: [
        { type: ESP_TYPE, guid: ESP_PARTUUID, firstLba: ESP_FIRST, lastLba: ESP_FIRST + ESP_SECTORS - 1, attributes: LEGACY_BIOS_BOOTABLE, name: 'EFI system' },
        { type: BASIC_DATA_TYPE, guid: SEED_PARTUUID, firstLba: SEED_FIRST, lastLba: SEED_FIRST + SEED_SECTORS - 1, name: 'cidata' },
        { type: LINUX_FS_TYPE, guid: ROOT_PARTUUID, firstLba: ROOT_FIRST, lastLba: ROOT_FIRST + rootSectors - 1, name: 'root' },
      ],
    });
    a.progress('disk: ESP (FAT32: systemd-boot, syslinux, kernel, initrd)');
    writeEsp(disk, root, kernelVersion, a);
    const fd = openSync(disk, 'r+');
    try {
      // The BIOS loader's 440 bytes from syslinux's gptmbr.bin, then the table around it.
      const mbrCode = readFileSync(bootDeb(a, 'syslinux-common', 'usr/lib/syslinux/mbr/gptmbr.bin')).subarray(0, 440);
      writeSync(fd, mbrCode, 0, mbrCode.length, 0);
      writeSync(fd, head, 440, head.length - 440, 440);
      writeSync(fd, tail, 0, tail.length, rawSize - tail.length);
    } finally {
      closeSync(fd);
    }
    a.progress('disk: root file system into place');
    runProgram('dd', [`if=${rootImg}`, `of=${disk}`, 'bs=4M', `seek=${ROOT_FIRST * SECTOR_BYTES}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
    rmSync(rootImg);
    a.progress(`disk: zstd -${a.level} (${Math.round(rawSize / MiB)} MiB raw)`);
    const tmp = `${a.out}.tmp-${process.pid}`;
    runProgram('zstd', ['-q', '-f', `-${a.level}`, '-T0', disk, '-o', tmp]);
    renameSync(tmp, a.out);
    return { rawSize, kernelVersion };
  } finally {
    try {
      runProgram('umount', [root]);
    } catch {
      // already gone, or busy: the work directory is left for a look
    }
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * mkfs.ext4 -d copies each file's ctime, which is when tar unpacked it (no
 * call can set a ctime), so the build time showed in every inode. debugfs
 * sets them all to the epoch in one batch (~4 s for ~19,000 files).
 */
function fixCtimes(root: string, image: string, epoch: number): void {
  const paths = runProgram('find', [root, '-mindepth', '1', '-printf', '%P\\0']).split('\0').filter(Boolean);
  const odd = paths.find((p) => /["\n]/.test(p));
  if (odd) throw new Error(`root file system path ${JSON.stringify(odd)} cannot be named to debugfs`);
  const hex = `0x${epoch.toString(16)}`;
  // atime too: tar sets it to the time of unpacking for files older than the epoch (touch only clamps newer ones)
  const script = ['/', ...paths.map((p) => `/${p}`)].flatMap((p) => [`sif "${p}" ctime ${hex}`, `sif "${p}" atime ${hex}`]).join('\n') + '\n';
  const file = `${image}.debugfs`;
  writeFileSync(file, script);
  // debugfs goes on past a failed command and says so only on stderr
  const r = spawnSync('debugfs', ['-w', '-f', file, image], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, E2FSPROGS_FAKE_TIME: String(epoch) } });
  rmSync(file);
  if (r.error) throw new Error(isProgramMissing(r.error) ? programNotFound('debugfs') : r.error.message);
  const problems = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() && !l.startsWith('debugfs'));
  if (problems.length) throw new Error(`debugfs: ${problems.slice(0, 3).join('; ')}`);
}

/** A new build replaces the cache's older ones (~750 MB a tarball): one package set at a time is kept. */
function prune(dir: string, pattern: RegExp, keep: string, progress: Progress): void {
  for (const f of readdirSync(dir)) {
    if (!pattern.test(f) || f.startsWith(keep)) continue;
    rmSync(join(dir, f), { force: true });
    progress(`cache: removed ${f}`);
  }
}

/** No identity in the base: each server makes its own SSH host keys and machine id at first boot. */
function removeIdentity(root: string): void {
  for (const f of readdirSync(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(join(root, 'etc/ssh', f));
  writeFileSync(join(root, 'etc/machine-id'), '');
  for (const f of ['var/lib/dbus/machine-id', 'var/lib/systemd/random-seed', 'var/log/dpkg.log', 'var/log/alternatives.log', 'var/cache/ldconfig/aux-cache']) rmSync(join(root, f), { force: true });
  writeFileSync(join(root, 'etc/hostname'), 'localhost\n');
}

/** A boot loader file from its Debian package (downloaded into the cache, never installed on the host). */
function bootDeb(a: AssembleInputs, pkg: 'syslinux-common' | 'systemd-boot-efi', rel: string): string {
  const cache = new DebCache(join(a.cacheDir, 'debs'), a.progress);
  // resolveDebs treats every role but `kernel` as a package name.
  const debs = resolveDebs(cache, [pkg as DebRole], undefined, false);
  return cache.file(debs.get(pkg as DebRole)!, rel);
}

function writeEsp(disk: string, root: string, kernelVersion: string, a: AssembleInputs): void {
  const stage = join(dirname(disk), 'esp');
  mkdirSync(stage);
  const boot = (name: string) => join(root, 'boot', `${name}-${kernelVersion}`);
  const files: Record<string, Buffer> = {
    vmlinuz: readFileSync(boot('vmlinuz')),
    'initrd.img': readFileSync(boot('initrd.img')),
    'syslinux.cfg': Buffer.from(['DEFAULT debian', 'PROMPT 0', 'TIMEOUT 0', 'LABEL debian', '  KERNEL /vmlinuz', '  INITRD /initrd.img', `  APPEND ${DEBIAN_CMDLINE}`, ''].join('\n')),
    'EFI/BOOT/BOOTX64.EFI': readFileSync(bootDeb(a, 'systemd-boot-efi', 'usr/lib/systemd/boot/efi/systemd-bootx64.efi')),
    'loader/loader.conf': Buffer.from(['default debian.conf', 'timeout 0', 'editor no', 'auto-entries no', 'auto-firmware no', ''].join('\n')),
    'loader/entries/debian.conf': Buffer.from(['title Debian GNU/Linux 12 (podboot)', 'linux /vmlinuz', 'initrd /initrd.img', `options ${DEBIAN_CMDLINE}`, ''].join('\n')),
  };
  const at = `${disk}@@${ESP_FIRST * SECTOR_BYTES}`;
  runProgram('mkfs.vfat', ['-F', '32', '-s', '1', '-S', '512', '-n', 'EFI', '--invariant', `--offset=${ESP_FIRST}`, disk, String((ESP_SECTORS * SECTOR_BYTES) / 1024)]);
  const mtools = { MTOOLS_SKIP_CHECK: '1' };
  runProgram('mmd', ['-i', at, '::EFI', '::EFI/BOOT', '::loader', '::loader/entries'], { env: mtools });
  const fixed = new Date(a.epoch * 1000);
  for (const [name, data] of Object.entries(files)) {
    const local = join(stage, name.replace(/\//g, '_'));
    writeFileSync(local, data);
    runProgram('touch', [`--date=@${Math.floor(fixed.getTime() / 1000)}`, local]);
    runProgram('mcopy', ['-m', '-i', at, local, `::${name}`], { env: mtools });
  }
  runProgram('syslinux', ['--install', '--offset', String(ESP_FIRST * SECTOR_BYTES), disk]);
  // syslinux and mmd stamp what they write with the current time.
  const fd = openSync(disk, 'r+');
  try {
    const esp = Buffer.alloc(ESP_SECTORS * SECTOR_BYTES);
    readSync(fd, esp, 0, esp.length, ESP_FIRST * SECTOR_BYTES);
    fixFatTimes(esp, 0);
    writeSync(fd, esp, 0, esp.length, ESP_FIRST * SECTOR_BYTES);
  } finally {
    closeSync(fd);
  }
}
