// The busybox "OS" both initramfs images share (stage1 and the lab stage2):
// busybox-static with its applet links, kernel modules in load order, curl
// and openssl from the host with their libraries, and podboot's scripts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpioEntry } from './cpio.js';
import { hostProgramFiles, type HostFile } from './host-bins.js';
import { moduleDepends, moduleKey, parseModulesBuiltin, resolveLoadOrder } from './modules.js';

/** Modules stage1 needs: virtio-net and e1000 NICs, virtio and AHCI/IDE disks. */
export const STAGE_MODULES = ['virtio_pci', 'virtio_net', 'e1000', 'virtio_blk', 'ahci', 'ata_piix', 'sd_mod'];
/**
 * Modules stage1 packs but does not put in load-order: init loads them only
 * where they apply. efivarfs (EFI variables, for efibootmgr) fails with
 * "No such device" on BIOS firmware, so loading it always would print a
 * failed-module line on every BIOS boot.
 */
export const STAGE1_ON_DEMAND_MODULES = ['efivarfs'];
export const HOST_PROGRAMS = ['/usr/bin/curl', '/usr/bin/openssl'];
/** stage1 also turns network boot off in UEFI firmware once a server is installed, and unpacks zstd disk images as they stream */
export const STAGE1_HOST_PROGRAMS = [...HOST_PROGRAMS, '/usr/bin/efibootmgr', '/usr/bin/zstd'];

/** The directory holding package.json and images/: found upwards from this file (src/ under vitest, dist/src/ when built). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'images'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('podboot package root (with images/) not found');
}

export interface KernelTree {
  version: string;
  vmlinuz: string;
  modulesDir: string;
}

/** The kernel and its modules inside an extracted linux-image-* package. */
export function findKernel(root: string): KernelTree {
  const boot = join(root, 'boot');
  const vmlinuz = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`no vmlinuz-* in ${boot}`);
  const version = vmlinuz.slice('vmlinuz-'.length);
  const modulesDir = join(root, 'lib', 'modules', version);
  if (!existsSync(modulesDir)) throw new Error(`no ${modulesDir}`);
  return { version, vmlinuz: join(boot, vmlinuz), modulesDir };
}

function walkModules(dir: string, out: Map<string, string>): void {
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) walkModules(p, out);
    else if (/\.ko(\.(xz|zst|gz))?$/.test(ent.name)) out.set(moduleKey(ent.name), p);
  }
}

export interface ModuleFile {
  key: string;
  data: Buffer;
}

/**
 * A kernel's modules, indexed once, and a function returning the wanted ones
 * with their dependencies in load order (callable more than once, for the
 * modules loaded at boot and those loaded on demand). Bookworm's modules are
 * plain .ko (busybox insmod loads them as they are); compressed ones are
 * refused with a clear message rather than shipped unloadable.
 */
export function moduleCollector(kernel: KernelTree): (wanted: string[]) => ModuleFile[] {
  const files = new Map<string, string>();
  walkModules(join(kernel.modulesDir, 'kernel'), files);
  const builtinFile = join(kernel.modulesDir, 'modules.builtin');
  const builtin = existsSync(builtinFile) ? parseModulesBuiltin(readFileSync(builtinFile, 'utf8')) : new Set<string>();
  const data = new Map<string, Buffer>();
  const load = (key: string) => {
    const path = files.get(key);
    if (!path) return undefined;
    if (!path.endsWith('.ko')) throw new Error(`${path} is compressed; decompress modules before packing (not needed for bookworm)`);
    let d = data.get(key);
    if (!d) data.set(key, (d = readFileSync(path)));
    return d;
  };
  return (wanted) => {
    const order = resolveLoadOrder(
      wanted,
      (key) => {
        const d = load(key);
        return d ? moduleDepends(d) : undefined;
      },
      builtin,
    );
    return order.map((key) => ({ key, data: data.get(key)! }));
  };
}

/** `busybox --list-full` of the (static, host-runnable) busybox: "bin/sh", "usr/bin/wget", … */
export function busyboxApplets(busybox: string): string[] {
  return execFileSync(busybox, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

export interface RootfsInputs {
  busybox: string;
  kernel: KernelTree;
  modules: string[];
  /** packed with a NAME.order file (its dependencies load-order lacks, then itself) for lib.sh's load_module, not loaded at boot */
  onDemandModules?: string[];
  hostPrograms: string[];
  /** scripts and config: path inside the image → content */
  files: { path: string; data: Buffer; mode: number }[];
}

export interface Rootfs {
  entries: CpioEntry[];
  moduleOrder: string[];
  /** packed, not in load-order: the on-demand modules and the dependencies load-order lacks */
  onDemandModules: string[];
  /** digest of every input byte: equal digests, equal images */
  inputsDigest: string;
}

/** Everything the initramfs holds, as cpio entries (the caller encodes them). */
export function busyboxRootfs(inputs: RootfsInputs): Rootfs {
  const hash = createHash('sha256');
  const entries: CpioEntry[] = [];
  const taken = new Set<string>();
  const add = (e: CpioEntry) => {
    const name = e.name.replace(/^\/+/, '');
    if (taken.has(name)) return;
    taken.add(name);
    entries.push({ ...e, name });
    hash.update(`${e.type}\0${name}\0`);
    if (e.type === 'file') hash.update(createHash('sha256').update(e.data).digest());
    if (e.type === 'symlink') hash.update(e.target);
  };
  // The kernel needs /dev/console before devtmpfs is mounted, or init starts without stdout.
  add({ type: 'chardev', name: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  add({ type: 'chardev', name: 'dev/null', mode: 0o666, major: 1, minor: 3 });
  for (const d of ['proc', 'sys', 'tmp', 'run', 'root', 'etc/podboot', 'mnt']) add({ type: 'dir', name: d });
  for (const f of inputs.files) add({ type: 'file', name: f.path, data: f.data, mode: f.mode });
  // Host programs before the applet links: a real curl/openssl wins over a same-named applet.
  const hostFiles: HostFile[] = inputs.hostPrograms.flatMap((p) => hostProgramFiles(p));
  for (const f of hostFiles) add({ type: 'file', name: f.path, data: f.data, mode: f.mode });
  // Debian's openssl looks for its config here; without it every command prints a warning.
  if (existsSync('/etc/ssl/openssl.cnf')) {
    add({ type: 'file', name: 'etc/ssl/openssl.cnf', data: readFileSync('/etc/ssl/openssl.cnf'), mode: 0o644 });
    add({ type: 'symlink', name: 'usr/lib/ssl/openssl.cnf', target: '/etc/ssl/openssl.cnf' });
  }
  add({ type: 'file', name: 'bin/busybox', data: readFileSync(inputs.busybox), mode: 0o755 });
  for (const applet of busyboxApplets(inputs.busybox)) {
    if (applet === 'bin/busybox') continue;
    add({ type: 'symlink', name: applet, target: '/bin/busybox' });
  }
  const collect = moduleCollector(inputs.kernel);
  const modules = collect(inputs.modules);
  const atBoot = new Set(modules.map((m) => m.key));
  const packModules = (list: ModuleFile[], orderFile: string) => {
    for (const m of list) add({ type: 'file', name: `lib/modules/${m.key}.ko`, data: m.data, mode: 0o644 });
    add({ type: 'file', name: `lib/modules/${orderFile}`, data: Buffer.from(list.map((m) => m.key + '\n').join('')), mode: 0o644 });
  };
  packModules(modules, 'load-order');
  const onDemand: string[] = [];
  for (const name of inputs.onDemandModules ?? []) {
    // A dependency init already loaded would fail a second insmod ("File exists"): leave it out.
    const own = collect([name]).filter((m) => !atBoot.has(m.key));
    packModules(own, `${moduleKey(name)}.order`);
    onDemand.push(...own.map((m) => m.key));
  }
  add({ type: 'file', name: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n'), mode: 0o644 });
  add({ type: 'file', name: 'etc/group', data: Buffer.from('root:x:0:\n'), mode: 0o644 });
  return { entries, moduleOrder: modules.map((m) => m.key), onDemandModules: onDemand, inputsDigest: hash.digest('hex') };
}

/** A script or config file from images/ in the package. */
export function imageFile(rel: string, path: string, mode = 0o755): { path: string; data: Buffer; mode: number } {
  const src = join(packageRoot(), 'images', rel);
  if (!statSync(src).isFile()) throw new Error(`${src} is not a file`);
  return { path, data: readFileSync(src), mode };
}
