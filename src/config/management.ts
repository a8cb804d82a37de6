// spec.managementNetwork and nodes[].management (F8): the network the
// installed OS is reached on, apart from the provisioning network the pod
// boots servers on. Pod-wide values are defaults; a server's own win. What is
// checked here is what would otherwise surface as a server nobody can reach
// after a successful install: a management network that overlaps a rack
// subnet (routes would send one network's traffic into the other), an
// address outside its network or handed out twice, a NIC claimed by two
// servers.
import { cidrContains, cidrsOverlap, formatCidr, formatIPv4, prefixMask, type Cidr } from '../net/ipv4.js';
import { boundsOf, fieldsOf, INTERFACE_SHAPE, MANAGEMENT_NETWORK_SHAPE, NODE_MANAGEMENT_SHAPE } from './pod-shape.js';
import { readCidr, readPool, reservedIn, type LocatedSubnet } from './subnets.js';
import { readMac } from './nodes.js';
import type { InterfaceSelector, ManagementNetworkConfig, NodeConfig, NodeManagement } from './types.js';
import type { Section } from './yaml-reader.js';

const NETWORK_FIELDS = fieldsOf(MANAGEMENT_NETWORK_SHAPE);
const NODE_FIELDS = fieldsOf(NODE_MANAGEMENT_SHAPE);
const INTERFACE_FIELDS = fieldsOf(INTERFACE_SHAPE);
const NETWORK_PATH = 'spec.managementNetwork';
/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', no white space; '.' and '..' are taken. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** spec.managementNetwork as read: whether it was written at all, and the network when it is usable. */
export interface ManagementNetworkRead {
  written: boolean;
  net?: ManagementNetworkConfig;
}

export function readManagementNetwork(spec: Section, subnets: LocatedSubnet[] | undefined): ManagementNetworkRead {
  const s = spec.section('managementNetwork', NETWORK_FIELDS);
  if (!s) return { written: spec.node('managementNetwork') !== undefined };
  const cidr = readCidr(s);
  if (cidr && subnets) {
    for (const sub of subnets) {
      if (cidrsOverlap(cidr, sub.subnet)) s.report('cidr', `${formatCidr(cidr)} overlaps the provisioning subnet ${sub.subnet.cidr} (${sub.path})`);
    }
  }
  const gateway = s.address('gateway');
  if (cidr && gateway !== undefined) checkInside(s, 'gateway', gateway, cidr, 'gateway');
  const pool = readPool(s, cidr, gateway);
  const dns = s.addressList('dns')?.map((a) => a.value) ?? [];
  const vlan = s.integer('vlan', ...boundsOf(MANAGEMENT_NETWORK_SHAPE, 'vlan'));
  const iface = readInterface(s, 'interface');
  if (!cidr) return { written: true };
  return {
    written: true,
    net: {
      cidr: formatCidr(cidr),
      network: cidr.network,
      prefix: cidr.prefix,
      ...(gateway !== undefined ? { gateway } : {}),
      dns,
      ...(vlan !== undefined ? { vlan } : {}),
      ...(pool ? { pool } : {}),
      ...(iface ? { interface: iface } : {}),
    },
  };
}

/**
 * Reads nodes[].management one server at a time and remembers what each
 * claimed, so that a second server with the same address or NIC is named
 * with the first.
 */
export class NodeManagementReader {
  private readonly addresses = new Map<number, string>();
  private readonly macs = new Map<string, { path: string; owner: string | undefined; at: Section }>();

  constructor(private readonly network: ManagementNetworkRead) {}

  read(n: Section, owner: string | undefined): NodeManagement | undefined {
    const m = n.section('management', NODE_FIELDS);
    if (!m) return undefined;
    // A broken managementNetwork is reported there; only a missing one is this server's problem.
    if (!this.network.written) n.report('management', `needs ${NETWORK_PATH} (at least its cidr): the pod-wide management network this server's values belong to`);
    const net = this.network.net;
    const cidr = net && { network: net.network, prefix: net.prefix, mask: prefixMask(net.prefix) };

    const { selector: iface, at } = interfaceAt(m, 'interface');
    if (iface && 'mac' in iface && at) {
      const first = this.macs.get(iface.mac);
      if (first) at.report('mac', `duplicate management interface MAC ${iface.mac} (also ${first.path})`);
      else this.macs.set(iface.mac, { path: at.pathOf('mac'), owner, at });
    }
    const gateway = m.address('gateway');
    if (cidr && gateway !== undefined) checkInside(m, 'gateway', gateway, cidr, 'gateway');
    const dns = m.addressList('dns')?.map((a) => a.value);
    const vlan = m.integer('vlan', ...boundsOf(NODE_MANAGEMENT_SHAPE, 'vlan'));

    const address = m.address('address');
    if (address !== undefined) {
      const text = formatIPv4(address);
      if (cidr && net) {
        checkInside(m, 'address', address, cidr, 'management address');
        const gw = gateway ?? net.gateway;
        if (address === gw) m.report('address', `management address ${text} is the gateway${gateway === undefined ? ` of ${NETWORK_PATH}` : ''}`);
        if (net.pool && address >= net.pool.start && address <= net.pool.end)
          m.report('address', `management address ${text} is inside ${NETWORK_PATH}.pool (${formatIPv4(net.pool.start)}-${formatIPv4(net.pool.end)}), which the pod hands out`);
      }
      const first = this.addresses.get(address);
      if (first) m.report('address', `duplicate management address ${text} (also ${first})`);
      else this.addresses.set(address, m.pathOf('address'));
    }
    return {
      ...(iface ? { interface: iface } : {}),
      ...(address !== undefined ? { address } : {}),
      ...(gateway !== undefined ? { gateway } : {}),
      ...(dns ? { dns } : {}),
      ...(vlan !== undefined ? { vlan } : {}),
    };
  }

  /**
   * Once every node is read: a management NIC that is another server's PXE
   * NIC. (A server's own PXE NIC is allowed: one NIC then carries both
   * networks.)
   */
  checkAgainst(nodes: readonly NodeConfig[]): void {
    for (const [mac, claim] of this.macs) {
      const other = nodes.find((n) => n.mac === mac && n.mac !== claim.owner);
      if (other) claim.at.report('mac', `management interface MAC ${mac} is the provisioning MAC of another server (${other.hostname ?? other.mac})`);
    }
  }
}

/** `{ mac }` or `{ name }` at `key` of `s`: exactly one of them. */
export function readInterface(s: Section, key: string): InterfaceSelector | undefined {
  return interfaceAt(s, key).selector;
}

/** The selector and the mapping it was read from (for problems found later). */
function interfaceAt(s: Section, key: string): { selector?: InterfaceSelector; at?: Section } {
  const at = s.section(key, INTERFACE_FIELDS);
  if (!at) return {};
  const hasMac = at.node('mac') !== undefined;
  const hasName = at.node('name') !== undefined;
  if (hasMac && hasName) {
    at.report('name', 'give the interface by mac or by name, not both');
    return { at };
  }
  if (!hasMac && !hasName) {
    s.report(key, 'give the interface by mac (its MAC address) or by name (e.g. ens4)');
    return { at };
  }
  if (hasMac) {
    const mac = readMac(at);
    return mac ? { selector: { mac }, at } : { at };
  }
  const name = at.string('name');
  if (name === undefined) return { at };
  if (!IFNAME_RE.test(name) || name === '.' || name === '..') {
    at.report('name', `${JSON.stringify(name)} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`);
    return { at };
  }
  return { selector: { name }, at };
}

function checkInside(s: Section, key: string, addr: number, cidr: Cidr, label: string): void {
  const text = formatIPv4(addr);
  if (!cidrContains(cidr, addr)) {
    s.report(key, `${label} ${text} is outside ${formatCidr(cidr)} (${NETWORK_PATH}.cidr)`);
    return;
  }
  const reserved = reservedIn(cidr, addr);
  if (reserved) s.report(key, `${label} ${text} is ${reserved}`);
}
