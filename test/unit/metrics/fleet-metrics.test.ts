// The alert rules' inputs from a pod's server rows: failed installs by
// reason, one silent gauge per watched server, pool usage, certificate time
// left, and the heartbeat figures summed up per pod.
import { describe, expect, it } from 'vitest';
import { render } from '../../../src/metrics/exposition.js';
import { fleetFamilies, heartbeatSummary } from '../../../src/metrics/fleet-metrics.js';
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

  it('sums up a site for the central API: active and silent counted, figures over the last heartbeats, a silent one included', () => {
    const beat = (time: number, load1: number, memAvailable: number, diskUsed: number) => ({ time, metrics: { uptime: 60, load1, memTotal: 1000, memAvailable, diskSize: 200, diskUsed } });
    const nodes = [
      node('m1', { liveness: 'active', heartbeat: beat(1000, 0.5, 800, 60) }),
      node('m2', { liveness: 'active', heartbeat: beat(990, 1, 600, 90) }),
      node('m3', { liveness: 'active', heartbeat: beat(980, 1.5, 400, 100) }),
      node('m4', { liveness: 'silent', heartbeat: beat(100, 2, 200, 150) }),
      // watched, no heartbeat yet: counted, no figures
      node('m5', { liveness: 'active' }),
      // a heartbeat but no longer watched (reinstalled): neither
      node('m6', { state: 'discovered', heartbeat: beat(1000, 9, 0, 200) }),
    ];
    const s = heartbeatSummary(nodes);
    expect(s).toMatchObject({ active: 4, silent: 1, reporting: 4, time: { min: 100, avg: 767.5, max: 1000 }, uptimeSeconds: { min: 60, avg: 60, max: 60 } });
    expect(s.load1).toEqual({ min: 0.5, avg: 1.25, max: 2 });
    expect(s.diskUsedRatio).toEqual({ min: 0.3, avg: 0.5, max: 0.75 });
    expect(s.memoryUsedRatio!.min).toBeCloseTo(0.2, 12);
    expect(s.memoryUsedRatio!.avg).toBeCloseTo(0.5, 12);
    expect(s.memoryUsedRatio!.max).toBeCloseTo(0.8, 12);
    // The metrics say the same: they are drawn from this summary.
    const lines = render(fleetFamilies({ nodes, leases: 0, poolAddresses: 0, nowSec: 1000 })).split('\n');
    expect(lines).toContain('podboot_heartbeat_servers 4');
    expect(lines).toContain('podboot_heartbeat_disk_used_ratio{stat="max"} 0.75');
    expect(lines).toContain('podboot_heartbeat_age_seconds{stat="max"} 900');
  });

  it('a figure no heartbeat carries is left out; no watched server: zero of each and no figures', () => {
    expect(heartbeatSummary([node('m1', { liveness: 'silent', heartbeat: { time: 5, metrics: { load1: 0.25 } } })])).toEqual({
      active: 0,
      silent: 1,
      reporting: 1,
      time: { min: 5, avg: 5, max: 5 },
      load1: { min: 0.25, avg: 0.25, max: 0.25 },
    });
    expect(heartbeatSummary([node('m1', { state: 'installing' })])).toEqual({ active: 0, silent: 0, reporting: 0 });
  });
});
