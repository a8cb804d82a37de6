// Reads a decoded packet once into a plain description of what the client
// asks for. No side effects: the server, the policy and the logs all work from
// this view instead of poking at raw options.
import { BOOTREQUEST, DEFAULT_MAX_MESSAGE, MessageType, Opt, RelaySub } from './codec/constants.js';
import type { DhcpPacket } from './codec/packet.js';
import { OptionError, readClientArch, readClientNdi, readClientUuid, readIPv4, readSubOptions, readText, readU16, readU8, readUserClass } from './codec/options.js';
import { macFromBytes } from '../net/mac.js';

export interface ClientRequest {
  type: MessageType;
  xid: number;
  flags: number;
  hops: number;
  giaddr: number;
  ciaddr: number;
  /** chaddr as text: a MAC for Ethernet, hex bytes otherwise */
  mac: string;
  /** lease identity: option 61 when sent (RFC 2131 §4.2), else the hardware address */
  clientKey: string;
  requestedIp?: number;
  serverId?: number;
  parameterList: number[];
  /** largest DHCP message the client accepts (option 57, never below 548) */
  maxMessageSize: number;
  hostname?: string;
  vendorClass?: string;
  userClass: string[];
  arch?: number[];
  ndi?: { type: number; major: number; minor: number };
  uuid?: string;
  /** option 82 exactly as received, echoed verbatim in the reply */
  relayAgentInfo?: Buffer;
  circuitId?: Buffer;
  remoteId?: Buffer;
  /** RFC 3527 link selection (82.5) or RFC 3011 subnet selection (118) */
  linkSelection?: number;
  /** RFC 5107 server identifier override (82.11): the relay stands in for us toward the client */
  serverIdOverride?: number;
  /** RFC 8357: the relay listens on its source port, not 67 */
  relaySourcePort: boolean;
  /** option 60 starts with PXEClient or HTTPClient */
  isPxe: boolean;
  isHttpBoot: boolean;
  /** iPXE identifies itself by user class "iPXE" or by sending option 175 */
  isIpxe: boolean;
}

export type RequestProblem =
  | { reason: 'not-a-request'; detail: string }
  | { reason: 'no-message-type'; detail: string }
  | { reason: 'bad-message-type'; detail: string }
  | { reason: 'bad-option'; detail: string };

function unwrap<T>(v: T | OptionError | undefined, problems: string[]): T | undefined {
  if (v instanceof OptionError) {
    problems.push(v.toString());
    return undefined;
  }
  return v;
}

export function readRequest(p: DhcpPacket): ClientRequest | RequestProblem {
  if (p.op !== BOOTREQUEST) return { reason: 'not-a-request', detail: `op ${p.op}` };
  const o = p.options;
  const problems: string[] = [];
  const type = unwrap(readU8(Opt.MESSAGE_TYPE, o.get(Opt.MESSAGE_TYPE)), problems);
  if (problems.length) return { reason: 'bad-option', detail: problems.join('; ') };
  if (type === undefined) return { reason: 'no-message-type', detail: 'BOOTP request without option 53' };
  if (type < MessageType.DISCOVER || type > MessageType.INFORM || type === MessageType.OFFER || type === MessageType.ACK || type === MessageType.NAK) {
    return { reason: 'bad-message-type', detail: `message type ${type} from a client` };
  }

  const requestedIp = unwrap(readIPv4(Opt.REQUESTED_IP, o.get(Opt.REQUESTED_IP)), problems);
  const serverId = unwrap(readIPv4(Opt.SERVER_ID, o.get(Opt.SERVER_ID)), problems);
  const maxMsg = unwrap(readU16(Opt.MAX_MESSAGE_SIZE, o.get(Opt.MAX_MESSAGE_SIZE)), problems);
  const arch = unwrap(readClientArch(Opt.CLIENT_ARCH, o.get(Opt.CLIENT_ARCH)), problems);
  const ndi = unwrap(readClientNdi(Opt.CLIENT_NDI, o.get(Opt.CLIENT_NDI)), problems);
  const uuid = unwrap(readClientUuid(Opt.CLIENT_UUID, o.get(Opt.CLIENT_UUID)), problems);
  const subnetSel = unwrap(readIPv4(Opt.SUBNET_SELECTION, o.get(Opt.SUBNET_SELECTION)), problems);
  const relayAgentInfo = o.get(Opt.RELAY_AGENT_INFO);
  const relaySubs = unwrap(readSubOptions(Opt.RELAY_AGENT_INFO, relayAgentInfo), problems);
  const linkSel = relaySubs ? unwrap(readIPv4(Opt.RELAY_AGENT_INFO, relaySubs.get(RelaySub.LINK_SELECTION)), problems) : undefined;
  const override = relaySubs ? unwrap(readIPv4(Opt.RELAY_AGENT_INFO, relaySubs.get(RelaySub.SERVER_ID_OVERRIDE)), problems) : undefined;
  if (problems.length) return { reason: 'bad-option', detail: problems.join('; ') };

  const clientIdRaw = o.get(Opt.CLIENT_ID);
  const hlen = Math.min(p.hlen, 16);
  const mac = macFromBytes(p.chaddr, 0, hlen);
  const vendorClass = readText(o.get(Opt.VENDOR_CLASS));
  const userClass = readUserClass(o.get(Opt.USER_CLASS)) ?? [];
  return {
    type,
    xid: p.xid,
    flags: p.flags,
    hops: p.hops,
    giaddr: p.giaddr,
    ciaddr: p.ciaddr,
    mac,
    clientKey: clientIdRaw && clientIdRaw.length > 0 ? `id:${clientIdRaw.toString('hex')}` : `hw:${p.htype}:${mac}`,
    requestedIp,
    serverId,
    parameterList: [...(o.get(Opt.PARAMETER_LIST) ?? [])],
    maxMessageSize: Math.max(DEFAULT_MAX_MESSAGE, maxMsg ?? 0),
    hostname: readText(o.get(Opt.HOSTNAME)),
    vendorClass,
    userClass,
    arch,
    ndi,
    uuid,
    relayAgentInfo,
    circuitId: relaySubs?.get(RelaySub.CIRCUIT_ID),
    remoteId: relaySubs?.get(RelaySub.REMOTE_ID),
    linkSelection: linkSel ?? subnetSel,
    serverIdOverride: override,
    relaySourcePort: relaySubs?.has(RelaySub.RELAY_SOURCE_PORT) ?? false,
    isPxe: vendorClass?.startsWith('PXEClient') ?? false,
    isHttpBoot: vendorClass?.startsWith('HTTPClient') ?? false,
    isIpxe: userClass.includes('iPXE') || o.has(Opt.IPXE_ENCAP),
  };
}

export function isRequestProblem(v: ClientRequest | RequestProblem): v is RequestProblem {
  return 'reason' in v;
}
