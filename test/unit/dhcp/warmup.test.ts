import { describe, expect, it } from 'vitest';
import { warmUpDhcp } from '../../../src/dhcp/warmup.js';
import { captureLogger } from '../../helpers/logs.js';
import { testPod } from '../../helpers/pods.js';

describe('DHCP warm-up', () => {
  it('runs for pods that ignore unknown servers and for tiny pools, and logs nothing', () => {
    const { log, lines } = captureLogger();
    expect(() => warmUpDhcp(testPod({ unknownNodes: 'ignore' }), log, 300)).not.toThrow();
    expect(() => warmUpDhcp(testPod(), log, 300)).not.toThrow();
    expect(lines).toEqual([]);
  });
});
