// Issue 3's proof: a QEMU VM behind ISC dhcrelay boots podboot's stage1 from
// a pod instance, by both paths a rack uses, and stage1's init brings the
// server's network up by DHCP through the same relay:
//  (a) pxelinux: the pod hands iPXE the plain file name pxelinux.0, which then
//      loads pxelinux.cfg/01-<mac>, the kernel and the initrd over TFTP;
//  (b) iPXE: the pod's default iPXE script URL over plain HTTP, kernel and
//      initrd over HTTP from the pod's boot tree.
// Asserted from the serial console. Prints the DHCP → running times it saw.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild, type Daemon } from '../../helpers/netns.js';
import { POD_ADDRESS, QemuRig } from '../../helpers/qemu-rig.js';
import { STAGE1_DIR } from '../../global-setup.js';

const MAC_PXELINUX = '52:54:00:20:00:21';
const MAC_IPXE = '52:54:00:20:00:22';

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
    await vm.stop();
  }, 240_000);
});
