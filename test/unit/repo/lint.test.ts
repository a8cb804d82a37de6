// The formatter and linter (Biome, biome.json) run with the suite, so CI
// fails on code that is not formatted or breaks a lint rule; `npm run format`
// fixes what can be fixed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..', '..');

it('biome ci: every source file formatted and free of lint errors', () => {
  const r = spawnSync(join(REPO, 'node_modules', '.bin', 'biome'), ['ci', '.', '--colors=off'], { cwd: REPO, encoding: 'utf8' });
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
});
