// Stage1: the bootloaders and the small Linux that fetches, verifies and
// installs stage2. Built from Debian packages (downloaded and extracted, never
// installed) and host curl/openssl; see docs/stage1.md.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildInitramfs, type CpioEntry } from './cpio.js';
import { DebCache, resolveKernelPackage, type Progress } from './debs.js';
import { busyboxRootfs, findKernel, HOST_PROGRAMS, imageFile, STAGE_MODULES } from './rootfs.js';

/** Bumped when the layout of the outputs changes, so caches built by older code are rebuilt. */
const BUILDER_VERSION = 'stage1/1';

/** Files a pod's boot tree gets from a stage1 build, relative to both directories. */
export const STAGE1_BOOT_FILES = ['undionly.kpxe', 'snponly.efi', 'ipxe.efi', 'pxelinux.0', 'ldlinux.c32', 'stage1/vmlinuz'] as const;
export const STAGE1_INITRD = 'stage1/initrd.img';
/** Where the overlay puts the root CA; the agent's default PODBOOT_ROOT_CA. */
export const ROOT_CA_PATH = 'etc/podboot/root.pem';

export interface BuildOptions {
  outDir: string;
  cacheDir: string;
  progress?: Progress;
  /** rebuild even when the inputs did not change */
  force?: boolean;
}

export interface ArtifactReport {
  name: string;
  size: number;
  sha256: string;
}

export interface Stage1Report {
  outDir: string;
  kernelPackage: string;
  kernelVersion: string;
  modules: string[];
  upToDate: boolean;
  artifacts: ArtifactReport[];
}

/** Writes a file atomically: a temp file in the same directory, renamed over the target. */
export function writeAtomic(path: string, data: Buffer | string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The scripts stage1's initramfs carries. */
export function stage1Scripts(): { path: string; data: Buffer; mode: number }[] {
  return [
    imageFile('stage1/init', 'init'),
    imageFile('stage1/podboot-agent.sh', 'lib/podboot/podboot-agent.sh'),
    imageFile('stage1/verify.sh', 'lib/podboot/verify.sh'),
    imageFile('common/lib.sh', 'lib/podboot/lib.sh', 0o644),
    imageFile('common/udhcpc.script', 'lib/podboot/udhcpc.script'),
  ];
}

/** The Debian packages both images are made of, downloaded and extracted (cached). */
export function stageInputs(cache: DebCache, progress: Progress) {
  const kernelPackage = resolveKernelPackage();
  progress(`kernel package ${kernelPackage}`);
  const kernelDeb = cache.extract(kernelPackage);
  const busybox = cache.extract('busybox-static');
  return { kernelPackage, kernel: findKernel(kernelDeb.root), busybox: join(busybox.root, 'bin', 'busybox') };
}

export function sizeLine(a: ArtifactReport): string {
  return `${a.size.toString().padStart(10)}  ${a.sha256}  ${a.name}`;
}

export async function buildStage1(opts: BuildOptions): Promise<Stage1Report> {
  const progress = opts.progress ?? (() => undefined);
  const cache = new DebCache(opts.cacheDir, progress);
  const ipxe = cache.extract('ipxe').root;
  const pxelinux = cache.extract('pxelinux').root;
  const syslinuxCommon = cache.extract('syslinux-common').root;
  const { kernelPackage, kernel, busybox } = stageInputs(cache, progress);

  const sources: Record<(typeof STAGE1_BOOT_FILES)[number], string> = {
    'undionly.kpxe': join(ipxe, 'usr/lib/ipxe/undionly.kpxe'),
    'snponly.efi': join(ipxe, 'usr/lib/ipxe/snponly.efi'),
    'ipxe.efi': join(ipxe, 'usr/lib/ipxe/ipxe.efi'),
    'pxelinux.0': join(pxelinux, 'usr/lib/PXELINUX/pxelinux.0'),
    'ldlinux.c32': join(syslinuxCommon, 'usr/lib/syslinux/modules/bios/ldlinux.c32'),
    'stage1/vmlinuz': kernel.vmlinuz,
  };

  progress(`collect initramfs (busybox, ${HOST_PROGRAMS.join(', ')}, modules)`);
  const rootfs = busyboxRootfs({ busybox, kernel, modules: STAGE_MODULES, hostPrograms: HOST_PROGRAMS, files: stage1Scripts() });
  const key = createHash('sha256')
    .update(BUILDER_VERSION)
    .update(rootfs.inputsDigest)
    .update(Object.entries(sources).map(([n, p]) => `${n}=${p}:${statSync(p).size}`).join('\n'))
    .digest('hex');
  const keyFile = join(opts.outDir, 'stage1', '.inputs');
  const outputs = [...STAGE1_BOOT_FILES, STAGE1_INITRD];
  const upToDate =
    !opts.force && existsSync(keyFile) && readFileSync(keyFile, 'utf8').trim() === key && outputs.every((f) => existsSync(join(opts.outDir, f)));

  if (upToDate) {
    progress('inputs unchanged: outputs are up to date');
  } else {
    mkdirSync(join(opts.outDir, 'stage1'), { recursive: true });
    for (const [name, src] of Object.entries(sources)) {
      const tmp = join(opts.outDir, `${name}.tmp-${process.pid}`);
      copyFileSync(src, tmp);
      renameSync(tmp, join(opts.outDir, name));
    }
    progress(`initramfs: ${rootfs.entries.length} entries, modules ${rootfs.moduleOrder.join(' ')}`);
    writeAtomic(join(opts.outDir, STAGE1_INITRD), buildInitramfs(rootfs.entries));
  }
  const artifacts = outputs.map((name) => {
    const p = join(opts.outDir, name);
    return { name, size: statSync(p).size, sha256: sha256File(p) };
  });
  if (!upToDate) {
    writeAtomic(join(opts.outDir, 'stage1', 'SHA256SUMS'), artifacts.map((a) => `${a.sha256}  ${a.name}\n`).join(''));
    // written last: a build cut short is redone on the next run
    writeAtomic(keyFile, key + '\n');
  }
  return { outDir: opts.outDir, kernelPackage, kernelVersion: kernel.version, modules: rootfs.moduleOrder, upToDate, artifacts };
}

/**
 * The per-deployment part of the initramfs: a second gzip'd cpio holding only
 * the root CA. The kernel unpacks concatenated archives into one root, so a
 * pod's initrd is the shared base followed by this; the base never changes
 * when a CA does.
 */
export function stage1Overlay(rootCaPem: Buffer): Buffer {
  const text = rootCaPem.toString('latin1');
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error('root CA: not a PEM certificate');
  const entries: CpioEntry[] = [
    { type: 'dir', name: 'etc' },
    { type: 'dir', name: 'etc/podboot' },
    { type: 'file', name: ROOT_CA_PATH, data: rootCaPem, mode: 0o644 },
  ];
  return buildInitramfs(entries);
}

/**
 * Lays a stage1 build into a pod's boot tree: bootloaders, kernel, and the
 * initrd with the pod's root CA appended. Each file is written to a temp name
 * and renamed, so a TFTP client never reads a half-written file.
 */
export function installStage1(fromDir: string, bootDir: string, rootCaPem: Buffer): void {
  for (const name of [...STAGE1_BOOT_FILES, STAGE1_INITRD]) {
    if (!existsSync(join(fromDir, name))) throw new Error(`${join(fromDir, name)} missing: run podboot images build-stage1`);
  }
  const overlay = stage1Overlay(rootCaPem);
  for (const name of STAGE1_BOOT_FILES) writeAtomic(join(bootDir, name), readFileSync(join(fromDir, name)));
  writeAtomic(join(bootDir, STAGE1_INITRD), Buffer.concat([readFileSync(join(fromDir, STAGE1_INITRD)), overlay]));
}
