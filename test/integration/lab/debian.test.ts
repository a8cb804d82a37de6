// `podboot lab --os debian` end to end: one rack, one BIOS VM (1024 MiB, a
// 3 GiB sparse disk) installs the real Debian 12 image through the lab's
// chain (PXE through the rack's dhcrelay, stage1 streams the signed zstd
// image, the pod's cloud-init seed), boots it, the node agent reports
// booted-from-disk, and `lab boot` logs in with the key `lab up` made:
// ssh ops@10.20.1.10 `hostname` answers rack1-vm1. Asserted from the CLI's
// output, its JUnit and timeline, the pod's record and what `lab down`
// leaves. Its own file: it costs several minutes under TCG (the image is
// built once per machine, cached; ~4 min the first time).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { downLeavesNothing, labBoot, labPids, labTestDir, podboot } from './rig.js';

const lab = labTestDir('labdeb');
const { work, dir: DIR, prefix } = lab;
const MAC = '52:54:00:9b:01:01';
const CHAIN = ['power-on', 'pxe', 'stage1', 'verified', 'installed', 'booted-from-disk'];

describe('podboot lab --os debian: 1 rack × 1 VM installs Debian 12 and answers over ssh', () => {
  it('lab up --os debian, lab boot: ssh-ready, and ssh returned the VM hostname', async () => {
    const up = await podboot(['lab', 'up', '--os', 'debian', '--racks', '1', '--nodes-per-rack', '1', '--dir', DIR], 900_000);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // the operator is told where the key is
    expect(up.stdout).toContain(`key ${join(DIR, 'ssh', 'id_ed25519')}`);

    const { boot, timeline, junit } = await labBoot(lab, 'debian', ['--timeout', '1500'], 1_700_000);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    expect(boot.stdout).toMatch(/all 1 VM\(s\) booted from disk and answered over ssh/);
    expect(timeline.ok).toBe(true);
    const vm = timeline.vms['r1-vm1']!;
    expect(vm.result).toBe('ssh-ready');
    expect(vm.hostname).toBe('rack1-vm1');
    const at = CHAIN.map((p) => vm.phases[p]);
    for (const t of at) expect(typeof t).toBe('number');
    expect([...at].sort((a, b) => a! - b!)).toEqual(at);
    expect(vm.phases['ssh-ready']).toBeGreaterThan(vm.phases.installed!);
    expect(junit).toMatch(/tests="1" failures="0"/);
    expect(junit).toMatch(/ssh ready: hostname rack1-vm1/);

    // the console shows Debian's own boot and the node agent's report; the pod recorded it
    const text = readFileSync(join(DIR, 'vms', 'r1-vm1.console.log'), 'latin1');
    expect(text).toMatch(/podboot-stage1: verified debian-12 1\.0/);
    expect(text).toMatch(/Debian GNU\/Linux 12/);
    expect(text).toMatch(/podboot-node-agent: booted-from-disk reported host=rack1-vm1/);
    const shown = await podboot(['nodes', 'show', MAC, '--pod', 'rack-1', '--state', join(DIR, 'state'), '--json']);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout).node.state).toBe('booted-from-disk');
  }, 2_700_000);

  it('lab down removes every namespace, process, tap, key and file', async () => {
    const pids = labPids(DIR, prefix);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    await downLeavesNothing(lab, pids);
    expect(readdirSync(work).sort()).toEqual(['junit-debian.xml', 'timeline-debian.json']);
  }, 180_000);
});
