// What the supervisor itself knows about each instance (from /proc and its
// own bookkeeping), as metrics with a `pod` label. Pure.
import type { InstanceStatus } from '../pod-vm/instance.js';
import type { Family, Sample } from './exposition.js';

export const INSTANCE_STATES = ['starting', 'running', 'degraded', 'busy', 'error', 'crashed', 'crash-loop', 'upgrading', 'stopping', 'stopped'] as const;

export function supervisorFamilies(list: readonly InstanceStatus[]): Family[] {
  const per = (pick: (s: InstanceStatus) => number | undefined): Sample[] =>
    list.flatMap((s) => {
      const v = pick(s);
      return v === undefined ? [] : [{ labels: { pod: s.pod }, value: v }];
    });
  return [
    { name: 'podboot_instance_up', help: '1 while the instance is running (degraded included)', type: 'gauge', samples: per((s) => (s.state === 'running' || s.state === 'degraded' ? 1 : 0)) },
    {
      name: 'podboot_instance_state',
      help: 'the instance state (1 for the current one)',
      type: 'gauge',
      samples: list.flatMap((s) => INSTANCE_STATES.map((st) => ({ labels: { pod: s.pod, state: st }, value: s.state === st ? 1 : 0 }))),
    },
    { name: 'podboot_instance_restarts_total', help: 'times the supervisor started the instance again', type: 'counter', samples: per((s) => s.restarts) },
    { name: 'podboot_instance_cpu_seconds_total', help: 'CPU time of the current instance process', type: 'counter', samples: per((s) => s.cpuSeconds) },
    { name: 'podboot_instance_resident_memory_bytes', help: 'RSS of the instance process', type: 'gauge', samples: per((s) => s.rssBytes) },
    { name: 'podboot_instance_threads', help: 'threads of the instance process', type: 'gauge', samples: per((s) => s.threads) },
    { name: 'podboot_instance_open_fds', help: 'open file descriptors of the instance process', type: 'gauge', samples: per((s) => s.fds) },
    { name: 'podboot_instance_uptime_seconds', help: 'time since the instance process started', type: 'gauge', samples: per((s) => s.uptimeSec) },
  ];
}
