// Builds client/relay DHCP requests for tests with the project's encoder.
// Real captured packets live in test/fixtures/dhcp; these cover the cases no
// capture does (bad options, chosen architectures, crafted relays).
import { BOOTREQUEST, MessageType, Opt } from '../../src/dhcp/codec/constants.js';
import { encodePacket, type DhcpPacket } from '../../src/dhcp/codec/packet.js';
import { macToBytes } from '../../src/net/mac.js';

export interface RequestSpec {
  type: MessageType;
  mac: string;
  xid?: number;
  giaddr?: number;
  ciaddr?: number;
  hops?: number;
  flags?: number;
  requestedIp?: number;
  serverId?: number;
  arch?: number;
  vendorClass?: string;
  userClass?: string;
  clientId?: Buffer;
  relayAgentInfo?: Buffer;
  extra?: [number, Buffer][];
}

export function requestPacket(s: RequestSpec): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, Buffer.from([s.type]));
  if (s.requestedIp !== undefined) options.set(Opt.REQUESTED_IP, u32(s.requestedIp));
  if (s.serverId !== undefined) options.set(Opt.SERVER_ID, u32(s.serverId));
  if (s.clientId) options.set(Opt.CLIENT_ID, s.clientId);
  if (s.vendorClass) options.set(Opt.VENDOR_CLASS, Buffer.from(s.vendorClass));
  if (s.userClass) options.set(Opt.USER_CLASS, Buffer.from(s.userClass));
  if (s.arch !== undefined) {
    const a = Buffer.alloc(2);
    a.writeUInt16BE(s.arch);
    options.set(Opt.CLIENT_ARCH, a);
  }
  for (const [code, v] of s.extra ?? []) options.set(code, v);
  if (s.relayAgentInfo) options.set(Opt.RELAY_AGENT_INFO, s.relayAgentInfo);
  const chaddr = Buffer.alloc(16);
  macToBytes(s.mac).copy(chaddr);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: s.hops ?? (s.giaddr ? 1 : 0),
    xid: s.xid ?? 0x1234abcd,
    secs: 0,
    flags: s.flags ?? 0,
    ciaddr: s.ciaddr ?? 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: s.giaddr ?? 0,
    chaddr,
    sname: Buffer.alloc(64),
    file: Buffer.alloc(128),
    options,
  };
}

export function requestBytes(s: RequestSpec): Buffer {
  return encodePacket(requestPacket(s), 0);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
