// A real operating system through the whole chain, as racks would see it,
// two servers at once (one TCG core each: the suite runs one file at a time,
// and two single-CPU VMs keep both of the machine's cores busy where one
// two-CPU VM leaves one idle through Debian's single-threaded first boot):
//
// - UEFI, on a QEMU rig of its own: OVMF, a provisioning NIC on the rack
//   bridge behind ISC dhcrelay and a management NIC on another bridge and
//   subnet. PXE → stage1 → the signed Debian 12 image streams onto the disk,
//   each chunk verified before it is written → the server's cloud-init seed
//   → partition table last → reboot → Debian boots with systemd → cloud-init
//   sets the hostname and the management address from the pod YAML → the
//   real ssh client logs in over the management network with the key from
//   the pod YAML → the node agent's booted-from-disk and heartbeats are in
//   the pod's database → no second stage1. Then an image with one flipped
//   byte (a SeaBIOS server): the disk is left with nothing bootable (SeaBIOS
//   says so) and the pod's event names the chunk.
// - BIOS, through `podboot lab up --os debian` (must-show 3): one rack, one
//   VM with its management NIC on the rack's management bridge; `lab boot`
//   follows it to ssh-ready over the management network; then this test
//   logs in itself, reads the pod's record (events in order, the image,
//   heartbeats, the PXE request turned away after the install), runs two
//   remote tasks through the central API, and `lab down` leaves nothing.
//
// The image is built once per machine (podboot images build-debian, cached by
// its package set outside the checkout; ~4 min the first time).
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { closeSync, copyFileSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshArgs } from '../../../src/lab/boot.js';
import { makePlan } from '../../../src/lab/plan.js';
import { downLeavesNothing, labBoot, labPids, labTestDir, podboot as labPodboot } from '../lab/rig.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { POD_ADDRESS, QemuRig, type Vm } from '../../helpers/qemu-rig.js';
import { placeStage2 } from '../../helpers/stage2.js';

const CACHE = join(process.cwd(), '.cache');
const DISK_BYTES = 3 * 1024 * 1024 * 1024;
const MGMT_BRIDGE = 'br1';

interface Server {
  name: string;
  firmware: 'bios' | 'uefi';
  mac: string;
  mgmtMac: string;
  address: string;
  mgmtAddress: string;
}
const UEFI: Server = { name: 'deb-uefi', firmware: 'uefi', mac: '52:54:00:20:00:31', mgmtMac: '52:54:00:30:00:31', address: '10.20.0.31', mgmtAddress: '10.30.0.31' };
const BAD: Server = { name: 'deb-bad', firmware: 'bios', mac: '52:54:00:20:00:32', mgmtMac: '52:54:00:30:00:32', address: '10.20.0.32', mgmtAddress: '10.30.0.32' };

const podYaml = (sshKey: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-d }
spec:
  listen: { address: ${POD_ADDRESS} }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199, leaseTime: 10m }
  managementNetwork: { cidr: 10.30.0.0/24, gateway: 10.30.0.1, dns: [10.30.0.1] }
  users:
    - { name: ops, sshAuthorizedKeys: ["${sshKey}"], sudo: true }
  heartbeat: { interval: 5s }
  nodes:
${[UEFI, BAD].map((s) => `    - { mac: "${s.mac}", hostname: ${s.name}, address: ${s.address}, management: { interface: { mac: "${s.mgmtMac}" }, address: ${s.mgmtAddress} } }`).join('\n')}
  unknownNodes: ignore
  install: { kickstart: debian.sh, disk: /dev/vda }
  stage2: { image: debian-12, version: "1.0" }
`;

const rig = new QemuRig({ prefix: 'pbd' });
let state: string;
let key: string;

function podboot(...args: string[]): string {
  const r = spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: rig.dir, maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`podboot ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface LabShown {
  node: { state: string; image?: string; liveness?: string; heartbeat?: { metrics: Record<string, number> } };
  events: { kind: string }[];
}

interface Shown {
  node: { state: string; attempt: number; reason?: string; detail?: string } | null;
  events: { kind: string; detail?: string }[];
  [k: string]: unknown;
}
const show = (mac: string) => JSON.parse(podboot('nodes', 'show', mac, '--pod', 'rack-d', '--state', state, '--json')) as Shown;

function blankDisk(name: string): string {
  const path = join(rig.dir, `${name}.img`);
  writeFileSync(path, Buffer.alloc(0));
  spawnSync('truncate', ['-s', String(DISK_BYTES), path]);
  return path;
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/**
 * A command's exit status and output without blocking the event loop: the
 * other server's test goes on meanwhile, and its VM's and pod's output pipes
 * are drained by this process.
 */
function runAsync(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ status: code, stdout, stderr });
    });
  });
}

/** `ssh ops@ADDRESS COMMAND` from the central namespace (routed over the management network), retried until sshd answers. */
async function sshUntil(address: string, command: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await runAsync('ip', sshArgs(rig.lab.ns('central'), key, address, command), 30_000);
    if (r.status === 0) return r.stdout;
    last = `${r.status} ${r.stderr.trim().split('\n').pop()}`;
    await new Promise((res) => setTimeout(res, 3000));
  }
  throw new Error(`ssh ops@${address} never answered: ${last}`);
}

function startServer(s: Server, disk: string, cpus = 1): Vm {
  return rig.startVm({ name: s.name, mac: s.mac, disk, bootOrder: 'nc', firmware: s.firmware, memMb: 1024, cpus, moreNics: [{ mac: s.mgmtMac, bridge: MGMT_BRIDGE }] });
}

beforeAll(async () => {
  requireBuild();
  // Cached by package set outside the checkout: only the first run on a machine runs mmdebstrap (minutes:
  // asynchronous, or the blocked worker misses vitest's RPC deadline).
  await promisify(execFile)(process.execPath, [PODBOOT, 'images', 'build-debian', '--out', join(CACHE, 'debian-12.img.zst')], { maxBuffer: 16 << 20 });
  await rig.setup();
  rig.addBridge(MGMT_BRIDGE, '10.30.0.1/24', '10.30.0.0/24');
  state = join(rig.dir, 'state');
  const ca = join(rig.dir, 'ca');
  key = join(rig.dir, 'id_ed25519');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'podboot-test', '-f', key]);
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  podboot('ca', 'init', '--out', ca, '--org', 'Debian Install Test');
  podboot('ca', 'issue-signer', 'ci', '--ca', ca);
  const image = join(rig.dir, 'debian-12.img.zst');
  copyFileSync(join(CACHE, 'debian-12.img.zst'), image);
  podboot('sign', image, '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'debian-12', '--version', '1.0', '--pods', 'rack-d', '--not-after', '7d');
  expect(JSON.parse(readFileSync(`${image}.manifest.json`, 'utf8'))).toMatchObject({ encoding: 'zstd' });
  placeStage2(image, join(state, 'rack-d'), 'debian-12@1.0');
  await rig.startPod(podYaml(pub), state, ['--ca', ca, '--stage1', join(CACHE, 'stage1')], [/dhcp listening/, /tftp listening/, /http boot listening/]);
}, 900_000);

afterAll(async () => {
  await rig.cleanup();
});

/**
 * Flips one byte of the pod's copy of the compressed image, in place, in its
 * first 16 MiB chunk: stage1 refuses that chunk before zstd sees it and
 * fetches nothing after it (the check is the same wherever the byte is).
 */
function tamperImage(): void {
  const image = join(state, 'rack-d', 'images', 'debian-12@1.0', 'image');
  const fd = openSync(image, 'r+');
  try {
    const at = Math.floor(statSync(image).size / 16);
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x01;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

/**
 * The tampered install, started once the good server no longer needs the
 * image (it is `installed`): it runs while that one boots Debian. Its own
 * test checks the outcome.
 */
let tampered: Promise<{ vm: Vm; disk: string }> | undefined;

interface Installed {
  vm: Vm;
  disk: string;
}

const lab = labTestDir('labdeb');
/** what `lab boot` sees of the lab's VM, in order */
const CHAIN = ['power-on', 'pxe', 'stage1', 'verified', 'installed', 'booted-from-disk'];

describe.concurrent('Debian 12 installs through the whole chain, UEFI and BIOS at once', () => {
  async function install(s: Server): Promise<Installed> {
    const disk = blankDisk(s.name);
    const vm = startServer(s, disk);
    await vm.waitFor(new RegExp(`podboot-stage1: running mac=${s.mac} ip=${s.address.replace(/\./g, '\\.')}`), 180_000);
    await vm.waitFor(/podboot-stage1: verified debian-12 1\.0 sha256=[0-9a-f]{64}/, 600_000);
    await vm.waitFor(/podboot-stage1: seed written/, 60_000);
    await vm.waitFor(/podboot-stage1: partition table written/, 60_000);
    await vm.waitFor(/podboot-stage1: installed/, 60_000);
    return { vm, disk };
  }

  async function bootsDebian(r: Installed): Promise<Installed> {
    // Debian's own boot: systemd greets on the serial console, then the node agent (its unit writes there too).
    await r.vm.waitFor(/Welcome to .*Debian GNU\/Linux 12/, 300_000);
    await r.vm.waitFor(/podboot-node-agent: booted-from-disk reported/, 600_000);
    return r;
  }

  it('PXE → stage1 → verified image + seed → Debian → cloud-init → ssh over the management network → agent reports', async () => {
    const installed = await install(UEFI);
    tamperImage();
    tampered = (async () => {
      const disk = blankDisk(BAD.name);
      // Something old on the disk first: a partition table stage1 must wipe (the UEFI server's, as written).
      spawnSync('cp', ['--sparse=always', installed.disk, disk]);
      const vm = startServer(BAD, disk);
      // The console line's start only: a kernel message may cut it on the serial line (the whole detail is in the pod's event).
      await vm.waitFor(/podboot-stage1: FAILED digest: image chunk \d+ of \d+/, 1_200_000);
      return { vm, disk };
    })();
    tampered.catch(() => undefined);
    const uefi = await bootsDebian(installed);
    const s = UEFI;
    const out = await sshUntil(s.mgmtAddress, 'hostname; ip -br addr; cat /etc/machine-id; sudo -n true && echo sudo-ok; ls /etc/ssh', 300_000);
    const [hostname] = out.split('\n');
    expect(hostname).toBe(s.name);
    // The management NIC, matched by its MAC and renamed, carries the address from the pod YAML.
    expect(out).toMatch(new RegExp(`^mgmt0\\s+UP\\s+${s.mgmtAddress.replace(/\./g, '\\.')}/24`, 'm'));
    expect(out).toContain('sudo-ok');
    // stage1 dropped the firmware's network boot entry once the disk was written
    expect(uefi.vm.log()).toMatch(/removed network boot entry/);
    // The server made its own identity at first boot (the base image carries none: debian-image.test.ts)
    expect(out).toMatch(/^[0-9a-f]{32}$/m);
    // cloud-init made the host keys the image asks for (no RSA: docs/debian-image.md)
    expect(out.match(/ssh_host_\w+_key\.pub/g)?.sort()).toEqual(['ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key.pub']);

    // Heartbeats every 5 s: wait for a few to land in the pod's database.
    const deadline = Date.now() + 120_000;
    let shown = show(s.mac);
    while (Date.now() < deadline && !JSON.stringify(shown).includes('"active"')) {
      await new Promise((res) => setTimeout(res, 2000));
      shown = show(s.mac);
    }
    expect(shown.node?.state).toBe('booted-from-disk');
    // the image stage1 verified and wrote, as the pod names it
    expect(shown.node).toMatchObject({ image: 'debian-12@1.0' });
    expect(JSON.stringify(shown)).toContain('"active"');
    const kinds = shown.events.map((e) => e.kind);
    const order = ['pxe', 'stage1', 'installing', 'seed-served', 'installed', 'booted-from-disk'];
    const at = order.map((k) => kinds.indexOf(k));
    expect(
      at.every((i) => i >= 0),
      kinds.join(' '),
    ).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    // After the install the pod hands out no boot file: no second stage1.
    expect(kinds.filter((k) => k === 'stage1')).toHaveLength(1);
    await uefi.vm.stop();
  }, 1_500_000);

  const labVm = makePlan(lab.dir, { racks: 1, nodesPerRack: 1 }).racks[0]!.vms[0]!;
  const showLab = async () => {
    const r = await labPodboot(['nodes', 'show', labVm.mac, '--pod', 'rack-1', '--state', join(lab.dir, 'state'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as LabShown;
  };

  it('BIOS through podboot lab up --os debian and lab boot: ssh-ready over the management network, hostname and address from the pod YAML, the agent reports', async () => {
    const up = await labPodboot(['lab', 'up', '--os', 'debian', '--racks', '1', '--nodes-per-rack', '1', '--dir', lab.dir], 900_000);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // the operator is told where the key is, and where the server answers
    expect(up.stdout).toContain(`key ${join(lab.dir, 'ssh', 'id_ed25519')}`);
    expect(up.stdout).toContain(`ops@${labVm.mgmtAddress} (its management address)`);

    // --keep-running: this test logs in itself afterwards
    const { boot, timeline, junit } = await labBoot(lab, 'debian', ['--timeout', '1500', '--keep-running'], 1_700_000);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    expect(boot.stdout).toMatch(/all 1 VM\(s\) booted from disk and answered over ssh/);
    expect(timeline.ok).toBe(true);
    const t = timeline.vms['r1-vm1']!;
    expect(t.result).toBe('ssh-ready');
    expect(t.hostname).toBe('rack1-vm1');
    const at = CHAIN.map((p) => t.phases[p]);
    for (const s of at) expect(typeof s).toBe('number');
    expect([...at].sort((a, b) => a! - b!)).toEqual(at);
    expect(t.phases['ssh-ready']).toBeGreaterThan(t.phases.installed!);
    expect(junit).toMatch(/tests="1" failures="0"/);
    expect(junit).toMatch(/ssh ready: hostname rack1-vm1/);

    // The real ssh client, from the central namespace, over the management network with the key from the pod YAML.
    const key = join(lab.dir, 'ssh', 'id_ed25519');
    const r = await runAsync('ip', sshArgs(`${lab.prefix}-central`, key, labVm.mgmtAddress, 'hostname; ip -br addr; sudo -n true && echo sudo-ok; ls /etc/ssh'), 60_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('rack1-vm1');
    // The management NIC, matched by its MAC and renamed, carries the address from the pod YAML; the provisioning NIC its lease.
    expect(r.stdout).toMatch(new RegExp(`^mgmt0\\s+UP\\s+${labVm.mgmtAddress.replace(/\./g, '\\.')}/24`, 'm'));
    expect(r.stdout).toContain('sudo-ok');
    // cloud-init made the host keys the image asks for (no RSA: docs/debian-image.md)
    expect(r.stdout.match(/ssh_host_\w+_key\.pub/g)?.sort()).toEqual(['ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key.pub']);

    // A remote task (issue 16, T1) through the lab's central API to the installed server's node agent, which runs it as
    // its own confined user: the output and exit code come back, and a rule on ERROR marks it failed.
    const central = (...args: string[]) => runAsync('ip', ['netns', 'exec', `${lab.prefix}-central`, process.execPath, PODBOOT, ...args, '--state', join(lab.dir, 'state')], 180_000);
    const ok = await central('tasks', 'run', 'hello', '--pod', 'rack-1', '--target', 'rack1-vm1', '--param', 'message=hello from the lab', '--wait', '--json');
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const [done] = JSON.parse(ok.stdout) as { id: string; state: string; exitCode?: number }[];
    expect(done).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect((await central('tasks', 'logs', done!.id, '--pod', 'rack-1')).stdout).toBe('hello from the lab\n');
    const flagged = await central('tasks', 'run', 'hello', '--pod', 'rack-1', '--target', labVm.mac, '--param', 'message=ERROR: from the lab', '--rule', 'stdout fail ERROR', '--wait', '--json');
    expect(flagged.status, flagged.stderr).toBe(1);
    expect(JSON.parse(flagged.stdout)[0]).toMatchObject({ state: 'failed', exitCode: 0, reason: 'rule: stdout /ERROR/ matched' });

    // the console shows Debian's own boot and the node agent's report
    const text = readFileSync(join(lab.dir, 'vms', 'r1-vm1.console.log'), 'latin1');
    expect(text).toMatch(/podboot-stage1: verified debian-12 1\.0/);
    expect(text).toMatch(/Welcome to .*Debian GNU\/Linux 12/);
    expect(text).toMatch(/podboot-node-agent: booted-from-disk reported host=rack1-vm1/);

    // The pod's record: the chain's events in order, the image stage1 wrote, heartbeats (every 10 s in the lab) keeping it active.
    const deadline = Date.now() + 120_000;
    let shown = await showLab();
    while (Date.now() < deadline && !(shown.node.liveness === 'active' && shown.node.heartbeat)) {
      await new Promise((res) => setTimeout(res, 2000));
      shown = await showLab();
    }
    expect(shown.node).toMatchObject({ state: 'booted-from-disk', image: 'debian-12@1.0', liveness: 'active' });
    expect(shown.node.heartbeat?.metrics.uptime).toBeGreaterThan(0);
    const kinds = shown.events.map((e) => e.kind);
    const order = ['pxe', 'stage1', 'installing', 'seed-served', 'installed', 'booted-from-disk'].map((k) => kinds.indexOf(k));
    expect(
      order.every((i) => i >= 0),
      kinds.join(' '),
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // After the install the pod hands out no boot file: SeaBIOS tried the network first after the reboot and was turned away.
    expect(kinds.filter((k) => k === 'stage1')).toHaveLength(1);
    expect(kinds).toContain('pxe-after-install');
  }, 2_700_000);
});

describe('afterwards', () => {
  it('an image with one flipped byte leaves nothing bootable, and the event names the check', async () => {
    expect(tampered, 'the tampered install starts in the test before').toBeDefined();
    const { vm, disk } = await tampered!;
    await vm.waitFor(/podboot-stage1: stopped; the disk holds nothing bootable/, 60_000);
    await vm.stop();
    // No boot code, no protective MBR, no GPT header left at the front or where the image's backup one was.
    expect(readAt(disk, 0, 1024 * 1024).every((b) => b === 0)).toBe(true);
    expect(readAt(disk, DISK_BYTES - 512, 512).includes('EFI PART')).toBe(false);
    const b = show(BAD.mac);
    expect(b.node).toMatchObject({ state: 'failed', reason: 'digest' });
    expect(b.events.map((e) => e.kind)).not.toContain('installed');
    // the first chunk (tampered at 1/16 of the image, within its first 16 MiB): the stream stopped there
    expect(JSON.stringify(b.events)).toMatch(/failed\(digest\): image chunk 1 of \d+ \(bytes 0-16777215\): sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}: nothing on \/dev\/vda can boot/);
    expect(vm.log()).not.toMatch(/streamed 64 of/);
    // And the firmware agrees: booted from that disk alone, SeaBIOS finds nothing to boot.
    const again = rig.startVm({ name: 'deb-bad-disk', mac: BAD.mac, disk, bootOrder: 'c', memMb: 512 });
    await again.waitFor(/No bootable device|Boot failed: not a bootable disk/, 120_000);
    await again.stop();
  }, 1_200_000);

  it('lab down removes every namespace, process, tap, key and file', async () => {
    const pids = labPids(lab.dir, lab.prefix);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    await downLeavesNothing(lab, pids);
    expect(readdirSync(lab.work).sort()).toEqual(['junit-debian.xml', 'timeline-debian.json']);
  }, 180_000);
});
