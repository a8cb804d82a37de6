// What to answer a client, given its request, the pod's inventory and the
// lease table at time `now` (RFC 2131 §4.3). Reads the table, never writes
// it: the outcome lists the holds and records the server then applies.
import type { NodeConfig, PodConfig, SubnetConfig } from '../../config/types.js';
import { cidrContains, formatIPv4 } from '../../net/ipv4.js';
import type { LeaseRecord } from '../../store/types.js';
import { MessageType } from '../codec/constants.js';
import type { LeaseTable } from '../lease-table.js';
import type { ClientRequest } from '../request.js';

export interface LeaseContext {
  pod: PodConfig;
  subnet: SubnetConfig;
  node?: NodeConfig;
  table: LeaseTable;
  /** this pod's server identifier (option 54) */
  serverId: number;
  now: number;
  offerHoldSec: number;
  declineHoldSec: number;
}

export type LeaseOutcome =
  | { kind: 'offer'; address: number; leaseTime: number; holdUntil: number }
  | { kind: 'ack'; address: number; leaseTime: number; commit: LeaseRecord[] }
  | { kind: 'inform' }
  | { kind: 'nak'; message: string }
  | { kind: 'record'; commit: LeaseRecord[]; note: string }
  | { kind: 'drop'; reason: string; detail?: string };

function inSubnet(s: SubnetConfig, a: number): boolean {
  return cidrContains({ network: s.network, prefix: s.prefix, mask: s.mask }, a);
}

function inPool(s: SubnetConfig, a: number): boolean {
  return s.pool !== undefined && a >= s.pool.start && a <= s.pool.end;
}

/** The fixed address of a known node if it has one on this subnet. */
function fixedAddress(ctx: LeaseContext): number | undefined {
  const a = ctx.node?.address;
  return a !== undefined && inSubnet(ctx.subnet, a) ? a : undefined;
}

/** Is `address` one this client may hold on this subnet? */
function allowed(ctx: LeaseContext, req: ClientRequest, address: number): string | undefined {
  if (!inSubnet(ctx.subnet, address)) return `${formatIPv4(address)} is not on ${ctx.subnet.cidr}`;
  const fixed = fixedAddress(ctx);
  if (ctx.node?.address !== undefined) {
    return fixed === address ? undefined : `${formatIPv4(address)} is not the fixed address of ${req.mac}`;
  }
  if (!inPool(ctx.subnet, address)) return `${formatIPv4(address)} is outside the pool`;
  if (!ctx.table.isFreeFor(address, req.clientKey, req.mac, ctx.now)) return `${formatIPv4(address)} is leased to another client`;
  return undefined;
}

function chooseOffer(ctx: LeaseContext, req: ClientRequest): number | undefined {
  const { table, now } = ctx;
  if (ctx.node?.address !== undefined) return fixedAddress(ctx);
  const free = (a: number | undefined) => (a !== undefined && inPool(ctx.subnet, a) && table.isFreeFor(a, req.clientKey, req.mac, now) ? a : undefined);
  return free(table.offerOf(req.clientKey, now)) ?? free(table.leaseOf(req.clientKey)?.address) ?? free(req.requestedIp) ?? table.nextFree(ctx.subnet, req.clientKey, req.mac, now);
}

function bindRecords(ctx: LeaseContext, req: ClientRequest, address: number): LeaseRecord[] {
  const { now, subnet } = ctx;
  const records: LeaseRecord[] = [];
  const previous = ctx.table.leaseOf(req.clientKey);
  if (previous && previous.address !== address && previous.state === 'bound') {
    // One address per client: moving releases the old one in the same commit.
    records.push({ ...previous, state: 'released', ends: now });
  }
  records.push({
    address,
    clientKey: req.clientKey,
    mac: req.mac,
    hostname: ctx.node?.hostname ?? req.hostname,
    state: 'bound',
    starts: now,
    ends: now + subnet.leaseTimeSec,
    subnet: subnet.cidr,
  });
  return records;
}

function decideRequest(ctx: LeaseContext, req: ClientRequest): LeaseOutcome {
  const { table } = ctx;
  if (req.serverId !== undefined) {
    // SELECTING: the client answers one OFFER; if it is not ours, forget ours.
    if (req.serverId !== ctx.serverId) return { kind: 'drop', reason: 'other-server-selected', detail: formatIPv4(req.serverId) };
    if (req.requestedIp === undefined) return { kind: 'nak', message: 'REQUEST in SELECTING state without option 50' };
    const why = allowed(ctx, req, req.requestedIp);
    if (why) return { kind: 'nak', message: why };
    return { kind: 'ack', address: req.requestedIp, leaseTime: ctx.subnet.leaseTimeSec, commit: bindRecords(ctx, req, req.requestedIp) };
  }
  if (req.requestedIp !== undefined && req.ciaddr === 0) {
    // INIT-REBOOT: the client asks to keep an address it had.
    const known = table.leaseOf(req.clientKey);
    if (!inSubnet(ctx.subnet, req.requestedIp)) return { kind: 'nak', message: `${formatIPv4(req.requestedIp)} is not on ${ctx.subnet.cidr}` };
    if (!known && ctx.node?.address === undefined) {
      // RFC 2131 §4.3.2: no record of this client → remain silent.
      return { kind: 'drop', reason: 'init-reboot-unknown-client' };
    }
    const why = allowed(ctx, req, req.requestedIp);
    if (why) return { kind: 'nak', message: why };
    if (known && known.address !== req.requestedIp && ctx.node?.address === undefined) {
      return { kind: 'nak', message: `client's lease is ${formatIPv4(known.address)}, not ${formatIPv4(req.requestedIp)}` };
    }
    return { kind: 'ack', address: req.requestedIp, leaseTime: ctx.subnet.leaseTimeSec, commit: bindRecords(ctx, req, req.requestedIp) };
  }
  if (req.ciaddr !== 0) {
    // RENEWING (unicast) or REBINDING (broadcast, relayed): extend ciaddr.
    const why = allowed(ctx, req, req.ciaddr);
    if (why) return { kind: 'nak', message: why };
    return { kind: 'ack', address: req.ciaddr, leaseTime: ctx.subnet.leaseTimeSec, commit: bindRecords(ctx, req, req.ciaddr) };
  }
  return { kind: 'drop', reason: 'request-without-address', detail: 'no option 50, no ciaddr' };
}

export function decideLease(ctx: LeaseContext, req: ClientRequest): LeaseOutcome {
  const { table, now } = ctx;
  switch (req.type) {
    case MessageType.DISCOVER: {
      const address = chooseOffer(ctx, req);
      if (address === undefined) {
        return ctx.node?.address !== undefined
          ? { kind: 'drop', reason: 'fixed-address-not-on-link', detail: `${formatIPv4(ctx.node.address)} not on ${ctx.subnet.cidr}` }
          : { kind: 'drop', reason: 'pool-exhausted', detail: ctx.subnet.cidr };
      }
      return { kind: 'offer', address, leaseTime: ctx.subnet.leaseTimeSec, holdUntil: now + ctx.offerHoldSec };
    }
    case MessageType.REQUEST:
      return decideRequest(ctx, req);
    case MessageType.DECLINE: {
      const a = req.requestedIp;
      if (a === undefined) return { kind: 'drop', reason: 'decline-without-address' };
      const lease = table.lease(a);
      if (!lease || lease.clientKey !== req.clientKey) return { kind: 'drop', reason: 'decline-of-foreign-address', detail: formatIPv4(a) };
      // Quarantine: some other host answers ARP for it; nobody gets it for a while.
      return {
        kind: 'record',
        note: 'declined',
        commit: [{ ...lease, clientKey: '', state: 'declined', starts: now, ends: now + ctx.declineHoldSec }],
      };
    }
    case MessageType.RELEASE: {
      const lease = table.lease(req.ciaddr);
      if (!lease || lease.clientKey !== req.clientKey) return { kind: 'drop', reason: 'release-of-foreign-address', detail: formatIPv4(req.ciaddr) };
      // Keep the client key: the same client gets the same address back next time.
      return { kind: 'record', note: 'released', commit: [{ ...lease, state: 'released', ends: now }] };
    }
    case MessageType.INFORM:
      return { kind: 'inform' };
    default:
      return { kind: 'drop', reason: 'unexpected-message-type', detail: String(req.type) };
  }
}
