// Issue 3's proof: a QEMU VM behind ISC dhcrelay boots podboot's stage1 from
// a pod instance, by both paths a rack uses, and stage1's init brings the
// server's network up by DHCP through the same relay:
//  (a) pxelinux: the pod hands iPXE the plain file name pxelinux.0, which then
//      loads pxelinux.cfg/01-<mac>, the kernel and the initrd over TFTP;
//  (b) iPXE: the pod's default iPXE script URL over plain HTTP, kernel and
//      initrd over HTTP from the pod's boot tree.
//  (c) the lab stage2 disk image (what the lab kickstart installs) boots from
//      disk, reads its node config at sector 1024 and comes up through the relay.
// Asserted from the serial console. Prints the DHCP → running times it saw.
import { closeSync, copyFileSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { buildLabStage2, NODE_CONFIG_SECTOR, renderNodeConfig } from '../../../src/images/lab-stage2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild, type Daemon } from '../../helpers/netns.js';
import { POD_ADDRESS, QemuRig } from '../../helpers/qemu-rig.js';
import { CACHE_DIR, STAGE1_DIR } from '../../global-setup.js';

const MAC_PXELINUX = '52:54:00:20:00:21';
const MAC_IPXE = '52:54:00:20:00:22';
const MAC_DISK = '52:54:00:20:00:23';

const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-s1 }
spec:
  listen: { address: ${POD_ADDRESS} }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199, leaseTime: 10m }
  nodes:
    - { mac: "${MAC_PXELINUX}", hostname: s1-pxelinux, address: 10.20.0.21, boot: { ipxeScript: pxelinux.0, bios: pxelinux.0 } }
    - { mac: "${MAC_IPXE}", hostname: s1-ipxe, address: 10.20.0.22 }
    - { mac: "${MAC_DISK}", hostname: s1-disk, address: 10.20.0.23 }
  unknownNodes: ignore
`;

// PODBOOT_RIG_RA=0 runs without the IPv6 RA on the rack bridge (to measure what it saves)
const rig = new QemuRig({ prefix: 'pbs', ra: process.env.PODBOOT_RIG_RA !== '0' });
let pod: Daemon;

/** ms from the pod's first log line about `mac` (its first DHCP packet) to the console's running line */
async function bootTimes(mac: string, running: RegExp): Promise<{ dhcpToRunning: number; startToRunning: number }> {
  const start = Date.now();
  const firstDhcp = pod.waitFor(new RegExp(`"mac":"${mac}"`), 120_000).then(() => Date.now());
  const runningAt = await rig.vmByMac(mac)!.waitForAt(running, 180_000);
  return { dhcpToRunning: runningAt - (await firstDhcp), startToRunning: runningAt - start };
}

beforeAll(async () => {
  requireBuild();
  await rig.setup();
  // --stage1: the pod lays the stage1 build (global setup) into its boot tree, with its own root CA appended.
  pod = await rig.startPod(POD, join(rig.dir, 'state'), ['--stage1', STAGE1_DIR], [/dhcp listening/, /tftp listening/, /http boot listening/]);
}, 300_000);

afterAll(async () => {
  await rig.cleanup();
});

describe('stage1 boots in QEMU through dhcrelay', () => {
  it('(a) pxelinux over TFTP: pxelinux.cfg/01-<mac>, kernel, initrd; init gets a lease through the relay', async () => {
    const vm = rig.startVm({ name: 'pxelinux', mac: MAC_PXELINUX, noReboot: true });
    const running = /podboot-stage1: running mac=52:54:00:20:00:21 ip=10\.20\.0\.(\d+)/;
    const t = await bootTimes(MAC_PXELINUX, running);
    const log = vm.log();
    expect(log).toMatch(/PXELINUX/);
    expect(log).toMatch(running);
    expect(log.match(running)![0]).toContain('ip=10.20.0.21');
    expect(log.match(/podboot-stage1: running/g)).toHaveLength(1);
    // The pod served the bootloader and the generated config over TFTP.
    expect(pod.log()).toMatch(/"file":"pxelinux\.0"/);
    expect(pod.log()).toMatch(/"file":"pxelinux\.cfg\/01-52-54-00-20-00-21"/);
    expect(pod.log()).toMatch(/"file":"stage1\/initrd\.img"/);
    console.log(`stage1 pxelinux: DHCP → running ${t.dhcpToRunning} ms, VM start → running ${t.startToRunning} ms`);
    await vm.stop();
  }, 240_000);

  it('(b) iPXE script over HTTP: kernel and initrd from the pod over HTTP', async () => {
    const vm = rig.startVm({ name: 'ipxe', mac: MAC_IPXE, noReboot: true });
    const running = /podboot-stage1: running mac=52:54:00:20:00:22 ip=10\.20\.0\.22/;
    const t = await bootTimes(MAC_IPXE, running);
    const log = vm.log();
    expect(log).toMatch(/http:\/\/10\.99\.0\.1(:80)?\/ipxe\/52-54-00-20-00-22\.ipxe/);
    expect(log).toMatch(/http:\/\/10\.99\.0\.1(:80)?\/boot\/stage1\/initrd\.img/);
    expect(log).not.toMatch(/PXELINUX/);
    console.log(`stage1 iPXE/HTTP: DHCP → running ${t.dhcpToRunning} ms, VM start → running ${t.startToRunning} ms`);
    // The agent then talks to the pod over HTTPS from inside stage1: the root CA from the overlay, the token from the command line.
    await vm.waitFor(/podboot-stage1: fetch manifest/, 60_000);
    console.log(
      vm
        .log()
        .split('\n')
        .filter((l) => l.startsWith('podboot-stage1'))
        .join('\n'),
    );
    expect(vm.log()).not.toMatch(/could not report stage1/);
    await vm.stop();
  }, 240_000);

  it('(c) the lab stage2 disk image boots from disk (e1000 NIC), reads its node config, gets its lease', async () => {
    const built = await buildLabStage2({ out: join(CACHE_DIR, 'lab-stage2.img'), cacheDir: join(CACHE_DIR, 'debs'), preferCache: true });
    expect(built.image.size).toBeLessThanOrEqual(32 * 1024 * 1024);
    const disk = join(rig.dir, 'disk-c.img');
    copyFileSync(built.image.name, disk);
    // What the lab kickstart writes after the image: node config, #end, the root CA (the pod's own, created in its state root).
    const area = renderNodeConfig(
      { PODBOOT_SERVER: POD_ADDRESS, PODBOOT_HTTPS: '443', PODBOOT_POD: 'rack-s1', PODBOOT_MAC: MAC_DISK, PODBOOT_HOSTNAME: 's1-disk', PODBOOT_NODE_TOKEN: 'not-a-real-token' },
      readFileSync(join(rig.dir, 'state', 'ca', 'root.pem')),
    );
    const fd = openSync(disk, 'r+');
    writeSync(fd, area, 0, area.length, NODE_CONFIG_SECTOR * 512);
    closeSync(fd);
    // e1000 here (virtio-net in (a) and (b)): both NIC drivers of the image get exercised.
    const vm = rig.startVm({ name: 'disk', mac: MAC_DISK, nic: 'e1000', disk, bootOrder: 'c', noReboot: true });
    await vm.waitFor(/podboot-stage2: network up mac=52:54:00:20:00:23 ip=10\.20\.0\.23/, 120_000);
    await vm.waitFor(/podboot-stage2: booted-from-disk host=s1-disk/, 30_000);
    // The token is made up: the pod refuses the report, and stage2 says so on its console (it reached the pod over TLS).
    const report = await vm.waitFor(/podboot-stage2: (reported booted-from-disk|warning: could not report booted-from-disk[^\n]*)/, 60_000);
    expect(report).toMatch(/reported|40[13]/);
    await vm.stop();
  }, 240_000);
});
