// After the install: is the installed OS still there? Its node agent
// (images/debian/podboot-node-agent) reports booted-from-disk, then a heartbeat
// every `heartbeatSeconds` (the pod file's spec.heartbeatSeconds). A server
// that is booted-from-disk is `active` while it reports; one silent for
// SILENT_AFTER_BEATS intervals is `silent`, with one event when it goes silent
// and one when it reports again. The decision is a pure function of the
// server's row and the time; the pod instance runs checkLiveness on a timer,
// and the HTTPS server applies the same function when a heartbeat arrives.
import type { Logger } from 'pino';
import type { Liveness, NodeMetrics, NodeStateStore } from '../store/types.js';

export const SILENT_AFTER_BEATS = 3;

/** The state in which a server's liveness is watched: its own OS reports in. */
export const WATCHED_STATE = 'booted-from-disk';

export interface LivenessInput {
  /** install state */
  state: string;
  liveness: Liveness | undefined;
  /** unix seconds of the server's last report, if any */
  lastSeen: number | undefined;
  now: number;
  heartbeatSeconds: number;
  /**
   * Since when this pod has been listening (its start): silence is counted
   * from no earlier, so a pod that was down does not find every server silent
   * at once when it comes back.
   */
  watchingSince: number;
}

export interface LivenessChange {
  /** undefined: the server is no longer watched (a reinstall took it back) */
  next: Liveness | undefined;
  /** the event to record with the change; none for the first `active` nor for an unwatched server */
  event?: { kind: Liveness; detail?: string };
}

/** What changes for one server, or undefined when nothing does. */
export function livenessTransition(i: LivenessInput): LivenessChange | undefined {
  if (i.state !== WATCHED_STATE) return i.liveness === undefined ? undefined : { next: undefined };
  const limit = SILENT_AFTER_BEATS * i.heartbeatSeconds;
  if (i.liveness === 'silent') {
    // Only a report makes it active again: the pod's own restart does not.
    const heard = i.lastSeen !== undefined && i.now - i.lastSeen < limit;
    return heard ? { next: 'active', event: { kind: 'active' } } : undefined;
  }
  const quietSince = Math.max(i.lastSeen ?? i.watchingSince, i.watchingSince);
  if (i.now - quietSince >= limit) {
    return { next: 'silent', event: { kind: 'silent', detail: i.lastSeen === undefined ? 'never seen' : `last seen ${new Date(i.lastSeen * 1000).toISOString()}` } };
  }
  return i.liveness === 'active' ? undefined : { next: 'active' };
}

/** Bounds of what a heartbeat may carry; a value outside them, or not a number, is left out. */
const METRIC_BOUNDS: Readonly<Record<keyof NodeMetrics, { max: number; integer: boolean }>> = {
  // seconds; 300 years
  uptime: { max: 1e10, integer: true },
  load1: { max: 1e6, integer: false },
  load5: { max: 1e6, integer: false },
  load15: { max: 1e6, integer: false },
  // bytes
  memTotal: { max: Number.MAX_SAFE_INTEGER, integer: true },
  memAvailable: { max: Number.MAX_SAFE_INTEGER, integer: true },
  diskSize: { max: Number.MAX_SAFE_INTEGER, integer: true },
  diskUsed: { max: Number.MAX_SAFE_INTEGER, integer: true },
};

export const METRIC_NAMES = Object.keys(METRIC_BOUNDS) as (keyof NodeMetrics)[];

/** The figures of a heartbeat body: known names, finite numbers within bounds; anything else is ignored. */
export function heartbeatMetrics(body: Record<string, unknown>): NodeMetrics {
  const out: NodeMetrics = {};
  for (const name of METRIC_NAMES) {
    const v = body[name];
    const b = METRIC_BOUNDS[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > b.max) continue;
    out[name] = b.integer ? Math.floor(v) : v;
  }
  return out;
}

/** A report from the server's own OS (booted-from-disk, a heartbeat) arriving now: heard, whatever the interval. */
export function livenessOnReport(liveness: Liveness | undefined, now: number): LivenessChange | undefined {
  return livenessTransition({ state: WATCHED_STATE, liveness, lastSeen: now, now, heartbeatSeconds: 1, watchingSince: now });
}

/** Writes one server's change with its event, and logs it. */
export function applyLiveness(nodes: NodeStateStore, log: Logger, mac: string, change: LivenessChange, now: number): void {
  const e = change.event;
  nodes.setLiveness(mac, change.next, e && { time: now, mac, kind: e.kind, ...(e.detail ? { detail: e.detail } : {}) });
  if (e?.kind === 'silent') log.warn({ node: mac, detail: e.detail }, 'server silent: no heartbeat from its node agent');
  else if (e?.kind === 'active') log.info({ node: mac }, 'server reporting again');
}

export interface LivenessWatch {
  nodes: NodeStateStore;
  log: Logger;
  heartbeatSeconds: number;
  /** the pod's start, unix seconds */
  watchingSince: number;
}

/** One pass over the pod's servers; returns how many changed. */
export function checkLiveness(w: LivenessWatch, now: number): number {
  let changed = 0;
  for (const n of w.nodes.nodes()) {
    const change = livenessTransition({ state: n.state, liveness: n.liveness, lastSeen: n.lastSeen, now, heartbeatSeconds: w.heartbeatSeconds, watchingSince: w.watchingSince });
    if (!change) continue;
    applyLiveness(w.nodes, w.log, n.mac, change, now);
    changed++;
  }
  return changed;
}
