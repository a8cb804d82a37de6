import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/types.js';
import { smallPod } from './fixtures.js';

const pod = smallPod;

describe('spec.stage2', () => {
  it('keeps a version such as 1.0 as written', () => {
    expect(loadPodText(pod('  stage2: { image: lab-os, version: 1.0 }\n'), 'p.yaml').pod?.stage2).toEqual({ image: 'lab-os', version: '1.0' });
    expect(loadPodText(pod(''), 'p.yaml').pod?.stage2).toBeUndefined();
  });

  it('names a bad image name, a missing version and a misspelt field', () => {
    const r = loadPodText(pod('  stage2: { image: "lab os", versoin: 2 }\n'), 'p.yaml');
    expect(r.problems.map(formatProblem)).toEqual([
      'p.yaml:8:11: spec.stage2.version: required field is missing',
      'p.yaml:8:20: spec.stage2.image: "lab os" is not a valid image name',
      'p.yaml:8:30: spec.stage2.versoin: unknown field (did you mean version?)',
    ]);
  });
});
