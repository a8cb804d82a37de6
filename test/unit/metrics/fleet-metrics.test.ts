// The alert rules' inputs from a pod's server rows: failed installs by
// reason, one silent gauge per watched server, pool usage, certificate time
// left, and the heartbeat figures summed up per pod.
import { describe, expect, it } from 'vitest';
import { render } from '../../../src/metrics/exposition.js';
import { fleetFamilies } from '../../../src/metrics/fleet-metrics.js';
import type { NodeRecord } from '../../../src/store/types.js';

const node = (mac: string, extra: Partial<NodeRecord>): NodeRecord => ({ mac, state: 'booted-from-disk', attempt: 1, updatedAt: 0, ...extra });

describe('fleet metrics', () => {
  it('exposes what the alert rules read', () => {
    const nodes = [
      node('m1', { liveness: 'active', heartbeat: { time: 990, metrics: { uptime: 100, load1: 0.5, memTotal: 1000, memAvailable: 250, diskSize: 100, diskUsed: 50 } } }),
      node('m2', { liveness: 'silent', heartbeat: { time: 900, metrics: { uptime: 300, load1: 1.5 } } }),
      node('m3', { state: 'failed', reason: 'digest' }),
      node('m4', { state: 'failed', reason: 'kickstart' }),
      node('m5', { state: 'installing' }),
    ];
    const text = render(fleetFamilies({ nodes, leases: 225, poolAddresses: 250, tlsNotAfterSec: 1000 + 86400, nowSec: 1000 }));
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual([
      'podboot_dhcp_pool_usage_ratio 0.9',
      'podboot_nodes_failed{reason="digest"} 1',
      'podboot_nodes_failed{reason="kickstart"} 1',
      'podboot_node_silent{mac="m1"} 0',
      'podboot_node_silent{mac="m2"} 1',
      'podboot_heartbeat_servers 2',
      'podboot_heartbeat_age_seconds{stat="min"} 10',
      'podboot_heartbeat_age_seconds{stat="avg"} 55',
      'podboot_heartbeat_age_seconds{stat="max"} 100',
      'podboot_heartbeat_uptime_seconds{stat="min"} 100',
      'podboot_heartbeat_uptime_seconds{stat="avg"} 200',
      'podboot_heartbeat_uptime_seconds{stat="max"} 300',
      'podboot_heartbeat_load1{stat="min"} 0.5',
      'podboot_heartbeat_load1{stat="avg"} 1',
      'podboot_heartbeat_load1{stat="max"} 1.5',
      'podboot_heartbeat_memory_used_ratio{stat="min"} 0.75',
      'podboot_heartbeat_memory_used_ratio{stat="avg"} 0.75',
      'podboot_heartbeat_memory_used_ratio{stat="max"} 0.75',
      'podboot_heartbeat_disk_used_ratio{stat="min"} 0.5',
      'podboot_heartbeat_disk_used_ratio{stat="avg"} 0.5',
      'podboot_heartbeat_disk_used_ratio{stat="max"} 0.5',
      'podboot_tls_certificate_expires_in_seconds{cert="pod-https"} 86400',
    ]);
  });

  it('no pools, no servers, no certificate: no usage ratio, no per-server series, zero reporting', () => {
    const text = render(fleetFamilies({ nodes: [], leases: 0, poolAddresses: 0, nowSec: 0 }));
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['podboot_heartbeat_servers 0']);
  });
});
