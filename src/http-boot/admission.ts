// Boot-storm admission for stage2 image streams. After a power cut every
// server of a pod asks for its image at once; the pod lets a bounded number
// stream, for the whole pod and for each rack (the pod subnet a server is
// on), and tells the rest when to come back. Refusing at once (503 with
// Retry-After) rather than queueing the connection keeps nothing open for a
// waiting server: no socket, no TLS state, no buffer (docs/decisions.md).
// Pure: the caller supplies the time and, in tests, the randomness.
import type { RangeDecision } from './range.js';

export interface AdmissionLimits {
  perPod: number;
  perRack: number;
}

export interface AdmissionOptions extends AdmissionLimits {
  /** uniform in [0, 1): the jitter of Retry-After */
  random?: () => number;
  /** what a stream is assumed to take before any has finished, seconds */
  initialStreamSeconds?: number;
  /**
   * The longest Retry-After handed out, seconds. Stage1's curl gives up a
   * round of retries when a Retry-After would take it past its
   * --retry-max-time (120 s), so this stays well under that; and a short
   * wait costs the pod one small 503, a long one an idle slot.
   */
  maxRetryAfterSeconds?: number;
  /**
   * How long a server keeps its slot between two requests of its stream,
   * seconds: a streamed install fetches the image as byte ranges, one chunk
   * after the other (images/stage1/stream.sh), and a cut download resumes
   * with a Range request; neither may lose its place to a newcomer.
   */
  holdSeconds?: number;
}

/**
 * An admitted request: release it when its response ends, however it ends.
 * `complete`: the response ended with the image's last byte, so the server
 * has no more to ask for and its slot is free at once; otherwise the slot
 * stays the server's for holdSeconds. Releasing twice is a no-op.
 */
export interface Ticket {
  readonly rack: string | undefined;
  release(now: number, complete?: boolean): void;
}

export type Admission = { ok: true; ticket: Ticket } | { ok: false; scope: 'pod' | 'rack'; retryAfterSeconds: number; message: string };

export interface AdmissionCounts {
  /** servers streaming (or between two requests of their stream) */
  current: number;
  peak: number;
  /** current and peak per rack, by the rack's key (its subnet's CIDR) */
  racks: Record<string, { current: number; peak: number }>;
  /** refusals by the limit that was reached */
  refused: { pod: number; rack: number };
  /** streams admitted since start (a server's later range requests are not counted again) */
  admitted: number;
  /** servers refused lately and not yet admitted: how deep the queue is */
  waiting: number;
}

// A first guess of 5 s errs short: a server that comes back too early costs the pod one small 503.
const DEFAULTS = { initialStreamSeconds: 5, maxRetryAfterSeconds: 30, holdSeconds: 30 };
/**
 * The waiters are spread over this share of the time they need to drain: the
 * slots stay busy even when the running mean of stream time overestimates
 * (streams get faster as a storm thins out), at the price of some servers
 * being refused twice.
 */
const SPREAD_SHARE = 0.5;
/** Bounds the waiter table whatever the clients do. */
const MAX_WAITERS = 20_000;
/** Weight of the newest stream in the running mean of stream time. */
const EWMA_WEIGHT = 0.2;

interface Waiter {
  rack: string | undefined;
  lastSeen: number;
}

/** A server holding a slot: its requests in flight, and since when it has had none. */
interface Holder {
  rack: string | undefined;
  since: number;
  inFlight: number;
  idleSince?: number;
  /** one of its responses carried the image's last byte: once none is in flight, it is done */
  finished?: boolean;
}

export class ImageStreamAdmission {
  private readonly o: Required<AdmissionOptions>;
  private peak = 0;
  private admitted = 0;
  private anonymous = 0;
  private readonly holders = new Map<string, Holder>();
  private readonly racks = new Map<string, { current: number; peak: number }>();
  private readonly refused = { pod: 0, rack: 0 };
  private readonly waiters = new Map<string, Waiter>();
  private streamSeconds: number;

  constructor(opts: AdmissionOptions) {
    if (!(opts.perPod >= 1 && opts.perRack >= 1)) throw new Error(`admission limits must be at least 1 (perPod ${opts.perPod}, perRack ${opts.perRack})`);
    this.o = { random: Math.random, ...DEFAULTS, ...opts };
    this.streamSeconds = this.o.initialStreamSeconds;
  }

  /**
   * One image request from a server on `rack` (undefined: outside every
   * rack, only the pod's limit applies) at `now` (ms). `who` (the server's
   * MAC) lets a server that holds a slot go on with its stream, and lets the
   * pod count how many servers are waiting, which makes the Retry-After
   * longer when the queue is deep.
   */
  admit(rack: string | undefined, now: number, who?: string): Admission {
    this.expire(now);
    const key = who ?? `#${++this.anonymous}`;
    const holding = this.holders.get(key);
    if (holding) {
      holding.inFlight++;
      holding.idleSince = undefined;
      return { ok: true, ticket: this.ticket(key, holding) };
    }
    const r = rack === undefined ? undefined : this.rackCounts(rack);
    const scope = this.holders.size >= this.o.perPod ? 'pod' : r && r.current >= this.o.perRack ? 'rack' : undefined;
    if (scope) {
      this.refused[scope]++;
      if (who !== undefined) this.noteWaiter(who, rack, now);
      const limit = scope === 'pod' ? this.o.perPod : this.o.perRack;
      const retryAfterSeconds = this.retryAfter(scope, rack, limit);
      const where = scope === 'pod' ? 'this pod' : `rack ${rack}`;
      return { ok: false, scope, retryAfterSeconds, message: `busy: ${limit} image streams already running for ${where}; retry in ${retryAfterSeconds} s` };
    }
    if (who !== undefined) this.waiters.delete(who);
    const h: Holder = { rack, since: now, inFlight: 1 };
    this.holders.set(key, h);
    this.admitted++;
    this.peak = Math.max(this.peak, this.holders.size);
    if (r) {
      r.current++;
      r.peak = Math.max(r.peak, r.current);
    }
    return { ok: true, ticket: this.ticket(key, h) };
  }

  /** The counts at `now` (ms; default: as of the last admit), slots past their hold given back first. */
  counts(now?: number): AdmissionCounts {
    if (now !== undefined) this.expire(now);
    return {
      current: this.holders.size,
      peak: this.peak,
      racks: Object.fromEntries([...this.racks].map(([k, v]) => [k, { ...v }])),
      refused: { ...this.refused },
      admitted: this.admitted,
      waiting: this.waiters.size,
    };
  }

  private ticket(key: string, h: Holder): Ticket {
    let released = false;
    return {
      rack: h.rack,
      release: (at: number, complete = true) => {
        if (released) return;
        released = true;
        // The last byte may come while a cut request is still being noticed: the server is done all the same.
        if (complete) h.finished = true;
        if (--h.inFlight > 0) return;
        if (h.finished) this.free(key, h, at);
        else h.idleSince = at;
      },
    };
  }

  private free(key: string, h: Holder, at: number): void {
    if (this.holders.get(key) !== h) return;
    this.holders.delete(key);
    if (h.rack !== undefined) this.rackCounts(h.rack).current--;
    const seconds = Math.max(0, (at - h.since) / 1000);
    this.streamSeconds += EWMA_WEIGHT * (seconds - this.streamSeconds);
  }

  /**
   * When a slot may be free for this server: the servers waiting for the
   * same limit drain at `limit` per stream time, so the last of them is
   * served after about depth × streamSeconds / limit. Each refused server
   * draws its moment uniformly over the first half of that span, so a rack
   * refused together comes back spread out rather than in lock-step, a
   * little faster than slots free up, and later when the queue is deeper.
   */
  private retryAfter(scope: 'pod' | 'rack', rack: string | undefined, limit: number): number {
    let depth = 0;
    for (const w of this.waiters.values()) if (scope === 'pod' || w.rack === rack) depth++;
    const span = Math.max(1, (SPREAD_SHARE * Math.max(1, depth) * this.streamSeconds) / limit);
    const seconds = 1 + Math.floor(this.o.random() * span);
    return Math.min(this.o.maxRetryAfterSeconds, Math.max(1, seconds));
  }

  private rackCounts(rack: string): { current: number; peak: number } {
    let r = this.racks.get(rack);
    if (!r) {
      r = { current: 0, peak: 0 };
      this.racks.set(rack, r);
    }
    return r;
  }

  private noteWaiter(who: string, rack: string | undefined, now: number): void {
    // Re-inserted so the map stays in last-seen order: expiry stops at the first fresh one.
    this.waiters.delete(who);
    this.waiters.set(who, { rack, lastSeen: now });
    if (this.waiters.size > MAX_WAITERS) this.waiters.delete(this.waiters.keys().next().value!);
  }

  private expire(now: number): void {
    // A slot whose server went quiet mid-stream (cut, or its chunks came from rack peers) goes back after the hold.
    for (const [key, h] of this.holders) if (h.inFlight === 0 && h.idleSince !== undefined && now - h.idleSince >= this.o.holdSeconds * 1000) this.free(key, h, h.idleSince);
    // A waiter comes back within its Retry-After (plus its client's own backoff): one silent for much longer has given up.
    const ttlMs = 3 * this.o.maxRetryAfterSeconds * 1000;
    for (const [who, w] of this.waiters) {
      if (now - w.lastSeen < ttlMs) break;
      this.waiters.delete(who);
    }
  }
}

/**
 * Did a finished response carry the image through its last byte? A partial
 * answer (206) that stops short did not: the server will ask for the rest.
 * Any other answer ends that server's stream.
 */
export function endsWithLastByte(status: number, range: RangeDecision, size: number): boolean {
  if (status !== 206) return true;
  return range.kind === 'partial' && range.end === size - 1;
}
