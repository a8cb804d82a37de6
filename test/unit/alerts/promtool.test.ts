// The shipped rules file as Prometheus' own tool sees it (Debian's
// `prometheus` package ships promtool): valid rules, and its test vectors
// pass. A copy whose vectors expect a different firing time must fail, so
// this test would notice a promtool that checks nothing.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultRulesFile } from '../../../src/alerts/rules.js';
import { runProgram } from '../../../src/host/programs.js';

const RULES = defaultRulesFile();
const VECTORS = join(dirname(RULES), 'podboot-alerts.test.yml');
const tmp = mkdtempSync(join(tmpdir(), 'pb-promtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('promtool on the shipped alert rules', () => {
  it('check rules: every rule is valid', () => {
    expect(runProgram('promtool', ['check', 'rules', RULES])).toMatch(/SUCCESS: 8 rules found/);
  });

  it('test rules: the vectors pass', () => {
    expect(runProgram('promtool', ['test', 'rules', VECTORS])).toMatch(/SUCCESS/);
  });

  it('test rules fails on a vector that expects the pod down alert a minute early', () => {
    copyFileSync(RULES, join(tmp, 'podboot-alerts.yml'));
    const text = readFileSync(VECTORS, 'utf8');
    const early = text.replace('      - eval_time: 3m\n        alertname: PodbootPodDown', '      - eval_time: 2m\n        alertname: PodbootPodDown');
    expect(early).not.toBe(text);
    writeFileSync(join(tmp, 'early.test.yml'), early);
    expect(() => runProgram('promtool', ['test', 'rules', join(tmp, 'early.test.yml')])).toThrow(/FAILED/);
  });
});
