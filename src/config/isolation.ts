// spec.isolation: how the central node isolates the pod's instance. `process`
// (default): its own process on the central node's network. `netns`: its own
// network namespace holding only a macvlan or 802.1Q interface on the pod's
// provisioning network (and optionally one on its management network, F8).
import { cidrsOverlap, formatIPv4, parseCidr } from '../net/ipv4.js';
import { boundsOf, fieldsOf, ISOLATION_MODES, ISOLATION_SHAPE, MANAGEMENT_SHAPE, PROVISIONING_SHAPE } from './pod-shape.js';
import type { Section } from './yaml-reader.js';

export interface NetnsInterface {
  /** host interface the macvlan or VLAN interface is made on */
  parent: string;
  /** 802.1Q id: a VLAN interface on parent; absent: a macvlan (bridge mode) */
  vlan?: number;
  /** address/prefix inside the namespace */
  address: string;
  prefix: number;
  gateway?: string;
}

export interface IsolationConfig {
  mode: 'process' | 'netns';
  /** netns only: the interface carrying listen.address */
  provisioning?: NetnsInterface;
  /** netns only: the management network, a different subnet, gateway and VLAN */
  management?: NetnsInterface;
}

const ISOLATION_FIELDS = fieldsOf(ISOLATION_SHAPE);
const PROVISIONING_FIELDS = fieldsOf(PROVISIONING_SHAPE);
const MANAGEMENT_FIELDS = fieldsOf(MANAGEMENT_SHAPE);
/** Linux interface names: at most 15 bytes, no '/', no whitespace. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export function readIsolation(spec: Section, listenAddress: number | undefined): IsolationConfig {
  const s = spec.section('isolation', ISOLATION_FIELDS);
  if (!s) return { mode: 'process' };
  const mode = s.oneOf('mode', ISOLATION_MODES) ?? 'process';
  if (mode === 'process') {
    for (const k of ['provisioning', 'management']) if (s.node(k) !== undefined) s.report(k, 'only used with mode: netns');
    return { mode };
  }
  const p = s.section('provisioning', PROVISIONING_FIELDS);
  if (!p) {
    s.report('provisioning', "mode netns needs provisioning: { parent: IFNAME } (the host interface on the pod's provisioning network)");
    return { mode };
  }
  const prefix = p.node('prefix') === undefined ? 24 : p.integer('prefix', ...boundsOf(PROVISIONING_SHAPE, 'prefix'));
  const provisioning = iface(p, prefix === undefined || listenAddress === undefined ? undefined : { address: formatIPv4(listenAddress), prefix });
  let management: NetnsInterface | undefined;
  const m = s.section('management', MANAGEMENT_FIELDS);
  if (m) {
    const text = m.string('address');
    const cidr = text === undefined ? undefined : parseCidr(text);
    if (text !== undefined && (!cidr || !text.includes('/'))) m.report('address', `expected ADDRESS/PREFIX such as 192.168.50.10/24, found ${JSON.stringify(text)}`);
    management = iface(m, cidr && text ? { address: text.split('/')[0]!, prefix: cidr.prefix } : undefined);
    if (management && provisioning) {
      // F8: the two networks never share a subnet or, on one parent, a VLAN.
      const a = parseCidr(`${provisioning.address}/${provisioning.prefix}`)!;
      const b = parseCidr(`${management.address}/${management.prefix}`)!;
      if (cidrsOverlap(a, b)) m.report('address', `${management.address}/${management.prefix} overlaps the provisioning network ${formatIPv4(a.network)}/${a.prefix}`);
      if (management.parent === provisioning.parent && management.vlan === provisioning.vlan)
        m.report(management.vlan === undefined ? 'parent' : 'vlan', 'the management network needs its own VLAN or parent interface');
    }
  }
  return { mode, provisioning, management };
}

function iface(s: Section, at: { address: string; prefix: number } | undefined): NetnsInterface | undefined {
  const parent = s.string('parent');
  if (parent !== undefined && !IFNAME_RE.test(parent)) s.report('parent', `${JSON.stringify(parent)} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  const vlan = s.node('vlan') === undefined ? undefined : s.integer('vlan', ...boundsOf(PROVISIONING_SHAPE, 'vlan'));
  const gw = s.address('gateway');
  if (gw !== undefined && at) {
    const net = parseCidr(`${at.address}/${at.prefix}`)!;
    if ((gw & net.mask) >>> 0 !== net.network >>> 0) s.report('gateway', `gateway ${formatIPv4(gw)} is not in ${formatIPv4(net.network)}/${net.prefix}`);
  }
  if (parent === undefined || !IFNAME_RE.test(parent) || !at || (s.node('vlan') !== undefined && vlan === undefined)) return undefined;
  return { parent, ...(vlan !== undefined ? { vlan } : {}), address: at.address, prefix: at.prefix, ...(gw !== undefined ? { gateway: formatIPv4(gw) } : {}) };
}
