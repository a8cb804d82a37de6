import { describe, expect, it } from 'vitest';
import { parsePod } from '../../../src/config/pod-file.js';
import { formatProblem } from '../../../src/config/types.js';

const pod = (isolation: string) => `apiVersion: podboot/v1
kind: Pod
metadata:
  name: iso
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.31.0.1]
  subnets:
    - { cidr: 10.31.0.0/16, gateway: 10.31.0.1, pool: 10.31.1.0-10.31.1.250 }
${isolation}`;

describe('spec.isolation', () => {
  it('defaults to a process of its own', () => {
    expect(parsePod(pod(''), 'p.yaml').pod?.isolation).toBeUndefined();
  });

  it('reads a netns pod with a VLAN provisioning interface and a management network', () => {
    const r = parsePod(
      pod(`  isolation:
    mode: netns
    provisioning: { parent: eth1, vlan: 100, prefix: 24, gateway: 10.99.0.254 }
    management: { parent: eth1, vlan: 200, address: 192.168.50.10/24, gateway: 192.168.50.1 }
`),
      'p.yaml',
    );
    expect(r.problems).toEqual([]);
    expect(r.pod?.isolation).toEqual({
      mode: 'netns',
      provisioning: { parent: 'eth1', vlan: 100, address: '10.99.0.1', prefix: 24, gateway: '10.99.0.254' },
      management: { parent: 'eth1', vlan: 200, address: '192.168.50.10', prefix: 24, gateway: '192.168.50.1' },
    });
  });

  it('names each mistake at its line and field', () => {
    const r = parsePod(
      pod(`  isolation:
    mode: netns
    provisioning: { parent: "eth1 with spaces", vlan: 5000, gateway: 10.98.0.254 }
    management: { parent: eth2, address: 10.99.0.7/16 }
`),
      'p.yaml',
    );
    expect(r.problems.map(formatProblem)).toEqual([
      'p.yaml:12:29: spec.isolation.provisioning.parent: "eth1 with spaces" is not an interface name (1-15 of A-Z a-z 0-9 _ . -)',
      'p.yaml:12:55: spec.isolation.provisioning.vlan: 5000 is outside 1..4094',
      'p.yaml:12:70: spec.isolation.provisioning.gateway: gateway 10.98.0.254 is not in 10.99.0.0/24',
    ]);
    const overlap = parsePod(
      pod(`  isolation:
    mode: netns
    provisioning: { parent: eth1 }
    management: { parent: eth1, address: 10.99.0.7/16 }
`),
      'p.yaml',
    );
    expect(overlap.problems.map(formatProblem)).toEqual([
      'p.yaml:13:27: spec.isolation.management.parent: the management network needs its own VLAN or parent interface',
      'p.yaml:13:42: spec.isolation.management.address: 10.99.0.7/16 overlaps the provisioning network 10.99.0.0/24',
    ]);
    const missing = parsePod(pod('  isolation: { mode: netns }\n'), 'p.yaml');
    expect(missing.problems.map(formatProblem)).toEqual([expect.stringMatching(/^p\.yaml:10:\d+: spec\.isolation\.provisioning: mode netns needs provisioning/)]);
  });
});
