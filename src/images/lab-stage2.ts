// The lab stage2: a small bootable raw disk image standing in for a real OS
// image in tests of the whole chain, one image for both firmwares. A GPT
// (src/images/gpt.ts) with one EFI system partition, FAT16, that holds the
// kernel and initrd twice over in reach: under UEFI the firmware starts
// \EFI\BOOT\BOOTX64.EFI (systemd-boot, from Debian's systemd-boot-efi) which
// reads loader/entries; under BIOS syslinux's gptmbr.bin in the protective
// MBR starts the partition marked legacy-BIOS-bootable, whose boot sector is
// syslinux's. Built without mounting anything (no loop devices, so it works
// in containers and CI): mkfs.vfat --offset makes the file system, mmd and
// mcopy fill it, syslinux --install --offset writes its boot sector.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { runProgram } from '../host/programs.js';
import { buildInitramfs } from './cpio.js';
import { fixFatTimes } from './fat.js';
import { ESP_TYPE, LEGACY_BIOS_BOOTABLE, SECTOR, stableGuid, usableRange, writeGpt } from './gpt.js';
import { DebCache, debFileName, type Progress } from './debs.js';
import { busyboxRootfs, findKernel, HOST_PROGRAMS, imageFile, STAGE_MODULES } from './rootfs.js';
import { buildKey, readStamp, resolveDebs, ROOT_CA_PATH, stage1Overlay, type ArtifactReport, type DebRole } from './stage1.js';

const BUILDER_VERSION = 'lab-stage2/3';
/** Total image size: kernel (~8 MiB) + initrd (~8 MiB) + boot loaders fit with room to spare. */
export const LAB_IMAGE_BYTES = 32 * 1024 * 1024;
export const PARTITION_START_SECTOR = 2048;
/** Sector of the node config area the lab kickstart writes (8 sectors, in the gap between the GPT entry array, LBA 2..33, and the partition). */
export const NODE_CONFIG_SECTOR = 1024;
export const NODE_CONFIG_SECTORS = 8;
/** Fixed FAT volume id: mkfs.vfat would otherwise derive one from the clock. */
const VOLUME_ID = '504f4442'; // "PODB"
/** FAT cannot store times before 1980; every file gets this one. */
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');

export const LAB_CMDLINE = 'console=ttyS0,115200 console=tty0 quiet';

export interface LabStage2Options {
  out: string;
  cacheDir: string;
  /** baked into the initrd as /etc/podboot/root.pem; else the node config area must carry it */
  rootCaPem?: Buffer;
  progress?: Progress;
  force?: boolean;
  /** reuse the .deb files of the last build without asking apt (test suite) */
  preferCache?: boolean;
}

export interface LabStage2Report {
  image: ArtifactReport;
  upToDate: boolean;
  kernelVersion: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): void {
  runProgram(cmd, args, { env, input });
}

/**
 * The node config text the lab kickstart writes at sector 1024: sourceable
 * assignments, a line `#end`, then optionally the root CA. Values are limited
 * to characters the stage2 init accepts (it sources only such lines).
 */
export function renderNodeConfig(values: Record<string, string>, rootCaPem?: Buffer): Buffer {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (!/^PODBOOT_[A-Z0-9_]+$/.test(k)) throw new Error(`node config: bad key ${k}`);
    if (!/^[A-Za-z0-9._:/+=~-]*$/.test(v)) throw new Error(`node config: ${k} has characters stage2 would not accept`);
    lines.push(`${k}=${v}`);
  }
  lines.push('#end');
  let text = lines.join('\n') + '\n';
  if (rootCaPem) text += rootCaPem.toString('latin1');
  const buf = Buffer.from(text, 'latin1');
  if (buf.length > NODE_CONFIG_SECTORS * 512) throw new Error(`node config is ${buf.length} bytes; the area holds ${NODE_CONFIG_SECTORS * 512}`);
  return buf;
}

/**
 * The packages the image is made from. `DebRole` (stage1.ts) names stage1's;
 * resolveDebs treats every role but `kernel` as a package name, so the one
 * this image adds (systemd-boot-efi) goes through it the same way.
 */
const LAB_DEBS = ['kernel', 'busybox-static', 'syslinux-common', 'systemd-boot-efi'] as const;
type LabDeb = (typeof LAB_DEBS)[number];

/** Where the EFI system partition ends: whole MiBs, inside the space the GPT leaves usable. */
export function espLastSector(imageBytes = LAB_IMAGE_BYTES): number {
  const { last } = usableRange(imageBytes / SECTOR);
  const perMiB = (1024 * 1024) / SECTOR;
  return PARTITION_START_SECTOR + Math.floor((last - PARTITION_START_SECTOR + 1) / perMiB) * perMiB - 1;
}

/** Fixed GUIDs (a build must not draw random ones): derived from names, so they are the same in every build. */
const guidOf = (what: string) => stableGuid(createHash('sha256').update(`podboot lab-stage2 ${what}`).digest());

/** systemd-boot's configuration: boot the one entry at once, no menu, no editor, no entries of its own. */
function loaderFiles(): Record<string, Buffer> {
  return {
    'loader/loader.conf': Buffer.from(['default podboot.conf', 'timeout 0', 'editor no', 'auto-entries no', 'auto-firmware no', ''].join('\n')),
    'loader/entries/podboot.conf': Buffer.from(['title podboot lab stage2', 'linux /vmlinuz', 'initrd /initrd.img', `options ${LAB_CMDLINE}`, ''].join('\n')),
  };
}

export async function buildLabStage2(opts: LabStage2Options): Promise<LabStage2Report> {
  const progress = opts.progress ?? (() => undefined);
  const cache = new DebCache(opts.cacheDir, progress);
  const stampFile = `${opts.out}.inputs.json`;
  const stamp = readStamp(stampFile);
  const roles = LAB_DEBS as unknown as DebRole[];
  const debs = resolveDebs(cache, roles, stamp?.debs, opts.preferCache ?? false);
  const root = (r: LabDeb) => cache.extract(debs.get(r as DebRole)!).root;
  // The boot code from the packages; the `syslinux` installer itself must be on the host (Debian package syslinux).
  const file = (r: LabDeb, rel: string) => cache.file(debs.get(r as DebRole)!, rel);
  const gptMbr = file('syslinux-common', 'usr/lib/syslinux/mbr/gptmbr.bin');
  const systemdBoot = file('systemd-boot-efi', 'usr/lib/systemd/boot/efi/systemd-bootx64.efi');
  const kernel = findKernel(root('kernel'));
  const busybox = file('busybox-static', 'bin/busybox');
  const scripts = [imageFile('stage2/init', 'init'), imageFile('common/lib.sh', 'lib/podboot/lib.sh', 0o644), imageFile('common/udhcpc.script', 'lib/podboot/udhcpc.script')];
  const caDigest = opts.rootCaPem ? createHash('sha256').update(opts.rootCaPem).digest('hex') : 'no-ca';
  const key = buildKey(BUILDER_VERSION, debs, scripts, [caDigest, LAB_CMDLINE, String(LAB_IMAGE_BYTES)]);
  if (!opts.force && existsSync(opts.out) && stamp?.key === key) {
    progress('inputs unchanged: image is up to date');
    return { image: artifact(opts.out), upToDate: true, kernelVersion: kernel.version };
  }
  const rootfs = busyboxRootfs({ busybox, kernel, modules: STAGE_MODULES, hostPrograms: HOST_PROGRAMS, files: scripts });
  const kernelBytes = readFileSync(kernel.vmlinuz);
  let initrd = buildInitramfs(rootfs.entries);
  if (opts.rootCaPem) initrd = Buffer.concat([initrd, stage1Overlay(opts.rootCaPem)]);
  const work = mkdtempSync(join(tmpdir(), 'podboot-lab-stage2-'));
  try {
    const files: Record<string, Buffer> = {
      vmlinuz: kernelBytes,
      'initrd.img': initrd,
      'syslinux.cfg': Buffer.from(['DEFAULT podboot', 'PROMPT 0', 'TIMEOUT 0', 'LABEL podboot', '  KERNEL /vmlinuz', '  INITRD /initrd.img', `  APPEND ${LAB_CMDLINE}`, ''].join('\n')),
      'EFI/BOOT/BOOTX64.EFI': readFileSync(systemdBoot),
      ...loaderFiles(),
    };
    for (const [name, data] of Object.entries(files)) {
      const local = join(work, name.replace(/\//g, '_'));
      writeFileSync(local, data);
      utimesSync(local, FIXED_MTIME, FIXED_MTIME);
    }
    const disk = Buffer.alloc(LAB_IMAGE_BYTES);
    const lastSector = espLastSector();
    writeGpt(disk, {
      diskGuid: guidOf('disk'),
      partitions: [{ type: ESP_TYPE, guid: guidOf('esp'), firstLba: PARTITION_START_SECTOR, lastLba: lastSector, attributes: LEGACY_BIOS_BOOTABLE, name: 'PODBOOT' }],
    });
    const img = join(work, 'disk.img');
    writeFileSync(img, disk);
    // FAT16: FAT32 needs 65525+ clusters, more than a 30 MiB partition has; UEFI firmware reads FAT16 system partitions too.
    const partSectors = lastSector - PARTITION_START_SECTOR + 1;
    // mkfs.vfat takes the block count in KiB
    run('mkfs.vfat', ['-F', '16', '-n', 'PODBOOT', '-i', VOLUME_ID, '--invariant', `--offset=${PARTITION_START_SECTOR}`, img, String(partSectors / 2)]);
    const at = `${img}@@${PARTITION_START_SECTOR * SECTOR}`;
    const mtools = { MTOOLS_SKIP_CHECK: '1' };
    run('mmd', ['-i', at, '::EFI', '::EFI/BOOT', '::loader', '::loader/entries'], mtools);
    for (const name of Object.keys(files)) run('mcopy', ['-m', '-i', at, join(work, name.replace(/\//g, '_')), `::${name}`], mtools);
    run('syslinux', ['--install', '--offset', String(PARTITION_START_SECTOR * SECTOR), img]);
    const fd = readFileSync(img);
    readFileSync(gptMbr).subarray(0, 440).copy(fd, 0);
    fixFatTimes(fd, PARTITION_START_SECTOR * SECTOR);
    mkdirSync(dirname(opts.out), { recursive: true });
    const tmp = `${opts.out}.tmp-${process.pid}`;
    writeFileSync(tmp, fd);
    renameSync(tmp, opts.out);
    const debNames = Object.fromEntries([...debs].map(([r, i]) => [r, debFileName(i)]));
    writeFileSync(stampFile, JSON.stringify({ key, debs: debNames }, null, 2) + '\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  progress(`root CA: ${opts.rootCaPem ? `baked in (/${ROOT_CA_PATH})` : 'none baked in: the node config area must carry it'}`);
  return { image: artifact(opts.out), upToDate: false, kernelVersion: kernel.version };
}

function artifact(path: string): ArtifactReport {
  return { name: path, size: statSync(path).size, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}
