// Paths of the config fixtures and a way to read problems as operators see them.
import { fileURLToPath } from 'node:url';
import { formatProblem, type ConfigProblem } from '../../../src/config/types.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));

/** Problem lines with the fixture folder left out of file names: `bad/pools.yaml:11:13: …`. */
export function lines(problems: ConfigProblem[]): string[] {
  return problems.map((p) => formatProblem(p).split(FIXTURES).join(''));
}
