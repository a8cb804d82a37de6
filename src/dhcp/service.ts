// One pod's DHCP logic from datagram to reply: decode, check the relay, pick
// the subnet and node, ask the lease, boot and install policies, build the
// reply. It updates the in-memory lease table and reads install state, but
// writes nothing: the server commits the returned rows (leases, install-state
// changes and events) in its group commit, then sends the returned datagrams.
import type { Logger } from 'pino';
import { newHistogram, type HistogramData } from '../metrics/histogram.js';
import type { NodeConfig, PodConfig, SubnetConfig } from '../config/types.js';
import { cidrContains, formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { RateLimitedLog } from '../log-limit.js';
import type { LeaseRecord, LeaseStore, NodeStateStore, NodeWrites } from '../store/types.js';
import { MESSAGE_TYPE_NAMES, MessageType } from './codec/constants.js';
import { decodePacket, encodePacket, type DhcpPacket } from './codec/packet.js';
import { LeaseTable } from './lease-table.js';
import { decideBoot, type BootDecision } from './policy/boot.js';
import { decideInstallRecords } from './policy/install.js';
import { decideLease, type LeaseOutcome } from './policy/lease.js';
import { buildReply } from './reply.js';
import { isRequestProblem, readRequest, type ClientRequest } from './request.js';

export interface Datagram {
  data: Buffer;
  address: string;
  port: number;
}

export interface HandleResult {
  /** lease records that must be durable before `send` leaves */
  commit: LeaseRecord[];
  /** rows about the server committed with them (already admitted by the node store), if any */
  nodes: NodeWrites | undefined;
  send: Datagram[];
}

export interface DhcpCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  dropped: Record<string, number>;
  commits: number;
  commitFailures: number;
  /** datagram received → reply handed to the socket (group commit included), seconds */
  replySeconds: HistogramData;
}

const NOTHING: HandleResult = { commit: [], nodes: undefined, send: [] };
const CLIENT_PORT = 68;
const SERVER_PORT = 67;

export interface DhcpServiceOptions {
  offerHoldSec?: number;
  declineHoldSec?: number;
}

export class DhcpService {
  readonly counters: DhcpCounters = { received: {}, sent: {}, dropped: {}, commits: 0, commitFailures: 0, replySeconds: newHistogram() };
  private table: LeaseTable;
  private readonly serverId: number;
  private readonly nextServer: number;
  private readonly relays: ReadonlySet<number>;
  private readonly nodesByMac = new Map<string, NodeConfig>();
  private readonly nodesByUuid = new Map<string, NodeConfig>();
  private readonly limited: RateLimitedLog;
  private readonly offerHoldSec: number;
  private readonly declineHoldSec: number;
  /** install states decided but not committed yet: read before the store's, until the server's next commit */
  private readonly uncommitted = new Map<string, string>();

  constructor(
    private readonly pod: PodConfig,
    private readonly leases: LeaseStore,
    private readonly nodeState: NodeStateStore,
    private readonly log: Logger,
    opts: DhcpServiceOptions = {},
  ) {
    const serverId = parseIPv4(pod.listen.address);
    const nextServer = parseIPv4(pod.boot.nextServer);
    if (serverId === undefined || nextServer === undefined) throw new Error(`pod ${pod.name}: listen address and next server must be IPv4 addresses`);
    this.serverId = serverId;
    this.nextServer = nextServer;
    this.relays = new Set(pod.relays);
    for (const n of pod.nodes) {
      this.nodesByMac.set(n.mac, n);
      if (n.uuid) this.nodesByUuid.set(n.uuid, n);
    }
    this.table = new LeaseTable(pod.nodes, leases.loadAll());
    this.limited = new RateLimitedLog(log);
    this.offerHoldSec = opts.offerHoldSec ?? 10;
    this.declineHoldSec = opts.declineHoldSec ?? 3600;
  }

  /** Set by the operator's degrade: leases go on, new installs get no boot file. */
  degraded = false;

  get leaseCount(): number {
    return this.table.size;
  }

  /** The leases this pod holds for a MAC, as decided (the store may lag by one group commit). */
  leasesOf(mac: string): LeaseRecord[] {
    return this.table.leasesOfMac(mac);
  }

  /** Rebuilds the in-memory table from the store, e.g. after a failed commit. */
  resync(): void {
    this.table = new LeaseTable(this.pod.nodes, this.leases.loadAll());
    this.uncommitted.clear();
  }

  /** Everything returned so far is in the store now: install state is read from it again. */
  committed(): void {
    if (this.uncommitted.size) this.uncommitted.clear();
  }

  sweep(now: number): void {
    this.table.sweepOffers(now);
  }

  private drop(reason: string, fields: Record<string, unknown>, detail?: string): HandleResult {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    this.limited.warn(reason, { ...fields, detail }, `dhcp packet dropped: ${reason}${detail ? ` (${detail})` : ''}`);
    return NOTHING;
  }

  handle(data: Buffer, from: { address: string; port: number }, now: number): HandleResult {
    const decoded = decodePacket(data);
    if (!decoded.ok) return this.drop(`malformed:${decoded.reason}`, { from: from.address, bytes: data.length }, decoded.detail);
    const packet = decoded.packet;
    const req = readRequest(packet);
    if (isRequestProblem(req)) return this.drop(req.reason, { from: from.address, xid: packet.xid }, req.detail);
    const typeName = MESSAGE_TYPE_NAMES[req.type]!;
    this.counters.received[typeName] = (this.counters.received[typeName] ?? 0) + 1;
    const fields = { mac: req.mac, xid: hex(req.xid), giaddr: formatIPv4(req.giaddr), type: typeName };

    const subnet = this.selectSubnet(req, from);
    if (typeof subnet === 'string') return this.drop(subnet, { ...fields, from: from.address });
    const node = this.nodesByMac.get(req.mac) ?? (req.uuid ? this.nodesByUuid.get(req.uuid) : undefined);
    if (!node && this.pod.unknownNodes === 'ignore' && req.type !== MessageType.RELEASE) {
      return this.drop('unknown-node-ignored', fields);
    }

    const outcome = decideLease(
      {
        pod: this.pod,
        subnet,
        node,
        table: this.table,
        // RFC 5107: with 82.11 the client sees the relay's address as our identifier.
        serverId: req.serverIdOverride ?? this.serverId,
        now,
        offerHoldSec: this.offerHoldSec,
        declineHoldSec: this.declineHoldSec,
      },
      req,
    );
    return this.apply(outcome, req, packet, subnet, node, fields, from, now);
  }

  private apply(
    outcome: LeaseOutcome,
    req: ClientRequest,
    packet: DhcpPacket,
    subnet: SubnetConfig,
    node: NodeConfig | undefined,
    fields: Record<string, unknown>,
    from: { address: string; port: number },
    now: number,
  ): HandleResult {
    switch (outcome.kind) {
      case 'drop':
        if (outcome.reason === 'other-server-selected') {
          this.table.dropOffer(req.clientKey);
          this.log.debug(fields, 'client selected another server');
          return NOTHING;
        }
        return this.drop(outcome.reason, fields, outcome.detail);
      case 'record':
        for (const r of outcome.commit) this.table.put(r);
        this.log.info({ ...fields, address: formatIPv4(outcome.commit[0]!.address) }, `lease ${outcome.note}`);
        return { commit: outcome.commit, nodes: undefined, send: [] };
      case 'nak': {
        this.log.info({ ...fields, reason: outcome.message }, 'DHCPNAK');
        return { commit: [], nodes: undefined, send: [this.reply(MessageType.NAK, req, packet, subnet, { message: outcome.message }, from)] };
      }
      case 'offer': {
        this.table.hold(outcome.address, req.clientKey, outcome.holdUntil);
        const installState = this.installStateOf(req);
        const boot = this.boot(req, node, fields, installState, true);
        this.log.debug({ ...fields, address: formatIPv4(outcome.address), boot: boot.kind === 'boot' ? boot.file : boot.reason }, 'DHCPOFFER');
        return {
          commit: [],
          nodes: this.installRecords(req, installState, boot, true, now),
          send: [this.reply(MessageType.OFFER, req, packet, subnet, { yiaddr: outcome.address, leaseTime: outcome.leaseTime, boot, hostname: node?.hostname }, from)],
        };
      }
      case 'ack': {
        for (const r of outcome.commit) this.table.put(r);
        const installState = this.installStateOf(req);
        const boot = this.boot(req, node, fields, installState, false);
        this.log.info({ ...fields, address: formatIPv4(outcome.address), boot: boot.kind === 'boot' ? boot.file : boot.reason }, 'DHCPACK');
        return {
          commit: outcome.commit,
          nodes: this.installRecords(req, installState, boot, false, now),
          send: [this.reply(MessageType.ACK, req, packet, subnet, { yiaddr: outcome.address, leaseTime: outcome.leaseTime, boot, hostname: node?.hostname }, from)],
        };
      }
      case 'inform': {
        const installState = this.installStateOf(req);
        const boot = this.boot(req, node, fields, installState, false);
        return {
          commit: [],
          nodes: this.installRecords(req, installState, boot, false, now),
          send: [this.reply(MessageType.ACK, req, packet, subnet, { yiaddr: 0, boot, hostname: node?.hostname }, from)],
        };
      }
    }
  }

  /** Only network-boot clients need their install state; the rest skip the lookup. */
  private installStateOf(req: ClientRequest): string | undefined {
    if (!isNetworkBoot(req)) return undefined;
    return this.uncommitted.get(req.mac) ?? this.nodeState.installState(req.mac);
  }

  private boot(req: ClientRequest, node: NodeConfig | undefined, fields: Record<string, unknown>, installState: string | undefined, discover: boolean): BootDecision {
    const decision = decideBoot(req, { pod: this.pod, node, installState, degraded: this.degraded });
    if (decision.kind === 'none' && decision.reason === 'installed' && discover) {
      // An installed server should boot from disk; a PXE attempt is a reboot
      // loop, a firmware reset or a rogue host using its MAC. Say so.
      this.log.warn({ ...fields, installState }, 'network boot attempt from an installed server: no boot file offered');
    } else if (decision.kind === 'none' && decision.reason === 'unknown-arch') {
      this.limited.warn('unknown-arch', fields, `no boot file for client architecture: ${decision.detail}`);
    }
    return decision;
  }

  /** The rows to commit about a network-boot client, as the node store admits them. */
  private installRecords(req: ClientRequest, installState: string | undefined, decision: BootDecision, discover: boolean, now: number): NodeWrites | undefined {
    if (!isNetworkBoot(req)) return undefined;
    const decided = decideInstallRecords(req.mac, installState, decision, discover, now);
    if (!decided) return undefined;
    const writes = this.nodeState.admit(decided);
    for (const c of writes.changes) this.uncommitted.set(c.mac, c.state);
    return writes.changes.length || writes.events.length ? writes : undefined;
  }

  private reply(
    type: MessageType.OFFER | MessageType.ACK | MessageType.NAK,
    req: ClientRequest,
    packet: DhcpPacket,
    subnet: SubnetConfig,
    extra: { yiaddr?: number; leaseTime?: number; boot?: BootDecision; hostname?: string; message?: string },
    from: { address: string; port: number },
  ): Datagram {
    const reply = buildReply({
      type,
      request: req,
      chaddr: packet.chaddr,
      htype: packet.htype,
      hlen: packet.hlen,
      pod: this.pod,
      subnet,
      serverId: req.serverIdOverride ?? this.serverId,
      nextServer: this.nextServer,
      yiaddr: extra.yiaddr ?? 0,
      leaseTime: extra.leaseTime,
      hostname: extra.hostname,
      boot: extra.boot,
      message: extra.message,
    });
    const name = MESSAGE_TYPE_NAMES[type]!;
    this.counters.sent[name] = (this.counters.sent[name] ?? 0) + 1;
    // RFC 2131 §4.1: relayed → back to the relay's server port (or the port it
    // asked for with RFC 8357); otherwise to the client's own address.
    if (req.giaddr !== 0) {
      return { data: encodePacket(reply), address: formatIPv4(req.giaddr), port: req.relaySourcePort ? from.port : SERVER_PORT };
    }
    return { data: encodePacket(reply), address: formatIPv4(req.ciaddr), port: CLIENT_PORT };
  }

  /** The subnet a request belongs to, or the reason it is not this pod's to answer. */
  private selectSubnet(req: ClientRequest, from: { address: string }): SubnetConfig | string {
    if (req.giaddr !== 0) {
      if (!this.relays.has(req.giaddr)) return 'unknown-relay';
      const link = req.linkSelection ?? req.giaddr;
      return this.subnetOf(link) ?? (req.linkSelection !== undefined ? 'link-selection-not-served' : 'no-subnet-for-relay');
    }
    // Unrelayed: only a bound client talking to us by unicast (renew, release, inform).
    const direct = req.type === MessageType.REQUEST || req.type === MessageType.RELEASE || req.type === MessageType.INFORM;
    if (!direct || req.ciaddr === 0) return 'not-relayed';
    if (parseIPv4(from.address) !== req.ciaddr) return 'ciaddr-not-source';
    return this.subnetOf(req.ciaddr) ?? 'client-not-in-pod';
  }

  private subnetOf(address: number): SubnetConfig | undefined {
    return this.pod.subnets.find((s) => cidrContains({ network: s.network, prefix: s.prefix, mask: s.mask }, address));
  }
}

function isNetworkBoot(req: ClientRequest): boolean {
  return req.isPxe || req.isHttpBoot || req.isIpxe || req.arch !== undefined;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
