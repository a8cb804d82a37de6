// Dynamically linked host programs (curl, openssl) copied into an initramfs
// with every shared library `ldd` names and the dynamic loader, each at the
// path the loader will look for it.
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync, statSync } from 'node:fs';

export interface LddEntry {
  /** path inside the initramfs (as ldd prints it) */
  path: string;
}

/**
 * Paths from `ldd` output. Lines are `name => /path (0x…)`, `/lib64/ld-… (0x…)`
 * for the loader, or `linux-vdso.so.1 (0x…)` for the kernel-provided vDSO
 * (no file). A `=> not found` line is an error: the program would not start.
 */
export function parseLdd(text: string, program = 'program'): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || /^statically linked|not a dynamic executable/.test(line)) continue;
    if (/=>\s*not found/.test(line)) throw new Error(`${program}: shared library ${line.split(/\s/)[0]} not found`);
    const arrow = /=>\s*(\/\S+)/.exec(line);
    if (arrow) {
      out.push(arrow[1]!);
      continue;
    }
    const loader = /^(\/\S+)\s+\(0x/.exec(line);
    if (loader) out.push(loader[1]!);
  }
  return out;
}

export interface HostFile {
  /** path inside the initramfs */
  path: string;
  data: Buffer;
  mode: number;
}

/** A program and its libraries, the libraries' contents read through symlinks. */
export function hostProgramFiles(programPath: string): HostFile[] {
  const ldd = execFileSync('ldd', [programPath], { encoding: 'utf8' });
  const files: HostFile[] = [{ path: programPath, data: readFileSync(realpathSync(programPath)), mode: 0o755 }];
  for (const lib of parseLdd(ldd, programPath)) files.push({ path: lib, data: readFileSync(realpathSync(lib)), mode: 0o755 });
  return files;
}

/** Cheap identity of a program and its libraries (path, size, mtime) for build cache keys: no file is read. */
export function hostProgramStamp(programPath: string): string {
  const ldd = execFileSync('ldd', [programPath], { encoding: 'utf8' });
  return [programPath, ...parseLdd(ldd, programPath)]
    .map((p) => {
      const st = statSync(realpathSync(p));
      return `${p}:${st.size}:${Math.round(st.mtimeMs)}`;
    })
    .join('\n');
}
