// The pod instance's lifecycle (src/pod-vm/lifecycle.ts) as a table: every
// state against every event, what it leads to or that it is refused.
import { describe, expect, it } from 'vitest';
import { DISPLAY_ONLY_STATES, LIFECYCLE_STATES, next, type LifecycleEvent, type LifecycleState } from '../../../src/pod-vm/lifecycle.js';
import { INSTANCE_STATES } from '../../../src/metrics/supervisor-metrics.js';

const EVENTS: Record<string, LifecycleEvent> = {
  start: { type: 'start' },
  spawned: { type: 'spawned' },
  ready: { type: 'reported', degraded: false },
  'ready degraded': { type: 'reported', degraded: true },
  end: { type: 'end' },
  'exited stop': { type: 'exited', after: 'stop' },
  'exited restart': { type: 'exited', after: 'restart' },
  'exited backoff': { type: 'exited', after: 'backoff', crashLoop: false },
  'exited backoff, loop': { type: 'exited', after: 'backoff', crashLoop: true },
  'start-failed': { type: 'start-failed', crashLoop: false },
  'start-failed, loop': { type: 'start-failed', crashLoop: true },
  cancel: { type: 'cancel' },
};

// state → event → next state ('-' refused)
const TABLE: Record<LifecycleState, Record<keyof typeof EVENTS, LifecycleState | '-'>> = {
  stopped: {
    start: 'starting',
    spawned: '-',
    ready: '-',
    'ready degraded': '-',
    end: '-',
    'exited stop': '-',
    'exited restart': '-',
    'exited backoff': '-',
    'exited backoff, loop': '-',
    'start-failed': '-',
    'start-failed, loop': '-',
    cancel: 'stopped',
  },
  starting: {
    start: '-',
    spawned: 'starting',
    ready: 'running',
    'ready degraded': 'degraded',
    end: 'stopping',
    'exited stop': '-',
    'exited restart': '-',
    'exited backoff': 'crashed',
    'exited backoff, loop': 'crash-loop',
    'start-failed': 'crashed',
    'start-failed, loop': 'crash-loop',
    cancel: 'stopped',
  },
  running: {
    start: '-',
    spawned: '-',
    ready: 'running',
    'ready degraded': 'degraded',
    end: 'stopping',
    'exited stop': '-',
    'exited restart': '-',
    'exited backoff': 'crashed',
    'exited backoff, loop': 'crash-loop',
    'start-failed': '-',
    'start-failed, loop': '-',
    cancel: '-',
  },
  degraded: {
    start: '-',
    spawned: '-',
    ready: 'running',
    'ready degraded': 'degraded',
    end: 'stopping',
    'exited stop': '-',
    'exited restart': '-',
    'exited backoff': 'crashed',
    'exited backoff, loop': 'crash-loop',
    'start-failed': '-',
    'start-failed, loop': '-',
    cancel: '-',
  },
  stopping: {
    start: '-',
    spawned: '-',
    ready: 'stopping',
    'ready degraded': 'stopping',
    end: 'stopping',
    'exited stop': 'stopped',
    'exited restart': 'starting',
    'exited backoff': '-',
    'exited backoff, loop': '-',
    'start-failed': '-',
    'start-failed, loop': '-',
    cancel: '-',
  },
  crashed: {
    start: 'starting',
    spawned: '-',
    ready: '-',
    'ready degraded': '-',
    end: '-',
    'exited stop': '-',
    'exited restart': '-',
    'exited backoff': '-',
    'exited backoff, loop': '-',
    'start-failed': '-',
    'start-failed, loop': '-',
    cancel: 'stopped',
  },
  'crash-loop': {
    start: 'starting',
    spawned: '-',
    ready: '-',
    'ready degraded': '-',
    end: '-',
    'exited stop': '-',
    'exited restart': '-',
    'exited backoff': '-',
    'exited backoff, loop': '-',
    'start-failed': '-',
    'start-failed, loop': '-',
    cancel: 'stopped',
  },
};

describe('pod instance lifecycle', () => {
  it('the table covers every state', () => {
    expect(Object.keys(TABLE).sort()).toEqual([...LIFECYCLE_STATES].sort());
  });

  const cases = LIFECYCLE_STATES.flatMap((state) => Object.entries(EVENTS).map(([name, event]) => [state, name, event, TABLE[state][name]!] as const));
  it.each(cases)('%s + %s → %s', (state, _name, event, want) => {
    const t = next(state, event);
    if (want === '-') {
      expect(t.ok).toBe(false);
      if (!t.ok) expect(t.reason).toContain(`while ${state}`);
    } else {
      expect(t).toEqual({ ok: true, next: want });
    }
  });

  it('a whole life: start, ready, degrade, crash, backoff, start again, stop', () => {
    const path: [LifecycleEvent, LifecycleState][] = [
      [{ type: 'start' }, 'starting'],
      [{ type: 'spawned' }, 'starting'],
      [{ type: 'reported', degraded: false }, 'running'],
      [{ type: 'reported', degraded: true }, 'degraded'],
      [{ type: 'exited', after: 'backoff', crashLoop: false }, 'crashed'],
      [{ type: 'start' }, 'starting'],
      [{ type: 'start-failed', crashLoop: true }, 'crash-loop'],
      [{ type: 'start' }, 'starting'],
      [{ type: 'spawned' }, 'starting'],
      [{ type: 'reported', degraded: false }, 'running'],
      [{ type: 'end' }, 'stopping'],
      [{ type: 'exited', after: 'restart' }, 'starting'],
      [{ type: 'spawned' }, 'starting'],
      [{ type: 'end' }, 'stopping'],
      [{ type: 'exited', after: 'stop' }, 'stopped'],
    ];
    let s: LifecycleState = 'stopped';
    for (const [event, want] of path) {
      const t = next(s, event);
      expect(t).toEqual({ ok: true, next: want });
      if (t.ok) s = t.next;
    }
  });

  it('every state the supervisor shows (lifecycle and display-only) has its metric', () => {
    expect([...INSTANCE_STATES].sort()).toEqual([...LIFECYCLE_STATES, ...DISPLAY_ONLY_STATES].sort());
  });
});
