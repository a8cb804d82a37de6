// A small DHCP client that speaks either as a relay agent (unicast to the
// server, giaddr set) or as a rack client (broadcast from port 68). Used by
// `podboot dhcp probe`, the tests and the benchmarks.
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { BOOTREQUEST, FLAG_BROADCAST, MESSAGE_TYPE_NAMES, MessageType, Opt, RelaySub } from './codec/constants.js';
import { decodePacket, encodePacket, fieldText, type DhcpPacket } from './codec/packet.js';
import { encodeSubOptions, u16, u32 } from './codec/options.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { macToBytes } from '../net/mac.js';
import { describeOptions, type OptionView } from './option-names.js';

export interface ClientIdentity {
  mac: string;
  arch?: number;
  vendorClass?: string;
  userClass?: string;
  clientId?: Buffer;
  /** extra option 82 sub-options the "relay" adds (circuit id, remote id, link selection) */
  agentSubOptions?: [number, Buffer][];
}

export interface ProbeClientOptions {
  /** server address and port to send to (unicast) */
  server: { address: string; port: number };
  /** act as a relay agent: bind here and set giaddr to this address */
  relay?: { address: string; port: number };
  /** act as a client on the rack: broadcast from port 68 */
  broadcast?: boolean;
}

export class DhcpProbeClient {
  private readonly waiters = new Map<number, (p: DhcpPacket) => void>();

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly opts: ProbeClientOptions,
  ) {
    socket.on('message', (msg) => {
      const d = decodePacket(msg);
      if (!d.ok) return;
      this.waiters.get(d.packet.xid)?.(d.packet);
    });
  }

  static async open(opts: ProbeClientOptions): Promise<DhcpProbeClient> {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const bindAddr = opts.relay?.address ?? '0.0.0.0';
    const bindPort = opts.relay?.port ?? 68;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(bindPort, bindAddr, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (opts.broadcast) socket.setBroadcast(true);
    socket.setRecvBufferSize(4 * 1024 * 1024);
    return new DhcpProbeClient(socket, opts);
  }

  get relayPort(): number {
    return this.socket.address().port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  request(type: MessageType, id: ClientIdentity, extra: RequestExtra = {}): DhcpPacket {
    return buildClientRequest(type, id, extra, this.opts);
  }

  /** Sends one request and waits for the reply with the same xid. */
  exchange(req: DhcpPacket, timeoutMs: number): Promise<DhcpPacket | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(req.xid);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(req.xid, (p) => {
        clearTimeout(timer);
        this.waiters.delete(req.xid);
        resolve(p);
      });
      const dest = this.opts.broadcast ? { address: '255.255.255.255', port: 67 } : this.opts.server;
      this.socket.send(encodePacket(req, 0), dest.port, dest.address);
    });
  }

  /** DISCOVER → OFFER → REQUEST → ACK/NAK for one identity. */
  async dora(id: ClientIdentity, timeoutMs = 2000): Promise<{ offer?: DhcpPacket; ack?: DhcpPacket }> {
    const offer = await this.exchange(this.request(MessageType.DISCOVER, id), timeoutMs);
    if (!offer || messageType(offer) !== MessageType.OFFER) return { offer };
    const serverId = offer.options.get(Opt.SERVER_ID)?.readUInt32BE(0);
    const ack = await this.exchange(this.request(MessageType.REQUEST, id, { requestedIp: offer.yiaddr, serverId, xid: offer.xid }), timeoutMs);
    return { offer, ack };
  }
}

export interface RequestExtra {
  xid?: number;
  requestedIp?: number;
  serverId?: number;
  ciaddr?: number;
}

/** A client request as a PXE ROM or a relay would send it. Pure. */
export function buildClientRequest(type: MessageType, id: ClientIdentity, extra: RequestExtra, via: { relay?: { address: string; port: number }; broadcast?: boolean }): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  if (extra.requestedIp !== undefined) options.set(Opt.REQUESTED_IP, u32(extra.requestedIp));
  if (extra.serverId !== undefined) options.set(Opt.SERVER_ID, u32(extra.serverId));
  options.set(Opt.PARAMETER_LIST, Buffer.from([1, 3, 6, 12, 15, 43, 60, 66, 67, 175]));
  if (id.clientId) options.set(Opt.CLIENT_ID, id.clientId);
  if (id.vendorClass) options.set(Opt.VENDOR_CLASS, Buffer.from(id.vendorClass, 'latin1'));
  if (id.userClass) options.set(Opt.USER_CLASS, Buffer.from(id.userClass, 'latin1'));
  if (id.arch !== undefined) options.set(Opt.CLIENT_ARCH, u16(id.arch));
  const relay = via.relay;
  const subs: [number, Buffer][] = [...(id.agentSubOptions ?? [])];
  // RFC 8357: a relay that does not listen on port 67 says so, and the server replies to its port.
  if (relay && relay.port !== 67) subs.push([RelaySub.RELAY_SOURCE_PORT, Buffer.alloc(0)]);
  if (relay && subs.length) options.set(Opt.RELAY_AGENT_INFO, encodeSubOptions(subs));
  const chaddr = Buffer.alloc(16);
  macToBytes(id.mac).copy(chaddr);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: relay ? 1 : 0,
    xid: extra.xid ?? randomInt(0, 0xffffffff),
    secs: 0,
    flags: via.broadcast ? FLAG_BROADCAST : 0,
    ciaddr: extra.ciaddr ?? 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: relay ? parseIPv4(relay.address)! : 0,
    chaddr,
    sname: Buffer.alloc(64),
    file: Buffer.alloc(128),
    options,
  };
}

export function messageType(p: DhcpPacket): number | undefined {
  return p.options.get(Opt.MESSAGE_TYPE)?.[0];
}

/** A reply as `podboot dhcp probe` shows it; options by name and value (src/dhcp/option-names.ts). */
export interface ReplyView {
  type: string;
  xid: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  hops: number;
  file: string;
  bootfile?: string;
  vendorClass?: string;
  message?: string;
  options: OptionView[];
}

/** A reply as plain JSON for people and scripts. */
export function describeReply(p: DhcpPacket): ReplyView {
  const text = (code: number) => p.options.get(code)?.toString('latin1');
  return {
    type: MESSAGE_TYPE_NAMES[messageType(p) ?? 0] ?? 'unknown',
    xid: `0x${p.xid.toString(16).padStart(8, '0')}`,
    yiaddr: formatIPv4(p.yiaddr),
    siaddr: formatIPv4(p.siaddr),
    giaddr: formatIPv4(p.giaddr),
    hops: p.hops,
    file: fieldText(p.file),
    bootfile: text(Opt.BOOTFILE),
    vendorClass: text(Opt.VENDOR_CLASS),
    message: text(Opt.MESSAGE),
    options: describeOptions(p.options),
  };
}
