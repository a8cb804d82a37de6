// Following a VM through the boot chain and reporting it, without I/O: phase
// detection from the serial console text and the pod's record, the per-VM
// outcome, the JUnit XML, the JSON timeline and the table lines, with what
// each rack's WAN link carried. `lab boot` feeds these with what it reads;
// unit tests feed them with fixtures.
import type { WanTraffic, WanUsage } from './wan-counters.js';

/** Phases in chain order; `power-on` is time zero. `ssh-ready` only for a lab whose racks install Debian (--os debian). */
export const PHASES = ['power-on', 'pxe', 'stage1', 'verified', 'installed', 'booted-from-disk', 'ssh-ready'] as const;
export type Phase = (typeof PHASES)[number];

export interface ConsoleFacts {
  phases: Phase[];
  /** stage1's or stage2's FAILED line: reason (signature, digest, manifest, download, …) and its text */
  failure?: { reason: string; line: string };
  /** stage2 reported booted-from-disk to its pod (its own console says so) */
  reported: boolean;
}

// The agent and the installed OS print these (images/stage1/*, images/stage2/init; Debian: its node agent, images/debian).
const CONSOLE_PATTERNS: [Phase, RegExp][] = [
  ['stage1', /podboot-stage1: running\b/],
  ['verified', /podboot-stage1: verified\b/],
  ['installed', /podboot-stage1: installed\b/],
  ['booted-from-disk', /podboot-stage2: booted-from-disk\b|podboot-node-agent: booted-from-disk reported\b/],
];
const FAILED = /podboot-stage([12]): FAILED ([A-Za-z0-9_-]+)(?::)?([^\r\n]*)/;

export function consoleFacts(text: string): ConsoleFacts {
  const phases = CONSOLE_PATTERNS.filter(([, re]) => re.test(text)).map(([p]) => p);
  const facts: ConsoleFacts = { phases, reported: /podboot-stage2: reported booted-from-disk|podboot-node-agent: booted-from-disk reported/.test(text) };
  const f = FAILED.exec(text);
  if (f) {
    // stage2's failures are sentences ("FAILED no boot disk"): their reason is "stage2"
    const reason = f[1] === '1' ? f[2]! : 'stage2';
    facts.failure = { reason, line: f[0].replace(/[\x00-\x1f\x7f]/g, '').trim() };
  }
  return facts;
}

/** Pod record states (docs/boot-chain.md) → the lab's coarser phases. */
export function recordPhase(state: string): Phase | undefined {
  switch (state) {
    case 'discovered':
    case 'pxe':
      return 'pxe';
    case 'stage1':
    case 'stage2-fetched':
      return 'stage1';
    case 'verified':
    case 'installing':
      return 'verified';
    case 'installed':
      return 'installed';
    case 'booted-from-disk':
      return 'booted-from-disk';
    default:
      return undefined;
  }
}

/** Done: `booted-from-disk` (the lab stage2) or `ssh-ready` (Debian: booted from its disk and ssh answered with its hostname). */
export type Outcome = { kind: 'running' } | { kind: 'installed' } | { kind: 'booted-from-disk' } | { kind: 'ssh-ready' } | { kind: 'failed'; reason: string; message: string };

/** What a VM must reach to count as done. */
export type Goal = 'installed' | 'booted-from-disk' | 'ssh-ready';

/** The last login attempt over SSH (Debian): the hostname the server answered with, or why there was none. */
export interface SshProbe {
  hostname?: string;
  error?: string;
}

export interface VmProgress {
  name: string;
  rack: string;
  mac: string;
  /** seconds since power-on at which each phase was first seen */
  at: Partial<Record<Phase, number>>;
  outcome: Outcome;
  /** pod record: state and failure reason, when the pod has one */
  record?: { state: string; reason?: string };
  /** absent: booted-from-disk */
  goal?: Goal;
  /** ssh-ready: the hostname the server must answer with */
  hostname?: string;
  /** ssh-ready: the last SSH attempt */
  ssh?: SshProbe;
}

/** `until: 'installed'` (lab boot --until installed): done once the pod recorded the install, not waiting for the reboot. */
export function newProgress(name: string, rack: string, mac: string, ssh?: { hostname: string }, until?: 'installed'): VmProgress {
  const p: VmProgress = { name, rack, mac, at: { 'power-on': 0 }, outcome: { kind: 'running' } };
  if (until) return { ...p, goal: until };
  return ssh ? { ...p, goal: 'ssh-ready', hostname: ssh.hostname } : p;
}

/** Reached its goal. */
export function succeeded(p: VmProgress): boolean {
  return p.outcome.kind === 'installed' || p.outcome.kind === 'booted-from-disk' || p.outcome.kind === 'ssh-ready';
}

/** Latest phase reached (chain order, not arrival order). */
export function currentPhase(p: VmProgress): Phase {
  let last: Phase = 'power-on';
  for (const ph of PHASES) if (p.at[ph] !== undefined) last = ph;
  return last;
}

/**
 * One observation: console facts and the pod record at `seconds` after power-on.
 * Success needs both the console line and the pod's record, so a VM that boots
 * but cannot report (WAN down, token refused) is not counted as done. A VM
 * whose goal is ssh-ready (Debian) is done when it booted from its disk (the
 * pod's record or its node agent's console line) and `ssh`, the last login,
 * answered with the VM's hostname.
 */
export function observe(p: VmProgress, seconds: number, facts: ConsoleFacts, record: { state: string; reason?: string } | undefined, ssh?: SshProbe): VmProgress {
  if (p.outcome.kind !== 'running') return p;
  const at = { ...p.at };
  const mark = (ph: Phase | undefined) => {
    if (ph && at[ph] === undefined) at[ph] = round(seconds);
  };
  for (const ph of facts.phases) mark(ph);
  // A phase seen implies the ones before it happened (the pod records DHCP; the console does not).
  // Debian's image is verified while it streams (installing): only stage1's console line says when the check passed.
  if (record) mark(p.goal === 'ssh-ready' && record.state === 'installing' ? 'stage1' : recordPhase(record.state));
  const next: VmProgress = { ...p, at, ...(record ? { record } : {}), ...(ssh ? { ssh } : {}) };
  if (p.goal === 'ssh-ready') {
    if (ssh?.hostname !== undefined && ssh.hostname === p.hostname) mark('ssh-ready');
    if (facts.failure) {
      next.outcome = { kind: 'failed', reason: facts.failure.reason, message: `failed(${facts.failure.reason}): ${facts.failure.line}` };
    } else if (record?.state === 'failed') {
      next.outcome = { kind: 'failed', reason: record.reason ?? 'other', message: `failed(${record.reason ?? 'other'}) in the pod's record` };
    } else if (at['booted-from-disk'] !== undefined && at['ssh-ready'] !== undefined) {
      next.outcome = { kind: 'ssh-ready' };
    }
    return next;
  }
  if (facts.failure) {
    next.outcome = { kind: 'failed', reason: facts.failure.reason, message: `failed(${facts.failure.reason}): ${facts.failure.line}` };
  } else if (record?.state === 'failed') {
    next.outcome = { kind: 'failed', reason: record.reason ?? 'other', message: `failed(${record.reason ?? 'other'}) in the pod's record` };
  } else if (p.goal === 'installed' && (record?.state === 'installed' || record?.state === 'booted-from-disk')) {
    // the pod recorded the install (the VM may already be rebooting into its disk)
    next.outcome = { kind: 'installed' };
  } else if (at['booted-from-disk'] !== undefined && record?.state === 'booted-from-disk') {
    next.outcome = { kind: 'booted-from-disk' };
  }
  return next;
}

/** The run ended (timeout, QEMU gone) before this VM finished. */
export function giveUp(p: VmProgress, why: 'timeout' | 'exited' | 'interrupted', seconds: number): VmProgress {
  if (p.outcome.kind !== 'running') return p;
  const phase = currentPhase(p);
  // Debian: what the last login attempt gave, when there was one
  const ssh = p.goal !== 'ssh-ready' || !p.ssh ? '' : p.ssh.hostname !== undefined ? `; ssh answered as ${p.ssh.hostname}, not ${p.hostname}` : `; last ssh attempt: ${p.ssh.error ?? 'no answer'}`;
  const message =
    why === 'timeout'
      ? `timeout: no ${p.goal ?? 'booted-from-disk'} within ${Math.round(seconds)} s (last phase ${phase}${ssh})`
      : why === 'exited'
        ? `exited: QEMU stopped after ${Math.round(seconds)} s (last phase ${phase}${ssh})`
        : `interrupted: the run was stopped after ${Math.round(seconds)} s (last phase ${phase}${ssh})`;
  return { ...p, outcome: { kind: 'failed', reason: why, message } };
}

export function statusText(p: VmProgress): string {
  if (p.outcome.kind === 'failed') return `failed(${p.outcome.reason})`;
  return currentPhase(p);
}

function round(s: number): number {
  return Math.round(s * 10) / 10;
}

function xml(text: string): string {
  return text.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '').replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function elapsed(p: VmProgress): number {
  return Math.max(0, ...Object.values(p.at).filter((x): x is number => x !== undefined));
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function trafficText(t: WanTraffic): string {
  const ports = Object.entries(t.tcpPorts).map(([port, bytes]) => `, tcp/${port} ${mib(bytes)}`);
  return `${mib(t.bytes)} in ${t.frames} frames${ports.join('')}${t.dropped ? `, ${t.dropped} dropped` : ''}`;
}

/** One line per rack: what its WAN link carried during the run, each way. */
export function wanLines(wan: Record<string, WanUsage>): string[] {
  return Object.entries(wan).map(([rack, u]) => `WAN ${rack}: down (central → rack) ${trafficText(u.down)}; up (rack → central) ${trafficText(u.up)}`);
}

/** JUnit properties: wan.<rack>.<down|up>.{bytes,frames,dropped,tcp<port>.bytes}, so a CI dashboard can plot them. */
function wanProperties(wan: Record<string, WanUsage>): string[] {
  const props: [string, number][] = [];
  for (const [rack, u] of Object.entries(wan)) {
    for (const dir of ['down', 'up'] as const) {
      const t = u[dir];
      props.push([`wan.${rack}.${dir}.bytes`, t.bytes], [`wan.${rack}.${dir}.frames`, t.frames], [`wan.${rack}.${dir}.dropped`, t.dropped]);
      for (const [port, bytes] of Object.entries(t.tcpPorts)) props.push([`wan.${rack}.${dir}.tcp${port}.bytes`, bytes]);
    }
  }
  return ['    <properties>', ...props.map(([k, v]) => `      <property name="${xml(k)}" value="${v}"/>`), '    </properties>'];
}

/**
 * JUnit XML: one testcase per VM; a failure's message names the VM and the
 * reason. With `wan` (racks whose WAN is lab/wan-link.py), the suite's
 * properties and output say what each rack's link carried during the run.
 */
export function junitXml(vms: VmProgress[], totalSeconds: number, consoleTails: Record<string, string> = {}, wan?: Record<string, WanUsage>): string {
  const failures = vms.filter((v) => !succeeded(v)).length;
  const cases = vms.map((v) => {
    const head = `    <testcase classname="podboot.lab.${xml(v.rack)}" name="${xml(`${v.name} ${v.mac}`)}" time="${elapsed(v).toFixed(1)}">`;
    const phases = PHASES.filter((ph) => v.at[ph] !== undefined)
      .map((ph) => `${ph}=${v.at[ph]}s`)
      .join(' ');
    const answered = v.ssh?.hostname !== undefined ? `\nssh ${v.hostname === v.ssh.hostname ? 'ready' : 'answered'}: hostname ${v.ssh.hostname}` : '';
    const out = `      <system-out>${xml(`phases: ${phases}${answered}`)}</system-out>`;
    if (succeeded(v)) return [head, out, '    </testcase>'].join('\n');
    const o = v.outcome.kind === 'failed' ? v.outcome : { reason: 'unfinished', message: 'did not finish' };
    const tail = consoleTails[v.name] ? `\n\nconsole (last lines):\n${consoleTails[v.name]}` : '';
    return [
      head,
      `      <failure type="${xml(o.reason)}" message="${xml(`${v.name}: ${o.message}`)}">${xml(`${v.name} (${v.mac}, ${v.rack}): ${o.message}${tail}`)}</failure>`,
      out,
      '    </testcase>',
    ].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${vms.length}" failures="${failures}" time="${totalSeconds.toFixed(1)}">`,
    `  <testsuite name="podboot lab" tests="${vms.length}" failures="${failures}" errors="0" time="${totalSeconds.toFixed(1)}">`,
    ...(wan ? wanProperties(wan) : []),
    ...cases,
    ...(wan ? [`    <system-out>${xml(wanLines(wan).join('\n'))}</system-out>`] : []),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export interface Timeline {
  started: string;
  seconds: number;
  ok: boolean;
  vms: Record<string, { rack: string; mac: string; result: string; message?: string; phases: Partial<Record<Phase, number>>; hostname?: string }>;
  /** per rack (pod name), what its WAN link carried during the run; only where the WAN is lab/wan-link.py */
  wan?: Record<string, WanUsage>;
}

export function timeline(vms: VmProgress[], startedIso: string, totalSeconds: number, wan?: Record<string, WanUsage>): Timeline {
  const out: Timeline = { started: startedIso, seconds: round(totalSeconds), ok: vms.every(succeeded), vms: {}, ...(wan ? { wan } : {}) };
  for (const v of vms) {
    out.vms[v.name] = {
      rack: v.rack,
      mac: v.mac,
      result: statusText(v),
      ...(v.outcome.kind === 'failed' ? { message: v.outcome.message } : {}),
      phases: Object.fromEntries(PHASES.filter((ph) => v.at[ph] !== undefined).map((ph) => [ph, v.at[ph]])),
      // Debian: the hostname the server answered with over SSH
      ...(v.ssh?.hostname !== undefined ? { hostname: v.ssh.hostname } : {}),
    };
  }
  return out;
}

/** The live table (TTY) and the final summary: one row per VM. */
export function tableLines(vms: VmProgress[], now: (v: VmProgress) => number): string[] {
  const rows = [['VM', 'RACK', 'MAC', 'PHASE', 'SECONDS'], ...vms.map((v) => [v.name, v.rack, v.mac, statusText(v), now(v).toFixed(1)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

/** The last lines of a console, readable (escape sequences and carriage returns out). */
export function consoleTail(text: string, lines = 12): string {
  const clean = text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\x1bc/g, '')
    .replace(/\r/g, '');
  return clean
    .split('\n')
    .filter((l) => l.trim())
    .slice(-lines)
    .join('\n');
}
