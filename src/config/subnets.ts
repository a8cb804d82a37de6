// spec.subnets: the rack networks behind the pod's relays, their pools and lease times.
import { isScalar, type Node } from 'yaml';
import { cidrBroadcast, cidrContains, cidrsOverlap, formatCidr, formatIPv4, parseCidr, type Cidr } from '../net/ipv4.js';
import { parseDuration } from './duration.js';
import { fieldsOf, SUBNET_SHAPE } from './pod-shape.js';
import { isDnsName, parsePool } from './syntax.js';
import type { PoolRange, SubnetConfig } from './types.js';
import { found, type Item, type Section, type YamlReader } from './yaml-reader.js';

/** A subnet with where it was written, for later problems that mention it. */
export interface LocatedSubnet {
  subnet: SubnetConfig;
  path: string;
  cidrNode: Node;
}

const SUBNET_FIELDS = fieldsOf(SUBNET_SHAPE);
const DEFAULT_LEASE_SEC = 3600;
/** DHCP states lease times in 32 bits and all ones means "infinite" (RFC 2132 §9.2). */
const MAX_LEASE_SEC = 0xfffffffe;

/**
 * The pod's subnets; undefined when any of them is unusable (already reported),
 * so that checks against "the pod's subnets" do not pile up false problems.
 */
export function readSubnets(spec: Section): LocatedSubnet[] | undefined {
  const read = readSubnetList(spec);
  return read.complete ? read.located : undefined;
}

/** Every subnet whose CIDR could be read, and whether all of them could (readSubnets' answer). */
export function readSubnetList(spec: Section): { located: LocatedSubnet[]; complete: boolean } {
  const items = spec.list('subnets');
  if (items?.length === 0) spec.report('subnets', 'at least one subnet is needed');
  const subnets: LocatedSubnet[] = [];
  let complete = items !== undefined;
  for (const item of items ?? []) {
    const s = readSubnet(spec.reader, item);
    if (s) subnets.push(s);
    else complete = false;
  }
  subnets.forEach((a, i) => {
    for (const b of subnets.slice(i + 1)) {
      if (cidrsOverlap(a.subnet, b.subnet)) spec.reader.report(b.cidrNode, `${b.path}.cidr`, `${b.subnet.cidr} overlaps ${a.subnet.cidr} (${a.path})`);
    }
  });
  return { located: subnets, complete };
}

/** The subnet holding `addr`, if any. */
export function subnetOf(subnets: LocatedSubnet[], addr: number): LocatedSubnet | undefined {
  return subnets.find((s) => cidrContains(s.subnet, addr));
}

/** The subnet whose pool holds `addr`, if any. */
export function poolOf(subnets: LocatedSubnet[], addr: number): LocatedSubnet | undefined {
  return subnets.find((s) => s.subnet.pool && addr >= s.subnet.pool.start && addr <= s.subnet.pool.end);
}

/** Why `addr` cannot be a host in `cidr` (its network or broadcast address), if so. */
export function reservedIn(cidr: Cidr, addr: number): string | undefined {
  if (cidr.prefix >= 31) return undefined; // RFC 3021: /31 and /32 have no network or broadcast address
  if (addr === cidr.network) return `the network address of ${formatCidr(cidr)}`;
  if (addr === cidrBroadcast(cidr)) return `the broadcast address of ${formatCidr(cidr)}`;
  return undefined;
}

function readSubnet(r: YamlReader, item: Item): LocatedSubnet | undefined {
  const s = r.section(item.node, item.path, SUBNET_FIELDS);
  if (!s) return undefined;
  const cidr = readCidr(s);

  const gateway = s.address('gateway');
  if (cidr && gateway !== undefined) {
    const name = formatCidr(cidr);
    if (!cidrContains(cidr, gateway)) s.report('gateway', `gateway ${formatIPv4(gateway)} is outside ${name}`);
    const reserved = reservedIn(cidr, gateway);
    if (reserved) s.report('gateway', `gateway ${formatIPv4(gateway)} is ${reserved}`);
  }

  const pool = readPool(s, cidr, gateway);
  const dns = s.addressList('dns')?.map((a) => a.value) ?? [];
  const domain = s.string('domain');
  if (domain !== undefined && !isDnsName(domain)) s.report('domain', `${domain} is not a domain name (letters, digits, inner '-', dots)`);

  let leaseTimeSec = DEFAULT_LEASE_SEC;
  const leaseNode = s.node('leaseTime');
  if (leaseNode) {
    const seconds = parseDuration(isScalar(leaseNode) ? leaseNode.value : undefined);
    if (seconds === undefined) s.report('leaseTime', `expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found ${found(leaseNode)}`);
    else if (seconds > MAX_LEASE_SEC) s.report('leaseTime', `${seconds} s is longer than a DHCP lease can state (${MAX_LEASE_SEC} s)`);
    else leaseTimeSec = seconds;
  }

  if (!cidr) return undefined;
  return {
    path: item.path,
    cidrNode: s.node('cidr')!,
    subnet: { cidr: formatCidr(cidr), network: cidr.network, prefix: cidr.prefix, mask: cidr.mask, gateway, pool, dns, domain, leaseTimeSec },
  };
}

export function readCidr(s: Section): Cidr | undefined {
  const text = s.string('cidr');
  if (text === undefined) return undefined;
  const cidr = parseCidr(text.trim());
  if (!cidr) {
    s.report('cidr', `${text} is not a CIDR (a.b.c.d/len, len 0..32)`);
    return undefined;
  }
  if (formatCidr(cidr) !== text.trim()) {
    s.report('cidr', `${text} has host bits set; the network is ${formatCidr(cidr)}`);
    return undefined;
  }
  return cidr;
}

export function readPool(s: Section, cidr: Cidr | undefined, gateway: number | undefined): PoolRange | undefined {
  const text = s.string('pool');
  if (text === undefined) return undefined;
  const range = parsePool(text);
  if ('error' in range) {
    s.report('pool', range.error);
    return undefined;
  }
  if (!cidr) return undefined;
  const name = formatCidr(cidr);
  const problems: string[] = [];
  for (const [label, addr] of [
    ['start', range.start],
    ['end', range.end],
  ] as const) {
    if (!cidrContains(cidr, addr)) problems.push(`pool ${label} ${formatIPv4(addr)} is outside ${name}`);
  }
  if (problems.length === 0) {
    // Inside the subnet, the range holds the network (broadcast) address only if it starts (ends) there.
    for (const edge of [range.start, range.end]) {
      const reserved = reservedIn(cidr, edge);
      if (reserved) problems.push(`pool includes ${formatIPv4(edge)}, ${reserved}`);
    }
    if (gateway !== undefined && gateway >= range.start && gateway <= range.end) problems.push(`pool contains the gateway ${formatIPv4(gateway)}`);
  }
  for (const p of problems) s.report('pool', p);
  return problems.length ? undefined : range;
}
