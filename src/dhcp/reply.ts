// Builds the reply packet for a decided outcome. Pure: request + decisions in,
// packet out. Field and option choices follow RFC 2131 §4.3.1 table 3.
import type { PodConfig, SubnetConfig } from '../config/types.js';
import { BOOTREPLY, FLAG_BROADCAST, IPXE_NO_PXEDHCP, MessageType, Opt, PXE_DISCOVERY_CONTROL } from './codec/constants.js';
import { encodedOptionLength, textField, type DhcpPacket } from './codec/packet.js';
import { encodeSubOptions, ipList, text, u32, u8 } from './codec/options.js';
import type { BootDecision } from './policy/boot.js';
import type { ClientRequest } from './request.js';

export interface ReplyInput {
  type: MessageType.OFFER | MessageType.ACK | MessageType.NAK;
  request: ClientRequest;
  /** the request's packet: chaddr and friends are copied from it */
  chaddr: Buffer;
  htype: number;
  hlen: number;
  pod: PodConfig;
  subnet: SubnetConfig;
  serverId: number;
  nextServer: number;
  /** 0 for INFORM replies and NAKs */
  yiaddr: number;
  leaseTime?: number;
  hostname?: string;
  boot?: BootDecision;
  message?: string;
}

const EMPTY_SNAME = Buffer.alloc(64);
const FILE_FIELD = 128;

export function buildReply(r: ReplyInput): DhcpPacket {
  const req = r.request;
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, u8(r.type));
  options.set(Opt.SERVER_ID, u32(r.serverId));
  let file: Buffer = Buffer.alloc(FILE_FIELD);
  let siaddr = 0;

  if (r.type === MessageType.NAK) {
    if (r.message) options.set(Opt.MESSAGE, text(r.message.slice(0, 250)));
  } else {
    if (r.leaseTime !== undefined) {
      options.set(Opt.LEASE_TIME, u32(r.leaseTime));
      options.set(Opt.RENEWAL_TIME, u32(Math.floor(r.leaseTime / 2)));
      options.set(Opt.REBINDING_TIME, u32(Math.floor((r.leaseTime * 7) / 8)));
    }
    options.set(Opt.SUBNET_MASK, u32(r.subnet.mask));
    if (r.subnet.gateway !== undefined) options.set(Opt.ROUTER, u32(r.subnet.gateway));
    if (r.subnet.dns.length) options.set(Opt.DNS, ipList(r.subnet.dns));
    if (r.hostname) options.set(Opt.HOSTNAME, text(r.hostname));
    if (r.subnet.domain) options.set(Opt.DOMAIN_NAME, text(r.subnet.domain));
    const boot = r.boot;
    if (boot?.kind === 'boot') {
      siaddr = r.nextServer;
      // PXE ROMs read the fixed `file` field; iPXE and UEFI also read option 67.
      if (boot.file.length < FILE_FIELD) file = textField(boot.file, FILE_FIELD);
      options.set(Opt.BOOTFILE, text(boot.file));
      if (req.parameterList.includes(Opt.TFTP_SERVER)) options.set(Opt.TFTP_SERVER, text(r.pod.boot.nextServer));
      if (boot.vendorClass) options.set(Opt.VENDOR_CLASS, text(boot.vendorClass));
      if (req.isPxe && !req.isIpxe) {
        // Discovery control 8: take the boot file from this offer, skip PXE boot server discovery.
        options.set(Opt.VENDOR_SPECIFIC, encodeSubOptions([[PXE_DISCOVERY_CONTROL, u8(8)]]));
      }
    }
    if (req.isIpxe) {
      // Without this iPXE waits ~3 s for a ProxyDHCP offer that never comes.
      options.set(Opt.IPXE_ENCAP, encodeSubOptions([[IPXE_NO_PXEDHCP, u8(1)]]));
    }
  }
  if (req.relayAgentInfo) options.set(Opt.RELAY_AGENT_INFO, req.relayAgentInfo);
  fitToClient(options, req.maxMessageSize);

  let flags = req.flags;
  // RFC 2131 §4.3.2: a relayed NAK goes out with the broadcast bit so the relay broadcasts it.
  if (r.type === MessageType.NAK && req.giaddr !== 0) flags |= FLAG_BROADCAST;
  return {
    op: BOOTREPLY,
    htype: r.htype,
    hlen: r.hlen,
    hops: req.hops,
    xid: req.xid,
    secs: 0,
    flags,
    ciaddr: r.type === MessageType.NAK ? 0 : req.ciaddr,
    yiaddr: r.yiaddr,
    siaddr,
    giaddr: req.giaddr,
    chaddr: r.chaddr,
    sname: EMPTY_SNAME,
    file,
    options,
  };
}

/** Options the reply can lose, least needed first, if it outgrows the client's limit. */
const SHEDDABLE = [Opt.DOMAIN_NAME, Opt.HOSTNAME, Opt.TFTP_SERVER, Opt.VENDOR_SPECIFIC, Opt.IPXE_ENCAP, Opt.DNS] as const;

function fitToClient(options: Map<number, Buffer>, maxMessage: number): void {
  const size = () => 240 + 1 + [...options.values()].reduce((n, v) => n + encodedOptionLength(v), 0);
  for (const code of SHEDDABLE) {
    if (size() <= maxMessage) return;
    options.delete(code);
  }
}
