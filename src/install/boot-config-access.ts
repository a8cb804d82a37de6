// Who may fetch a boot config that carries an install token: only the server
// it is rendered for, recognised by the address the pod itself leased to that
// MAC, inside one of the pod's subnets (the subnets DHCP answers through the
// pod's relays). The same function decides for TFTP and for plain HTTP, so
// the two paths cannot drift apart. Pure: leases and clock come in as values.
import { cidrContains, formatIPv4, parseIPv4, type Cidr } from '../net/ipv4.js';

/** The part of a lease the decision needs (a LeaseRecord fits). */
export interface LeaseView {
  address: number;
  mac: string;
  state: string;
  /** unix seconds */
  ends: number;
  /** the subnet's CIDR text, as the pod file names it */
  subnet: string;
}

export interface BootConfigRequest {
  /** canonical MAC the requested name is for */
  mac: string;
  /** the request's source address as the socket reports it (IPv4, or IPv4-mapped IPv6) */
  source: string;
  /** unix seconds */
  now: number;
  /** every lease the pod holds for that MAC (usually one) */
  leases: readonly LeaseView[];
  /** the pod's subnets: a lease elsewhere is not this pod's to vouch for */
  subnets: readonly (Cidr & { cidr: string })[];
}

export type RefusalReason = 'bad-source' | 'no-lease' | 'lease-expired' | 'not-leased-address' | 'outside-pod-subnets';

export type BootConfigAccess = { allow: true; address: string } | { allow: false; reason: RefusalReason; detail: string };

/** `::ffff:10.20.0.5` (a dual-stack socket) → 10.20.0.5; anything not IPv4 → undefined. */
export function sourceV4(source: string): number | undefined {
  return parseIPv4(source.replace(/^::ffff:/i, ''));
}

export function bootConfigAccess(req: BootConfigRequest): BootConfigAccess {
  const source = sourceV4(req.source);
  if (source === undefined) return { allow: false, reason: 'bad-source', detail: `source ${req.source} is not an IPv4 address` };
  const mine = req.leases.filter((l) => l.mac === req.mac);
  if (mine.length === 0) return { allow: false, reason: 'no-lease', detail: `no lease for ${req.mac}` };
  // Only a lease in force counts: an expired or released one may belong to someone else by now.
  const live = mine.filter((l) => l.state === 'bound' && l.ends > req.now);
  if (live.length === 0) return { allow: false, reason: 'lease-expired', detail: `${req.mac} holds no lease in force` };
  const lease = live.find((l) => l.address === source);
  if (!lease) {
    return { allow: false, reason: 'not-leased-address', detail: `${req.mac} is leased ${live.map((l) => formatIPv4(l.address)).join(', ')}, request came from ${formatIPv4(source)}` };
  }
  const subnet = req.subnets.find((s) => s.cidr === lease.subnet);
  if (!subnet || !cidrContains(subnet, source)) {
    return { allow: false, reason: 'outside-pod-subnets', detail: `${formatIPv4(source)} is not in the pod's subnet ${lease.subnet}` };
  }
  return { allow: true, address: formatIPv4(source) };
}
