// `podboot lab` end to end, as a CI user runs it: a 2-rack rig with one VM
// each behind a 50 ms RTT WAN (netem where the kernel has it, lab/wan-link.py
// here), both VMs PXE-install through their rack's dhcrelay and the central
// node and boot from disk; then the same rig with rack-1's stage2 tampered:
// rack-1's VM fails at verify, rack-2's installs again, exit code non-zero,
// JUnit names the failure; then `lab down` leaves no namespace, process, tap
// or file behind. Asserted from the CLI's exit codes, its JUnit and timeline
// files, the pods' records and /proc.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PODBOOT, requireBuild, run } from '../../helpers/netns.js';
import { labPrefix } from '../../../src/lab/plan.js';

const work = mkdtempSync(join(tmpdir(), 'pb-labtest-'));
// a directory the lab creates itself, so `lab down` must remove all of it
const DIR = join(work, 'lab');
const prefix = labPrefix(DIR);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function podboot(args: string[], timeoutMs = 600_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const ourNamespaces = () => run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${prefix}-`));
const hostLinks = () => new Set(run('ip', ['-o', 'link', 'show']).split('\n').map((l) => l.split(':')[1]?.trim() ?? '').filter((n) => n !== ''));

/** a live (not zombie) process with this pid */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** pids of live processes whose command line mentions the lab directory */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text) && running(Number(e))) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

interface Timeline {
  ok: boolean;
  vms: Record<string, { rack: string; result: string; message?: string; phases: Record<string, number> }>;
}

let linksBefore: Set<string>;

beforeAll(() => {
  requireBuild();
  linksBefore = hostLinks();
});

afterAll(async () => {
  // after a failed assertion too: nothing of the lab may stay on the machine
  await podboot(['lab', 'down', '--dir', DIR], 120_000);
  rmSync(work, { recursive: true, force: true });
});

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
    expect(existsSync(DIR)).toBe(false);
    const uefi = await podboot(['lab', 'up', '--firmware', 'uefi', '--dir', DIR]);
    expect(uefi.code).toBe(1);
    expect(uefi.stderr).toMatch(/uefi is not supported yet/);
  });

  it('lab up, lab boot: both VMs reach booted-from-disk; JUnit and timeline say so', async () => {
    const up = await podboot(['lab', 'up', '--racks', '2', '--nodes-per-rack', '1', '--wan-rtt', '50ms', '--dir', DIR]);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(ourNamespaces().sort()).toEqual([`${prefix}-central`, `${prefix}-tor1`, `${prefix}-tor2`, `${prefix}-wan`]);
    // a second lab on the same DIR is refused
    const again = await podboot(['lab', 'up', '--dir', DIR]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already up/);

    const junit = join(work, 'junit-1.xml');
    const timeline = join(work, 'timeline-1.json');
    const boot = await podboot(['lab', 'boot', '--dir', DIR, '--timeout', '500', '--junit', junit, '--timeline', timeline]);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    expect(boot.stdout).toMatch(/all 2 VM\(s\) booted from disk/);

    const tl = JSON.parse(readFileSync(timeline, 'utf8')) as Timeline;
    expect(tl.ok).toBe(true);
    expect(Object.keys(tl.vms).sort()).toEqual(['r1-vm1', 'r2-vm1']);
    for (const vm of Object.values(tl.vms)) {
      expect(vm.result).toBe('booted-from-disk');
      const order = ['power-on', 'pxe', 'stage1', 'verified', 'installed', 'booted-from-disk'];
      const at = order.map((p) => vm.phases[p]);
      for (const t of at) expect(typeof t).toBe('number');
      expect([...at].sort((a, b) => a! - b!)).toEqual(at);
    }
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="podboot lab" tests="2" failures="0"/);
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml).not.toMatch(/<failure/);

    // the pods' own records agree
    for (const [pod, mac] of [['rack-1', '52:54:00:9b:01:01'], ['rack-2', '52:54:00:9b:02:01']] as const) {
      const shown = await podboot(['nodes', 'show', mac, '--pod', pod, '--state', join(DIR, 'state'), '--json']);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout).node.state).toBe('booted-from-disk');
    }
  }, 900_000);

  it('lab boot --tamper rack-1: rack-1 fails at verify, rack-2 installs again, exit code 1, JUnit names it', async () => {
    const junit = join(work, 'junit-2.xml');
    const timeline = join(work, 'timeline-2.json');
    const boot = await podboot(['lab', 'boot', '--dir', DIR, '--timeout', '500', '--tamper', 'rack-1', '--junit', junit, '--timeline', timeline]);
    expect(boot.code, boot.stdout + boot.stderr).toBe(1);
    expect(boot.stdout).toMatch(/rack-1's stage2 copy is tampered/);
    expect(boot.stdout).toMatch(/r1-vm1 \(rack-1, 52:54:00:9b:01:01\): failed\((signature|digest)\)/);
    expect(boot.stdout).toMatch(/1 of 2 VM\(s\) booted from disk/);

    const tl = JSON.parse(readFileSync(timeline, 'utf8')) as Timeline;
    expect(tl.ok).toBe(false);
    expect(tl.vms['r1-vm1']!.result).toMatch(/^failed\((signature|digest)\)$/);
    expect(tl.vms['r1-vm1']!.phases.installed).toBeUndefined();
    expect(tl.vms['r2-vm1']!.result).toBe('booted-from-disk');

    const xml = readFileSync(junit, 'utf8');
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
    const state = JSON.parse(readFileSync(join(DIR, 'lab-state.json'), 'utf8')) as { processes: { pid: number; what: string }[] };
    const inNamespaces = ourNamespaces().flatMap((ns) => run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number));
    const pids = [...new Set([...state.processes.map((p) => p.pid), ...inNamespaces])];
    expect(pids.length).toBeGreaterThanOrEqual(8); // central + its 2 pods, 2 dhcrelay, 2 dnsmasq, WAN link(s)

    const down = await podboot(['lab', 'down', '--dir', DIR], 120_000);
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expect(ourNamespaces()).toEqual([]);
    expect(pids.filter(running)).toEqual([]);
    expect(processesMentioning(DIR)).toEqual([]);
    expect([...hostLinks()].filter((l) => !linksBefore.has(l))).toEqual([]);
    expect(existsSync(DIR)).toBe(false);
    // only the reports the test asked for are left in its own directory
    expect(readdirSync(work).sort()).toEqual(['junit-1.xml', 'junit-2.xml', 'timeline-1.json', 'timeline-2.json']);

    const again = await podboot(['lab', 'down', '--dir', DIR]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to remove/);
  }, 180_000);
});
