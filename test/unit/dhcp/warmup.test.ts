import { describe, expect, it } from 'vitest';
import { warmUpDhcp } from '../../../src/dhcp/warmup.js';
import { captureLogger } from '../../helpers/logs.js';
import { testPod } from '../../helpers/pods.js';

describe('DHCP warm-up', () => {
  it('runs every exchange for pods that ignore unknown servers and for tiny pools, and logs nothing', async () => {
    const { log, lines } = captureLogger();
    expect(await warmUpDhcp(testPod({ unknownNodes: 'ignore' }), log, { exchanges: 300 })).toBe(300);
    expect(await warmUpDhcp(testPod(), log, { exchanges: 300 })).toBe(300);
    expect(lines).toEqual([]);
  });

  it('leaves the event loop to other work between slices', async () => {
    const { log } = captureLogger();
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    try {
      await warmUpDhcp(testPod(), log, { exchanges: 400, slice: 20 });
    } finally {
      clearInterval(tick);
    }
    // 20 slices: a timer gets to run between them, not only after the last one.
    expect(turns).toBeGreaterThan(5);
  });

  it('stops when aborted, having run fewer exchanges', async () => {
    const { log } = captureLogger();
    const stop = new AbortController();
    const run = warmUpDhcp(testPod(), log, { exchanges: 100_000, slice: 10, signal: stop.signal });
    await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    const done = await run;
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(100_000);
    expect(done % 10).toBe(0);
  });
});
