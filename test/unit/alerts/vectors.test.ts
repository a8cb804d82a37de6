// podboot's own evaluator against the promtool test vectors shipped beside
// the rules: the same alerts, with the same labels and annotations, firing
// at the same evaluation times as promtool expects (promtool itself checks
// the same file in test/unit/alerts/promtool.test.ts).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultRulesFile } from '../../../src/alerts/rules.js';
import { expandValues, replayTestFile } from '../../helpers/promtool-vectors.js';

const VECTORS = join(defaultRulesFile(), '..', 'podboot-alerts.test.yml');

describe('promtool vectors through podboot evaluator', () => {
  it('expands promtool notation', () => {
    expect(expandValues('1+2x3 _ _x2 stale 5 7-1x2 1e3')).toEqual([1, 3, 5, 7, undefined, undefined, undefined, 'stale', 5, 7, 6, 5, 1000]);
    expect(expandValues('0.5x2')).toEqual([0.5, 0.5, 0.5]);
    expect(() => expandValues('1+x')).toThrow(/notation/);
  });

  it('fires the alerts promtool expects, at the same eval times', () => {
    const checks = replayTestFile(VECTORS);
    // Every alert of the file is exercised, firing at least once.
    const fired = new Set(checks.filter((c) => c.expected.length > 0).map((c) => c.alertname));
    expect([...fired].sort()).toEqual([
      'PodbootCachedImageUnrepairable',
      'PodbootCorruptImage',
      'PodbootDhcpPoolNearlyFull',
      'PodbootInstallFailed',
      'PodbootPodCrashLoop',
      'PodbootPodDown',
      'PodbootServerSilent',
      'PodbootTlsCertificateExpiring',
    ]);
    for (const c of checks) expect(c.got, `${c.alertname} at ${c.evalTime} (test ${c.test + 1})`).toEqual(c.expected);
  });
});
