// `podboot lab up`: trust material, images, namespaces, the WAN, the racks'
// relays and the central node, all recorded in the state file as they are
// made (before they are made, where that is possible) so `lab down` can
// remove a half-built rig too.
import { blockedAncestor, NOBODY_UID } from '../pod-vm/pod-user.js';
import { constants, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { installStage1 } from '../images/stage1.js';
import { packageRoot } from '../package-root.js';
import { OVMF_CODE, OVMF_VARS } from './firmware.js';
import { LAB_SSH_USER, MGMT_BRIDGE, labImage, makePlan, podYaml, type LabOptions, type LabOs, type LabPlan, type RackPlan } from './plan.js';
import { CommandError, ipn, ns, run, spawnDetached, statePath, waitForLog, writeState, type LabState, type RecordedProcess } from './sys.js';
import { LAB_HTTPS_PORT, wanCountersFile } from './wan-counters.js';

/** The CLI the lab runs for the central node and its helper commands. */
export const CLI_SCRIPT = fileURLToPath(new URL('../cli/main.js', import.meta.url));
export const STAGE2_NAME = 'lab-stage2';
export const STAGE2_VERSION = '1.0';
/** entries of DIR a lab makes; `lab down` without a state file removes only these */
export const LAB_ENTRIES = ['lab-state.json', 'pods', 'state', 'vms', 'logs', 'stage2', 'ssh', 'wan'];
/** the Debian image as `podboot images build-debian` leaves it in the lab's cache, its report beside it */
export const DEBIAN_IMAGE_FILE = 'debian-12.img.zst';
export const DEBIAN_REPORT_FILE = 'debian-12.json';

export interface UpOptions {
  dir: string;
  cacheDir?: string;
  lab: LabOptions;
  out?: (line: string) => void;
}

export function labLogger(dir: string, command: string): Logger {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  return pino(
    { base: { component: 'lab', command }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ dest: join(dir, 'logs', 'lab.log'), sync: true, append: true }),
  );
}

/** podboot itself, as a child process (the same build that runs this). */
export function podboot(args: string[]): string {
  return run(process.execPath, [CLI_SCRIPT, ...args], { timeoutMs: 900_000 });
}

export function stage2Dir(dir: string, pod: string, os?: LabOs): string {
  const image = labImage(os);
  return join(dir, 'state', pod, 'images', `${image.name}@${image.version}`);
}

/** The private key `lab up --os debian` makes; its public half is in every rack's pod YAML (user ops). */
export function sshKeyPath(dir: string): string {
  return join(dir, 'ssh', 'id_ed25519');
}

/** One flipped byte in the middle of a pod's stage2 copy: the signature no longer matches. */
export function tamperStage2(dir: string, pod: string, os?: LabOs): void {
  const image = join(stage2Dir(dir, pod, os), 'image');
  const bytes = readFileSync(image);
  bytes[bytes.length >> 1]! ^= 0x01;
  writeFileSync(image, bytes);
}

/** Can this kernel do netem? Tried on a throwaway veth pair in the wan namespace, removed right after. */
export function netemAvailable(wanNs: string): boolean {
  ipn(wanNs, 'link', 'add', 'pbnt0', 'type', 'veth', 'peer', 'name', 'pbnt1');
  try {
    run('ip', ['netns', 'exec', wanNs, 'tc', 'qdisc', 'add', 'dev', 'pbnt0', 'root', 'netem', 'delay', '1ms']);
    return true;
  } catch {
    return false;
  } finally {
    run('ip', ['-n', wanNs, 'link', 'del', 'pbnt0'], { allowFail: true });
  }
}

const OFFLOADS_OFF = ['tx', 'off', 'tso', 'off', 'gso', 'off', 'sg', 'off', 'gro', 'off'];

export async function labUp(o: UpOptions): Promise<LabState> {
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  if (o.lab.firmware === 'uefi') {
    const missing = [OVMF_CODE, OVMF_VARS].filter((f) => !existsSync(f));
    if (missing.length) throw new CommandError(`--firmware uefi needs OVMF: ${missing.join(', ')} missing (apt-get install ovmf; podboot lab doctor)`);
  }
  if (process.getuid?.() !== 0) throw new CommandError('podboot lab needs root (network namespaces, taps); run podboot lab doctor');
  const createdDir = !existsSync(o.dir);
  mkdirSync(o.dir, { recursive: true });
  // The central node runs each pod as its own unprivileged user, in DIR/state/<pod>: say so now, not after a 90 s wait.
  const blocked = blockedAncestor(join(o.dir, 'state'), NOBODY_UID);
  if (blocked)
    throw new CommandError(
      `the lab's pods run as their own unprivileged users and must pass through ${blocked.dir} (mode ${blocked.mode.toString(8).padStart(4, '0')}) to reach ${join(o.dir, 'state')}: chmod o+x ${blocked.dir}, or choose another --dir`,
    );
  if (existsSync(statePath(o.dir))) throw new CommandError(`a lab is already up in ${o.dir} (podboot lab down --dir ${o.dir} first)`);
  const stray = readdirSync(o.dir).filter((e) => LAB_ENTRIES.includes(e));
  if (stray.length) throw new CommandError(`${o.dir} holds ${stray.join(', ')} from an earlier lab: podboot lab down --dir ${o.dir} removes them`);

  const plan = makePlan(o.dir, o.lab);
  const useNetem = o.lab.wanRttMs > 0 || o.lab.wanLoss > 0;
  const state: LabState = {
    version: 1,
    dir: plan.dir,
    prefix: plan.prefix,
    created: new Date().toISOString(),
    status: 'building',
    options: o.lab,
    wan: 'bridge',
    namespaces: [],
    processes: [],
    files: [...LAB_ENTRIES],
    createdDir,
  };
  // Written first and exclusively: the lock that keeps a second `lab up` on this DIR out.
  try {
    writeFileSync(statePath(o.dir), JSON.stringify(state, null, 2) + '\n', { flag: 'wx' });
  } catch {
    throw new CommandError(`a lab is already being built in ${o.dir}`);
  }
  const log = labLogger(o.dir, 'up');
  log.info({ dir: plan.dir, prefix: plan.prefix, options: o.lab }, 'lab up');
  const save = () => writeState(state);
  const track = (p: RecordedProcess) => {
    state.processes.push(p);
    save();
    return p;
  };

  // 1. Trust material and images, before any namespace: a failure here leaves nothing to clean but files.
  const cache = o.cacheDir ?? join(packageRoot(), '.cache');
  const stateRoot = join(plan.dir, 'state');
  const debian = o.lab.os === 'debian';
  const served = labImage(o.lab.os);
  out(`building or checking stage1 and ${debian ? 'the Debian 12 image' : 'the lab stage2'} (cached in ${cache})`);
  podboot(['images', 'build-stage1', '--out', join(cache, 'stage1'), '--cache', join(cache, 'debs')]);
  if (debian) {
    // cached by its package set (outside the checkout): after the first build on a machine this only checks and copies
    podboot(['images', 'build-debian', '--out', join(cache, DEBIAN_IMAGE_FILE)]);
  } else {
    podboot(['images', 'build-lab-stage2', '--out', join(cache, 'lab-stage2.img'), '--cache', join(cache, 'debs')]);
  }
  const ca = join(stateRoot, 'ca');
  mkdirSync(stateRoot, { recursive: true });
  podboot(['ca', 'init', '--out', ca, '--org', 'podboot lab']);
  podboot(['ca', 'issue-signer', 'lab', '--ca', ca]);
  const signed = join(plan.dir, 'stage2');
  mkdirSync(signed, { recursive: true });
  const image = join(signed, served.file);
  // a copy-on-write clone where the file system can (the Debian image is 240 MiB per copy), else a copy
  copyFileSync(join(cache, debian ? DEBIAN_IMAGE_FILE : 'lab-stage2.img'), image, constants.COPYFILE_FICLONE);
  const pods = plan.racks.map((r) => r.pod).join(',');
  podboot([
    'sign',
    image,
    '--cert',
    join(ca, 'signers', 'lab.chain.pem'),
    '--key',
    join(ca, 'signers', 'lab.key'),
    '--name',
    served.name,
    '--version',
    served.version,
    '--pods',
    pods,
    '--not-after',
    '30d',
  ]);
  let sshPublicKey: string | undefined;
  if (debian) {
    // the operator's way in: one key for every server of the lab, made here and nowhere else
    const key = sshKeyPath(plan.dir);
    mkdirSync(join(plan.dir, 'ssh'), { recursive: true, mode: 0o700 });
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `podboot-lab@${plan.prefix}`, '-f', key]);
    sshPublicKey = readFileSync(`${key}.pub`, 'utf8').trim();
  }
  const rootCa = readFileSync(join(ca, 'root.pem'));
  const podsDir = join(plan.dir, 'pods');
  mkdirSync(podsDir, { recursive: true });
  mkdirSync(join(plan.dir, 'vms'), { recursive: true });
  for (const rack of plan.racks) {
    // As `podboot images onboard` lays a pod's copy out.
    const to = stage2Dir(plan.dir, rack.pod, o.lab.os);
    mkdirSync(to, { recursive: true });
    copyFileSync(image, join(to, 'image'), constants.COPYFILE_FICLONE);
    copyFileSync(`${image}.p7s`, join(to, 'image.p7s'));
    copyFileSync(`${image}.manifest.json`, join(to, 'manifest.json'));
    copyFileSync(`${image}.manifest.json.p7s`, join(to, 'manifest.json.p7s'));
    // The pod serves what is in its boot tree: stage1 with this lab's root CA baked in.
    installStage1(join(cache, 'stage1'), join(stateRoot, rack.pod, 'boot'), rootCa);
    writeFileSync(join(podsDir, `${rack.pod}.yaml`), podYaml(rack, o.lab.stage1, sshPublicKey === undefined ? undefined : { sshPublicKey }));
  }
  if (o.lab.tamper) {
    tamperStage2(plan.dir, o.lab.tamper, o.lab.os);
    state.tampered = [o.lab.tamper];
    save();
    out(`tampered: one byte of ${o.lab.tamper}'s stage2 copy flipped; its VMs must fail at verify`);
  }
  log.info({ cache, pods }, 'trust material, stage1 and signed stage2 in place');

  // 2. Namespaces and the WAN.
  for (const name of [plan.centralNs, plan.wanNs, ...plan.racks.map((r) => r.torNs)]) {
    run('ip', ['netns', 'del', name], { allowFail: true });
    state.namespaces.push(name);
    save();
    run('ip', ['netns', 'add', name]);
    ipn(name, 'link', 'set', 'lo', 'up');
  }
  // A rate cap always takes the user-space link: its byte counters are what the boot reports.
  const rated = (o.lab.wanRateBps ?? 0) > 0;
  state.wan = rated ? 'user-space' : !useNetem ? 'bridge' : netemAvailable(plan.wanNs) ? 'netem' : 'user-space';
  save();
  const wanNote = rated
    ? 'rate cap: lab/wan-link.py (AF_PACKET), counters in DIR/wan'
    : !useNetem
      ? 'no delay or loss asked: a plain bridge'
      : state.wan === 'netem'
        ? 'netem'
        : 'no netem in this kernel: lab/wan-link.py (AF_PACKET), counters in DIR/wan';
  const rateNote = rated ? `, rate ${(o.lab.wanRateBps! / 1e6).toFixed(3)} Mbit/s per direction` : '';
  out(`WAN: rtt ${o.lab.wanRttMs} ms, loss ${(o.lab.wanLoss * 100).toFixed(2)}% per direction${rateNote}, ${wanNote}`);
  log.info({ wan: state.wan, useNetem, rttMs: o.lab.wanRttMs, loss: o.lab.wanLoss, rateBps: o.lab.wanRateBps ?? 0 }, 'wan emulation chosen');
  if (state.wan === 'user-space') mkdirSync(join(plan.dir, 'wan'), { recursive: true });
  for (const rack of plan.racks) buildRackNetwork(plan, rack, state.wan, o.lab, track);

  // 3. Relays and router advertisements in each rack.
  for (const rack of plan.racks) {
    const logs = join(plan.dir, 'logs');
    const ra = track(
      spawnDetached(
        rack.torNs,
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
          `--dhcp-range=fd99:20:${rack.index}::,ra-only,64`,
          '--ra-param=br0,10,600',
          '--log-facility=-',
          '--user=root',
          '--pid-file=',
        ],
        join(logs, `ra-${rack.pod}.log`),
        `dnsmasq-ra-${rack.pod}`,
      ),
    );
    const relayLog = join(logs, `dhcrelay-${rack.pod}.log`);
    const relay = track(spawnDetached(rack.torNs, 'dhcrelay', ['-4', '-d', '--no-pid', '-a', '-id', 'br0', '-iu', rack.torIf, rack.podAddress], relayLog, `dhcrelay-${rack.pod}`));
    await waitForLog(relayLog, /Sending on|Listening on/, 15_000, relay);
    void ra;
  }

  // 4. The central node: one supervised pod instance per rack.
  const central = track(
    spawnDetached(
      plan.centralNs,
      process.execPath,
      [CLI_SCRIPT, 'serve', '--pods', podsDir, '--state', stateRoot, '--catalog', join(stateRoot, 'catalog')],
      join(plan.dir, 'logs', 'central.log'),
      'central',
    ),
  );
  for (const rack of plan.racks) {
    const instanceLog = join(stateRoot, rack.pod, 'instance.log');
    for (const ready of [/dhcp listening/, /tftp listening/, /http boot listening/]) await waitForLog(instanceLog, ready, 90_000, central);
  }
  state.status = 'up';
  save();
  log.info({ namespaces: state.namespaces, processes: state.processes.length }, 'lab up');
  out(`lab up in ${plan.dir}: ${plan.racks.length} rack(s) × ${o.lab.nodesPerRack} VM(s), namespaces ${plan.prefix}-*; next: podboot lab boot --dir ${plan.dir}`);
  if (debian) {
    const vm = plan.racks[0]!.vms[0]!;
    out(
      `the Debian servers' login: user ${LAB_SSH_USER}, key ${sshKeyPath(plan.dir)} (removed by lab down); once installed, e.g. ip netns exec ${plan.centralNs} ssh -i ${sshKeyPath(plan.dir)} ${LAB_SSH_USER}@${vm.mgmtAddress} (its management address)`,
    );
  }
  return state;
}

/**
 * central:wan<r> ── c<r> [wan ns] t<r> ── wan:tor<r>, then br0 in the tor.
 * In the wan namespace the two ends are joined by a bridge (with netem on
 * each end's egress when asked) or by lab/wan-link.py.
 */
function buildRackNetwork(plan: LabPlan, rack: RackPlan, emulation: LabState['wan'], o: LabOptions, track: (p: RecordedProcess) => RecordedProcess): void {
  const c = plan.centralNs;
  const w = plan.wanNs;
  const t = rack.torNs;
  ipn(c, 'link', 'add', rack.centralIf, 'type', 'veth', 'peer', 'name', rack.wanCentralIf, 'netns', w);
  ipn(t, 'link', 'add', rack.torIf, 'type', 'veth', 'peer', 'name', rack.wanTorIf, 'netns', w);
  ipn(c, 'addr', 'add', `${rack.podAddress}/30`, 'dev', rack.centralIf);
  ipn(t, 'addr', 'add', `${rack.torWanAddress}/30`, 'dev', rack.torIf);
  // Offloads off on every end: a user-space link would otherwise see partial checksums and GSO super-frames (TCP breaks).
  for (const [n, ifname] of [
    [c, rack.centralIf],
    [t, rack.torIf],
    [w, rack.wanCentralIf],
    [w, rack.wanTorIf],
  ] as const) {
    ns(n, 'ethtool', ['-K', ifname, ...OFFLOADS_OFF], { allowFail: true });
  }
  for (const ifname of [rack.wanCentralIf, rack.wanTorIf]) {
    // the wan namespace only carries frames: no addresses, no IPv6 chatter of its own
    ns(w, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`], { allowFail: true });
    ipn(w, 'link', 'set', ifname, 'promisc', 'on', 'up');
  }
  ipn(c, 'link', 'set', rack.centralIf, 'up');
  ipn(t, 'link', 'set', rack.torIf, 'up');
  ipn(c, 'route', 'add', rack.cidr, 'via', rack.torWanAddress);

  const oneWayMs = o.wanRttMs / 2;
  if (emulation === 'user-space') {
    const script = join(packageRoot(), 'lab', 'wan-link.py');
    track(
      spawnDetached(
        w,
        'python3',
        [
          script,
          '--central',
          rack.wanCentralIf,
          '--rack',
          rack.wanTorIf,
          '--delay-ms',
          String(oneWayMs),
          '--loss',
          String(o.wanLoss),
          '--rate',
          String(o.wanRateBps ?? 0),
          '--seed',
          String(o.seed * 1000 + rack.index),
          // the pods' stage2 image comes over HTTPS: counted apart from the boot files (TFTP, HTTP)
          '--count-tcp-port',
          String(LAB_HTTPS_PORT),
          '--counters-file',
          wanCountersFile(plan.dir, rack.index),
        ],
        join(plan.dir, 'logs', `wan-link-${rack.pod}.log`),
        `wan-link-${rack.pod}`,
      ),
    );
  } else {
    const br = `bw${rack.index}`;
    ipn(w, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    ipn(w, 'link', 'set', rack.wanCentralIf, 'master', br);
    ipn(w, 'link', 'set', rack.wanTorIf, 'master', br);
    ipn(w, 'link', 'set', br, 'up');
    if (emulation === 'netem') {
      for (const ifname of [rack.wanCentralIf, rack.wanTorIf]) {
        const args = ['qdisc', 'add', 'dev', ifname, 'root', 'netem', 'limit', '20000', 'delay', `${oneWayMs}ms`];
        if (o.wanLoss > 0) args.push('loss', `${(o.wanLoss * 100).toFixed(4)}%`);
        ns(w, 'tc', args);
      }
    }
  }

  // The rack: bridge br0 for the VMs' taps, forwarding between it and the WAN.
  ipn(t, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  ipn(t, 'addr', 'add', `${rack.gateway}/24`, 'dev', 'br0');
  ipn(t, '-6', 'addr', 'add', `fd99:20:${rack.index}::1/64`, 'dev', 'br0', 'nodad');
  ipn(t, 'link', 'set', 'br0', 'up');
  if (o.os === 'debian') {
    // The Debian servers' management NICs: a network apart from provisioning, reached from central over the same WAN.
    ipn(t, 'link', 'add', MGMT_BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    ipn(t, 'addr', 'add', `${rack.mgmtGateway}/24`, 'dev', MGMT_BRIDGE);
    ipn(t, 'link', 'set', MGMT_BRIDGE, 'up');
    ipn(c, 'route', 'add', rack.mgmtCidr, 'via', rack.torWanAddress);
  }
  ns(t, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
}
