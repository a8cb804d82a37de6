// `podboot lab --firmware uefi` end to end: one rack, one VM under OVMF
// (Debian's ovmf, a per-VM NVRAM copy), no WAN delay to keep it short. The
// VM's own UEFI PXE client (no iPXE option ROM) asks through the rack's
// dhcrelay and gets the EFI iPXE, snponly.efi, which follows the same chain as
// BIOS; the installed GPT image then boots from the disk's EFI system
// partition (systemd-boot), and the network is not booted again. Asserted
// from the serial console, the pod's record, the installed disk's partition
// table, the NVRAM file, and what `lab down` leaves.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OVMF_VARS } from '../../../src/lab/firmware.js';
import { downLeavesNothing, expectBootedInOrder, labBoot, labPids, labTestDir, podboot } from './rig.js';

const lab = labTestDir('labuefi');
const { work, dir: DIR, prefix } = lab;
const MAC = '52:54:00:9b:01:01';

/** the console without escape sequences and carriage returns */
const consoleText = () =>
  readFileSync(join(DIR, 'vms', 'r1-vm1.console.log'), 'latin1')
    .replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '')
    .replace(/\r/g, '\n');

describe('podboot lab --firmware uefi: 1 rack × 1 VM under OVMF', () => {
  it('PXE through OVMF and the relay, install, then boot from the disk: booted-from-disk', async () => {
    const up = await podboot(['lab', 'up', '--racks', '1', '--nodes-per-rack', '1', '--firmware', 'uefi', '--dir', DIR]);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const { boot, timeline, junit } = await labBoot(lab, 'uefi', ['--timeout', '400']);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    expect(boot.stdout).toMatch(/all 1 VM\(s\) booted from disk/);
    expectBootedInOrder(timeline.vms['r1-vm1']!);
    expect(junit).toMatch(/tests="1" failures="0"/);
  }, 600_000);

  it('the console shows OVMF, its own PXE client and the EFI iPXE, then a disk boot and no second network boot', () => {
    const text = consoleText();
    expect(text).not.toMatch(/SeaBIOS/);
    const installed = text.indexOf('podboot-stage1: installed');
    expect(installed).toBeGreaterThan(0);
    const before = text.slice(0, installed);
    const after = text.slice(installed);
    // firmware PXE, not an option ROM: OVMF's boot option, its TFTP download of the EFI boot file
    expect(before).toMatch(/BdsDxe: starting Boot[0-9A-F]{4} "UEFI PXEv4 \(MAC:5254009B0101\)"/);
    expect(before).toMatch(/NBP filename is snponly\.efi/);
    // snponly.efi: iPXE driving the firmware's network interface, then the same chain as BIOS
    expect(before).toMatch(/net0: 52:54:00:9b:01:01 using SNP on SNP-/);
    expect(before).toMatch(/ipxe\/52-54-00-9b-01-01\.ipxe/);
    expect(before).toMatch(/podboot-stage1: verified lab-stage2 1\.0/);
    expect(before.match(/Start PXE over IPv4/g)).toHaveLength(1);
    // once installed, stage1 (efivarfs loaded and mounted) removed the very PXE entry OVMF had started
    expect(text).not.toMatch(/EFI variables are not supported/);
    expect(after).toContain(`podboot-stage1: removed network boot entry Boot${/BdsDxe: starting Boot([0-9A-F]{4}) "UEFI PXEv4/.exec(before)![1]}\n`);
    // after the install: the disk (the virtio block device) boots, the network is never tried again
    expect(after).toMatch(/BdsDxe: starting Boot[0-9A-F]{4} "UEFI Misc Device" from PciRoot\(0x0\)\/Pci\(0x4,0x0\)/);
    expect(after).not.toMatch(/Start PXE|PXEv4|iPXE/);
    expect(after).toMatch(/podboot-stage2: booted-from-disk host=rack1-vm1/);
    expect(after).toMatch(/podboot-stage2: reported booted-from-disk/);
  });

  it('the pod saw a UEFI client (EFI boot file), recorded booted-from-disk and no PXE attempt after install', async () => {
    const shown = await podboot(['nodes', 'show', MAC, '--pod', 'rack-1', '--state', join(DIR, 'state'), '--json']);
    expect(shown.code).toBe(0);
    const { node, events } = JSON.parse(shown.stdout) as { node: { state: string }; events: { kind: string; detail?: string }[] };
    expect(node.state).toBe('booted-from-disk');
    // the boot file chosen from DHCP option 93: snponly.efi only for the x86 UEFI architectures (6, 7, 9)
    expect(events.find((e) => e.kind === 'discovered')?.detail).toBe('snponly.efi');
    expect(events.find((e) => e.kind === 'pxe')?.detail).toBe('snponly.efi');
    expect(events.map((e) => e.kind)).not.toContain('pxe-after-install');
  });

  it('the disk holds the GPT image with its EFI system partition; the VM had its own NVRAM, recorded for lab down', () => {
    // stderr: util-linux remarks that the image's GPT ends before the (larger) disk does, which is expected
    const dump = execFileSync('sfdisk', ['--dump', join(DIR, 'vms', 'r1-vm1.img')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(dump).toMatch(/^label: gpt$/m);
    expect(dump).toMatch(/start=\s*2048, .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B.*attrs="LegacyBIOSBootable"/);
    const state = JSON.parse(readFileSync(join(DIR, 'lab-state.json'), 'utf8')) as { options: { firmware: string }; files: string[] };
    expect(state.options.firmware).toBe('uefi');
    expect(state.files).toContain('vms/r1-vm1.vars.fd');
    const vars = readFileSync(join(DIR, 'vms', 'r1-vm1.vars.fd'));
    // OVMF wrote its boot options into the copy, the package's file is untouched
    expect(vars.length).toBe(readFileSync(OVMF_VARS).length);
    expect(vars.equals(readFileSync(OVMF_VARS))).toBe(false);
  });

  it('lab down removes every namespace, process, tap, NVRAM and file', async () => {
    const pids = labPids(DIR, prefix);
    expect(pids.length).toBeGreaterThanOrEqual(4); // central + its pod, dhcrelay, dnsmasq
    await downLeavesNothing(lab, pids);
    expect(readdirSync(work).sort()).toEqual(['junit-uefi.xml', 'timeline-uefi.json']);
  }, 180_000);
});
