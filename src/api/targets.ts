// Pods registering themselves as Prometheus targets with the central node
// (issue 5, M2): the node's side. Each pod presents its registration token
// (src/pod-link/registration.ts), bound to its name; registrations live in
// memory and expire when their heartbeats stop.
import { resolve, sep } from 'node:path';
import { tokenMatches } from './credentials.js';
import { registrationToken } from '../pod-link/registration.js';

/** Heartbeats a registration may miss before it is dropped from /sd. */
export const MISSED_HEARTBEATS = 3;
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 300_000;
const MAX_LABELS = 16;
const MAX_TARGETS = 10_000;

export interface Registration {
  pod: string;
  /** the pod's metrics endpoint: HTTP on a unix socket in its state directory */
  metricsSocket: string;
  /** extra target labels the pod asked for */
  labels: Record<string, string>;
  pid?: number;
  intervalMs: number;
  registeredAt: number;
  lastSeen: number;
  expiresAt: number;
}

export type RegisterBody = { pod: string; metricsSocket: string; labels: Record<string, string>; pid?: number; intervalMs: number };

const POD_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Checks a registration body; the socket must be in the pod's own state directory. */
export function parseRegisterBody(stateRoot: string, body: Record<string, unknown> | undefined): { ok: true; value: RegisterBody } | { ok: false; error: string } {
  if (!body) return { ok: false, error: 'a JSON object is required' };
  const pod = body.pod;
  if (typeof pod !== 'string' || !POD_RE.test(pod)) return { ok: false, error: 'pod: a pod name is required' };
  const sock = body.metricsSocket;
  if (typeof sock !== 'string' || !sock) return { ok: false, error: 'metricsSocket: a path is required' };
  const podDir = resolve(stateRoot, pod) + sep;
  if (!resolve(sock).startsWith(podDir)) return { ok: false, error: `metricsSocket: must be in the pod's state directory ${podDir}` };
  const labels: Record<string, string> = {};
  if (body.labels !== undefined) {
    if (typeof body.labels !== 'object' || body.labels === null || Array.isArray(body.labels)) return { ok: false, error: 'labels: an object of strings' };
    const entries = Object.entries(body.labels as Record<string, unknown>);
    if (entries.length > MAX_LABELS) return { ok: false, error: `labels: at most ${MAX_LABELS}` };
    for (const [k, v] of entries) {
      if (!LABEL_RE.test(k) || k.startsWith('__') || k === 'pod') return { ok: false, error: `labels.${k}: not a label name a pod may set` };
      if (typeof v !== 'string' || v.length > 256) return { ok: false, error: `labels.${k}: a string of at most 256 characters` };
      labels[k] = v;
    }
  }
  const interval = Number(body.intervalMs ?? 15_000);
  if (!Number.isFinite(interval) || interval < MIN_INTERVAL_MS || interval > MAX_INTERVAL_MS) return { ok: false, error: `intervalMs: between ${MIN_INTERVAL_MS} and ${MAX_INTERVAL_MS}` };
  const pid = typeof body.pid === 'number' && Number.isInteger(body.pid) ? body.pid : undefined;
  return { ok: true, value: { pod, metricsSocket: resolve(sock), labels, pid, intervalMs: Math.round(interval) } };
}

export class TargetRegistry {
  private readonly targets = new Map<string, Registration>();
  /** told of every registration dropped for want of heartbeats, whoever noticed first */
  onExpire?: (r: Registration) => void;

  constructor(
    private readonly key: Buffer,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Is `presented` the registration token of `pod` (and of no other)? */
  accepts(pod: string, presented: string | undefined): boolean {
    return tokenMatches(registrationToken(this.key, pod), presented);
  }

  /** Registers or refreshes; returns whether it is new (not a heartbeat of a live registration). */
  register(b: RegisterBody): { registration: Registration; fresh: boolean } | undefined {
    const now = this.clock();
    this.expire(now);
    const before = this.targets.get(b.pod);
    if (!before && this.targets.size >= MAX_TARGETS) return undefined;
    const r: Registration = {
      pod: b.pod,
      metricsSocket: b.metricsSocket,
      labels: b.labels,
      pid: b.pid,
      intervalMs: b.intervalMs,
      registeredAt: before && before.pid === b.pid ? before.registeredAt : now,
      lastSeen: now,
      expiresAt: now + MISSED_HEARTBEATS * b.intervalMs,
    };
    this.targets.set(b.pod, r);
    return { registration: r, fresh: !before || before.pid !== b.pid };
  }

  deregister(pod: string): boolean {
    return this.targets.delete(pod);
  }

  get(pod: string): Registration | undefined {
    this.expire(this.clock());
    return this.targets.get(pod);
  }

  /** Live registrations, by pod name. */
  live(): Registration[] {
    this.expire(this.clock());
    return [...this.targets.values()].sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
  }

  /** Drops registrations whose heartbeats stopped; returns the dropped ones. */
  expire(now = this.clock()): Registration[] {
    const gone: Registration[] = [];
    for (const [pod, r] of this.targets) {
      if (r.expiresAt <= now) {
        this.targets.delete(pod);
        gone.push(r);
        this.onExpire?.(r);
      }
    }
    return gone;
  }
}
