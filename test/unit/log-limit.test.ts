// The one rate-limited logger every server uses for what clients can make it
// say (bad packets, refused requests): a burst per kind and window, then
// only counting, then one summary line with the count.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RateLimitedLog } from '../../src/log-limit.js';
import { captureLogger } from '../helpers/logs.js';

afterEach(() => vi.useRealTimers());

describe('RateLimitedLog', () => {
  it('writes a burst per kind, counts the rest and sums them up in one line', () => {
    const { log, lines } = captureLogger();
    let now = 1_000;
    const l = new RateLimitedLog(log, 10_000, () => now, { burst: 3, timers: false });
    const written = Array.from({ length: 1000 }, (_, i) => l.warn('refused:403', { i }, 'http request refused')).filter(Boolean).length;
    expect(written).toBe(3);
    expect(l.warn('refused:404', {}, 'other kind')).toBe(true);
    expect(l.suppressed('refused:403')).toBe(997);
    expect(lines.map((x) => x.msg)).toEqual(['http request refused', 'http request refused', 'http request refused', 'other kind']);
    expect(lines[0]).toMatchObject({ level: 'warn', kind: 'refused:403', i: 0, suppressed: 0 });

    // The next window: the summary of the last one comes first.
    now += 10_000;
    expect(l.warn('refused:403', { i: 1000 }, 'http request refused')).toBe(true);
    expect(lines.slice(4).map((x) => [x.msg, x.suppressed])).toEqual([
      ['suppressed 997 similar lines: http request refused', 997],
      ['http request refused', 0],
    ]);
    expect(lines[4]).toMatchObject({ level: 'warn', kind: 'refused:403', intervalMs: 10_000 });
  });

  it('flush writes the summaries still owed, once', () => {
    const { log, lines } = captureLogger();
    const l = new RateLimitedLog(log, 10_000, () => 0, { timers: false });
    for (let i = 0; i < 5; i++) l.error('handler-failed', {}, 'boom');
    l.warn('quiet', {}, 'once');
    l.flush();
    l.flush();
    expect(lines.map((x) => `${x.level} ${x.msg}`)).toEqual(['error boom', 'warn once', 'error suppressed 4 similar lines: boom']);
  });

  it('writes the summary when the window ends, without waiting for another line of its kind', () => {
    vi.useFakeTimers({ now: 0 });
    const { log, lines } = captureLogger();
    const l = new RateLimitedLog(log, 1_000, Date.now, { burst: 2 });
    for (let i = 0; i < 50; i++) l.warn('flood', {}, 'bad packet');
    expect(lines).toHaveLength(2);
    vi.advanceTimersByTime(999);
    expect(lines).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ kind: 'flood', suppressed: 48, msg: 'suppressed 48 similar lines: bad packet' });
    // A fresh window after it.
    expect(l.warn('flood', {}, 'bad packet')).toBe(true);
  });

  it('keeps a bounded number of kinds: past the cap new kinds share one window', () => {
    const { log, lines } = captureLogger();
    const l = new RateLimitedLog(log, 10_000, () => 0, { maxKinds: 4, timers: false });
    for (let i = 0; i < 100; i++) l.warn(`kind-${i}`, {}, 'line');
    // four kinds of their own, then one line for all the others
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatchObject({ kind: 'other' });
    l.flush();
    expect(lines.at(-1)).toMatchObject({ kind: 'other', suppressed: 95 });
  });
});
