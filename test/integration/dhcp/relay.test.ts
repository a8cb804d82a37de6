// The rack as it is in production: ISC dhcrelay on a top-of-rack namespace
// relays a bridge of clients across a veth "WAN" to the pod instance in a
// "central" namespace. Real ISC dhclient and perfdhcp talk to it.
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageType, Opt } from '../../../src/dhcp/codec/constants.js';
import { decodePacket } from '../../../src/dhcp/codec/packet.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';
import { readUdpPcap } from '../../helpers/pcap.js';

const FIXED_MAC = '52:54:00:00:00:11';
const POD_YAML = `apiVersion: podboot/v1
kind: Pod
metadata:
  name: rack-a
spec:
  listen:
    address: 10.99.0.1
    dhcpPort: 67
  relays: [10.20.0.1, 10.30.0.1]
  subnets:
    - cidr: 10.20.0.0/24
      gateway: 10.20.0.1
      pool: 10.20.0.100-10.20.0.199
      dns: [10.20.0.1]
      leaseTime: 20s
    - cidr: 10.30.0.0/16
      gateway: 10.30.0.1
      pool: 10.30.1.0-10.30.255.250
      leaseTime: 1h
  nodes:
    - { mac: "${FIXED_MAC}", hostname: n1, address: 10.20.0.11 }
  unknownNodes: provision
`;

describe('relayed DHCP through ISC dhcrelay', () => {
  const lab = new Lab('pbd');
  let pod: Daemon;
  let relay: Daemon;

  beforeAll(async () => {
    requireBuild();
    for (const n of ['central', 'tor', 'cl1', 'cl2', 'probe', 'perf']) lab.addNs(n);
    lab.veth({ ns: 'central', ifname: 'wan-c', addr: '10.99.0.1/30' }, { ns: 'tor', ifname: 'wan-t', addr: '10.99.0.2/30' });
    lab.ip('central', 'route', 'add', '10.20.0.0/24', 'via', '10.99.0.2');
    lab.veth({ ns: 'central', ifname: 'pf-c', addr: '10.30.0.254/16' }, { ns: 'perf', ifname: 'pf-p', addr: '10.30.0.1/16' });
    lab.ip('perf', 'route', 'add', '10.99.0.1', 'via', '10.30.0.254');
    lab.ip('tor', 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    lab.ip('tor', 'addr', 'add', '10.20.0.1/24', 'dev', 'br0');
    lab.ip('tor', 'link', 'set', 'br0', 'up');
    lab.exec('tor', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    const macs: Record<string, string> = { cl1: '52:54:00:20:00:01', cl2: FIXED_MAC, probe: '52:54:00:20:00:03' };
    for (const c of ['cl1', 'cl2', 'probe']) {
      lab.veth({ ns: 'tor', ifname: `${c}-t` }, { ns: c, ifname: `${c}-c` });
      lab.ip('tor', 'link', 'set', `${c}-t`, 'master', 'br0');
      lab.ip(c, 'link', 'set', `${c}-c`, 'address', macs[c]!);
    }
    // The probe namespace sends crafted broadcasts: it needs an address and a route to do so.
    lab.ip('probe', 'addr', 'add', '10.20.0.250/24', 'dev', 'probe-c');
    lab.ip('probe', 'route', 'add', 'default', 'via', '10.20.0.1');

    const podFile = join(lab.dir, 'rack-a.yaml');
    writeFileSync(podFile, POD_YAML);
    pod = lab.spawn('central', process.execPath, [PODBOOT, 'pod', 'run', podFile, '--state', join(lab.dir, 'state')], 'pod');
    await pod.waitFor(/dhcp listening/);
    // -a: add option 82 (circuit id = receiving interface, remote id) to every relayed request.
    relay = lab.spawn('tor', 'dhcrelay', ['-4', '-d', '--no-pid', '-a', '-id', 'br0', '-iu', 'wan-t', '10.99.0.1'], 'dhcrelay');
    await relay.waitFor(/Sending on|Listening on/);
  });

  afterAll(async () => {
    await lab.cleanup();
  });

  function dhclientScript(name: string): { script: string; events: string } {
    const events = join(lab.dir, `${name}.events`);
    const script = join(lab.dir, `${name}-script.sh`);
    // Our own dhclient-script: configures the address and route, and records each event.
    writeFileSync(
      script,
      `#!/bin/sh
echo "$reason $new_ip_address $new_host_name" >> ${events}
case "$reason" in
  BOUND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    ip route replace default via "$new_routers" dev "$interface" ;;
esac
exit 0
`,
    );
    chmodSync(script, 0o755);
    return { script, events };
  }

  async function waitForEvent(file: string, pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const m = text.match(pattern);
      if (m) return m[0];
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no ${pattern} in ${file} within ${timeoutMs} ms: ${existsSync(file) ? readFileSync(file, 'utf8') : '(empty)'}`);
  }

  it('dhclient gets a pool address, a listed node its fixed address, and the lease renews', async () => {
    const c1 = dhclientScript('cl1');
    const c2 = dhclientScript('cl2');
    const d1 = lab.spawn('cl1', 'dhclient', ['-4', '-d', '-v', '-sf', c1.script, '-lf', join(lab.dir, 'cl1.leases'), '-pf', join(lab.dir, 'cl1.pid'), 'cl1-c'], 'dhclient1');
    const d2 = lab.spawn('cl2', 'dhclient', ['-4', '-d', '-v', '-sf', c2.script, '-lf', join(lab.dir, 'cl2.leases'), '-pf', join(lab.dir, 'cl2.pid'), 'cl2-c'], 'dhclient2');
    const bound1 = await waitForEvent(c1.events, /BOUND (\S+)/, 30_000);
    const addr1 = bound1.split(' ')[1]!;
    const last = Number(addr1.split('.')[3]);
    expect(addr1.startsWith('10.20.0.')).toBe(true);
    expect(last).toBeGreaterThanOrEqual(100);
    expect(last).toBeLessThanOrEqual(199);
    expect(lab.exec('cl1', 'ip', ['-4', 'addr', 'show', 'cl1-c'])).toContain(`inet ${addr1}/24`);

    const bound2 = await waitForEvent(c2.events, /BOUND (\S+) (\S*)/, 30_000);
    expect(bound2).toBe('BOUND 10.20.0.11 n1');

    // leaseTime 20s → T1 10s: dhclient unicasts a RENEW to the pod's address across the WAN.
    const renew = await waitForEvent(c1.events, /RENEW (\S+)/, 30_000);
    expect(renew).toBe(`RENEW ${addr1}`);
    expect(pod.log()).toMatch(new RegExp(`"mac":"52:54:00:20:00:01".*"giaddr":"0.0.0.0".*"type":"REQUEST".*"address":"${addr1.replace(/\./g, '\\.')}".*DHCPACK`));
    await d1.stop();
    await d2.stop();
  });

  it('a crafted PXE client on the rack gets the boot file for its architecture through the relay', async () => {
    const cases: [string[], string][] = [
      [['--arch', '0'], 'undionly.kpxe'],
      [['--arch', '7'], 'snponly.efi'],
      [['--arch', '11'], 'snponly-arm64.efi'],
      [['--arch', '16', '--vendor-class', 'HTTPClient:Arch:00016:UNDI:003016'], 'http://10.99.0.1:80/boot/ipxe.efi'],
      [['--arch', '0', '--user-class', 'iPXE'], 'http://10.99.0.1:80/ipxe/52-54-00-20-00-03.ipxe'],
    ];
    for (const [args, file] of cases) {
      const out = lab.exec('probe', process.execPath, [PODBOOT, 'dhcp', 'probe', '--broadcast', '--mac', '52:54:00:20:00:03', '--discover-only', '--timeout', '5000', ...args]);
      const offer = JSON.parse(out.trim().split('\n')[0]!);
      expect(offer.type).toBe('OFFER');
      expect(offer.bootfile).toBe(file);
      expect(offer.siaddr).toBe('10.99.0.1');
      if (file.startsWith('http://10.99.0.1:80/boot/ipxe.efi')) expect(offer.vendorClass).toBe('HTTPClient');
    }
  });

  it('option 82 added by dhcrelay comes back unchanged, in a reply unicast to giaddr:67', async () => {
    const pcap = join(lab.dir, 'wan.pcap');
    const dump = lab.spawn('central', 'tcpdump', ['-i', 'wan-c', '-n', '--immediate-mode', '-U', '-w', pcap, 'udp port 67'], 'tcpdump');
    await dump.waitFor(/listening on/);
    lab.exec('probe', process.execPath, [PODBOOT, 'dhcp', 'probe', '--broadcast', '--mac', '52:54:00:20:00:03', '--timeout', '5000', '--arch', '0']);
    await new Promise((r) => setTimeout(r, 300));
    await dump.stop('SIGINT');
    const records = readUdpPcap(pcap);
    const decoded = records.map((r) => ({ ...r, p: decodePacket(r.payload) })).filter((r) => r.p.ok);
    const requests = decoded.filter((r) => r.p.ok && r.p.packet.op === 1);
    const replies = decoded.filter((r) => r.p.ok && r.p.packet.op === 2);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(replies.length).toBeGreaterThanOrEqual(2);
    for (const rep of replies) {
      const reply = rep.p.ok ? rep.p.packet : undefined;
      const req = requests.find(
        (q) => q.p.ok && q.p.packet.xid === reply!.xid && q.p.packet.options.get(Opt.MESSAGE_TYPE)![0] === (reply!.options.get(Opt.MESSAGE_TYPE)![0] === MessageType.OFFER ? 1 : 3),
      );
      expect(req).toBeDefined();
      const sent = req!.p.ok ? req!.p.packet.options.get(Opt.RELAY_AGENT_INFO) : undefined;
      expect(sent, 'dhcrelay -a added option 82').toBeDefined();
      // circuit id is the relay's receiving interface name
      expect(sent!.includes(Buffer.from('br0'))).toBe(true);
      expect(reply!.options.get(Opt.RELAY_AGENT_INFO)!.equals(sent!)).toBe(true);
      expect(rep.dst).toBe('10.20.0.1');
      expect(rep.dport).toBe(67);
      expect(rep.src).toBe('10.99.0.1');
      expect(reply!.giaddr).toBe(req!.p.ok ? req!.p.packet.giaddr : -1);
    }
  });

  it('perfdhcp in relay mode completes 4-way exchanges', async () => {
    const out = lab.exec('perf', 'perfdhcp', ['-4', '-l', '10.30.0.1', '-L', '67', '-r', '200', '-R', '400', '-p', '3', '-d', '1', '-W', '1000000', '10.99.0.1'], { allowFail: false });
    const section = (name: string) => out.slice(out.indexOf(`Statistics for: ${name}`));
    const num = (text: string, field: string) => Number(text.match(new RegExp(`${field}: (\\d+)`))![1]);
    const ra = section('REQUEST-ACK');
    const sent = num(ra, 'sent packets');
    const received = num(ra, 'received packets');
    expect(sent).toBeGreaterThan(300);
    expect(received / sent).toBeGreaterThan(0.99);
  });
});
