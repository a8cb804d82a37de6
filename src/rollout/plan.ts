// What a rollout does next, as pure functions of its record, its servers'
// rows and the pod's install records: no clock, no database, no sockets
// (the pod's driver, src/rollout/pod-driver.ts, applies what they return).
//
// A rollout moves the servers a selector picked from the pod's active
// release to a target image: first its canaries, stably picked; after an
// operator's promote the rest, at most `batch` servers at a time, the next
// batch only when the last one booted from its disk with the target. When
// failures reach `maxFailures` it pauses by itself and starts nothing more.
// A rollback makes the previous release active again and reinstalls, batch by
// batch, every server the rollout touched.
import { createHash } from 'node:crypto';
import type { NodeRecord } from '../store/types.js';

export const PHASES = ['canary', 'canary-passed', 'promoting', 'completed', 'paused', 'rolling-back', 'rolled-back'] as const;
export type Phase = (typeof PHASES)[number];
/** A rollout in one of these still steers its servers' installs; the others are history. */
export const OPEN_PHASES: ReadonlySet<Phase> = new Set(['canary', 'canary-passed', 'promoting', 'paused', 'rolling-back']);

export type Pass = 'forward' | 'back';
export const SERVER_STATES = ['pending', 'requested', 'installing', 'done', 'failed', 'skipped'] as const;
export type ServerState = (typeof SERVER_STATES)[number];
/** Rows whose server was asked to reinstall: it installs the row's image if it PXE-boots now. */
export const STEERING_STATES: ReadonlySet<ServerState> = new Set(['requested', 'installing', 'done', 'failed']);

export interface Rollout {
  id: string;
  /** name@version */
  target: string;
  /** the release that was active when it started: what a rollback returns to */
  previous?: string;
  selector: string;
  /** as given: `10%` or a count */
  canary: string;
  batch: number;
  maxFailures: number;
  /** seconds a server may take from the reboot request to booted-from-disk */
  serverTimeout: number;
  phase: Phase;
  pausedFrom?: Phase;
  reason?: string;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

export interface RolloutServer {
  rollout: string;
  pass: Pass;
  mac: string;
  /** place in the stable order (hash of rollout id and MAC) */
  ord: number;
  canary: boolean;
  /** name@version this pass installs */
  image: string;
  state: ServerState;
  batch?: number;
  startedAt?: number;
  finishedAt?: number;
  detail?: string;
}

export type Op =
  | { kind: 'server'; pass: Pass; mac: string; state: ServerState; batch?: number; startedAt?: number; finishedAt?: number; detail?: string }
  | { kind: 'phase'; phase: Phase; pausedFrom?: Phase; reason?: string }
  | { kind: 'event'; mac: string; event: string; detail: string };

export class CanaryError extends Error {}

/** `10%` (rounded up, at least one when above 0 %) or a count; capped at `n`. */
export function canaryCount(spec: string, n: number): number {
  const pct = /^(\d{1,3})%$/.exec(spec.trim());
  if (pct) {
    const p = Number(pct[1]);
    if (p > 100) throw new CanaryError(`canary ${spec}: at most 100%`);
    return Math.min(n, p === 0 ? 0 : Math.max(1, Math.ceil((n * p) / 100)));
  }
  if (!/^\d{1,6}$/.test(spec.trim())) throw new CanaryError(`canary ${JSON.stringify(spec)}: a count (1) or a share (10%)`);
  return Math.min(n, Number(spec));
}

/** The servers in their stable order for this rollout: the same id and servers always give the same canaries. */
export function stableOrder(rolloutId: string, macs: readonly string[]): string[] {
  const key = (mac: string) => createHash('sha256').update(`${rolloutId}/${mac}`).digest('hex');
  return [...macs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The pass a rollout in `phase` works on. */
export function passOf(r: Pick<Rollout, 'phase' | 'pausedFrom'>): Pass {
  const phase = r.phase === 'paused' ? r.pausedFrom : r.phase;
  return phase === 'rolling-back' || phase === 'rolled-back' ? 'back' : 'forward';
}

/** Did this server finish the install the row asked for? */
function outcome(row: RolloutServer, node: NodeRecord | undefined): { state: 'done' | 'failed'; detail: string } | undefined {
  if (!node || row.startedAt === undefined || node.updatedAt < row.startedAt) return undefined;
  if (node.state === 'booted-from-disk' && node.image === row.image) return { state: 'done', detail: `booted from disk with ${row.image}` };
  if (node.state === 'failed') return { state: 'failed', detail: `install failed${node.reason ? ` (${node.reason})` : ''}` };
  return undefined;
}

/**
 * One step: servers in flight that finished or timed out, then a pause, a
 * new batch or the next phase. Returns the changes; applies none.
 */
export function step(r: Rollout, rows: readonly RolloutServer[], nodeOf: (mac: string) => NodeRecord | undefined, now: number): Op[] {
  const ops: Op[] = [];
  const live = rows.map((row) => ({ ...row }));
  const set = (row: RolloutServer, change: Omit<Extract<Op, { kind: 'server' }>, 'kind' | 'pass' | 'mac'>) => {
    Object.assign(row, change);
    ops.push({ kind: 'server', pass: row.pass, mac: row.mac, ...change });
  };

  for (const row of live) {
    if (row.state !== 'requested' && row.state !== 'installing') continue;
    const got = row.state === 'installing' ? outcome(row, nodeOf(row.mac)) : undefined;
    if (got) {
      set(row, { state: got.state, finishedAt: now, detail: got.detail });
      ops.push({ kind: 'event', mac: row.mac, event: got.state === 'done' ? 'rollout-server-done' : 'rollout-server-failed', detail: `rollout ${r.id} (${row.pass}): ${got.detail}` });
    } else if (row.startedAt !== undefined && now - row.startedAt > r.serverTimeout) {
      const detail = row.state === 'requested' ? `did not take the reboot request within ${r.serverTimeout} s` : `not booted from disk with ${row.image} within ${r.serverTimeout} s`;
      set(row, { state: 'failed', finishedAt: now, detail });
      ops.push({ kind: 'event', mac: row.mac, event: 'rollout-server-failed', detail: `rollout ${r.id} (${row.pass}): ${detail}` });
    }
  }

  if (!OPEN_PHASES.has(r.phase) || r.phase === 'paused' || r.phase === 'canary-passed') return ops;
  const pass = passOf(r);
  const mine = live.filter((row) => row.pass === pass);
  const failures = mine.filter((row) => row.state === 'failed').length;
  if (pass === 'forward' && failures >= r.maxFailures) {
    const reason = `${failures} server(s) failed, --max-failures ${r.maxFailures}: paused by itself, nothing more is started`;
    ops.push({ kind: 'phase', phase: 'paused', pausedFrom: r.phase, reason });
    ops.push({ kind: 'event', mac: '', event: 'rollout-paused', detail: `rollout ${r.id} to ${r.target}: ${reason}` });
    return ops;
  }
  if (mine.some((row) => row.state === 'requested' || row.state === 'installing')) return ops;

  const waiting = mine.filter((row) => row.state === 'pending' && (r.phase !== 'canary' || row.canary)).sort((a, b) => a.ord - b.ord);
  if (!waiting.length && r.phase === 'canary' && failures) {
    const reason = `${failures} canary server(s) failed: paused, not passed`;
    ops.push({ kind: 'phase', phase: 'paused', pausedFrom: r.phase, reason });
    ops.push({ kind: 'event', mac: '', event: 'rollout-paused', detail: `rollout ${r.id} to ${r.target}: ${reason}` });
    return ops;
  }
  if (!waiting.length) {
    const next: Phase = r.phase === 'canary' ? 'canary-passed' : r.phase === 'promoting' ? 'completed' : 'rolled-back';
    const detail =
      next === 'canary-passed'
        ? `rollout ${r.id}: the canaries booted with ${r.target}; promote to go on`
        : next === 'completed'
          ? `rollout ${r.id}: every selected server on ${r.target}`
          : `rollout ${r.id}: rolled back to ${r.previous ?? 'the previous release'}`;
    ops.push({ kind: 'phase', phase: next });
    ops.push({ kind: 'event', mac: '', event: `rollout-${next}`, detail });
    return ops;
  }
  const batch = Math.max(0, ...mine.map((row) => row.batch ?? 0)) + 1;
  for (const row of waiting.slice(0, r.batch)) {
    const node = nodeOf(row.mac);
    if (pass === 'forward' && node?.state === 'booted-from-disk' && node.image === row.image) {
      set(row, { state: 'done', batch, finishedAt: now, detail: `already on ${row.image}` });
    } else if (node?.state === 'booted-from-disk' || (pass === 'back' && node?.state === 'failed')) {
      set(row, { state: 'requested', batch, startedAt: now });
    } else {
      set(row, { state: 'skipped', batch, finishedAt: now, detail: `state ${node?.state ?? 'unknown'}: not touched` });
    }
  }
  return ops;
}
