// The programs `podboot serve` and the pod instances it starts can run: every
// module reachable by import from the two commands, searched for the literal
// program of a spawn/execFile/runProgram call. Reachable is more than called
// (a module is imported for a constant while its builder functions belong to
// other commands), so the tests name each such program with the reason it is
// not a run-time one.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export const REPO = resolve(new URL('../../../', import.meta.url).pathname);

const ENTRIES = ['src/cli/commands/serve.ts', 'src/cli/commands/pod-run.ts'];

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
// The program as the first literal argument of node's spawn and execFile families, runProgram,
// a promisified run, or a `command:` field of a wrapped command.
const PROGRAM_RE = /\b(?:spawn|spawnSync|execFile|execFileSync|runProgram|run)\(\s*['"]([^'"$`\s]+)['"]|\bcommand:\s*['"]([^'"]+)['"]/g;

/** Every module under src/ that the two commands import, directly or not (paths relative to the repository). */
export function reachableModules(): string[] {
  const seen = new Set<string>();
  const todo = ENTRIES.map((e) => join(REPO, e));
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
      if (existsSync(target)) todo.push(target);
    }
  }
  return [...seen].map((f) => relative(REPO, f)).sort();
}

/** program → the reachable modules that run it by name. */
export function reachablePrograms(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const mod of reachableModules()) {
    for (const m of readFileSync(join(REPO, mod), 'utf8').matchAll(PROGRAM_RE)) {
      const program = (m[1] ?? m[2])!;
      out.set(program, [...(out.get(program) ?? []), mod]);
    }
  }
  return out;
}
