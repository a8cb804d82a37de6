// Pods for the central-node tests that put one rack per network namespace
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Daemon, Lab } from './netns.js';
// behind a relay and load it with perfdhcp.

export interface Rack {
  pod: string;
  /** the rack's namespace (perfdhcp and probes run there) */
  ns: string;
  /** the pod instance's address in the central namespace */
  server: string;
  /** the rack relay (perfdhcp / probe) address */
  relay: string;
  octet: number;
  /** spec.limits as YAML flow text */
  limits?: string;
}

/** Pools far larger than perfdhcp's clients: an exhausted pool would look like drops. */
export function rackPodYaml(r: Rack, poolEnd = `10.${r.octet}.200.250`): string {
  return `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${r.pod}
spec:
  listen: { address: ${r.server} }
  relays: [${r.relay}]
  subnets:
    - cidr: 10.${r.octet}.0.0/16
      gateway: ${r.relay}
      pool: 10.${r.octet}.1.0-${poolEnd}
      leaseTime: 1h
  unknownNodes: provision
${r.limits ? `  limits: ${r.limits}\n` : ''}`;
}

/**
 * One rack behind its relay, wired to the central namespace `c` (where the
 * pod instance listens on `r.server`), with its pod file in `podsDir`.
 */
export function wireRack(lab: Lab, r: Rack, podsDir: string): void {
  lab.addNs('c');
  lab.addNs(r.ns);
  lab.ip('c', 'addr', 'add', `${r.server}/32`, 'dev', 'lo');
  lab.veth({ ns: 'c', ifname: 'r-c', addr: `10.${r.octet}.0.254/16` }, { ns: r.ns, ifname: 'r-r', addr: `${r.relay}/16` });
  lab.ip(r.ns, 'route', 'add', '10.99.0.0/24', 'via', `10.${r.octet}.0.254`);
  mkdirSync(podsDir, { recursive: true });
  writeFileSync(join(podsDir, `${r.pod}.yaml`), rackPodYaml(r));
}

/** perfdhcp's drop and packet counts for one exchange section. */
export function perfStat(out: string, section: string, field: string): number {
  const at = out.indexOf(`Statistics for: ${section}`);
  const m = at >= 0 ? out.slice(at).match(new RegExp(`${field}: ([\\d.]+)`)) : null;
  return m ? Number(m[1]) : Number.NaN;
}

/** The central namespace holding every pod's address on lo, and a rack namespace per pod joined to it by a veth, routed back to `serverNet`. */
export function wireRacks(lab: Lab, racks: Rack[], serverNet: string): void {
  lab.addNs('central');
  for (const r of racks) {
    lab.addNs(r.ns);
    lab.ip('central', 'addr', 'add', `${r.server}/32`, 'dev', 'lo');
    lab.veth({ ns: 'central', ifname: `${r.ns}-c`, addr: `10.${r.octet}.0.254/16` }, { ns: r.ns, ifname: `${r.ns}-r`, addr: `${r.relay}/16` });
    lab.ip(r.ns, 'route', 'add', serverNet, 'via', `10.${r.octet}.0.254`);
  }
}

/** perfdhcp as the rack's relay against its pod: 100 new clients a second for `seconds`. */
export function perfdhcp(lab: Lab, r: Rack, seconds: number, label: string): Daemon {
  return lab.spawn(r.ns, 'perfdhcp', ['-4', '-l', r.relay, '-L', '67', '-r', '100', '-R', '1000000', '-p', String(seconds), '-d', '1', '-W', '1000000', r.server], label);
}

/** What a finished perfdhcp sent and lost (DISCOVER-OFFER and REQUEST-ACK drops together). */
export async function perfResult(d: Daemon): Promise<{ sent: number; drops: number; out: string }> {
  // 'close': its output has been read to the end (the log file is written just after).
  await new Promise<void>((resolve) => (d.proc.stdout!.readableEnded ? resolve() : d.proc.once('close', () => resolve())));
  await new Promise((r) => setTimeout(r, 200));
  const out = d.log();
  return { sent: perfStat(out, 'REQUEST-ACK', 'sent packets'), drops: perfStat(out, 'DISCOVER-OFFER', 'drops') + perfStat(out, 'REQUEST-ACK', 'drops'), out };
}
