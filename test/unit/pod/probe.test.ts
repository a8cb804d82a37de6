// The pod's self-probe of its listeners (src/pod/probe.ts), run inside the
// pod's process: bound UDP sockets read from /proc, TCP listeners connected to.
import { describe, expect, it } from 'vitest';
import { boundUdp, probeListeners } from '../../../src/pod/probe.js';

describe('listener self-probe', () => {
  it('reads bound UDP sockets from /proc/net/udp', () => {
    // Captured: 127.0.0.1:21067 and 0.0.0.0:68
    const text = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  512: 0100007F:524B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 0
  600: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123457 2 0000000000000000 0
`;
    expect([...boundUdp(text)]).toEqual(['127.0.0.1:21067', '0.0.0.0:68']);
  });

  it('probes this process: a bound UDP socket and a listening TCP port answer, a closed one does not', async () => {
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
    const r = await probeListeners(
      { address: '127.0.0.1', dhcpPort: port, tftpPort: port + 1 === 65536 ? 1 : port + 1, httpPort: (tcp.address() as { port: number }).port, httpsPort: closedPort },
      1000,
    );
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
