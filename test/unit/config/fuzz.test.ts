// Mutated pod files: the loader never throws, and it either returns a pod or
// says what is wrong at a position inside the file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { prng } from '../../helpers/prng.js';
import { FIXTURES } from './fixtures.js';

const SEEDS = [1, 2, 3];
const MUTATIONS_PER_SEED = 700;
const PIECES = [' ', '\n', ':', '-', '[', ']', '{', '}', ',', '"', "'", '&a', '*a', '!!int ', '#', '\t', '0', '.', '/', '300', 'x'];

function mutate(text: string, rnd: ReturnType<typeof prng>): string {
  const lines = text.split('\n');
  switch (rnd.int(4)) {
    case 0: {
      const at = rnd.int(text.length);
      return text.slice(0, at) + text.slice(at + 1 + rnd.int(4));
    }
    case 1: {
      const at = rnd.int(text.length);
      return text.slice(0, at) + PIECES[rnd.int(PIECES.length)] + text.slice(at);
    }
    case 2: {
      const i = rnd.int(lines.length);
      lines.splice(rnd.int(lines.length), 0, lines[i]!);
      return lines.join('\n');
    }
    default: {
      lines.splice(rnd.int(lines.length), 1);
      return lines.join('\n');
    }
  }
}

describe('pod file fuzzing', () => {
  it.each(SEEDS)('seed %i: never throws; a pod or located problems', (seed) => {
    const base = readFileSync(join(FIXTURES, 'valid/full.yaml'), 'utf8');
    const rnd = prng(seed);
    let refused = 0;
    for (let i = 0; i < MUTATIONS_PER_SEED; i++) {
      let text = base;
      for (let k = 1 + rnd.int(3); k > 0; k--) text = mutate(text, rnd);
      const r = loadPodText(text, 'f.yaml');
      const lineCount = text.split('\n').length;
      if (r.pod) {
        expect(r.problems).toEqual([]);
        continue;
      }
      refused++;
      expect(r.problems.length).toBeGreaterThan(0);
      for (const p of r.problems) {
        expect(p.line).toBeGreaterThanOrEqual(1);
        expect(p.line).toBeLessThanOrEqual(lineCount);
        expect(p.col).toBeGreaterThanOrEqual(1);
        expect(p.message.length).toBeGreaterThan(0);
      }
    }
    // Most single edits to a dense file break something; if none did, mutation is not working.
    expect(refused).toBeGreaterThan(MUTATIONS_PER_SEED / 4);
  });
});
