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

describe('listener self-probe', () => {
  it('reads bound UDP sockets from /proc/net/udp', async () => {
    const { boundUdp } = await import('../../../src/pod-vm/probe.js');
    // Captured: 127.0.0.1:21067 and 0.0.0.0:68
    const text = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  512: 0100007F:524B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 0
  600: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123457 2 0000000000000000 0
`;
    expect([...boundUdp(text)]).toEqual(['127.0.0.1:21067', '0.0.0.0:68']);
  });

  it('probes this process: a bound UDP socket and a listening TCP port answer, a closed one does not', async () => {
    const { probeListeners } = await import('../../../src/pod-vm/probe.js');
    const dgram = await import('node:dgram');
    const net = await import('node:net');
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const tcp = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const port = udp.address().port;
    const r = await probeListeners({ address: '127.0.0.1', dhcpPort: port, tftpPort: port + 1 === 65536 ? 1 : port + 1, httpPort: (tcp.address() as { port: number }).port, httpsPort: closedPort }, 1000);
    udp.close();
    tcp.close();
    expect(r.map((x) => [x.listener.split(' ')[0], x.ok])).toEqual([
      ['dhcp', true],
      ['tftp', false],
      ['http', true],
      ['https', false],
    ]);
    expect(r[3]!.detail).toMatch(/ECONNREFUSED/);
  });
});
