// The program table against the machine and the CI package list: every
// program podboot spawns is in the table, every table package is installed by
// `.ci/run` (or is part of every Debian), and the package really provides it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROGRAM_PACKAGES, programNotFound, runProgram } from '../../../src/host/programs.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

function ciPackages(): Set<string> {
  const text = readFileSync(join(REPO, '.ci', 'apt-packages.txt'), 'utf8');
  return new Set(
    text
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean),
  );
}

function dpkgField(pkg: string, field: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', `-f=\${${field}}`, pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** The package owning a file; merged /usr means dpkg may know it under /bin or /usr/bin. */
function owner(path: string): string | undefined {
  const variants = new Set([path, path.replace(/^\/usr\//, '/'), path.startsWith('/usr/') ? path : `/usr${path}`]);
  for (const p of variants) {
    try {
      const lines = execFileSync('dpkg', ['-S', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
      const line = lines.find((l) => l.includes(':') && !l.startsWith('diversion by'));
      if (line) return line.split(':')[0]!.trim();
    } catch {
      // not this spelling
    }
  }
  return undefined;
}

function which(program: string): string | undefined {
  for (const dir of SYSTEM_PATH.split(':')) {
    try {
      if (statSync(join(dir, program)).isFile()) return join(dir, program);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Literal first arguments of execFile/execFileSync/spawn/spawnSync in the project's TypeScript. */
function spawnedPrograms(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        // node's functions called with a program name, and the test rig's lab.spawn(namespace, program, …)
        for (const m of text.matchAll(/(?<![.\w])(?:execFileSync|execFile|spawnSync|spawn|runProgram)\(\s*'([^']+)'/g)) out.set(m[1]!, p.slice(REPO.length + 1));
        for (const m of text.matchAll(/\.spawn\(\s*'[^']+',\s*'([^']+)'/g)) out.set(m[1]!, p.slice(REPO.length + 1));
      }
    }
  };
  for (const d of ['src', 'test', 'bench']) walk(join(REPO, d));
  return out;
}

describe('the programs podboot runs and their Debian packages', () => {
  it('every package of the table is installed by .ci/run or is part of every Debian system', () => {
    const listed = ciPackages();
    const missing = [...new Set(Object.values(PROGRAM_PACKAGES))].filter((pkg) => {
      if (listed.has(pkg)) return false;
      return !(dpkgField(pkg, 'Essential') === 'yes' || dpkgField(pkg, 'Priority') === 'required');
    });
    expect(missing).toEqual([]);
  });

  it('every program of the table is installed, from the package the table names (or one it depends on)', () => {
    const wrong: string[] = [];
    for (const [program, pkg] of Object.entries(PROGRAM_PACKAGES)) {
      const path = which(program);
      if (!path) {
        wrong.push(programNotFound(program));
        continue;
      }
      const deps = dpkgField(pkg, 'Depends') + ',' + dpkgField(pkg, 'Pre-Depends');
      const fits = (by: string | undefined) => by === pkg || (!!by && new RegExp(`(^|[,|]\\s*)${by.replace(/[.+]/g, '\\$&')}([\\s:(,]|$)`).test(deps));
      const owners = [owner(path), owner(realpathSync(path))];
      if (!owners.some(fits)) wrong.push(`${program}: ${path} is from ${owners.filter(Boolean).join(' / ') || 'no package'}, the table says ${pkg}`);
    }
    expect(wrong).toEqual([]);
  });

  it('every program spawned by name in src/, test/ and bench/ is in the table', () => {
    const unknown = [...spawnedPrograms()].filter(([p]) => !p.includes('/') && !(p in PROGRAM_PACKAGES)).map(([p, file]) => `${p} (${file})`);
    expect(unknown).toEqual([]);
  });

  it('a program that is not installed is named with its package', () => {
    expect(programNotFound('/usr/sbin/dhcrelay')).toBe('dhcrelay: not found (Debian package isc-dhcp-relay: apt-get install -y isc-dhcp-relay)');
    const absent = `podboot-no-such-program-${process.pid}`;
    expect(() => runProgram(absent, [])).toThrow(`${absent}: not found`);
    expect(() => runProgram('sh', ['-c', 'echo oops >&2; exit 3'])).toThrow(/sh -c .* failed: oops/);
  });
});
