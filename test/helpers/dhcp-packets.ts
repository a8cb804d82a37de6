// Client/relay DHCP requests for tests, built with the same function the probe
// client uses. Real captured packets live in test/fixtures/dhcp; these cover
// the cases no capture does (bad options, chosen architectures, crafted relays).
import { buildClientRequest } from '../../src/dhcp/client.js';
import { type MessageType, Opt } from '../../src/dhcp/codec/constants.js';
import { encodePacket, type DhcpPacket } from '../../src/dhcp/codec/packet.js';

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
  /** option 82 exactly as a relay would add it */
  relayAgentInfo?: Buffer;
  extra?: [number, Buffer][];
}

export function requestPacket(s: RequestSpec): DhcpPacket {
  const p = buildClientRequest(
    s.type,
    { mac: s.mac, arch: s.arch, vendorClass: s.vendorClass, userClass: s.userClass, clientId: s.clientId },
    { xid: s.xid ?? 0x1234abcd, requestedIp: s.requestedIp, serverId: s.serverId, ciaddr: s.ciaddr },
    {},
  );
  p.giaddr = s.giaddr ?? 0;
  p.hops = s.hops ?? (s.giaddr ? 1 : 0);
  p.flags = s.flags ?? 0;
  for (const [code, v] of s.extra ?? []) p.options.set(code, v);
  if (s.relayAgentInfo) p.options.set(Opt.RELAY_AGENT_INFO, s.relayAgentInfo);
  return p;
}

export function requestBytes(s: RequestSpec): Buffer {
  return encodePacket(requestPacket(s), 0);
}
