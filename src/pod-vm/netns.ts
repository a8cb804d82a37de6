// Network namespace isolation for a pod instance (spec.isolation.mode netns):
// the namespace holds loopback, `prov0` (a macvlan or 802.1Q interface on the
// pod's provisioning network, carrying listen.address) and optionally
// `mgmt0` on its management network. The instance sees no other interface,
// so it can neither see nor bind another pod's. The command plan is pure;
// running it is a thin wrapper around `ip`.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import type { IsolationConfig, NetnsInterface } from '../config/isolation.js';
import { cidrsOverlap, parseCidr } from '../net/ipv4.js';

const run = promisify(execFile);

export function netnsName(pod: string): string {
  return `podboot-${pod}`;
}

/** A host-side name for the interface before it moves (15 bytes at most, unique per pod and role). */
function tempName(pod: string, role: 'p' | 'm'): string {
  return `pb${createHash('sha256').update(pod).digest('hex').slice(0, 10)}${role}`;
}

function addInterface(ns: string, tmp: string, name: string, i: NetnsInterface): string[][] {
  const create =
    i.vlan !== undefined ? ['link', 'add', 'link', i.parent, 'name', tmp, 'type', 'vlan', 'id', String(i.vlan)] : ['link', 'add', 'link', i.parent, 'name', tmp, 'type', 'macvlan', 'mode', 'bridge'];
  return [
    create,
    ['link', 'set', tmp, 'netns', ns],
    ['-n', ns, 'link', 'set', tmp, 'name', name],
    ['-n', ns, 'addr', 'add', `${i.address}/${i.prefix}`, 'dev', name],
    ['-n', ns, 'link', 'set', name, 'up'],
  ];
}

/**
 * `ip` argument lists that build the pod's namespace from nothing. Routes:
 * the pod's rack subnets go through the provisioning gateway; everything
 * else (when there is a management network) through the management gateway.
 */
export function setupPlan(pod: string, iso: IsolationConfig, rackSubnets: readonly string[]): string[][] {
  const ns = netnsName(pod);
  const p = iso.provisioning;
  if (iso.mode !== 'netns' || !p) throw new Error(`pod ${pod} is not configured for netns isolation`);
  const cmds: string[][] = [['netns', 'add', ns], ['-n', ns, 'link', 'set', 'lo', 'up'], ...addInterface(ns, tempName(pod, 'p'), 'prov0', p)];
  const prov = parseCidr(`${p.address}/${p.prefix}`)!;
  if (p.gateway) {
    for (const cidr of rackSubnets) {
      const c = parseCidr(cidr);
      // A rack subnet on the provisioning link itself needs no gateway.
      if (c && !cidrsOverlap(c, prov)) cmds.push(['-n', ns, 'route', 'add', cidr, 'via', p.gateway, 'dev', 'prov0']);
    }
  }
  const m = iso.management;
  if (m) {
    cmds.push(...addInterface(ns, tempName(pod, 'm'), 'mgmt0', m));
    if (m.gateway) cmds.push(['-n', ns, 'route', 'add', 'default', 'via', m.gateway, 'dev', 'mgmt0']);
  } else if (p.gateway) cmds.push(['-n', ns, 'route', 'add', 'default', 'via', p.gateway, 'dev', 'prov0']);
  return cmds;
}

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args, { timeout: 10_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Builds the namespace; on any failure removes what was made, so a retry starts clean. */
export async function setupNetns(pod: string, iso: IsolationConfig, rackSubnets: readonly string[]): Promise<void> {
  await teardownNetns(pod);
  try {
    for (const args of setupPlan(pod, iso, rackSubnets)) await ip(args);
  } catch (err) {
    await teardownNetns(pod);
    throw err;
  }
}

/** Deletes the namespace; its macvlan/VLAN interfaces go with it. Processes in it must be gone. */
export async function teardownNetns(pod: string): Promise<void> {
  const ns = netnsName(pod);
  for (const role of ['p', 'm'] as const) await run('ip', ['link', 'del', tempName(pod, role)]).catch(() => undefined);
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
}
