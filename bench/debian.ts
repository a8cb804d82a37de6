// `npm run bench -- debian`: a real Debian 12 install through `podboot lab
// --os debian`, one rack with one VM per firmware (BIOS, UEFI), each on a
// fresh rig: seconds since power-on to DHCP (the pod's record), stage1
// running, installed (the image streamed and verified, the seed and the
// partition table written), booted-from-disk (the node agent's report) and
// SSH-ready (`ssh ops@VM hostname` answers with the VM's name), the image's
// size compressed and raw (the build's report beside it), and the bytes that
// crossed the rack's WAN link: the central end's interface counters (`ip -s
// -j link` in the central namespace) before power-on, at `installed` and at
// the end. Timings are absolute (TCG on a shared machine: orientation only).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench } from './bench.js';
import { median, table } from './lib.js';
import { labBoot } from '../src/lab/boot.js';
import { labDown } from '../src/lab/down.js';
import { DEBIAN_REPORT_FILE, labUp } from '../src/lab/up.js';
import { DEFAULT_OPTIONS, makePlan, type Firmware } from '../src/lab/plan.js';
import type { Phase } from '../src/lab/report.js';
import { packageRoot } from '../src/package-root.js';

function list(flags: string[], name: string, dflt: string): string[] {
  const f = flags.find((x) => x.startsWith(`--${name}=`));
  return (f ? f.split('=')[1]! : dflt).split(',').filter(Boolean);
}

interface Counters {
  /** central → rack (the image, mostly) */
  tx: number;
  /** rack → central */
  rx: number;
}

/** The central end of a rack's WAN link, as the kernel counts it. */
export function wanCounters(ns: string, ifname: string): Counters {
  const out = execFileSync('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', ifname], { encoding: 'utf8' });
  const link = (JSON.parse(out) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[])[0]!;
  return { tx: link.stats64.tx.bytes, rx: link.stats64.rx.bytes };
}

const MiB = 1024 * 1024;
const mib = (n: number) => (n / MiB).toFixed(1);
const TIMED: Phase[] = ['pxe', 'stage1', 'installed', 'booted-from-disk', 'ssh-ready'];

export const debianBench: Bench = {
  name: 'debian',
  summary:
    'Debian 12 through podboot lab --os debian, 1 VM per firmware: power-on → DHCP → stage1 → installed → booted-from-disk → SSH-ready, image size, WAN bytes (--firmware=bios,uefi --rounds=1 --rtt=0 --timeout=1800)',
  async run(flags) {
    const firmwares = list(flags, 'firmware', 'bios,uefi') as Firmware[];
    const rounds = Number(list(flags, 'rounds', '1')[0]);
    const rttMs = Number(list(flags, 'rtt', '0')[0]);
    const timeout = Number(list(flags, 'timeout', '1800')[0]);
    const header = ['firmware', 'round', 'ok', 'DHCP s', 'stage1 s', 'installed s', 'booted-from-disk s', 'SSH-ready s', 'WAN MiB to installed (→rack / ←rack)', 'WAN MiB to SSH-ready'];
    const rows: (string | number)[][] = [header];
    const byFirmware = new Map<Firmware, Partial<Record<Phase, number[]>>>();
    let image: { size: number; rawSize: number; kernelVersion?: string } | undefined;
    let failed = 0;
    for (let round = 1; round <= rounds; round++) {
      for (const firmware of firmwares) {
        const work = mkdtempSync(join(tmpdir(), 'podboot-bench-debian-'));
        // the lab's pods run as their own users: they pass through here to their state
        chmodSync(work, 0o711);
        const dir = join(work, 'lab');
        process.stdout.write(`\n--- Debian 12, ${firmware}, ${rttMs} ms RTT, round ${round}\n`);
        try {
          const lab = { ...DEFAULT_OPTIONS, racks: 1, nodesPerRack: 1, firmware, wanRttMs: rttMs, os: 'debian' as const };
          await labUp({ dir, lab, out: (l) => process.stdout.write(`  ${l}\n`) });
          image ??= JSON.parse(readFileSync(join(packageRoot(), '.cache', DEBIAN_REPORT_FILE), 'utf8')) as typeof image;
          const plan = makePlan(dir, lab);
          const rack = plan.racks[0]!;
          const count = () => wanCounters(plan.centralNs, rack.centralIf);
          const before = count();
          let atInstalled: Counters | undefined;
          const r = await labBoot({
            dir,
            timeoutSec: timeout,
            display: 'plain',
            out: (t) => process.stdout.write(t.replace(/^(?=.)/gm, '  ')),
            onPhase: (_vm, phase) => {
              if (phase === 'installed') atInstalled = count();
            },
          });
          const after = count();
          const vm = r.vms[0]!;
          const phases = byFirmware.get(firmware) ?? {};
          for (const ph of TIMED) if (vm.at[ph] !== undefined) (phases[ph] ??= []).push(vm.at[ph]!);
          byFirmware.set(firmware, phases);
          if (!r.ok) failed++;
          const wan = (c: Counters | undefined) => (c ? `${mib(c.tx - before.tx)} / ${mib(c.rx - before.rx)}` : '-');
          rows.push([
            firmware,
            round,
            r.ok ? 'yes' : `NO: ${vm.outcome.kind === 'failed' ? vm.outcome.message : vm.outcome.kind}`,
            ...TIMED.map((ph) => vm.at[ph]?.toFixed(1) ?? '-'),
            wan(atInstalled),
            wan(after),
          ]);
        } catch (err) {
          failed++;
          rows.push([firmware, round, `error: ${(err as Error).message.split('\n')[0]}`, '-', '-', '-', '-', '-', '-', '-']);
        } finally {
          await labDown(dir);
          rmSync(work, { recursive: true, force: true });
        }
      }
    }
    process.stdout.write('\n' + table(rows) + '\n');
    if (rounds > 1) {
      const med: (string | number)[][] = [['firmware', ...TIMED.map((p) => `${p} s (median)`)]];
      for (const [fw, ph] of byFirmware) med.push([fw, ...TIMED.map((p) => (ph[p]?.length ? median(ph[p]!).toFixed(1) : '-'))]);
      process.stdout.write('\n' + table(med) + '\n');
    }
    if (image) {
      process.stdout.write(
        `\nimage: ${mib(image.size)} MiB zstd (${image.size} bytes), ${mib(image.rawSize)} MiB raw (${image.rawSize} bytes), ratio ${(image.rawSize / image.size).toFixed(2)}${image.kernelVersion ? `, kernel ${image.kernelVersion}` : ''}\n`,
      );
    }
    process.stdout.write(`SUMMARY debian: ${rows.length - 1} run(s), ${failed ? `${failed} did not reach SSH-ready` : 'every VM reached SSH-ready'}\n`);
  },
};
