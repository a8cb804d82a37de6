// What the alert rules (deploy/prometheus/podboot-alerts.yml) need from a pod
// beyond its counters, and the heartbeats of its installed servers summed up
// per pod: pure functions of the pod's server rows, its pools and its
// certificate. Per-server series are limited to the one the silent-server
// alert names (podboot_node_silent, watched servers only); the heartbeat
// figures are aggregates, so a pod's series do not grow with its racks.
import type { Heartbeat, NodeMetrics, NodeRecord } from '../store/types.js';
import type { Family, Sample } from './exposition.js';

export interface FleetSource {
  nodes: readonly NodeRecord[];
  leases: number;
  poolAddresses: number;
  /** the pod's HTTPS certificate's notAfter, unix seconds */
  tlsNotAfterSec?: number;
  /** unix seconds */
  nowSec: number;
}

/** min, average and max of some figure over a pod's servers */
export interface Spread {
  min: number;
  avg: number;
  max: number;
}

function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  return { min: Math.min(...values), avg: values.reduce((a, b) => a + b, 0) / values.length, max: Math.max(...values) };
}

function stats(s: Spread | undefined): Sample[] {
  if (!s) return [];
  return [
    { labels: { stat: 'min' }, value: s.min },
    { labels: { stat: 'avg' }, value: s.avg },
    { labels: { stat: 'max' }, value: s.max },
  ];
}

/**
 * The heartbeats of a pod's watched (booted-from-disk) servers summed up:
 * the per-pod metrics and the central API's per-site summary
 * (/api/v1/nodes/summary) both come from here, so they cannot disagree.
 * A silent server's last heartbeat still counts in the figures: it is the
 * last known state of that server.
 */
export interface HeartbeatSummary {
  /** watched servers whose node agent reports in */
  active: number;
  /** watched servers quiet for 3 heartbeat intervals */
  silent: number;
  /** watched servers with a heartbeat on record: the figures below are over their last ones */
  reporting: number;
  /** unix seconds of those heartbeats */
  time?: Spread;
  uptimeSeconds?: Spread;
  load1?: Spread;
  /** 1 - available/total */
  memoryUsedRatio?: Spread;
  /** the root file system */
  diskUsedRatio?: Spread;
}

export function heartbeatSummary(nodes: readonly NodeRecord[]): HeartbeatSummary {
  let active = 0,
    silent = 0;
  const beats: Heartbeat[] = [];
  for (const n of nodes) {
    if (n.liveness === 'active') active++;
    else if (n.liveness === 'silent') silent++;
    if (n.heartbeat && n.liveness) beats.push(n.heartbeat);
  }
  const fig = (pick: (m: NodeMetrics) => number | undefined) =>
    spread(
      beats.flatMap((b) => {
        const v = pick(b.metrics);
        return v === undefined || !Number.isFinite(v) ? [] : [v];
      }),
    );
  const figures: Omit<HeartbeatSummary, 'active' | 'silent' | 'reporting'> = {
    time: spread(beats.map((b) => b.time)),
    uptimeSeconds: fig((m) => m.uptime),
    load1: fig((m) => m.load1),
    memoryUsedRatio: fig((m) => (m.memTotal && m.memAvailable !== undefined ? 1 - m.memAvailable / m.memTotal : undefined)),
    diskUsedRatio: fig((m) => (m.diskSize && m.diskUsed !== undefined ? m.diskUsed / m.diskSize : undefined)),
  };
  // A figure no heartbeat carried is left out, not null (the JSON stays as the metrics are: no sample).
  return { active, silent, reporting: beats.length, ...Object.fromEntries(Object.entries(figures).filter(([, v]) => v !== undefined)) };
}

export function fleetFamilies(s: FleetSource): Family[] {
  const failed: Record<string, number> = {};
  const silent: Sample[] = [];
  for (const n of s.nodes) {
    if (n.state === 'failed') failed[n.reason ?? 'other'] = (failed[n.reason ?? 'other'] ?? 0) + 1;
    if (n.liveness) silent.push({ labels: { mac: n.mac }, value: n.liveness === 'silent' ? 1 : 0 });
  }
  const hb = heartbeatSummary(s.nodes);
  // Heartbeat times are the pod's own clock at receipt, never ahead of nowSec: the newest is the youngest.
  const age = hb.time && { min: Math.max(0, s.nowSec - hb.time.max), avg: Math.max(0, s.nowSec - hb.time.avg), max: Math.max(0, s.nowSec - hb.time.min) };
  const f: Family[] = [
    {
      name: 'podboot_dhcp_pool_usage_ratio',
      help: 'leases held over addresses in the pod pools (alert at 0.9)',
      type: 'gauge',
      samples: s.poolAddresses > 0 ? [{ value: s.leases / s.poolAddresses }] : [],
    },
    {
      name: 'podboot_nodes_failed',
      help: 'servers whose install failed, by the reason they reported',
      type: 'gauge',
      samples: Object.entries(failed).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    { name: 'podboot_node_silent', help: '1 for a booted-from-disk server whose node agent has gone silent, 0 while it reports', type: 'gauge', samples: silent },
    { name: 'podboot_heartbeat_servers', help: 'watched servers with a heartbeat on record', type: 'gauge', samples: [{ value: hb.reporting }] },
    {
      name: 'podboot_heartbeat_age_seconds',
      help: "time since watched servers' last heartbeats, min/avg/max",
      type: 'gauge',
      samples: stats(age),
    },
    { name: 'podboot_heartbeat_uptime_seconds', help: 'uptime the last heartbeats report, min/avg/max', type: 'gauge', samples: stats(hb.uptimeSeconds) },
    { name: 'podboot_heartbeat_load1', help: '1-minute load the last heartbeats report, min/avg/max', type: 'gauge', samples: stats(hb.load1) },
    {
      name: 'podboot_heartbeat_memory_used_ratio',
      help: 'memory in use (1 - available/total) the last heartbeats report, min/avg/max',
      type: 'gauge',
      samples: stats(hb.memoryUsedRatio),
    },
    {
      name: 'podboot_heartbeat_disk_used_ratio',
      help: 'root file system in use the last heartbeats report, min/avg/max',
      type: 'gauge',
      samples: stats(hb.diskUsedRatio),
    },
  ];
  if (s.tlsNotAfterSec !== undefined) {
    f.push({
      name: 'podboot_tls_certificate_expires_in_seconds',
      help: "time left before the pod's HTTPS certificate expires (alert under 14 days)",
      type: 'gauge',
      samples: [{ labels: { cert: 'pod-https' }, value: s.tlsNotAfterSec - s.nowSec }],
    });
  }
  return f;
}
