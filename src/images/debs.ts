// Debian packages as build inputs, never installed into the host: `apt-get
// download` into a cache directory and `dpkg -x` into a per-package
// directory. Both steps are skipped when their result is already in the
// cache, so a second build needs no network at all. A file is taken from an
// unpacked package only through `packageFile`, which resolves symlinks inside
// the package: Debian's ipxe ships usr/lib/ipxe/ipxe.efi -> /boot/ipxe.efi,
// and following that on the host read whatever the host had installed.
import { existsSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, type Stats, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProgram } from '../host/programs.js';

export interface DebInfo {
  package: string;
  version: string;
  architecture: string;
}

export type Progress = (line: string) => void;

function sh(cmd: string, args: string[], cwd?: string): string {
  return runProgram(cmd, args, { cwd });
}

/** The package a metapackage points at: first "Depends:" of `apt-cache depends` output that matches `prefix`. */
export function parseAptCacheDepends(text: string, prefix: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*\|?Depends:\s*(\S+)/.exec(line);
    if (m && m[1]!.startsWith(prefix)) return m[1];
  }
  return undefined;
}

/** Version and architecture from `apt-cache show --no-all-versions` (the candidate). */
export function parseAptCacheShow(text: string): DebInfo | undefined {
  const field = (name: string) => new RegExp(`^${name}: (.+)$`, 'm').exec(text)?.[1]?.trim();
  const pkg = field('Package');
  const version = field('Version');
  const architecture = field('Architecture');
  if (!pkg || !version || !architecture) return undefined;
  return { package: pkg, version, architecture };
}

/** The file name `apt-get download` writes: the epoch's ':' is URL-encoded. */
export function debFileName(d: DebInfo): string {
  return `${d.package}_${d.version.replace(/:/g, '%3a')}_${d.architecture}.deb`;
}

/** The real kernel package behind the `linux-image-amd64` metapackage (e.g. linux-image-6.1.0-57-amd64). */
export function resolveKernelPackage(meta = 'linux-image-amd64'): string {
  const pkg = parseAptCacheDepends(sh('apt-cache', ['depends', meta]), 'linux-image-');
  if (!pkg) throw new Error(`apt-cache depends ${meta}: no linux-image-* dependency (is the apt package list present? run apt-get update)`);
  return pkg;
}

/** Candidate versions of several packages in one apt-cache call (each call reads the whole cache: ~1 s). */
export function candidates(pkgs: string[]): Map<string, DebInfo> {
  const out = new Map<string, DebInfo>();
  for (const stanza of sh('apt-cache', ['show', '--no-all-versions', ...pkgs]).split(/\n\s*\n/)) {
    const info = parseAptCacheShow(stanza);
    if (info) out.set(info.package, info);
  }
  for (const p of pkgs) if (!out.has(p)) throw new Error(`apt-cache show ${p}: no candidate version`);
  return out;
}

export class DebCache {
  constructor(
    readonly dir: string,
    private readonly progress: Progress = () => undefined,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Path of the package's .deb, downloading it only when the candidate version is not cached yet. */
  fetch(info: DebInfo): { info: DebInfo; path: string } {
    const pkg = info.package;
    const path = join(this.dir, debFileName(info));
    if (existsSync(path)) return { info, path };
    this.progress(`download ${pkg} ${info.version}`);
    // The sandbox user (_apt) cannot write into a root-owned cache directory; we are root and only write files here.
    sh('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', `${pkg}=${info.version}`], this.dir);
    if (!existsSync(path)) throw new Error(`apt-get download ${pkg}: ${path} not written`);
    return { info, path };
  }

  /** A regular file of the package, its symlinks resolved inside the package (see packageFile). */
  file(info: DebInfo, rel: string): string {
    return packageFile(this.extract(info).root, rel, info.package);
  }

  /** The package's files, extracted once with `dpkg -x` (atomically: a temp dir renamed when complete). */
  extract(info: DebInfo): { info: DebInfo; root: string } {
    const { path } = this.fetch(info);
    const root = join(this.dir, 'x', debFileName(info).replace(/\.deb$/, ''));
    if (existsSync(root)) {
      this.progress(`cached   ${debFileName(info)}`);
      return { info, root };
    }
    this.progress(`extract  ${debFileName(info)}`);
    const tmp = `${root}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    sh('dpkg', ['-x', path, tmp]);
    writeFileSync(join(tmp, '.podboot-extracted'), `${debFileName(info)}\n`);
    renameSync(tmp, root);
    return { info, root };
  }
}

/** A .deb file name back to its DebInfo (inverse of debFileName). */
export function parseDebFileName(name: string): DebInfo | undefined {
  const m = /^([^_]+)_([^_]+)_([^_]+)\.deb$/.exec(name);
  if (!m) return undefined;
  return { package: m[1]!, version: m[2]!.replace(/%3a/gi, ':'), architecture: m[3]! };
}

/** Links followed while resolving one path; the kernel's own limit is 40. */
const MAX_LINKS = 40;

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Where `rel` lands inside the unpacked package at `root`, as if `root` were
 * `/`: an absolute link target starts again at `root`, a relative one from the
 * link's directory. A path that would step above `root` (`..` too many, or a
 * link that does) is an error naming the package and the link, as is a path
 * that is not in the package: nothing outside the unpacked tree is ever read.
 */
export function resolveInPackage(root: string, rel: string, pkg: string): string {
  const done: string[] = [];
  let todo = splitPath(rel);
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      if (done.length === 0) throw new Error(`package ${pkg}: ${rel} leads out of the package (${c} above its root)`);
      done.pop();
      continue;
    }
    const here = join(root, ...done, c);
    let st: Stats;
    try {
      st = lstatSync(here);
    } catch {
      throw new Error(`package ${pkg}: ${rel}: /${[...done, c].join('/')} is not in the package`);
    }
    if (!st.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`package ${pkg}: ${rel}: more than ${MAX_LINKS} symlinks (a loop?)`);
    const target = readlinkSync(here);
    const linkName = `/${[...done, c].join('/')}`;
    const parts = splitPath(target);
    if (target.startsWith('/')) done.length = 0;
    // Walk the target's `..` against where it starts, so a link that climbs out is named as the culprit.
    const base = [...done];
    for (const part of parts) {
      if (part !== '..') break;
      if (base.length === 0) throw new Error(`package ${pkg}: ${rel}: symlink ${linkName} -> ${target} leads out of the package`);
      base.pop();
    }
    todo = [...parts, ...todo];
  }
  return join(root, ...done);
}

/** A regular file of an unpacked package (see resolveInPackage); anything else is an error naming it. */
export function packageFile(root: string, rel: string, pkg: string): string {
  const path = resolveInPackage(root, rel, pkg);
  if (!lstatSync(path).isFile()) throw new Error(`package ${pkg}: ${rel} is not a regular file`);
  return path;
}
