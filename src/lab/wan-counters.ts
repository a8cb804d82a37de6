// The WAN link's byte counters (lab/wan-link.py --counters-file): where each
// rack's file lives, reading it, and what a `lab boot` sent across the WAN
// (the difference between two readings). The link replaces its file by
// rename about once a second, so a reader never sees half of one.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LISTEN_PORTS } from '../config/listen.js';
import type { RackPlan } from './plan.js';

/** The lab's pods set no port of their own: they serve stage2 on the default HTTPS port, which the link counts apart. */
export const LAB_HTTPS_PORT = LISTEN_PORTS.find((p) => p.key === 'httpsPort')!.default;

/** One direction as the link writes it. down: central → rack; up: rack → central. */
export interface WanDirectionCounters {
  /** the interfaces, in the wan namespace, frames come in on and go out of */
  from: string;
  to: string;
  /** frames and bytes (whole Ethernet frames) sent on */
  frames: number;
  bytes: number;
  /** lost + queueFull + sendErrors */
  dropped: number;
  received: number;
  /** dropped by the seeded loss (--wan-loss) */
  lost: number;
  /** tail drop: the queue was at its bound */
  queueFull: number;
  sendErrors: number;
  queuedBytes: number;
  peakQueuedBytes: number;
  /** port → bytes of TCP frames from or to it, sent on */
  tcpPorts: Record<string, number>;
}

export interface WanCounters {
  /** seconds since the epoch when written */
  time: number;
  /** the link's pid: counters start again from zero when it does */
  pid: number;
  rateBps: number;
  delayMs: number;
  down: WanDirectionCounters;
  up: WanDirectionCounters;
}

/** What crossed the WAN in one direction between two readings. */
export interface WanTraffic {
  frames: number;
  bytes: number;
  dropped: number;
  tcpPorts: Record<string, number>;
}

/** A rack's WAN traffic over a run: down is central → rack (the images), up is rack → central. */
export interface WanUsage {
  down: WanTraffic;
  up: WanTraffic;
}

export function wanCountersFile(dir: string, rack: number): string {
  return join(dir, 'wan', `rack-${rack}.json`);
}

export function readWanCountersFile(file: string): WanCounters | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as WanCounters;
    return typeof c.down?.bytes === 'number' && typeof c.up?.bytes === 'number' ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Rack r's counters in a lab's DIR, or undefined where its WAN is not lab/wan-link.py (a bridge, netem, an older lab). */
export function readWanCounters(dir: string, rack: number): WanCounters | undefined {
  return readWanCountersFile(wanCountersFile(dir, rack));
}

function traffic(before: WanDirectionCounters | undefined, after: WanDirectionCounters): WanTraffic {
  const tcpPorts: Record<string, number> = {};
  for (const [port, bytes] of Object.entries(after.tcpPorts)) tcpPorts[port] = bytes - (before?.tcpPorts[port] ?? 0);
  return {
    frames: after.frames - (before?.frames ?? 0),
    bytes: after.bytes - (before?.bytes ?? 0),
    dropped: after.dropped - (before?.dropped ?? 0),
    tcpPorts,
  };
}

/** after − before; a link that restarted in between (another pid) counted from zero, so all of `after` is the run's. */
export function wanUsage(before: WanCounters | undefined, after: WanCounters): WanUsage {
  const base = before && before.pid === after.pid ? before : undefined;
  return { down: traffic(base?.down, after.down), up: traffic(base?.up, after.up) };
}

type Rack = Pick<RackPlan, 'index' | 'pod'>;

/** Every rack's counters now, by rack index (racks without a counters file left out). */
export function wanSnapshot(dir: string, racks: Rack[]): Map<number, WanCounters> {
  const out = new Map<number, WanCounters>();
  for (const r of racks) {
    const c = readWanCounters(dir, r.index);
    if (c) out.set(r.index, c);
  }
  return out;
}

/**
 * Each rack's traffic since `before`, by pod name; undefined when no rack has
 * counters. Waits (up to `waitMs`) for files written after this call, so the
 * last second of traffic is in; a link that stopped writing gives its last file.
 */
export async function wanUsageSince(dir: string, racks: Rack[], before: Map<number, WanCounters>, waitMs = 3000): Promise<Record<string, WanUsage> | undefined> {
  const since = Date.now() / 1000;
  const deadline = Date.now() + waitMs;
  const latest = new Map<number, WanCounters>();
  // Bounded by the deadline; the link rewrites its file about once a second.
  for (;;) {
    for (const r of racks) {
      const c = readWanCounters(dir, r.index);
      if (c) latest.set(r.index, c);
    }
    const waiting = racks.some((r) => {
      const c = latest.get(r.index);
      return c !== undefined && c.time < since;
    });
    if (!waiting || Date.now() >= deadline) break;
    await sleep(200);
  }
  if (!latest.size) return undefined;
  const out: Record<string, WanUsage> = {};
  for (const r of racks) {
    const c = latest.get(r.index);
    if (c) out[r.pod] = wanUsage(before.get(r.index), c);
  }
  return out;
}
