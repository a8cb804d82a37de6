// `podboot lab --os debian` end to end, and the BIOS half of the Debian
// install's must-show (the UEFI half and the tampered image are in
// test/integration/boot/debian-qemu.test.ts): one rack, one BIOS VM (1024
// MiB, 2 vCPUs, a 3 GiB sparse disk) with a provisioning NIC on the rack
// bridge behind the rack's ISC dhcrelay and a management NIC on the rack's
// management bridge and subnet. PXE → stage1 streams the signed zstd image,
// verified while it is written → the pod's cloud-init seed → partition table
// last → reboot → Debian boots with systemd → cloud-init sets the hostname
// and the management address from the pod YAML → `lab boot` logs in with the
// key `lab up` made, over the management network; then this test logs in
// too with the real ssh client and reads `hostname` and `ip -br addr` → the
// node agent's booted-from-disk and heartbeats are in the pod's database,
// with the image stage1 wrote → after the reboot SeaBIOS asked for PXE first
// and got no offer. Asserted from the CLI's output, its JUnit and timeline,
// the pod's record and what `lab down` leaves. Its own file: several minutes
// under TCG (the image is built once per machine, cached; ~4 min the first
// time).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sshArgs } from '../../../src/lab/boot.js';
import { makePlan } from '../../../src/lab/plan.js';
import { PODBOOT } from '../../helpers/netns.js';
import { downLeavesNothing, labBoot, labPids, labTestDir, podboot } from './rig.js';

const lab = labTestDir('labdeb');
const { work, dir: DIR, prefix } = lab;
const CHAIN = ['power-on', 'pxe', 'stage1', 'verified', 'installed', 'booted-from-disk'];

interface Shown {
  node: { state: string; image?: string; liveness?: string; heartbeat?: { metrics: Record<string, number> } };
  events: { kind: string }[];
}

describe('podboot lab --os debian: 1 rack × 1 VM installs Debian 12 and answers over ssh on its management network', () => {
  const vm = makePlan(DIR, { racks: 1, nodesPerRack: 1 }).racks[0]!.vms[0]!;
  const show = async () => {
    const r = await podboot(['nodes', 'show', vm.mac, '--pod', 'rack-1', '--state', join(DIR, 'state'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Shown;
  };

  it('lab up --os debian, lab boot --cpus 2: ssh-ready over the management network, hostname and address from the pod YAML, the agent reports', async () => {
    const up = await podboot(['lab', 'up', '--os', 'debian', '--racks', '1', '--nodes-per-rack', '1', '--dir', DIR], 900_000);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // the operator is told where the key is, and where the server answers
    expect(up.stdout).toContain(`key ${join(DIR, 'ssh', 'id_ed25519')}`);
    expect(up.stdout).toContain(`ops@${vm.mgmtAddress} (its management address)`);

    // --keep-running: this test logs in itself afterwards
    const { boot, timeline, junit } = await labBoot(lab, 'debian', ['--timeout', '1500', '--cpus', '2', '--keep-running'], 1_700_000);
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
    const key = join(DIR, 'ssh', 'id_ed25519');
    const r = spawnSync('ip', sshArgs(`${prefix}-central`, key, vm.mgmtAddress, 'hostname; ip -br addr; sudo -n true && echo sudo-ok; ls /etc/ssh'), { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('rack1-vm1');
    // The management NIC, matched by its MAC and renamed, carries the address from the pod YAML; the provisioning NIC its lease.
    expect(r.stdout).toMatch(new RegExp(`^mgmt0\\s+UP\\s+${vm.mgmtAddress.replace(/\./g, '\\.')}/24`, 'm'));
    expect(r.stdout).toContain('sudo-ok');
    // cloud-init made the host keys the image asks for (no RSA: docs/debian-image.md)
    expect(r.stdout.match(/ssh_host_\w+_key\.pub/g)?.sort()).toEqual(['ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key.pub']);

    // A remote task (issue 16, T1) through the lab's central API to the installed server's node agent, which runs it as
    // its own confined user: the output and exit code come back, and a rule on ERROR marks it failed.
    const central = (...args: string[]) =>
      spawnSync('ip', ['netns', 'exec', `${prefix}-central`, process.execPath, PODBOOT, ...args, '--state', join(DIR, 'state')], { encoding: 'utf8', timeout: 180_000 });
    const ok = central('tasks', 'run', 'hello', '--pod', 'rack-1', '--target', 'rack1-vm1', '--param', 'message=hello from the lab', '--wait', '--json');
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const [done] = JSON.parse(ok.stdout) as { id: string; state: string; exitCode?: number }[];
    expect(done).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(central('tasks', 'logs', done!.id, '--pod', 'rack-1').stdout).toBe('hello from the lab\n');
    const flagged = central('tasks', 'run', 'hello', '--pod', 'rack-1', '--target', vm.mac, '--param', 'message=ERROR: from the lab', '--rule', 'stdout fail ERROR', '--wait', '--json');
    expect(flagged.status, flagged.stderr).toBe(1);
    expect(JSON.parse(flagged.stdout)[0]).toMatchObject({ state: 'failed', exitCode: 0, reason: 'rule: stdout /ERROR/ matched' });

    // the console shows Debian's own boot and the node agent's report
    const text = readFileSync(join(DIR, 'vms', 'r1-vm1.console.log'), 'latin1');
    expect(text).toMatch(/podboot-stage1: verified debian-12 1\.0/);
    expect(text).toMatch(/Welcome to .*Debian GNU\/Linux 12/);
    expect(text).toMatch(/podboot-node-agent: booted-from-disk reported host=rack1-vm1/);

    // The pod's record: the chain's events in order, the image stage1 wrote, heartbeats (every 10 s in the lab) keeping it active.
    const deadline = Date.now() + 120_000;
    let shown = await show();
    while (Date.now() < deadline && !(shown.node.liveness === 'active' && shown.node.heartbeat)) {
      await new Promise((res) => setTimeout(res, 2000));
      shown = await show();
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

  it('lab down removes every namespace, process, tap, key and file', async () => {
    const pids = labPids(DIR, prefix);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    await downLeavesNothing(lab, pids);
    expect(readdirSync(work).sort()).toEqual(['junit-debian.xml', 'timeline-debian.json']);
  }, 180_000);
});
