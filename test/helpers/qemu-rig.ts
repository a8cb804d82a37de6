// A rack in network namespaces, for QEMU boot tests: the pod in `central`
// (10.99.0.1) reaches the rack across a veth "WAN"; `tor` holds the rack's
// bridge br0 (10.20.0.1/24) with one tap per VM, ISC dhcrelay relaying to the
// pod (with option 82), and an IPv6 router advertisement on br0 so iPXE does
// not wait ~16 s for one. QEMU runs inside `tor` with TCG (no KVM here).
// Everything is removed by cleanup(), after a failed test too.
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { OVMF_CODE, OVMF_VARS } from '../../src/lab/firmware.js';
import { join } from 'node:path';
import { Lab, PODBOOT, type Daemon } from './netns.js';

export const POD_ADDRESS = '10.99.0.1';
export const RACK_GATEWAY = '10.20.0.1';
export const RACK_CIDR = '10.20.0.0/24';
/** ULA prefix advertised on br0: only there so iPXE sees a router and stops waiting for one */
export const RACK_ULA = 'fd99:20::1/64';

export interface RigOptions {
  /** namespace prefix (unique per test file) */
  prefix: string;
  /** advertise an IPv6 prefix on br0 (default true) */
  ra?: boolean;
  /** dhcrelay adds option 82 (default true) */
  option82?: boolean;
}

export interface VmOptions {
  name: string;
  mac: string;
  nic?: 'virtio-net-pci' | 'e1000';
  memMb?: number;
  /** virtual CPUs (default 1); under TCG each runs on a host thread of its own */
  cpus?: number;
  /** raw disk image (the file is used in place) */
  disk?: string;
  diskInterface?: 'virtio' | 'ide';
  /** SeaBIOS boot order: 'n' network, 'c' disk, e.g. 'nc' (default 'n') */
  bootOrder?: string;
  /** stop instead of rebooting (default false: the full install test needs the reboot) */
  noReboot?: boolean;
  /** more NICs, each on its own tap in a bridge of `tor` made with addBridge (virtio-net, no option ROM) */
  moreNics?: { mac: string; bridge: string }[];
  /** 'uefi': OVMF with a copy of its variable store per VM, OVMF's own PXE client (no iPXE ROM); default SeaBIOS */
  firmware?: 'bios' | 'uefi';
  extraArgs?: string[];
}

export interface Vm {
  name: string;
  mac: string;
  tap: string;
  /** the serial console (and QEMU's own messages) */
  logFile: string;
  log(): string;
  /** resolves with the first match of `pattern` in the console log */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** like waitFor, and returns the time (Date.now()) it was first seen, to within the poll interval */
  waitForAt(pattern: RegExp, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
  daemon: Daemon;
}

export class QemuRig {
  readonly lab: Lab;
  private relay?: Daemon;
  private ra?: Daemon;
  private pod?: Daemon;
  private vms: Vm[] = [];
  private taps = 0;

  constructor(readonly opts: RigOptions) {
    this.lab = new Lab(opts.prefix);
  }

  get dir(): string {
    return this.lab.dir;
  }

  /** Namespaces, the WAN, the rack bridge, dhcrelay and (optionally) the RA daemon. */
  async setup(): Promise<void> {
    const lab = this.lab;
    lab.addNs('central');
    lab.addNs('tor');
    lab.veth({ ns: 'central', ifname: 'wan-c', addr: `${POD_ADDRESS}/30` }, { ns: 'tor', ifname: 'wan-t', addr: '10.99.0.2/30' });
    lab.ip('central', 'route', 'add', RACK_CIDR, 'via', '10.99.0.2');
    lab.ip('tor', 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    lab.ip('tor', 'addr', 'add', `${RACK_GATEWAY}/24`, 'dev', 'br0');
    lab.ip('tor', 'link', 'set', 'br0', 'up');
    lab.exec('tor', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    if (this.opts.ra ?? true) {
      lab.ip('tor', '-6', 'addr', 'add', RACK_ULA, 'dev', 'br0', 'nodad');
      // RA only: no DHCPv6, no DNS (port 0), nothing but the prefix. --conf-file=/dev/null keeps the host's config out.
      this.ra = lab.spawn(
        'tor',
        'dnsmasq',
        [
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          '--port=0',
          '--no-resolv',
          '--no-hosts',
          '--interface=br0',
          '--bind-interfaces',
          '--enable-ra',
          '--dhcp-range=fd99:20::,ra-only,64',
          '--ra-param=br0,10,600',
          '--log-facility=-',
          '--user=root',
          '--pid-file=',
        ],
        'dnsmasq-ra',
      );
    }
    const relayArgs = ['-4', '-d', '--no-pid', ...((this.opts.option82 ?? true) ? ['-a'] : []), '-id', 'br0', '-iu', 'wan-t', POD_ADDRESS];
    this.relay = lab.spawn('tor', 'dhcrelay', relayArgs, 'dhcrelay');
    await this.relay.waitFor(/Sending on|Listening on/);
  }

  /**
   * Another bridge in `tor` with `tor` as its router at `gateway`/prefix, and
   * a route to it from `central`: a second network of the rack, such as the
   * servers' management network.
   */
  addBridge(name: string, gatewayCidr: string, networkCidr: string): void {
    this.lab.ip('tor', 'link', 'add', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    this.lab.ip('tor', 'addr', 'add', gatewayCidr, 'dev', name);
    this.lab.ip('tor', 'link', 'set', name, 'up');
    this.lab.ip('central', 'route', 'add', networkCidr, 'via', '10.99.0.2');
  }

  private addTap(bridge: string): string {
    const tap = `tap${this.taps++}`;
    this.lab.ip('tor', 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    this.lab.ip('tor', 'link', 'set', tap, 'master', bridge);
    this.lab.ip('tor', 'link', 'set', tap, 'up');
    return tap;
  }

  /** `podboot pod run` in `central`; resolves when DHCP and TFTP listen. */
  async startPod(podYaml: string, stateRoot: string, extraArgs: string[] = [], ready: RegExp[] = [/dhcp listening/, /tftp listening/]): Promise<Daemon> {
    const file = join(this.lab.dir, 'pod.yaml');
    writeFileSync(file, podYaml);
    this.pod = this.lab.spawn('central', process.execPath, [PODBOOT, 'pod', 'run', file, '--state', stateRoot, ...extraArgs], 'pod');
    for (const r of ready) await this.pod.waitFor(r, 30_000);
    return this.pod;
  }

  /** One VM on its own tap in the rack bridge. */
  startVm(o: VmOptions): Vm {
    const tap = this.addTap('br0');
    const uefi = o.firmware === 'uefi';
    const args = [
      '-machine',
      'pc,accel=tcg',
      '-m',
      String(o.memMb ?? 512),
      '-smp',
      String(o.cpus ?? 1),
      '-nographic',
      // OVMF keeps its boot order in its variable store, as a server's firmware does; -boot is SeaBIOS's
      ...(uefi ? [] : ['-boot', `order=${o.bootOrder ?? 'n'}`]),
      '-netdev',
      `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device',
      `${o.nic ?? 'virtio-net-pci'},netdev=n0,mac=${o.mac}${uefi ? ',romfile=' : ''}`,
    ];
    (o.moreNics ?? []).forEach((n, i) => {
      const t = this.addTap(n.bridge);
      args.push('-netdev', `tap,id=m${i},ifname=${t},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=m${i},mac=${n.mac},romfile=`);
    });
    if (uefi) {
      const vars = join(this.lab.dir, `${o.name}.vars.fd`);
      if (!existsSync(vars)) copyFileSync(OVMF_VARS, vars);
      args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
    }
    if (o.disk) args.push('-drive', `file=${o.disk},format=raw,if=${o.diskInterface ?? 'virtio'}`);
    if (o.noReboot) args.push('-no-reboot');
    args.push(...(o.extraArgs ?? []));
    const daemon = this.lab.spawn('tor', 'qemu-system-x86_64', args, `vm-${o.name}`);
    const waitForAt = async (pattern: RegExp, timeoutMs = 120_000) => {
      await daemon.waitFor(pattern, timeoutMs);
      return Date.now();
    };
    const vm: Vm = {
      name: o.name,
      mac: o.mac,
      tap,
      logFile: daemon.logFile,
      log: () => daemon.log(),
      waitFor: (p, t = 120_000) => daemon.waitFor(p, t),
      waitForAt,
      stop: async () => {
        await daemon.stop('SIGKILL');
      },
      daemon,
    };
    this.vms.push(vm);
    return vm;
  }

  /** the last VM started with this MAC */
  vmByMac(mac: string): Vm | undefined {
    return [...this.vms].reverse().find((v) => v.mac === mac);
  }

  async cleanup(): Promise<void> {
    for (const vm of this.vms) await vm.stop().catch(() => undefined);
    await this.lab.cleanup();
  }
}
