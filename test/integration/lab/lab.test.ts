// `podboot lab` end to end, as a CI user runs it: a 2-rack rig with one VM
// each behind a 50 ms RTT WAN (netem where the kernel has it, lab/wan-link.py
// here), both VMs PXE-install through their rack's dhcrelay and the central
// node and boot from disk; then the same rig with rack-1's stage2 tampered:
// rack-1's VM fails at verify, rack-2's installs again, exit code non-zero,
// JUnit names the failure; then `lab down` leaves no namespace, process, tap
// or file behind. Asserted from the CLI's exit codes, its JUnit and timeline
// files, the pods' records and /proc.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { downLeavesNothing, expectBootedInOrder, labBoot, labNamespaces, labPids, labTestDir, podboot } from './rig.js';

// after a failed assertion too, `lab down` runs at the end: nothing of the lab may stay on the machine
const lab = labTestDir('labtest');
const { work, dir: DIR, prefix } = lab;
const ourNamespaces = () => labNamespaces(prefix);

describe('podboot lab: 2 racks × 1 VM behind a 50 ms RTT WAN', () => {
  it('--help on every subcommand; wrong usage exits 2', async () => {
    for (const sub of ['up', 'boot', 'down', 'doctor']) {
      const r = await podboot(['lab', sub, '--help']);
      expect(r.code, sub).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`usage: podboot lab ${sub}`));
    }
    expect((await podboot(['lab', 'up', '--racks', 'zero', '--dir', DIR])).code).toBe(2);
    expect((await podboot(['lab', 'up', '--wan-rtt', 'fast', '--dir', DIR])).code).toBe(2);
    expect((await podboot(['lab', 'frobnicate'])).code).toBe(2);
    expect((await podboot(['lab', 'up', '--firmware', 'coreboot', '--dir', DIR])).code).toBe(2);
    expect(existsSync(DIR)).toBe(false);
  });

  it('lab up, lab boot: both VMs reach booted-from-disk; JUnit and timeline say so', async () => {
    const up = await podboot(['lab', 'up', '--racks', '2', '--nodes-per-rack', '1', '--wan-rtt', '50ms', '--dir', DIR]);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(ourNamespaces().sort()).toEqual([`${prefix}-central`, `${prefix}-tor1`, `${prefix}-tor2`, `${prefix}-wan`]);
    // a second lab on the same DIR is refused
    const again = await podboot(['lab', 'up', '--dir', DIR]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already up/);

    const { boot, timeline: tl, junit: xml } = await labBoot(lab, '1', ['--timeout', '500']);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    expect(boot.stdout).toMatch(/all 2 VM\(s\) booted from disk/);

    expect(tl.ok).toBe(true);
    expect(Object.keys(tl.vms).sort()).toEqual(['r1-vm1', 'r2-vm1']);
    for (const vm of Object.values(tl.vms)) expectBootedInOrder(vm);
    expect(xml).toMatch(/<testsuite name="podboot lab" tests="2" failures="0"/);
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml).not.toMatch(/<failure/);

    // the pods' own records agree
    for (const [pod, mac] of [
      ['rack-1', '52:54:00:9b:01:01'],
      ['rack-2', '52:54:00:9b:02:01'],
    ] as const) {
      const shown = await podboot(['nodes', 'show', mac, '--pod', pod, '--state', join(DIR, 'state'), '--json']);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout).node.state).toBe('booted-from-disk');
    }
  }, 900_000);

  it('lab boot --tamper rack-1: rack-1 fails at verify, rack-2 installs again, exit code 1, JUnit names it', async () => {
    const { boot, timeline: tl, junit: xml } = await labBoot(lab, '2', ['--timeout', '500', '--tamper', 'rack-1']);
    expect(boot.code, boot.stdout + boot.stderr).toBe(1);
    expect(boot.stdout).toMatch(/rack-1's stage2 copy is tampered/);
    expect(boot.stdout).toMatch(/r1-vm1 \(rack-1, 52:54:00:9b:01:01\): failed\((signature|digest)\)/);
    expect(boot.stdout).toMatch(/1 of 2 VM\(s\) booted from disk/);

    expect(tl.ok).toBe(false);
    expect(tl.vms['r1-vm1']!.result).toMatch(/^failed\((signature|digest)\)$/);
    expect(tl.vms['r1-vm1']!.phases.installed).toBeUndefined();
    expect(tl.vms['r2-vm1']!.result).toBe('booted-from-disk');

    expect(xml).toMatch(/tests="2" failures="1"/);
    expect(xml).toMatch(/<failure type="(signature|digest)" message="r1-vm1: failed\((signature|digest)\)/);
    expect(xml.match(/<failure/g)).toHaveLength(1);

    // rack-1's pod recorded the refusal and never an install of this attempt
    const shown = await podboot(['nodes', 'show', '52:54:00:9b:01:01', '--pod', 'rack-1', '--state', join(DIR, 'state'), '--json']);
    const node = JSON.parse(shown.stdout).node as { state: string; reason: string; attempt: number };
    expect(node).toMatchObject({ state: 'failed', attempt: 2 });
    expect(node.reason).toMatch(/^(signature|digest)$/);
  }, 900_000);

  it('lab down removes every namespace, process, tap and file; a second down does nothing', async () => {
    const pids = labPids(DIR, prefix);
    expect(pids.length).toBeGreaterThanOrEqual(8); // central + its 2 pods, 2 dhcrelay, 2 dnsmasq, WAN link(s)

    await downLeavesNothing(lab, pids);
    // only the reports the test asked for are left in its own directory
    expect(readdirSync(work).sort()).toEqual(['junit-1.xml', 'junit-2.xml', 'timeline-1.json', 'timeline-2.json']);

    const again = await podboot(['lab', 'down', '--dir', DIR]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to remove/);
  }, 180_000);
});
