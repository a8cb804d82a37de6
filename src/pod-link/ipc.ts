// Messages between the supervisor and one pod instance over the Node IPC
// channel (process.send): the supervisor's end is src/pod-vm/instance.ts, the
// pod's end src/pod/channels.ts, and both import them from here. Small and
// plain: the channel also carries the heartbeat, so a big message would delay
// the signal that the pod is alive.

/** What a pod reports about itself; the supervisor adds what /proc says. */
export interface PodSelfStatus {
  /** stop offering new installs, keep serving leases */
  degraded: boolean;
  degradeReason?: string;
  leases: number;
  /** listeners the instance has bound, e.g. "dhcp 10.99.0.1:67" */
  listeners: string[];
  /** the last self-probe of each listener (bound UDP sockets, accepting TCP ones) */
  probes?: { listener: string; ok: boolean; detail?: string }[];
}

/** A few headline counters so status needs no scrape; the full set is on the metrics endpoint. */
export interface MetricsSnapshot {
  dhcpReceived: number;
  dhcpSent: number;
  dhcpDropped: number;
  tftpRequests: number;
  tftpBytesSent: number;
}

export type ChildMessage = { type: 'ready'; pid: number; status: PodSelfStatus; metricsSocket?: string } | { type: 'heartbeat'; seq: number; status: PodSelfStatus; metrics: MetricsSnapshot };

export type ParentMessage =
  | { type: 'degrade'; on: boolean; reason?: string }
  /** run the DHCP JIT warm-up now: no other instance is waiting to start */
  | { type: 'warm-up' };

/** Environment the supervisor sets for its children. */
export const ENV_HEARTBEAT_MS = 'PODBOOT_HEARTBEAT_MS';

export function isChildMessage(m: unknown): m is ChildMessage {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return (t === 'ready' || t === 'heartbeat') && typeof (m as { status?: unknown }).status === 'object';
}

export function isParentMessage(m: unknown): m is ParentMessage {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return t === 'warm-up' || (t === 'degrade' && typeof (m as { on?: unknown }).on === 'boolean');
}
