// What the alert rules (deploy/prometheus/podboot-alerts.yml) need from a pod
// beyond its counters, and the heartbeats of its installed servers summed up
// per pod: pure functions of the pod's server rows, its pools and its
// certificate. Per-server series are limited to the one the silent-server
// alert names (podboot_node_silent, watched servers only); the heartbeat
// figures are aggregates, so a pod's series do not grow with its racks.
import type { NodeRecord } from '../store/types.js';
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

function stats(values: number[]): Sample[] {
  if (values.length === 0) return [];
  const sum = values.reduce((a, b) => a + b, 0);
  return [
    { labels: { stat: 'min' }, value: Math.min(...values) },
    { labels: { stat: 'avg' }, value: sum / values.length },
    { labels: { stat: 'max' }, value: Math.max(...values) },
  ];
}

export function fleetFamilies(s: FleetSource): Family[] {
  const failed: Record<string, number> = {};
  const silent: Sample[] = [];
  const beats = s.nodes.flatMap((n) => (n.heartbeat && n.liveness ? [n.heartbeat] : []));
  for (const n of s.nodes) {
    if (n.state === 'failed') failed[n.reason ?? 'other'] = (failed[n.reason ?? 'other'] ?? 0) + 1;
    if (n.liveness) silent.push({ labels: { mac: n.mac }, value: n.liveness === 'silent' ? 1 : 0 });
  }
  const fig = (pick: (m: NonNullable<NodeRecord['heartbeat']>['metrics']) => number | undefined) =>
    beats.flatMap((b) => {
      const v = pick(b.metrics);
      return v === undefined || !Number.isFinite(v) ? [] : [v];
    });
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
    { name: 'podboot_heartbeat_servers', help: 'watched servers with a heartbeat on record', type: 'gauge', samples: [{ value: beats.length }] },
    {
      name: 'podboot_heartbeat_age_seconds',
      help: "time since watched servers' last heartbeats, min/avg/max",
      type: 'gauge',
      samples: stats(beats.map((b) => Math.max(0, s.nowSec - b.time))),
    },
    { name: 'podboot_heartbeat_uptime_seconds', help: 'uptime the last heartbeats report, min/avg/max', type: 'gauge', samples: stats(fig((m) => m.uptime)) },
    { name: 'podboot_heartbeat_load1', help: '1-minute load the last heartbeats report, min/avg/max', type: 'gauge', samples: stats(fig((m) => m.load1)) },
    {
      name: 'podboot_heartbeat_memory_used_ratio',
      help: 'memory in use (1 - available/total) the last heartbeats report, min/avg/max',
      type: 'gauge',
      samples: stats(fig((m) => (m.memTotal && m.memAvailable !== undefined ? 1 - m.memAvailable / m.memTotal : undefined))),
    },
    {
      name: 'podboot_heartbeat_disk_used_ratio',
      help: 'root file system in use the last heartbeats report, min/avg/max',
      type: 'gauge',
      samples: stats(fig((m) => (m.diskSize && m.diskUsed !== undefined ? m.diskUsed / m.diskSize : undefined))),
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
