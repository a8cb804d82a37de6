// Debian packages as build inputs, never installed into the host: `apt-get
// download` into a cache directory and `dpkg -x` into a per-package
// directory. Both steps are skipped when their result is already in the
// cache, so a second build needs no network at all.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DebInfo {
  package: string;
  version: string;
  architecture: string;
}

export type Progress = (line: string) => void;

function sh(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
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
