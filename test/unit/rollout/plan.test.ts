import { describe, expect, it } from 'vitest';
import { canaryCount, type Op, type Rollout, type RolloutServer, stableOrder, step } from '../../../src/rollout/plan.js';
import type { NodeRecord } from '../../../src/store/types.js';

const MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'];

function rollout(over: Partial<Rollout> = {}): Rollout {
  return {
    id: 'r1',
    target: 'lab@2',
    previous: 'lab@1',
    selector: '',
    canary: '1',
    batch: 1,
    maxFailures: 1,
    serverTimeout: 600,
    phase: 'canary',
    createdAt: 0,
    createdBy: 't',
    updatedAt: 0,
    ...over,
  };
}

function rows(over: Partial<RolloutServer>[] = []): RolloutServer[] {
  return MACS.map((mac, i) => ({ rollout: 'r1', pass: 'forward', mac, ord: i, canary: i === 0, image: 'lab@2', state: 'pending', ...over[i] }));
}

const node = (state: string, image: string, updatedAt = 100, reason?: string): NodeRecord => ({ mac: '', state, image, attempt: 1, updatedAt, ...(reason ? { reason } : {}) });
const onV1 = () => node('booted-from-disk', 'lab@1', 10);
const servers = (ops: Op[]) => ops.filter((o) => o.kind === 'server').map((o) => `${o.mac.slice(-1)}:${o.state}`);
const phases = (ops: Op[]) => ops.filter((o) => o.kind === 'phase').map((o) => o.phase);

describe('rollout steps', () => {
  it('canaries first: only the canary is asked, then nothing until it is done', () => {
    const ops = step(rollout(), rows(), onV1, 100);
    expect(servers(ops)).toEqual(['1:requested']);
    expect(phases(ops)).toEqual([]);
    // in flight: the installed OS has not come back yet
    expect(step(rollout(), rows([{ state: 'installing', startedAt: 100, batch: 1 }]), (m) => (m === MACS[0] ? node('stage1', 'lab@1', 101) : onV1()), 150)).toEqual([]);
  });

  it('a canary booted from disk with the target: done, and the rollout waits for a promote', () => {
    const r = rows([{ state: 'installing', startedAt: 100, batch: 1 }]);
    const ops = step(rollout(), r, (m) => (m === MACS[0] ? node('booted-from-disk', 'lab@2', 180) : onV1()), 200);
    expect(servers(ops)).toEqual(['1:done']);
    expect(phases(ops)).toEqual(['canary-passed']);
    expect(ops).toContainEqual({ kind: 'event', mac: '', event: 'rollout-canary-passed', detail: expect.stringContaining('promote') });
  });

  it('booted from disk with another image is not done; an old boot (before the request) is not either', () => {
    const r = rows([{ state: 'installing', startedAt: 100, batch: 1 }]);
    expect(step(rollout(), r, () => node('booted-from-disk', 'lab@1', 180), 200)).toEqual([]);
    expect(step(rollout(), r, () => node('booted-from-disk', 'lab@2', 50), 200)).toEqual([]);
  });

  it('promoting: one batch at a time, the next only when the last is done', () => {
    const promoted = rollout({ phase: 'promoting' });
    const r = rows([{ state: 'done', batch: 1 }]);
    expect(servers(step(promoted, r, onV1, 300))).toEqual(['2:requested']);
    const second = rows([
      { state: 'done', batch: 1 },
      { state: 'installing', startedAt: 300, batch: 2 },
    ]);
    expect(servers(step(promoted, second, onV1, 310))).toEqual([]);
    const third = rows([
      { state: 'done', batch: 1 },
      { state: 'done', batch: 2 },
    ]);
    expect(step(promoted, third, onV1, 400)).toContainEqual({ kind: 'server', pass: 'forward', mac: MACS[2], state: 'requested', batch: 3, startedAt: 400 });
    const all = rows([{ state: 'done' }, { state: 'done' }, { state: 'done' }]);
    expect(phases(step(promoted, all, onV1, 500))).toEqual(['completed']);
  });

  it('a batch of 2 asks two at once', () => {
    expect(servers(step(rollout({ phase: 'promoting', batch: 2 }), rows([{ state: 'done', batch: 1 }]), onV1, 300))).toEqual(['2:requested', '3:requested']);
  });

  it('a failed canary pauses the rollout by itself and starts nothing more', () => {
    const r = rows([{ state: 'installing', startedAt: 100, batch: 1 }]);
    const ops = step(rollout(), r, (m) => (m === MACS[0] ? node('failed', 'lab@1', 150, 'install') : onV1()), 200);
    expect(servers(ops)).toEqual(['1:failed']);
    expect(phases(ops)).toEqual(['paused']);
    expect(ops).toContainEqual(expect.objectContaining({ kind: 'phase', phase: 'paused', pausedFrom: 'canary', reason: expect.stringContaining('--max-failures 1') }));
    expect(ops).toContainEqual(expect.objectContaining({ kind: 'event', event: 'rollout-paused' }));
  });

  it('a server that never takes the reboot request fails after the server timeout', () => {
    const r = rows([{ state: 'requested', startedAt: 100, batch: 1 }]);
    expect(step(rollout(), r, onV1, 700)).toEqual([]);
    const ops = step(rollout(), r, onV1, 701);
    expect(ops).toContainEqual(expect.objectContaining({ kind: 'server', state: 'failed', detail: 'did not take the reboot request within 600 s' }));
  });

  it('skips a server that is not on its disk, and one already on the target is done without a reinstall', () => {
    const promoted = rollout({ phase: 'promoting', batch: 3, canary: '0' });
    const ops = step(promoted, rows([{ canary: false }]), (m) => (m === MACS[0] ? node('stage1', 'lab@1') : m === MACS[1] ? node('booted-from-disk', 'lab@2') : onV1()), 10);
    expect(servers(ops)).toEqual(['1:skipped', '2:done', '3:requested']);
  });

  it('rolling back: a failed server is asked back too; paused and finished rollouts start nothing', () => {
    const back = rows().map((r) => ({ ...r, pass: 'back' as const, image: 'lab@1' }));
    expect(servers(step(rollout({ phase: 'rolling-back' }), back, (m) => (m === MACS[0] ? node('failed', 'lab@1') : onV1()), 10))).toEqual(['1:requested']);
    expect(step(rollout({ phase: 'paused', pausedFrom: 'promoting' }), rows(), onV1, 10)).toEqual([]);
    expect(step(rollout({ phase: 'completed' }), rows(), onV1, 10)).toEqual([]);
  });
});

describe('canaries', () => {
  it('a count or a share, rounded up, capped, refused when unreadable', () => {
    expect(canaryCount('1', 3)).toBe(1);
    expect(canaryCount('10%', 3)).toBe(1);
    expect(canaryCount('50%', 3)).toBe(2);
    expect(canaryCount('0%', 3)).toBe(0);
    expect(canaryCount('9', 3)).toBe(3);
    expect(() => canaryCount('ten', 3)).toThrow(/a count \(1\) or a share/);
    expect(() => canaryCount('150%', 3)).toThrow(/at most 100%/);
  });

  it('are picked stably: the same rollout id gives the same order, another id may not', () => {
    const macs = Array.from({ length: 20 }, (_, i) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`);
    expect(stableOrder('abc', macs)).toEqual(stableOrder('abc', [...macs].reverse()));
    expect(stableOrder('abc', macs)).not.toEqual(stableOrder('abd', macs));
    expect(new Set(stableOrder('abc', macs))).toEqual(new Set(macs));
  });
});
