// Stage1: the bootloaders and the small Linux that fetches, verifies and
// installs stage2. Built from Debian packages (downloaded and extracted, never
// installed) and host curl/openssl; see docs/stage1.md.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildInitramfs, type CpioEntry } from './cpio.js';
import { candidates, DebCache, debFileName, parseDebFileName, resolveKernelPackage, type DebInfo, type Progress } from './debs.js';
import { hostProgramStamp } from './host-bins.js';
import { busyboxRootfs, findKernel, imageFile, STAGE1_HOST_PROGRAMS, STAGE1_ON_DEMAND_MODULES, STAGE_MODULES } from './rootfs.js';

/** Bumped when the layout of the outputs changes, so caches built by older code are rebuilt. */
const BUILDER_VERSION = 'stage1/4';

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
  /** reuse the .deb files of the last build without asking apt for newer candidates (test suite) */
  preferCache?: boolean;
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
    imageFile('stage1/stream.sh', 'lib/podboot/stream.sh', 0o644),
    imageFile('common/lib.sh', 'lib/podboot/lib.sh', 0o644),
    imageFile('common/udhcpc.script', 'lib/podboot/udhcpc.script'),
  ];
}

/** Debian packages the images are made of, by role; `kernel` is resolved from linux-image-amd64. */
export type DebRole = 'kernel' | 'busybox-static' | 'ipxe' | 'pxelinux' | 'syslinux-common';

/**
 * The .deb files to use. Asks apt (2 calls, ~2 s: `apt-cache depends` for the
 * kernel, one `apt-cache show` for the candidates) unless `recorded` names
 * files from an earlier build that are all still in the cache and the caller
 * prefers the cache (the test suite does: it must not depend on apt's lists
 * being fresh, and a second run should take no time).
 */
export function resolveDebs(cache: DebCache, roles: DebRole[], recorded: Record<string, string> | undefined, preferCache: boolean): Map<DebRole, DebInfo> {
  if (preferCache && recorded && roles.every((r) => recorded[r] && existsSync(join(cache.dir, recorded[r]!)))) {
    const out = new Map<DebRole, DebInfo>();
    for (const r of roles) out.set(r, parseDebFileName(recorded[r]!)!);
    return out;
  }
  const names = roles.map((r) => (r === 'kernel' ? resolveKernelPackage() : r));
  const infos = candidates(names);
  return new Map(roles.map((r, i) => [r, infos.get(names[i]!)!]));
}

export function sizeLine(a: ArtifactReport): string {
  return `${a.size.toString().padStart(10)}  ${a.sha256}  ${a.name}`;
}

interface Stamp {
  key: string;
  debs: Record<string, string>;
}

export function readStamp(path: string): Stamp | undefined {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as Stamp;
    return typeof s.key === 'string' && typeof s.debs === 'object' ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Cache key of a build: builder version, the .deb file names, the scripts'
 * contents, the host programs' and libraries' identities, the module list.
 * Computed without reading any big file, so an up-to-date check is quick.
 */
export function buildKey(builder: string, debs: Map<DebRole, DebInfo>, scripts: { path: string; data: Buffer }[], extra: string[] = []): string {
  const h = createHash('sha256').update(builder + '\n');
  for (const [role, info] of [...debs].sort()) h.update(`${role}=${debFileName(info)}\n`);
  for (const f of scripts) h.update(`${f.path}\n`).update(createHash('sha256').update(f.data).digest('hex') + '\n');
  for (const p of STAGE1_HOST_PROGRAMS) h.update(hostProgramStamp(p) + '\n');
  h.update(STAGE_MODULES.join(',') + '\n');
  for (const e of extra) h.update(e + '\n');
  return h.digest('hex');
}

export async function buildStage1(opts: BuildOptions): Promise<Stage1Report> {
  const progress = opts.progress ?? (() => undefined);
  const cache = new DebCache(opts.cacheDir, progress);
  const stampFile = join(opts.outDir, 'stage1', '.inputs.json');
  const stamp = readStamp(stampFile);
  const debs = resolveDebs(cache, ['kernel', 'busybox-static', 'ipxe', 'pxelinux', 'syslinux-common'], stamp?.debs, opts.preferCache ?? false);
  const root = (r: DebRole) => cache.extract(debs.get(r)!).root;
  const file = (r: DebRole, rel: string) => cache.file(debs.get(r)!, rel);
  const kernelInfo = debs.get('kernel')!;
  progress(`kernel package ${kernelInfo.package} ${kernelInfo.version}`);
  const kernel = findKernel(root('kernel'));
  const busybox = file('busybox-static', 'bin/busybox');

  const sources: Record<(typeof STAGE1_BOOT_FILES)[number], string> = {
    'undionly.kpxe': file('ipxe', 'usr/lib/ipxe/undionly.kpxe'),
    'snponly.efi': file('ipxe', 'usr/lib/ipxe/snponly.efi'),
    // an absolute symlink to /boot/ipxe.efi in Debian 12: resolved inside the package, never on the host
    'ipxe.efi': file('ipxe', 'usr/lib/ipxe/ipxe.efi'),
    'pxelinux.0': file('pxelinux', 'usr/lib/PXELINUX/pxelinux.0'),
    'ldlinux.c32': file('syslinux-common', 'usr/lib/syslinux/modules/bios/ldlinux.c32'),
    'stage1/vmlinuz': kernel.vmlinuz,
  };
  const scripts = stage1Scripts();
  const key = buildKey(BUILDER_VERSION, debs, scripts, [`on-demand=${STAGE1_ON_DEMAND_MODULES.join(',')}`]);
  const outputs = [...STAGE1_BOOT_FILES, STAGE1_INITRD];
  const upToDate = !opts.force && stamp?.key === key && outputs.every((f) => existsSync(join(opts.outDir, f)));

  let modules: string[];
  if (upToDate) {
    progress('inputs unchanged: outputs are up to date');
    modules = readFileSync(join(opts.outDir, 'stage1', 'modules'), 'utf8')
      .split('\n')
      .filter(Boolean);
  } else {
    progress(`collect initramfs (busybox, ${STAGE1_HOST_PROGRAMS.join(', ')}, modules)`);
    const rootfs = busyboxRootfs({
      busybox,
      kernel,
      modules: STAGE_MODULES,
      onDemandModules: STAGE1_ON_DEMAND_MODULES,
      hostPrograms: STAGE1_HOST_PROGRAMS,
      files: scripts,
    });
    modules = rootfs.moduleOrder;
    mkdirSync(join(opts.outDir, 'stage1'), { recursive: true });
    for (const [name, src] of Object.entries(sources)) {
      const tmp = join(opts.outDir, `${name}.tmp-${process.pid}`);
      copyFileSync(src, tmp);
      renameSync(tmp, join(opts.outDir, name));
    }
    progress(`initramfs: ${rootfs.entries.length} entries, modules ${modules.join(' ')}; on demand ${rootfs.onDemandModules.join(' ')}`);
    writeAtomic(join(opts.outDir, STAGE1_INITRD), buildInitramfs(rootfs.entries));
    writeAtomic(join(opts.outDir, 'stage1', 'modules'), modules.join('\n') + '\n');
  }
  const artifacts = outputs.map((name) => {
    const p = join(opts.outDir, name);
    return { name, size: statSync(p).size, sha256: sha256File(p) };
  });
  if (!upToDate) {
    writeAtomic(join(opts.outDir, 'stage1', 'SHA256SUMS'), artifacts.map((a) => `${a.sha256}  ${a.name}\n`).join(''));
    // written last: a build cut short is redone on the next run
    const debNames = Object.fromEntries([...debs].map(([r, i]) => [r, debFileName(i)]));
    writeAtomic(stampFile, JSON.stringify({ key, debs: debNames }, null, 2) + '\n');
  }
  return { outDir: opts.outDir, kernelPackage: kernelInfo.package, kernelVersion: kernel.version, modules, upToDate, artifacts };
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
