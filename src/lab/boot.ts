// `podboot lab boot`: power the rig's VMs on, follow each through the chain
// from its serial console and its pod's record, report (table, JUnit,
// timeline) and power them off again. A VM counts as done only when its
// console printed booted-from-disk AND its pod recorded it; with --os debian
// when it booted from its disk (the pod's record or its node agent's console
// line) AND ssh with the lab's key logs in over its management network and
// `hostname` answers its name.
import { type ChildProcess, execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PodStateView } from '../store/types.js';
import { OVMF_CODE, OVMF_VARS } from './firmware.js';
import { LAB_SSH_USER, MGMT_BRIDGE, allVms, makePlan, vmResources, type VmPlan } from './plan.js';
import {
  PHASES,
  consoleFacts,
  consoleTail,
  giveUp,
  junitXml,
  newProgress,
  observe,
  statusText,
  succeeded,
  tableLines,
  timeline,
  type Phase,
  type SshProbe,
  type Timeline,
  type VmProgress,
  wanLines,
} from './report.js';
import { CommandError, alive, ipn, readState, run, spawnDetached, stopProcesses, writeState, type RecordedProcess } from './sys.js';
import { labLogger, podboot, sshKeyPath, tamperStage2 } from './up.js';
import { wanSnapshot, wanUsageSince } from './wan-counters.js';

export interface BootOptions {
  dir: string;
  timeoutSec: number;
  junit?: string;
  timeline?: string;
  tamper?: string;
  /** leave the VMs running after the run (they are stopped by `lab down`) */
  keepRunning?: boolean;
  /** done once each VM's install is recorded, without waiting for it to boot from its disk */
  until?: 'installed';
  /** 'tty': a live table redrawn in place; 'plain': one line per phase change; 'quiet': nothing until the end */
  display: 'tty' | 'plain' | 'quiet';
  out?: (text: string) => void;
  /** QEMU accelerator: tcg (default) or kvm */
  accel?: 'tcg' | 'kvm';
  /** virtual CPUs per VM (default 1) */
  cpus?: number;
  /** called once per VM and phase, when the phase is first seen (a bench reads counters there) */
  onPhase?: (vm: string, phase: Phase, seconds: number) => void;
}

export interface BootResult {
  ok: boolean;
  vms: VmProgress[];
  timeline: Timeline;
  junitFile: string;
  timelineFile: string;
}

type NodeRow = { state: string; reason?: string; updatedAt: number };

/** Reads each pod's records from its state, read-only (what `podboot nodes show --json` prints), kept open per pod. */
class PodRecords {
  private readonly open = new Map<string, PodStateView>();
  constructor(private readonly stateRoot: string) {}

  async read(pod: string): Promise<Map<string, NodeRow>> {
    let state = this.open.get(pod);
    if (!state) {
      const { openPodState } = await import('../store/pod-state.js');
      state = openPodState(join(this.stateRoot, pod), { readonly: true });
      if (!state) return new Map();
      this.open.set(pod, state);
    }
    return new Map(state.nodes().map((n) => [n.mac, { state: n.state, ...(n.reason ? { reason: n.reason } : {}), updatedAt: n.updatedAt }]));
  }

  close(): void {
    for (const state of this.open.values()) state.close();
    this.open.clear();
  }
}

/** A VM's NVRAM file, relative to DIR (recorded in the state file as the lab's). */
export function varsFile(vm: VmPlan): string {
  return join('vms', `${vm.name}.vars.fd`);
}

export interface VmHardware {
  /** UEFI: the VM's own NVRAM file (OVMF); absent: SeaBIOS */
  uefiVars?: string;
  memMb?: number;
  /** virtual CPUs; more than one runs on several host threads under TCG (MTTCG) */
  cpus?: number;
  /** a second NIC, on the rack's management bridge (the Debian racks) */
  management?: boolean;
}

export function qemuArgs(vm: VmPlan, disk: string, accel: 'tcg' | 'kvm', hw: VmHardware = {}): string[] {
  const common = ['-machine', `pc,accel=${accel}`, '-m', String(hw.memMb ?? 512), '-smp', String(hw.cpus ?? 1), '-nographic', '-netdev', `tap,id=n0,ifname=${vm.tap},script=no,downscript=no`];
  const drive = ['-drive', `file=${disk},format=raw,if=virtio`];
  // no option ROM: the management NIC never network-boots
  const management = hw.management ? ['-netdev', `tap,id=m0,ifname=${vm.mgmtTap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=m0,mac=${vm.mgmtMac},romfile=`] : [];
  if (hw.uefiVars === undefined) {
    return [
      ...common,
      // network first; once installed the pod offers no boot file and SeaBIOS falls through to the disk
      '-boot',
      'order=nc',
      '-device',
      `virtio-net-pci,netdev=n0,mac=${vm.mac}`,
      ...management,
      ...drive,
    ];
  }
  return [
    ...common,
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${hw.uefiVars}`,
    // No option ROM: OVMF's own virtio-net driver and UEFI PXE client do the network boot (DHCP option 93 = 7), as a
    // rack server's firmware would; QEMU's iPXE ROM would answer for it as iPXE instead.
    '-device',
    `virtio-net-pci,netdev=n0,mac=${vm.mac},romfile=`,
    ...management,
    // No bootindex: with one, OVMF rewrites BootOrder from QEMU's list at every boot and drops the entries the
    // stage1 agent sets; without, BootOrder lives in the VM's NVRAM like a server's.
    ...drive,
  ];
}

/** `ssh … hostname` as the lab's operator, from the namespace the lab reaches its racks from (central, across the WAN). */
export function sshArgs(centralNs: string, key: string, address: string, command = 'hostname'): string[] {
  return [
    'netns',
    'exec',
    centralNs,
    'ssh',
    // neither this machine's ssh configuration nor its known hosts: every install makes new host keys
    '-F',
    '/dev/null',
    '-i',
    key,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    `${LAB_SSH_USER}@${address}`,
    command,
  ];
}

/** One login attempt, bounded (20 s); `track` gets the child so the run can end it early. */
function sshProbe(args: string[], track: (c: ChildProcess) => void): Promise<SshProbe> {
  return new Promise((resolve) => {
    const child = execFile('ip', args, { encoding: 'utf8', timeout: 20_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = stderr.trim().split('\n').pop() || (err.killed ? 'no answer within 20 s' : err.message.split('\n')[0]!);
        resolve({ error: why.slice(0, 200) });
      } else resolve({ hostname: stdout.trim().split('\n')[0] ?? '' });
    });
    track(child);
  });
}

export async function labBoot(o: BootOptions): Promise<BootResult> {
  const out = o.out ?? ((t: string) => process.stdout.write(t));
  const state = readState(o.dir);
  if (!state) throw new CommandError(`no lab in ${o.dir} (podboot lab up --dir ${o.dir} first)`);
  if (state.status !== 'up') throw new CommandError(`the lab in ${o.dir} is not up (status ${state.status}): podboot lab down, then up again`);
  const central = state.processes.find((p) => p.what === 'central');
  if (!central || !alive(central)) throw new CommandError(`the lab's central node is not running (see ${join(o.dir, 'logs', 'central.log')}); podboot lab down, then up again`);
  if (state.processes.some((p) => p.what.startsWith('qemu-') && alive(p))) throw new CommandError('VMs of an earlier boot are still running: podboot lab down first, or wait for that boot to finish');
  const log = labLogger(o.dir, 'boot');
  const plan = makePlan(state.dir, state.options);
  const os = state.options.os;
  const debian = os === 'debian';
  const resources = vmResources(os);
  const stateRoot = join(state.dir, 'state');
  const save = () => writeState(state);

  if (o.tamper && !(state.tampered ?? []).includes(o.tamper)) {
    tamperStage2(state.dir, o.tamper, os);
    state.tampered = [...(state.tampered ?? []), o.tamper];
    save();
  }
  for (const pod of state.tampered ?? []) out(`note: ${pod}'s stage2 copy is tampered (one flipped byte): its VMs must fail at verify\n`);

  // A VM its pod already installed would just boot its old disk: an operator's reinstall puts it back to PXE install.
  const records = new PodRecords(stateRoot);
  const vms = allVms(plan);
  for (const rack of plan.racks) {
    const seen = await records.read(rack.pod);
    for (const vm of rack.vms) {
      const r = seen.get(vm.mac);
      if (r && r.state !== 'discovered' && r.state !== 'pxe') {
        podboot(['nodes', 'reinstall', vm.mac, '--pod', rack.pod, '--state', stateRoot]);
        log.info({ vm: vm.name, previous: r.state }, 'reinstall before boot');
      }
    }
  }
  const baseline = new Map<string, NodeRow | undefined>();
  for (const rack of plan.racks) {
    const seen = await records.read(rack.pod);
    for (const vm of rack.vms) baseline.set(vm.mac, seen.get(vm.mac));
  }

  // The WAN links count from lab up on: the boot's share is what they count from here to the end.
  const wanBefore = wanSnapshot(state.dir, plan.racks);
  // Fresh blank disks and taps, then every VM powered on at once.
  const vmDir = join(state.dir, 'vms');
  mkdirSync(vmDir, { recursive: true });
  const started = new Map<string, { proc: RecordedProcess; at: number; console: string }>();
  const startedIso = new Date().toISOString();
  for (const rack of plan.racks) {
    for (const vm of rack.vms) {
      const disk = join(vmDir, `${vm.name}.img`);
      writeFileSync(disk, '');
      run('truncate', ['-s', String(resources.diskBytes), disk]);
      run('ip', ['-n', rack.torNs, 'link', 'del', vm.tap], { allowFail: true });
      ipn(rack.torNs, 'tuntap', 'add', 'dev', vm.tap, 'mode', 'tap');
      ipn(rack.torNs, 'link', 'set', vm.tap, 'master', 'br0');
      ipn(rack.torNs, 'link', 'set', vm.tap, 'up');
      if (debian) {
        run('ip', ['-n', rack.torNs, 'link', 'del', vm.mgmtTap], { allowFail: true });
        ipn(rack.torNs, 'tuntap', 'add', 'dev', vm.mgmtTap, 'mode', 'tap');
        ipn(rack.torNs, 'link', 'set', vm.mgmtTap, 'master', MGMT_BRIDGE);
        ipn(rack.torNs, 'link', 'set', vm.mgmtTap, 'up');
      }
      const consoleFile = join(vmDir, `${vm.name}.console.log`);
      writeFileSync(consoleFile, '');
      let vars: string | undefined;
      if (state.options.firmware === 'uefi') {
        // a fresh NVRAM per power-on: each run starts from the firmware's defaults, as a new server does
        const rel = varsFile(vm);
        if (!state.files.includes(rel)) {
          state.files.push(rel);
          save();
        }
        vars = join(state.dir, rel);
        copyFileSync(OVMF_VARS, vars);
      }
      const proc = spawnDetached(
        rack.torNs,
        'qemu-system-x86_64',
        qemuArgs(vm, disk, o.accel ?? 'tcg', { ...(vars ? { uefiVars: vars } : {}), memMb: resources.memMb, cpus: o.cpus ?? 1, management: debian }),
        consoleFile,
        `qemu-${vm.name}`,
      );
      state.processes.push(proc);
      save();
      started.set(vm.name, { proc, at: Date.now(), console: consoleFile });
      log.info({ vm: vm.name, mac: vm.mac, pid: proc.pid }, 'powered on');
    }
  }

  let progress = vms.map((v) => newProgress(v.name, `rack-${v.rack}`, v.mac, debian ? { hostname: v.hostname } : undefined, o.until));
  // Debian: one login attempt at a time per VM, from `installed` on (the VM reboots into Debian), every 3 s
  const key = sshKeyPath(state.dir);
  const probes = new Map<string, { last?: SshProbe; inflight: boolean; at: number }>();
  const children = new Set<ChildProcess>();
  const probe = (v: VmProgress) => {
    const vm = vms.find((x) => x.name === v.name)!;
    const p = probes.get(v.name) ?? { inflight: false, at: 0 };
    probes.set(v.name, p);
    if (p.inflight || Date.now() - p.at < 3000 || (p.last?.hostname !== undefined && p.last.hostname === vm.hostname)) return;
    p.inflight = true;
    p.at = Date.now();
    // over the management network, as an operator reaches an installed server
    void sshProbe(sshArgs(plan.centralNs, key, vm.mgmtAddress), (c) => children.add(c)).then((r) => {
      p.last = r;
      p.inflight = false;
      p.at = Date.now();
      log.info({ vm: v.name, ...r }, 'ssh');
    });
  };
  const seconds = (name: string) => (Date.now() - started.get(name)!.at) / 1000;
  const deadline = Date.now() + o.timeoutSec * 1000;
  let lastRecords = 0;
  let recs = new Map<string, NodeRow>();
  let drawn = 0;
  const draw = () => {
    const lines = tableLines(progress, (v) => (v.outcome.kind === 'running' ? seconds(v.name) : Math.max(0, ...Object.values(v.at).map(Number))));
    out((drawn ? `\x1b[${drawn}A` : '') + lines.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = lines.length;
  };
  // Ctrl-C or a CI job's cancel: stop following, power the VMs off and still write the reports.
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Bounded by the deadline; one pass every 500 ms.
    while (progress.some((p) => p.outcome.kind === 'running') && Date.now() < deadline && !interrupted) {
      if (Date.now() - lastRecords > 2000) {
        lastRecords = Date.now();
        recs = new Map();
        for (const rack of plan.racks) for (const [mac, r] of await records.read(rack.pod)) recs.set(mac, r);
      }
      progress = progress.map((p) => {
        const s = started.get(p.name)!;
        const facts = consoleFacts(readFileSync(s.console, 'utf8'));
        const b = baseline.get(p.mac);
        const r = recs.get(p.mac);
        // only what changed since power-on counts: the record may still hold the previous run's state
        const fresh = r && (!b || b.state !== r.state || b.updatedAt !== r.updatedAt) ? r : undefined;
        let next = observe(p, seconds(p.name), facts, fresh, probes.get(p.name)?.last);
        if (debian && next.outcome.kind === 'running' && (next.at.installed !== undefined || next.at['booted-from-disk'] !== undefined)) probe(next);
        for (const ph of PHASES) if (next.at[ph] !== undefined && p.at[ph] === undefined) o.onPhase?.(p.name, ph, next.at[ph]!);
        if (next.outcome.kind === 'running' && !alive(s.proc)) next = giveUp(next, 'exited', seconds(p.name));
        if (o.display === 'plain' && statusText(next) !== statusText(p)) out(`[${seconds(p.name).toFixed(1).padStart(6)}s] ${p.name} (${p.rack}) ${statusText(next)}\n`);
        if (statusText(next) !== statusText(p)) log.info({ vm: p.name, phase: statusText(next), seconds: seconds(p.name) }, 'phase');
        return next;
      });
      if (o.display === 'tty') draw();
      await sleep(500);
    }
    progress = progress.map((p) => giveUp(p, interrupted ? 'interrupted' : 'timeout', seconds(p.name)));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    records.close();
    for (const c of children) c.kill('SIGKILL');
    if (!o.keepRunning) {
      const qemus = state.processes.filter((p) => p.what.startsWith('qemu-'));
      await stopProcesses(qemus, 3000);
      state.processes = state.processes.filter((p) => !p.what.startsWith('qemu-'));
      save();
    }
  }
  if (o.display === 'tty') draw();

  const total = (Date.now() - Math.min(...[...started.values()].map((s) => s.at))) / 1000;
  const tails = Object.fromEntries(progress.filter((p) => !succeeded(p)).map((p) => [p.name, consoleTail(readFileSync(started.get(p.name)!.console, 'utf8'))]));
  const junitFile = o.junit ?? join(vmDir, 'junit.xml');
  const timelineFile = o.timeline ?? join(vmDir, 'timeline.json');
  const wan = await wanUsageSince(state.dir, plan.racks, wanBefore);
  const tl = timeline(progress, startedIso, total, wan);
  for (const [file, text] of [
    [junitFile, junitXml(progress, total, tails, wan)],
    [timelineFile, JSON.stringify(tl, null, 2) + '\n'],
  ] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  const ok = progress.every(succeeded);
  if (o.display !== 'tty') out(tableLines(progress, (v) => Math.max(0, ...Object.values(v.at).map(Number))).join('\n') + '\n');
  for (const p of progress) if (p.outcome.kind === 'failed') out(`${p.name} (${p.rack}, ${p.mac}): ${p.outcome.message}\n`);
  if (wan) {
    for (const line of wanLines(wan)) out(`${line}\n`);
    log.info({ wan }, 'wan traffic');
  }
  out(
    `${ok ? 'all' : `${progress.filter(succeeded).length} of`} ${progress.length} VM(s) ${o.until === 'installed' ? 'installed' : `booted from disk${debian ? ` and answered over ssh (${LAB_SSH_USER}, key ${key})` : ''}`} in ${total.toFixed(1)} s; JUnit ${junitFile}, timeline ${timelineFile}\n`,
  );
  log.info({ ok, seconds: total, results: Object.fromEntries(progress.map((p) => [p.name, statusText(p)])) }, 'boot finished');
  return { ok, vms: progress, timeline: tl, junitFile, timelineFile };
}
