import { describe, expect, it } from 'vitest';
import { setupPlan } from '../../../src/pod-vm/netns.js';

describe('netns setup plan', () => {
  it('builds a VLAN provisioning interface and a macvlan management interface, with split routes', () => {
    const plan = setupPlan(
      'rack-a',
      {
        mode: 'netns',
        provisioning: { parent: 'eth1', vlan: 100, address: '10.99.0.1', prefix: 24, gateway: '10.99.0.254' },
        management: { parent: 'eth2', address: '192.168.50.10', prefix: 24, gateway: '192.168.50.1' },
      },
      ['10.31.0.0/16', '10.99.0.0/24'],
    ).map((a) => a.join(' '));
    const tmp = plan[2]!.split(' ')[5]!;
    expect(tmp.length).toBeLessThanOrEqual(15);
    expect(plan).toEqual([
      'netns add podboot-rack-a',
      '-n podboot-rack-a link set lo up',
      `link add link eth1 name ${tmp} type vlan id 100`,
      `link set ${tmp} netns podboot-rack-a`,
      `-n podboot-rack-a link set ${tmp} name prov0`,
      '-n podboot-rack-a addr add 10.99.0.1/24 dev prov0',
      '-n podboot-rack-a link set prov0 up',
      // 10.99.0.0/24 is on the provisioning link itself: no route through the gateway
      '-n podboot-rack-a route add 10.31.0.0/16 via 10.99.0.254 dev prov0',
      expect.stringMatching(/^link add link eth2 name pb[0-9a-f]{10}m type macvlan mode bridge$/),
      expect.stringMatching(/^link set pb[0-9a-f]{10}m netns podboot-rack-a$/),
      expect.stringMatching(/^-n podboot-rack-a link set pb[0-9a-f]{10}m name mgmt0$/),
      '-n podboot-rack-a addr add 192.168.50.10/24 dev mgmt0',
      '-n podboot-rack-a link set mgmt0 up',
      '-n podboot-rack-a route add default via 192.168.50.1 dev mgmt0',
    ]);
  });

  it('without a management network the provisioning gateway is the default route', () => {
    const plan = setupPlan('b', { mode: 'netns', provisioning: { parent: 'eth1', address: '10.98.0.1', prefix: 24, gateway: '10.98.0.254' } }, ['10.32.0.0/16']).map((a) => a.join(' '));
    expect(plan.at(-1)).toBe('-n podboot-b route add default via 10.98.0.254 dev prov0');
    expect(plan[2]).toMatch(/type macvlan mode bridge$/);
  });
});
