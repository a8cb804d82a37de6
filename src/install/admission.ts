// Bounds on what strangers can make a pod write. Every node row and event
// row goes through this wrapper of the pod's store, written at once (HTTP
// callbacks) or admitted here and committed with the leases (DHCP):
//   - which servers the pod may provision: those in its pod file, and unknown
//     ones only under `unknownNodes: provision` and only up to a cap of
//     unknown servers (new node rows); past it, no row, no token, local boot;
//   - at most N event rows per server per minute; the excess is counted and
//     dropped, with one rate-limited log line (a flood stays a flood of
//     counter increments, not of rows).
// The decisions are plain functions of counts; the class only keeps the counts.
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { RateLimitedLog } from '../log-limit.js';
import type { Heartbeat, InstallStateChange, Liveness, NodeEvent, NodeRecord, NodeStateStore, NodeWrites } from '../store/types.js';

export interface AdmissionLimits {
  /** unknown servers (node rows for MACs not in the pod file) a pod keeps at most */
  maxUnknownNodes: number;
  /** event rows per server per minute */
  maxEventsPerMinute: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = { maxUnknownNodes: 1000, maxEventsPerMinute: 60 };

export interface AdmissionInput {
  known: boolean;
  policy: PodConfig['unknownNodes'];
  /** the server already has a row (it was admitted before) */
  hasRow: boolean;
  unknownRows: number;
  maxUnknownNodes: number;
}

export type Admission = { ok: true } | { ok: false; reason: 'unknown-nodes-ignored' | 'unknown-node-cap' };

/** May the pod provision (mint a token for, keep a row of) this server? */
export function admit(i: AdmissionInput): Admission {
  if (i.known || i.hasRow) return { ok: true };
  if (i.policy !== 'provision') return { ok: false, reason: 'unknown-nodes-ignored' };
  return i.unknownRows < i.maxUnknownNodes ? { ok: true } : { ok: false, reason: 'unknown-node-cap' };
}

/** Fixed one-minute windows per server: is one more event row allowed? */
export function eventAllowed(window: { minute: number; count: number } | undefined, minute: number, max: number): boolean {
  return !window || window.minute !== minute || window.count < max;
}

export interface AdmissionCounters {
  /** node rows not written: unknown server over the cap or not provisioned */
  nodesRefused: number;
  /** event rows dropped over the per-server rate */
  eventsDropped: number;
}

/** Windows kept for this many servers before old ones are swept. */
const MAX_WINDOWS = 4096;

export class AdmittingNodeStore implements NodeStateStore {
  readonly counters: AdmissionCounters = { nodesRefused: 0, eventsDropped: 0 };
  private readonly known: ReadonlySet<string>;
  private unknownRows: number;
  private readonly windows = new Map<string, { minute: number; count: number }>();
  private readonly limited: RateLimitedLog;

  constructor(
    private readonly inner: NodeStateStore,
    private readonly pod: PodConfig,
    log: Logger,
    private readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS,
    private readonly clock: () => number = Date.now,
  ) {
    this.known = new Set(pod.nodes.map((n) => n.mac));
    this.unknownRows = inner.nodes().filter((n) => !this.known.has(n.mac)).length;
    this.limited = new RateLimitedLog(log, 10_000, clock);
  }

  /** Tokens are minted only for servers this says yes to. */
  mayProvision(mac: string): Admission {
    return admit({
      known: this.known.has(mac),
      policy: this.pod.unknownNodes,
      hasRow: this.inner.installState(mac) !== undefined,
      unknownRows: this.unknownRows,
      maxUnknownNodes: this.limits.maxUnknownNodes,
    });
  }

  installState(mac: string): string | undefined {
    return this.inner.installState(mac);
  }

  /** The change and its event in one write; no row at all for a server refused, the change alone when its event is over the rate. */
  changeInstallState(change: InstallStateChange): void {
    const admitted = this.admitChange(change);
    if (admitted) this.inner.changeInstallState(admitted);
  }

  node(mac: string): NodeRecord | undefined {
    return this.inner.node(mac);
  }

  nodes(): NodeRecord[] {
    return this.inner.nodes();
  }

  touch(mac: string, time: number): void {
    this.inner.touch(mac, time);
  }

  /** No row to admit: it replaces the server's last heartbeat. */
  recordHeartbeat(mac: string, heartbeat: Heartbeat): void {
    this.inner.recordHeartbeat(mac, heartbeat);
  }

  /** The liveness always; its event only within the server's rate. */
  setLiveness(mac: string, liveness: Liveness | undefined, event?: NodeEvent): void {
    this.inner.setLiveness(mac, liveness, event && this.admitEvent(event) ? event : undefined);
  }

  reinstall(mac: string, time: number, by: string): NodeRecord {
    return this.inner.reinstall(mac, time, by);
  }

  addEvent(event: NodeEvent): void {
    if (this.admitEvent(event)) this.inner.addEvent(event);
  }

  /**
   * Rows DHCP commits with its leases (src/dhcp/server.ts), bounded as if they
   * were written now: the counts move at once, the rows are written by the
   * group commit.
   */
  admit(writes: NodeWrites): NodeWrites {
    let same = true;
    const changes: InstallStateChange[] = [];
    for (const c of writes.changes) {
      const admitted = this.admitChange(c);
      if (admitted) changes.push(admitted);
      same &&= admitted === c;
    }
    const events = writes.events.filter((e) => this.admitEvent(e));
    return same && events.length === writes.events.length ? writes : { changes, events };
  }

  /** The change as it may be written, or undefined: an unknown server refused a row. */
  private admitChange(change: InstallStateChange): InstallStateChange | undefined {
    const { mac } = change;
    const fresh = this.inner.installState(mac) === undefined;
    if (fresh) {
      const a = this.mayProvision(mac);
      if (!a.ok) {
        this.counters.nodesRefused++;
        this.limited.warn(a.reason, { node: mac, unknownNodes: this.unknownRows, max: this.limits.maxUnknownNodes, refused: this.counters.nodesRefused }, `server not recorded: ${a.reason}`);
        return undefined;
      }
      if (!this.known.has(mac)) this.unknownRows++;
    }
    if (change.event === false || this.admitEvent({ time: change.time, mac, kind: change.state })) return change;
    return { ...change, event: false };
  }

  private admitEvent(event: NodeEvent): boolean {
    const minute = Math.floor(this.clock() / 60_000);
    const w = this.windows.get(event.mac);
    if (!eventAllowed(w, minute, this.limits.maxEventsPerMinute)) {
      this.counters.eventsDropped++;
      this.limited.warn('event-rate', { node: event.mac, kind: event.kind, max: this.limits.maxEventsPerMinute, dropped: this.counters.eventsDropped }, 'event rows over the per-server rate dropped');
      return false;
    }
    if (w && w.minute === minute) w.count++;
    else {
      if (this.windows.size >= MAX_WINDOWS) this.sweep(minute);
      this.windows.set(event.mac, { minute, count: 1 });
    }
    return true;
  }

  events(mac?: string, limit?: number): NodeEvent[] {
    return this.inner.events(mac, limit);
  }

  private sweep(minute: number): void {
    for (const [mac, w] of this.windows) if (w.minute !== minute) this.windows.delete(mac);
  }
}
