// Booting without PXE, the whole way on a QEMU VM: no network boot ROM on its
// NIC and no DHCP on its network (no relay, nothing answering DHCP on the
// rack bridge). `podboot nodes vmedia-boot` asks the mock BMC (Redfish over
// QMP, test/helpers/redfish-bmc.ts) to mount the server's ISO, boot it once
// and reset; the BMC fetches the ISO from the pod, which fills the config
// block while it streams. Stage1 takes its static address from the block,
// exchanges the block's token, installs the signed lab stage2 and reboots;
// the one-time override is spent, so the VM boots its disk and the installed
// OS reports in, on the same static address. Before that, the ISO of another
// server mounted on this VM (a BMC entry pointing at the wrong machine) stops
// in stage1 with the disk untouched.
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OVMF_CODE, OVMF_VARS } from '../../../src/lab/firmware.js';
import { buildVmediaIso, VMEDIA_ISO } from '../../../src/vmedia/iso-build.js';
import { type Daemon, Lab, PODBOOT, requireBuild } from '../../helpers/netns.js';
import { MockBmc } from '../../helpers/redfish-bmc.js';
import { signedLabStage2 } from '../../helpers/stage2.js';
import { allZero } from '../../helpers/disk.js';

const VM = '52:54:00:20:00:30';
const OTHER = '52:54:00:20:00:31';
const POD_ADDRESS = '10.99.0.1';
const CACHE = join(process.cwd(), '.cache');
const DISK_BYTES = 48 * 1024 * 1024;
const PASSWORD = 'mock-bmc-password';

const podYaml = (bmcUrl: string, pw: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-m }
spec:
  listen: { address: ${POD_ADDRESS} }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199, leaseTime: 10m }
  nodes:
    - { mac: "${VM}", hostname: vm-media, address: 10.20.0.30, bmc: { address: "${bmcUrl}", username: admin, passwordFile: ${pw} } }
    # the wrong machine: its BMC entry points at the same (mock) BMC as vm-media's
    - { mac: "${OTHER}", hostname: vm-other, address: 10.20.0.31, bmc: { address: "${bmcUrl}", username: admin, passwordFile: ${pw} } }
  unknownNodes: ignore
  stage2: { image: lab-stage2, version: "1.0" }
`;

const lab = new Lab('vm-vq');
let state: string;
let pod: Daemon;
let vm: Daemon;
let bmc: MockBmc;
let disk: string;

function podbootSync(...args: string[]): string {
  const r = spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: lab.dir, maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`podboot ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Asynchronous: the mock BMC answers from this process while the command runs. */
function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', cwd: lab.dir }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
  });
}

beforeAll(async () => {
  requireBuild();
  podbootSync('images', 'build-stage1', '--out', join(CACHE, 'stage1'), '--cache', join(CACHE, 'debs'));
  podbootSync('images', 'build-lab-stage2', '--out', join(CACHE, 'lab-stage2.img'), '--cache', join(CACHE, 'debs'));
  buildVmediaIso(join(CACHE, 'stage1'));

  // The rack as a site without PXE: a routed bridge, no relay, no DHCP server, no RA.
  lab.addNs('central');
  lab.addNs('tor');
  lab.veth({ ns: 'central', ifname: 'wan-c', addr: `${POD_ADDRESS}/30` }, { ns: 'tor', ifname: 'wan-t', addr: '10.99.0.2/30' });
  lab.ip('central', 'route', 'add', '10.20.0.0/24', 'via', '10.99.0.2');
  lab.ip('tor', 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  lab.ip('tor', 'addr', 'add', '10.20.0.1/24', 'dev', 'br0');
  lab.ip('tor', 'link', 'set', 'br0', 'up');
  lab.exec('tor', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  lab.ip('tor', 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  lab.ip('tor', 'link', 'set', 'tap0', 'master', 'br0');
  lab.ip('tor', 'link', 'set', 'tap0', 'up');

  state = join(lab.dir, 'state');
  const { ca } = signedLabStage2({ dir: lab.dir, cache: CACHE, pod: 'rack-m', podState: join(state, 'rack-m'), org: 'Vmedia QEMU Test', podboot: podbootSync });

  // The server: powered off (-S), no option ROM on its NIC, a blank disk first in its boot order, an empty CD drive.
  disk = join(lab.dir, 'disk.img');
  writeFileSync(disk, Buffer.alloc(0));
  spawnSync('truncate', ['-s', String(DISK_BYTES), disk]);
  const qmp = join(lab.dir, 'qmp.sock');
  vm = lab.spawn(
    'tor',
    'qemu-system-x86_64',
    [
      '-machine',
      'pc,accel=tcg',
      '-m',
      '512',
      '-smp',
      '1',
      '-nographic',
      '-S',
      '-qmp',
      `unix:${qmp},server=on,wait=off`,
      '-netdev',
      'tap,id=n0,ifname=tap0,script=no,downscript=no',
      '-device',
      `virtio-net-pci,netdev=n0,mac=${VM},romfile=`,
      '-drive',
      `file=${disk},format=raw,if=none,id=hd0`,
      '-device',
      'virtio-blk-pci,drive=hd0,id=disk0,bootindex=1',
      '-drive',
      'if=none,id=cd0,media=cdrom,readonly=on',
      '-device',
      'ide-cd,drive=cd0,id=cddev,bootindex=9',
    ],
    'vm',
  );
  for (let i = 0; i < 50 && !statSync(qmp, { throwIfNoEntry: false })?.isSocket(); i++) await new Promise((r) => setTimeout(r, 100));

  // The BMC streams the ISO as a BMC on the rack would: from the rack's network, trusting the pod's root CA.
  let fetched = 0;
  bmc = new MockBmc({
    username: 'admin',
    password: PASSWORD,
    qmpSocket: qmp,
    cdId: 'cddev',
    cdQomPath: '/machine/peripheral/cddev',
    fetchImage: async (url) => {
      const file = join(lab.dir, `mounted-${++fetched}.iso`);
      const r = await run('ip', ['netns', 'exec', lab.ns('tor'), 'curl', '-sSf', '--interface', '10.20.0.1', '--cacert', join(state, 'rack-m', 'tls', 'root.pem'), '-o', file, url]);
      if (r.code !== 0) throw new Error(`fetching the ISO failed: ${r.out}`);
      return file;
    },
  });
  const bmcUrl = await bmc.start();
  const pw = join(lab.dir, 'bmc.password');
  writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(lab.dir, 'pod.yaml'), podYaml(bmcUrl, pw));
  pod = lab.spawn('central', process.execPath, [PODBOOT, 'pod', 'run', join(lab.dir, 'pod.yaml'), '--state', state, '--ca', ca, '--stage1', join(CACHE, 'stage1')], 'pod');
  await pod.waitFor(/http boot listening/, 30_000);
}, 600_000);

afterAll(async () => {
  await bmc?.stop();
  await vm?.stop('SIGKILL').catch(() => undefined);
  await lab.cleanup();
});

const vmediaBoot = (server: string) => run(process.execPath, [PODBOOT, 'nodes', 'vmedia-boot', '--pod', 'rack-m', server, '--state', state, '--pod-file', join(lab.dir, 'pod.yaml')]);

describe('a server without PXE boots the stage1 ISO through its BMC', () => {
  it('another server’s ISO mounted on this VM stops in stage1, the disk untouched', async () => {
    const r = await vmediaBoot('vm-other');
    expect(r.code, r.out).toBe(0);
    await vm.waitFor(/podboot-stage1: FAILED config block: this ISO is for 52:54:00:20:00:31, and no network interface here has that MAC/, 180_000);
    expect(allZero(disk)).toBe(true);
  }, 200_000);

  it('its own ISO: static address from the block, signed stage2 installed, one-time override spent, boots from disk', async () => {
    const started = Date.now();
    const r = await vmediaBoot('vm-media');
    expect(r.code, r.out).toBe(0);
    // The mock BMC ejected the other ISO first, then mounted this one.
    expect(bmc.actions().filter((a) => a.path.endsWith('EjectMedia')).length).toBe(1);
    await vm.waitFor(/podboot-stage1: running mac=52:54:00:20:00:30 ip=10\.20\.0\.30/, 180_000);
    const running = Date.now();
    await vm.waitFor(/podboot-stage1: verified lab-stage2 1\.0/, 120_000);
    await vm.waitFor(/podboot-stage1: installed/, 120_000);
    await vm.waitFor(/podboot-stage2: network up mac=52:54:00:20:00:30 ip=10\.20\.0\.30/, 180_000);
    await vm.waitFor(/podboot-stage2: reported booted-from-disk/, 60_000);
    process.stdout.write(`[vmedia-qemu] vmedia-boot → stage1 running ${running - started} ms, → booted-from-disk reported ${Date.now() - started} ms\n`);
    expect(allZero(disk)).toBe(false);

    const shown = JSON.parse(podbootSync('nodes', 'show', VM, '--pod', 'rack-m', '--state', state, '--json')) as { node: { state: string }; events: { kind: string; detail?: string }[] };
    expect(shown.node.state).toBe('booted-from-disk');
    const kinds = shown.events.map((e) => e.kind);
    for (const k of ['install-token-exchanged', 'stage1', 'verified', 'installed', 'booted-from-disk']) expect(kinds, kinds.join(' ')).toContain(k);
    expect(shown.events.find((e) => e.kind === 'install-token-exchanged')?.detail).toBe('from 10.20.0.30');
    // No DHCP anywhere: the pod never heard from this server over DHCP.
    expect(pod.log()).not.toMatch(new RegExp(`"mac":"${VM}"[^\\n]*"msg":"DHCP`));
    // The stage1 console line came once per ISO boot: the second boot was from the disk, not the CD again.
    expect(vm.log().match(/podboot-stage1: running/g)?.length).toBe(1);
    expect(bmc.state.override.enabled).toBe('Disabled');
  }, 600_000);

  it('the token in its ISO worked once: the installed server’s ISO URL is refused now', async () => {
    const image = bmc.state.image!;
    const r = await run('ip', [
      'netns',
      'exec',
      lab.ns('tor'),
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--interface',
      '10.20.0.1',
      '--cacert',
      join(state, 'rack-m', 'tls', 'root.pem'),
      image,
    ]);
    expect(r.out).toBe('403');
    expect(readFileSync(join(lab.dir, 'pod.log'), 'utf8')).toMatch(/server is booted-from-disk; an operator must ask for a reinstall/);
  });

  it('under UEFI (OVMF) the same ISO boots through its El Torito EFI image to stage1, which reads the block', async () => {
    // One VM at a time: the BIOS one is done.
    await bmc.stop();
    await vm.stop('SIGKILL');
    const vars = join(lab.dir, 'uefi.vars.fd');
    copyFileSync(OVMF_VARS, vars);
    // The generic ISO as built: its placeholder block reaches stage1, which stops on it by name.
    const uefi = lab.spawn(
      'tor',
      'qemu-system-x86_64',
      [
        '-machine',
        'pc,accel=tcg',
        '-m',
        '512',
        '-nographic',
        '-no-reboot',
        '-net',
        'none',
        '-drive',
        `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
        '-drive',
        `if=pflash,format=raw,unit=1,file=${vars}`,
        '-cdrom',
        join(CACHE, 'stage1', VMEDIA_ISO),
      ],
      'vm-uefi',
    );
    try {
      await uefi.waitFor(/podboot-stage1: FAILED config block: no settings or no root CA/, 150_000);
      expect(uefi.log()).toMatch(/Command line: BOOT_IMAGE=\/podboot\/vmlinuz .*podboot\.vmedia=1/);
    } finally {
      await uefi.stop('SIGKILL');
    }
  }, 180_000);
});
