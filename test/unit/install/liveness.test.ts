// Liveness of the installed OS (src/install/liveness.ts): the transition as a
// table of cases, the figures a heartbeat may carry, and one check pass over a
// store writing each change and its event once.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { checkLiveness, heartbeatMetrics, type LivenessChange, type LivenessInput, livenessOnReport, livenessTransition } from '../../../src/install/liveness.js';
import { MemoryNodeStateStore } from '../../../src/store/memory-store.js';

const T = 1_700_000_000;
const HB = 30;
const at = (sec: number) => new Date(sec * 1000).toISOString();

describe('livenessTransition', () => {
  const base: LivenessInput = { state: 'booted-from-disk', liveness: 'active', lastSeen: T, now: T, heartbeatSeconds: HB, watchingSince: T - 3600 };
  const cases: [string, Partial<LivenessInput>, LivenessChange | undefined][] = [
    ['active, reported just now: nothing changes', {}, undefined],
    ['active, quiet for just under 3 intervals: still active', { now: T + 3 * HB - 1 }, undefined],
    ['active, quiet for 3 intervals: silent, with the last report in the event', { now: T + 3 * HB }, { next: 'silent', event: { kind: 'silent', detail: `last seen ${at(T)}` } }],
    ['silent and still quiet: no second event', { liveness: 'silent', now: T + 10 * HB }, undefined],
    ['silent, then a report: active again, with an event', { liveness: 'silent', lastSeen: T + 10 * HB, now: T + 10 * HB }, { next: 'active', event: { kind: 'active' } }],
    ['silent before the pod restarted, nothing heard since: stays silent', { liveness: 'silent', lastSeen: T - 3600, watchingSince: T, now: T + 5 }, undefined],
    ['active before the pod was down for an hour: silence counted from the restart', { lastSeen: T - 3600, watchingSince: T, now: T + 3 * HB - 1 }, undefined],
    ['… and silent 3 intervals after the restart', { lastSeen: T - 3600, watchingSince: T, now: T + 3 * HB }, { next: 'silent', event: { kind: 'silent', detail: `last seen ${at(T - 3600)}` } }],
    ['booted-from-disk, never watched, reported recently: active without an event', { liveness: undefined }, { next: 'active' }],
    [
      'booted-from-disk, never watched nor seen: silent 3 intervals after the pod started watching',
      { liveness: undefined, lastSeen: undefined, watchingSince: T, now: T + 3 * HB },
      { next: 'silent', event: { kind: 'silent', detail: 'never seen' } },
    ],
    ['a heartbeat interval of 1 s: silent after 3 s', { heartbeatSeconds: 1, now: T + 3 }, { next: 'silent', event: { kind: 'silent', detail: `last seen ${at(T)}` } }],
    ['reinstalled (no longer booted-from-disk): unwatched, without an event', { state: 'discovered', liveness: 'silent' }, { next: undefined }],
    ['installing, never watched: nothing', { state: 'installing', liveness: undefined, lastSeen: undefined, now: T + 10 * HB }, undefined],
  ];
  it.each(cases)('%s', (_what, over, want) => {
    expect(livenessTransition({ ...base, ...over })).toEqual(want);
  });

  it('a report from the installed OS is heard at once, whatever the interval', () => {
    expect(livenessOnReport('silent', T)).toEqual({ next: 'active', event: { kind: 'active' } });
    expect(livenessOnReport(undefined, T)).toEqual({ next: 'active' });
    expect(livenessOnReport('active', T)).toBeUndefined();
  });
});

describe('heartbeatMetrics', () => {
  it('keeps known figures that are finite numbers within bounds; drops the rest', () => {
    expect(
      heartbeatMetrics({
        state: 'heartbeat',
        uptime: 12345.9,
        load1: 0.52,
        load5: '0.4',
        load15: -1,
        memTotal: 2 ** 31,
        memAvailable: 2 ** 60,
        diskSize: Number.NaN,
        diskUsed: 1e9,
        extra: 5,
      }),
    ).toEqual({ uptime: 12345, load1: 0.52, memTotal: 2 ** 31, diskUsed: 1e9 });
    expect(heartbeatMetrics({ load1: 1e7, uptime: 1e11, memTotal: null, diskSize: [1] })).toEqual({});
    expect(heartbeatMetrics({ uptime: 0, load1: 0 })).toEqual({ uptime: 0, load1: 0 });
    // As the pod parses a body: a __proto__ key is only a key.
    expect(heartbeatMetrics(JSON.parse('{"__proto__":{"uptime":1},"load1":1}') as Record<string, unknown>)).toEqual({ load1: 1 });
  });
});

describe('checkLiveness', () => {
  it('writes each change once, with its event: silent once however many checks, then active on a report', () => {
    const nodes = new MemoryNodeStateStore();
    const log = pino({ level: 'silent' });
    const mac = '52:54:00:00:1a:01';
    nodes.changeInstallState({ mac, state: 'booted-from-disk', time: T });
    nodes.changeInstallState({ mac: '52:54:00:00:1a:02', state: 'installing', time: T });
    const w = { nodes, log, heartbeatSeconds: 1, watchingSince: T };
    expect(checkLiveness(w, T + 1)).toBe(1);
    expect(nodes.node(mac)?.liveness).toBe('active');
    expect(checkLiveness(w, T + 2)).toBe(0);
    expect(checkLiveness(w, T + 3)).toBe(1);
    for (let s = 4; s < 20; s++) expect(checkLiveness(w, T + s)).toBe(0);
    expect(nodes.node(mac)?.liveness).toBe('silent');
    nodes.recordHeartbeat(mac, { time: T + 20, metrics: {} });
    expect(checkLiveness(w, T + 20)).toBe(1);
    expect(nodes.node(mac)?.liveness).toBe('active');
    expect(nodes.node('52:54:00:00:1a:02')?.liveness).toBeUndefined();
    expect(nodes.events(mac).map((e) => [e.kind, e.detail])).toEqual([
      ['active', undefined],
      ['silent', `last seen ${at(T)}`],
      ['booted-from-disk', undefined],
    ]);
  });
});
