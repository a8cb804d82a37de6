// spec.listen: the pod's own address on the central node and its four sockets.
import { formatIPv4 } from '../net/ipv4.js';
import { boundsOf, fieldsOf, LISTEN_SHAPE } from './pod-shape.js';
import type { ListenConfig } from './types.js';
import type { Section } from './yaml-reader.js';

export type PortKey = 'dhcpPort' | 'tftpPort' | 'httpPort' | 'httpsPort';

/** Each socket a pod binds: DHCP and TFTP share UDP, HTTP and HTTPS share TCP. */
export const LISTEN_PORTS: readonly { key: PortKey; protocol: 'udp' | 'tcp'; default: number }[] = [
  { key: 'dhcpPort', protocol: 'udp', default: 67 },
  { key: 'tftpPort', protocol: 'udp', default: 69 },
  { key: 'httpPort', protocol: 'tcp', default: 80 },
  { key: 'httpsPort', protocol: 'tcp', default: 443 },
];

const LISTEN_FIELDS = fieldsOf(LISTEN_SHAPE);

/**
 * spec.listen as read: the config when all of it is usable, and apart from
 * that the address and each port that could be read on their own (defaults
 * included), which the checks between pods still compare.
 */
export interface ListenRead {
  config?: ListenConfig;
  address?: string;
  ports: Partial<Record<PortKey, number>>;
}

export function readListen(spec: Section): ListenRead {
  const listen = spec.section('listen', LISTEN_FIELDS);
  if (!listen) return { ports: {} };
  const address = listen.address('address');
  const ports: Partial<Record<PortKey, number>> = {};
  let complete = true;
  for (const p of LISTEN_PORTS) {
    const port = listen.node(p.key) === undefined ? p.default : listen.integer(p.key, ...boundsOf(LISTEN_SHAPE, p.key));
    if (port === undefined) complete = false;
    else ports[p.key] = port;
  }
  // Two sockets of one protocol on one port would fail at bind time; say so now.
  LISTEN_PORTS.forEach((a, i) => {
    for (const b of LISTEN_PORTS.slice(i + 1)) {
      if (a.protocol === b.protocol && ports[a.key] !== undefined && ports[a.key] === ports[b.key]) {
        listen.report(listen.node(b.key) ? b.key : a.key, `${b.key} and ${a.key} are both ${a.protocol} port ${ports[a.key]}`);
        complete = false;
      }
    }
  });
  const text = address === undefined ? undefined : formatIPv4(address);
  if (text === undefined || !complete) return { ...(text === undefined ? {} : { address: text }), ports };
  return { config: { address: text, ...(ports as Record<PortKey, number>) }, address: text, ports };
}
