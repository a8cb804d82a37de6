// packaging/oci/Containerfile, read without a container runtime: its stages,
// that every file it copies exists (in the repository, or made by the build
// stage), that the runtime stage installs exactly the Debian packages of the
// programs podboot runs at run time, and that what it starts is the built CLI.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROGRAM_PACKAGES } from '../../../src/host/programs.js';
import { REPO, reachablePrograms } from './runtime-programs.js';

const FILE = join(REPO, 'packaging/oci/Containerfile');

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  image: string;
  name?: string;
  steps: Instruction[];
}

function parseContainerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    line = line.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, rest] = line.match(/^(\S+)\s+(.*)$/) ?? [];
    if (!op || rest === undefined) throw new Error(`line ${start + 1}: ${line}`);
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [, image, name] = rest.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i) ?? [];
      stages.push({ image: image!, name, steps: [] });
    } else if (upper === 'ARG' && !stages.length) {
      const [k, v] = rest.split('=');
      args[k!] = v ?? '';
    } else stages.at(-1)!.steps.push({ op: upper, args: rest, line: start + 1 });
  }
  return { args, stages };
}

const { args, stages } = parseContainerfile(readFileSync(FILE, 'utf8'));
const build = stages.find((s) => s.name === 'build')!;
const runtime = stages.at(-1)!;

/** COPY [--from=X] SRC… DEST */
function copies(stage: Stage): { from?: string; sources: string[]; dest: string; line: number }[] {
  return stage.steps
    .filter((s) => s.op === 'COPY')
    .map((s) => {
      const words = s.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const plain = words.filter((w) => !w.startsWith('--'));
      return { from, sources: plain.slice(0, -1), dest: plain.at(-1)!, line: s.line };
    });
}

/** The programs the modules `serve` and `pod run` import can run, and which of those are no run-time need. */
const NOT_AT_RUN_TIME: Record<string, string> = {
  // src/vmedia/iso-build.ts is imported for the ISO's file names; building the ISO is `podboot images build-vmedia-iso`
  'grub-mkrescue': 'builder',
  'dpkg-query': 'builder',
  // src/images/host-bins.ts comes in with installStage1; ldd is for building stage1 (`podboot images build-stage1`)
  ldd: 'builder',
};
/** Run by name inside the shell scripts podboot passes to sh -c (src/pod-vm/pod-user.ts: the code mount). */
const IN_SCRIPTS = ['mount'];

function runtimePackages(): Set<string> {
  const programs = [...reachablePrograms().keys(), ...IN_SCRIPTS].map((p) => p.slice(p.lastIndexOf('/') + 1)).filter((p) => !(p in NOT_AT_RUN_TIME));
  const pkgs = new Set<string>();
  for (const p of programs) {
    const pkg = PROGRAM_PACKAGES[p];
    if (!pkg) throw new Error(`${p}: run by podboot at run time but not in src/host/programs.ts`);
    pkgs.add(pkg);
  }
  return pkgs;
}

describe('packaging/oci/Containerfile', () => {
  it('builds in a Debian 12 Node 20 stage and runs from the same Debian and Node, slim', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    expect(args.NODE_IMAGE).toMatch(/^docker\.io\/library\/node:20-bookworm$/);
    expect(build.image).toBe('${NODE_IMAGE}');
    expect(runtime.image).toBe('${NODE_IMAGE}-slim');
    const run = build.steps.filter((s) => s.op === 'RUN').map((s) => s.args);
    expect(run.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(run.some((r) => /\btsc -p tsconfig\.json\b/.test(r) && /npm prune --omit=dev/.test(r))).toBe(true);
  });

  it('copies only files that exist: from the repository, or made in the build stage', () => {
    const workdir = build.steps.find((s) => s.op === 'WORKDIR')!.args;
    const intoBuild = copies(build).flatMap((c) => c.sources);
    // what the build stage's RUN steps make in its WORKDIR
    const made = ['node_modules', 'dist'];
    for (const c of [...copies(build), ...copies(runtime)]) {
      for (const src of c.sources) {
        if (c.from === undefined) expect(existsSync(join(REPO, src)), `line ${c.line}: ${src}`).toBe(true);
        else {
          expect(c.from, `line ${c.line}`).toBe('build');
          expect(src.startsWith(`${workdir}/`), `line ${c.line}: ${src}`).toBe(true);
          const top = src.slice(workdir.length + 1).split('/')[0]!;
          expect([...intoBuild, ...made], `line ${c.line}: ${src}`).toContain(top);
        }
      }
    }
    // and the context filter lets each of them through
    const ignore = readFileSync(join(REPO, 'packaging/oci/Containerfile.dockerignore'), 'utf8');
    for (const c of [...copies(build), ...copies(runtime)].filter((x) => x.from === undefined))
      for (const src of c.sources)
        expect(
          ignore.split('\n').some((l) => l === `!${src}`),
          src,
        ).toBe(true);
  });

  it('ships every directory podboot reads from its package root at run time', () => {
    const shipped = copies(runtime).map((c) => c.dest.replace(/^\.\//, ''));
    // src/config/load.ts, src/alerts/rules.ts, src/pod/instance.ts, src/tasks/library.ts, src/api/ui.ts
    for (const dir of ['examples', 'deploy', 'kickstart', 'tasks', 'ui', 'dist/src', 'node_modules', 'package.json']) expect(shipped).toContain(dir);
    const entry = runtime.steps.find((s) => s.op === 'ENTRYPOINT')!.args;
    expect(JSON.parse(entry)).toEqual(['node', '/opt/podboot/dist/src/cli/main.js']);
    expect(runtime.steps.find((s) => s.op === 'WORKDIR')!.args).toBe('/opt/podboot');
  });

  it('installs exactly the Debian packages of the programs podboot runs at run time', () => {
    const installs = runtime.steps
      .filter((s) => s.op === 'RUN')
      .flatMap((s) => [...s.args.matchAll(/apt-get install -y --no-install-recommends ([^&]+)/g)].map((m) => m[1]!.trim().split(/\s+/)))
      .flat();
    expect(installs.length).toBeGreaterThan(0);
    expect(new Set(installs)).toEqual(runtimePackages());
    expect(build.steps.some((s) => /apt-get/.test(s.args))).toBe(false);
  });

  it('knows every program the run-time modules start (a new one must be placed: run time or builder)', () => {
    const found = [...reachablePrograms().keys()].map((p) => p.slice(p.lastIndexOf('/') + 1));
    expect(found.sort()).toEqual(['grub-mkrescue', 'dpkg-query', 'ldd', 'ip', 'setpriv', 'unshare', 'sh', 'mount', 'mkfs.vfat', 'mcopy'].sort());
  });
});
