// What a lab rig is made of, computed from its options alone (no I/O): names,
// addresses, MACs and the generated pod files. `lab up` creates exactly this
// plan, `lab down` removes it, and the tests check it, so every name comes
// from here.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

export type Firmware = 'bios' | 'uefi';
export type Stage1Path = 'ipxe-http' | 'tftp';
/** what the racks install: lab, the small lab stage2 (default); debian, the Debian 12 image (podboot images build-debian) */
export type LabOs = 'lab' | 'debian';

export interface LabOptions {
  racks: number;
  nodesPerRack: number;
  /** round-trip time added between the central node and each rack, ms */
  wanRttMs: number;
  /** probability 0..1 that a frame is lost, per direction */
  wanLoss: number;
  /** bandwidth cap per direction, bits/s; 0 or absent (a lab made before --wan-rate existed): none */
  wanRateBps?: number;
  firmware: Firmware;
  /** ipxe-http: iPXE fetches stage1 over HTTP (default); tftp: pxelinux, everything over TFTP */
  stage1: Stage1Path;
  /** rack (pod name) whose stage2 copy gets one flipped byte, or undefined */
  tamper?: string;
  /** seed for the user-space WAN link's losses */
  seed: number;
  /** absent (a state file of a lab made before --os existed): lab */
  os?: LabOs;
}

export const DEFAULT_OPTIONS: LabOptions = { racks: 2, nodesPerRack: 1, wanRttMs: 0, wanLoss: 0, wanRateBps: 0, firmware: 'bios', stage1: 'ipxe-http', seed: 1, os: 'lab' };

/** The image a lab's pods serve as their stage2, by what the racks install. */
export interface LabImage {
  name: string;
  version: string;
  /** the file `podboot sign` is given, in DIR/stage2 */
  file: string;
}

export function labImage(os: LabOs | undefined): LabImage {
  return os === 'debian' ? { name: 'debian-12', version: '1.0', file: 'debian-12.img.zst' } : { name: 'lab-stage2', version: '1.0', file: 'lab-stage2.img' };
}

/** A VM's memory and blank disk: the lab stage2 is 32 MiB; Debian is a 1.3 GiB image that cloud-init grows into the disk. */
export function vmResources(os: LabOs | undefined): { memMb: number; diskBytes: number } {
  return os === 'debian' ? { memMb: 1024, diskBytes: 3 * 1024 * 1024 * 1024 } : { memMb: 512, diskBytes: 48 * 1024 * 1024 };
}

/** The login the Debian racks' pods give their servers (with the key `lab up --os debian` makes in DIR/ssh). */
export const LAB_SSH_USER = 'ops';
/** The installed servers' heartbeat, in the pods' YAML: how soon a rollout's reboot request reaches them. */
export const LAB_HEARTBEAT = '10s';

// Address plan limits: rack r uses 10.99.r.0/30 (WAN), 10.20.r.0/24 (rack) and 10.30.r.0/24 (management, the
// Debian racks' second NIC); VM m gets 10.20.r.(9+m) and 10.30.r.(9+m).
export const MAX_RACKS = 200;
export const MAX_NODES_PER_RACK = 60;

export interface VmPlan {
  /** e.g. r1-vm1 */
  name: string;
  rack: number;
  index: number;
  mac: string;
  address: string;
  hostname: string;
  /** tap in the rack's tor namespace */
  tap: string;
  /** the management NIC (Debian racks): its MAC, its fixed address from the pod YAML, its tap on the rack's management bridge */
  mgmtMac: string;
  mgmtAddress: string;
  mgmtTap: string;
}

export interface RackPlan {
  index: number;
  /** pod name, rack-<r> */
  pod: string;
  /** the pod's listen address: the central end of this rack's WAN link */
  podAddress: string;
  /** the tor's end of the WAN link */
  torWanAddress: string;
  gateway: string;
  cidr: string;
  pool: string;
  /** the management network: a bridge of its own in the tor, routed like the rack */
  mgmtCidr: string;
  mgmtGateway: string;
  /** namespace names */
  torNs: string;
  /** interface names: central end, the two ends in the wan namespace, the tor end */
  centralIf: string;
  wanCentralIf: string;
  wanTorIf: string;
  torIf: string;
  vms: VmPlan[];
}

export interface LabPlan {
  dir: string;
  prefix: string;
  centralNs: string;
  wanNs: string;
  racks: RackPlan[];
}

/** Namespace prefix for a lab directory: short (interface and namespace names stay readable), stable, and distinct per DIR. */
export function labPrefix(dir: string): string {
  return `pbl${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 6)}`;
}

export function vmMac(rack: number, index: number, nic: 'provisioning' | 'management' = 'provisioning'): string {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `52:54:00:${nic === 'provisioning' ? '9b' : '9c'}:${hex(rack)}:${hex(index)}`;
}

/** The management bridge in each tor namespace (br0 is the provisioning one). */
export const MGMT_BRIDGE = 'brm';

export function makePlan(dir: string, o: Pick<LabOptions, 'racks' | 'nodesPerRack'>): LabPlan {
  const prefix = labPrefix(dir);
  const racks: RackPlan[] = [];
  for (let r = 1; r <= o.racks; r++) {
    const vms: VmPlan[] = [];
    for (let m = 1; m <= o.nodesPerRack; m++) {
      vms.push({
        name: `r${r}-vm${m}`,
        rack: r,
        index: m,
        mac: vmMac(r, m),
        address: `10.20.${r}.${9 + m}`,
        hostname: `rack${r}-vm${m}`,
        tap: `tap${m}`,
        mgmtMac: vmMac(r, m, 'management'),
        mgmtAddress: `10.30.${r}.${9 + m}`,
        mgmtTap: `mtap${m}`,
      });
    }
    racks.push({
      index: r,
      pod: `rack-${r}`,
      podAddress: `10.99.${r}.1`,
      torWanAddress: `10.99.${r}.2`,
      gateway: `10.20.${r}.1`,
      cidr: `10.20.${r}.0/24`,
      pool: `10.20.${r}.100-10.20.${r}.199`,
      mgmtCidr: `10.30.${r}.0/24`,
      mgmtGateway: `10.30.${r}.1`,
      torNs: `${prefix}-tor${r}`,
      centralIf: `wan${r}`,
      wanCentralIf: `c${r}`,
      wanTorIf: `t${r}`,
      torIf: 'wan',
      vms,
    });
  }
  return { dir: resolve(dir), prefix, centralNs: `${prefix}-central`, wanNs: `${prefix}-wan`, racks };
}

export function allNamespaces(plan: LabPlan): string[] {
  return [plan.centralNs, plan.wanNs, ...plan.racks.map((r) => r.torNs)];
}

export function allVms(plan: LabPlan): VmPlan[] {
  return plan.racks.flatMap((r) => r.vms);
}

/**
 * The pod file for one rack. `stage1: tftp` hands every VM pxelinux.0 (kernel and initrd over TFTP) instead of the iPXE script.
 * With `debian` the rack installs the Debian image (kickstart debian.sh), its servers get the login `ops` with that
 * public key and their management NIC (matched by its MAC) its fixed address on the rack's management network.
 */
export function podYaml(rack: RackPlan, stage1: Stage1Path, debian?: { sshPublicKey: string }): string {
  const boot = stage1 === 'tftp' ? ', boot: { ipxeScript: pxelinux.0, bios: pxelinux.0 }' : '';
  const management = (v: VmPlan) => (debian ? `, management: { interface: { mac: "${v.mgmtMac}" }, address: ${v.mgmtAddress} }` : '');
  const nodes = rack.vms.map((v) => `    - { mac: "${v.mac}", hostname: ${v.hostname}, address: ${v.address}${boot}${management(v)} }`);
  return `# generated by podboot lab up: rack ${rack.index}
apiVersion: podboot/v1
kind: Pod
metadata: { name: ${rack.pod} }
spec:
  listen: { address: ${rack.podAddress} }
  relays: [${rack.gateway}]
  subnets:
    - { cidr: ${rack.cidr}, gateway: ${rack.gateway}, pool: ${rack.pool}, leaseTime: 10m }
  nodes:
${nodes.join('\n')}
  unknownNodes: ignore
${debian ? debianSpec(rack, debian.sshPublicKey) : `  heartbeat: { interval: ${LAB_HEARTBEAT} }\n  stage2: { image: lab-stage2, version: "1.0" }\n`}`;
}

function debianSpec(rack: RackPlan, sshPublicKey: string): string {
  // the key goes in as a JSON string (valid YAML): its comment cannot add keys of its own
  const image = labImage('debian');
  return `  managementNetwork: { cidr: ${rack.mgmtCidr}, gateway: ${rack.mgmtGateway} }
  install: { kickstart: debian.sh, disk: /dev/vda }
  users:
    - { name: ${LAB_SSH_USER}, sshAuthorizedKeys: [${JSON.stringify(sshPublicKey.trim())}], sudo: true }
  heartbeat: { interval: ${LAB_HEARTBEAT} }
  stage2: { image: ${image.name}, version: "${image.version}" }
`;
}

export class OptionError extends Error {}

/** "50ms", "0.05s", "50" (ms) → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!m) throw new OptionError(`${text}: expected a duration like 50ms or 0.05s`);
  const n = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  if (n > 10_000) throw new OptionError(`${text}: more than 10 s of WAN delay is not a WAN`);
  return n;
}

/** "1%", "0.5%", "0.01" → probability. */
export function parseLoss(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(text.trim());
  if (!m) throw new OptionError(`${text}: expected a loss like 1% or 0.01`);
  const p = Number(m[1]) / (m[2] ? 100 : 1);
  if (p >= 0.5) throw new OptionError(`${text}: loss must be below 50%`);
  return p;
}

const RATE_UNITS: Record<string, number> = { '': 1, bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/** "10mbit", "500kbit", "1gbit", "2.5mbit", "2000000" (bits/s) → bits/s; "0": no cap. Decimal prefixes, as tc's and lab/wan-link.py's. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(text.trim().toLowerCase());
  // tc reads kbps/mbps as bytes per second: refused rather than guessed
  if (!m || RATE_UNITS[m[2]!] === undefined) throw new OptionError(`--wan-rate ${text}: expected bits per second such as 10mbit, 500kbit, 1gbit or 2000000`);
  const bps = Math.round(Number(m[1]) * RATE_UNITS[m[2]!]!);
  if (bps !== 0 && (bps < 1000 || bps > 100e9)) throw new OptionError(`--wan-rate ${text}: must be 0 (no cap) or between 1kbit and 100gbit`);
  return bps;
}

export function parseCount(text: string, what: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new OptionError(`${what} must be an integer 1..${max}, not ${text}`);
  return Number(text);
}

export interface RawLabOptions {
  racks?: string;
  'nodes-per-rack'?: string;
  'wan-rtt'?: string;
  'wan-loss'?: string;
  'wan-rate'?: string;
  firmware?: string;
  stage1?: string;
  tamper?: string;
  seed?: string;
  os?: string;
}

export function parseLabOptions(raw: RawLabOptions): LabOptions {
  const racks = raw.racks === undefined ? DEFAULT_OPTIONS.racks : parseCount(raw.racks, '--racks', MAX_RACKS);
  const firmware = raw.firmware ?? 'bios';
  if (firmware !== 'bios' && firmware !== 'uefi') throw new OptionError(`--firmware must be bios or uefi, not ${firmware}`);
  const stage1 = raw.stage1 ?? 'ipxe-http';
  if (stage1 !== 'ipxe-http' && stage1 !== 'tftp') throw new OptionError(`--stage1 must be ipxe-http or tftp, not ${stage1}`);
  // the tftp path hands out pxelinux.0, a BIOS program: under UEFI iPXE could fetch it but not run it
  if (firmware === 'uefi' && stage1 === 'tftp') throw new OptionError('--stage1 tftp is BIOS only (pxelinux); with --firmware uefi stage1 comes over iPXE-HTTP');
  const os = raw.os ?? 'lab';
  if (os !== 'lab' && os !== 'debian') throw new OptionError(`--os must be lab or debian, not ${os}`);
  const o: LabOptions = {
    racks,
    nodesPerRack: raw['nodes-per-rack'] === undefined ? DEFAULT_OPTIONS.nodesPerRack : parseCount(raw['nodes-per-rack'], '--nodes-per-rack', MAX_NODES_PER_RACK),
    wanRttMs: raw['wan-rtt'] === undefined ? 0 : parseDuration(raw['wan-rtt']),
    wanLoss: raw['wan-loss'] === undefined ? 0 : parseLoss(raw['wan-loss']),
    wanRateBps: raw['wan-rate'] === undefined ? 0 : parseRate(raw['wan-rate']),
    firmware,
    stage1,
    seed: raw.seed === undefined ? 1 : parseCount(raw.seed, '--seed', 2 ** 31),
    os,
  };
  if (raw.tamper !== undefined) o.tamper = checkTamper(raw.tamper, racks);
  return o;
}

/** `--tamper rack-2` (or `2`) → the pod name, checked against the rig's racks. */
export function checkTamper(text: string, racks: number): string {
  const m = /^(?:rack-)?(\d+)$/.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > racks) throw new OptionError(`--tamper ${text}: expected one of rack-1..rack-${racks}`);
  return `rack-${Number(m[1])}`;
}
