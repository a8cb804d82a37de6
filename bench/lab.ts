// `npm run bench -- lab`: the whole chain on QEMU VMs through `podboot lab`,
// power-on → installed and → booted-from-disk per VM, for 1, 2 and 4 VMs in
// parallel, at 0 and 50 ms WAN RTT, with stage1 over iPXE-HTTP (the default)
// and over TFTP only (pxelinux). Each configuration is a fresh rig (lab up,
// lab boot, lab down), so one configuration's caches never help the next.
// Timings are absolute (TCG on a shared machine: orientation only); the
// comparison that matters is TFTP vs iPXE-HTTP on the same rig and run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench } from './bench.js';
import { median, table } from './lib.js';
import { labBoot } from '../src/lab/boot.js';
import { labDown } from '../src/lab/down.js';
import { labUp } from '../src/lab/up.js';
import { DEFAULT_OPTIONS, type Stage1Path } from '../src/lab/plan.js';

function list(flags: string[], name: string, dflt: string): string[] {
  const f = flags.find((x) => x.startsWith(`--${name}=`));
  return (f ? f.split('=')[1]! : dflt).split(',').filter(Boolean);
}

interface Config {
  stage1: Stage1Path;
  vms: number;
  rttMs: number;
}

export const labBench: Bench = {
  name: 'lab',
  summary:
    'QEMU VMs through podboot lab: power-on → installed / booted-from-disk for 1, 2, 4 VMs at 0 and 50 ms RTT, iPXE-HTTP vs TFTP stage1 (--vms=1,2,4 --rtt=0,50 --stage1=ipxe-http,tftp --tftp-vms=1 --rounds=1 --timeout=900)',
  async run(flags) {
    const vmsList = list(flags, 'vms', '1,2,4').map(Number);
    const rtts = list(flags, 'rtt', '0,50').map(Number);
    const paths = list(flags, 'stage1', 'ipxe-http,tftp') as Stage1Path[];
    // pxelinux fetches kernel + initrd lock-step over TFTP: ~6 min per VM at 50 ms RTT, so by default only 1 VM
    const tftpVms = list(flags, 'tftp-vms', '1').map(Number);
    const rounds = Number(list(flags, 'rounds', '1')[0]);
    const timeout = Number(list(flags, 'timeout', '900')[0]);
    const configs: Config[] = [];
    for (const rttMs of rtts) {
      for (const stage1 of paths) {
        for (const vms of stage1 === 'tftp' ? tftpVms : vmsList) configs.push({ stage1, vms, rttMs });
      }
    }
    const rows: (string | number)[][] = [['stage1', 'VMs', 'RTT ms', 'round', 'ok', 'installed s (median / max)', 'booted-from-disk s (median / max)', 'stage1 s (median)']];
    const summary = new Map<string, { installed: number[]; booted: number[]; ok: boolean }>();
    for (let round = 1; round <= rounds; round++) {
      for (const c of configs) {
        const work = mkdtempSync(join(tmpdir(), 'podboot-bench-lab-'));
        const dir = join(work, 'lab');
        process.stdout.write(`\n--- ${c.stage1}, ${c.vms} VM(s), ${c.rttMs} ms RTT, round ${round}\n`);
        try {
          const racks = Math.min(c.vms, 2);
          await labUp({ dir, lab: { ...DEFAULT_OPTIONS, racks, nodesPerRack: Math.ceil(c.vms / racks), wanRttMs: c.rttMs, stage1: c.stage1 }, out: (l) => process.stdout.write(`  ${l}\n`) });
          const r = await labBoot({ dir, timeoutSec: timeout, display: 'plain', out: (t) => process.stdout.write(t.replace(/^(?=.)/gm, '  ')) });
          const installed = r.vms.map((v) => v.at.installed).filter((x): x is number => x !== undefined);
          const booted = r.vms.map((v) => v.at['booted-from-disk']).filter((x): x is number => x !== undefined);
          const stage1 = r.vms.map((v) => v.at.stage1).filter((x): x is number => x !== undefined);
          const key = `${c.stage1} ${c.vms} ${c.rttMs}`;
          const s = summary.get(key) ?? { installed: [], booted: [], ok: true };
          s.installed.push(...installed);
          s.booted.push(...booted);
          s.ok &&= r.ok;
          summary.set(key, s);
          const fmt = (xs: number[]) => (xs.length ? `${median(xs).toFixed(1)} / ${Math.max(...xs).toFixed(1)}` : '-');
          rows.push([c.stage1, c.vms, c.rttMs, round, r.ok ? 'yes' : 'NO', fmt(installed), fmt(booted), stage1.length ? median(stage1).toFixed(1) : '-']);
        } catch (err) {
          rows.push([c.stage1, c.vms, c.rttMs, round, `error: ${(err as Error).message.split('\n')[0]}`, '-', '-', '-']);
        } finally {
          await labDown(dir);
          rmSync(work, { recursive: true, force: true });
        }
      }
    }
    process.stdout.write('\n' + table(rows) + '\n');
    // TFTP-only vs iPXE-HTTP stage1, same VM count and RTT: the ratio of median power-on → installed
    const ratios: (string | number)[][] = [['VMs', 'RTT ms', 'installed: tftp / ipxe-http (median)', 'booted-from-disk: tftp / ipxe-http']];
    for (const [key, s] of summary) {
      const [path, vms, rtt] = key.split(' ');
      if (path !== 'tftp') continue;
      const http = summary.get(`ipxe-http ${vms} ${rtt}`);
      if (!http || !s.installed.length || !http.installed.length) continue;
      ratios.push([vms!, rtt!, (median(s.installed) / median(http.installed)).toFixed(2), s.booted.length && http.booted.length ? (median(s.booted) / median(http.booted)).toFixed(2) : '-']);
    }
    if (ratios.length > 1) process.stdout.write('\n' + table(ratios) + '\n');
    const failed = [...summary.entries()].filter(([, s]) => !s.ok).map(([k]) => k);
    process.stdout.write(`SUMMARY lab: ${summary.size} configuration(s), ${failed.length ? `not all VMs finished in: ${failed.join('; ')}` : 'every VM booted from disk'}\n`);
  },
};
