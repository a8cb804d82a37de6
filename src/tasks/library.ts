// The task library: the templates shipped with podboot (tasks/ in the
// package) and the operator's own (STATE/central/tasks/), NAME.sh each. An
// operator's template of the same name replaces the shipped one.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import { parseTemplate, type TaskTemplate, TemplateError, TEMPLATE_NAME } from './template.js';

export interface LibraryEntry {
  template?: TaskTemplate;
  name: string;
  file: string;
  source: 'shipped' | 'operator';
  /** why the file is not usable */
  error?: string;
}

export function libraryDirs(stateRoot: string): { dir: string; source: 'shipped' | 'operator' }[] {
  return [
    { dir: join(packageRoot(), 'tasks'), source: 'shipped' },
    { dir: join(stateRoot, 'central', 'tasks'), source: 'operator' },
  ];
}

export function readLibrary(dirs: { dir: string; source: 'shipped' | 'operator' }[]): LibraryEntry[] {
  const byName = new Map<string, LibraryEntry>();
  for (const { dir, source } of dirs) {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.sh'));
    } catch {
      continue;
    }
    for (const f of files.sort()) {
      const name = f.slice(0, -3);
      const file = join(dir, f);
      if (!TEMPLATE_NAME.test(name)) continue;
      try {
        byName.set(name, { name, file, source, template: parseTemplate(name, readFileSync(file, 'utf8')) });
      } catch (err) {
        byName.set(name, { name, file, source, error: err instanceof TemplateError ? err.message : `${file}: ${(err as Error).message}` });
      }
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}
