import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { DhcpProbeClient, describeReply, messageType, type ReplyView } from '../../dhcp/client.js';
import { MessageType } from '../../dhcp/codec/constants.js';
import type { DhcpPacket } from '../../dhcp/codec/packet.js';
import { optionText } from '../../dhcp/option-names.js';
import { normalizeMac } from '../../net/mac.js';
import { parseIPv4 } from '../../net/ipv4.js';

function hostPort(text: string, defaultPort: number, what: string): { address: string; port: number } {
  const [address, port] = text.split(':');
  if (!address || parseIPv4(address) === undefined) throw new UsageError(`${what}: ${text} is not an IPv4 address[:port]`);
  const p = port === undefined ? defaultPort : Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new UsageError(`${what}: bad port in ${text}`);
  return { address, port: p };
}

export const dhcpProbeCommand: Command = {
  summary: 'send one DHCP exchange (as a relay or a rack client) and print the replies',
  usage: `usage: podboot dhcp probe --mac MAC (--relay ADDR[:PORT] --server ADDR[:PORT] | --broadcast)
                          [--arch N] [--user-class TEXT] [--vendor-class TEXT] [--discover-only]
                          [--circuit-id TEXT] [--timeout MS] [--json]

Acts as a relay agent (unicast to --server with giaddr = --relay; a PORT other
than 67 is announced with RFC 8357 so the server answers there) or, with
--broadcast, as a client on the rack broadcasting from port 68. Prints the
OFFER and ACK with their options by name and value (subnet mask, routers, DNS
servers, lease time, server id, message type, vendor class, TFTP server 66,
bootfile 67, user class 77, client arch 93, relay agent info 82 and PXE 43
sub-options, ...); an option podboot does not know is shown in hex. Exit 0
when the exchange completed with an ACK (or an OFFER with --discover-only),
1 otherwise.

  --json   one JSON object per reply, each option as {code, name, value,
           hex} (name and value null for an unknown option; error for a
           malformed one). The default when stdout is not a terminal, so
           scripts that read the replies get JSON either way.

Against the embedded default pod (podboot serve):
  podboot dhcp probe --server 127.0.0.1:10067 --relay 127.77.0.1:10068 --mac 52:54:00:77:00:10 --arch 0`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        mac: { type: 'string' },
        relay: { type: 'string' },
        server: { type: 'string' },
        broadcast: { type: 'boolean', default: false },
        arch: { type: 'string' },
        'user-class': { type: 'string' },
        'vendor-class': { type: 'string' },
        'circuit-id': { type: 'string' },
        'discover-only': { type: 'boolean', default: false },
        timeout: { type: 'string', default: '3000' },
        json: { type: 'boolean', default: false },
      },
    });
    const print = values.json || !process.stdout.isTTY ? (p: DhcpPacket) => JSON.stringify(describeReply(p)) : (p: DhcpPacket) => replyText(describeReply(p));
    const mac = values.mac ? normalizeMac(values.mac) : undefined;
    if (!mac) throw new UsageError('--mac with a valid MAC address is required');
    if (!values.broadcast && (!values.relay || !values.server)) throw new UsageError('give --relay and --server, or --broadcast');
    const arch = values.arch === undefined ? undefined : Number(values.arch);
    if (arch !== undefined && (!Number.isInteger(arch) || arch < 0 || arch > 65535)) throw new UsageError('--arch must be 0..65535');
    const timeout = Number(values.timeout);
    const client = await DhcpProbeClient.open({
      server: values.server ? hostPort(values.server, 67, '--server') : { address: '255.255.255.255', port: 67 },
      relay: values.relay ? hostPort(values.relay, 67, '--relay') : undefined,
      broadcast: values.broadcast,
    });
    try {
      const id = {
        mac,
        arch,
        userClass: values['user-class'],
        vendorClass: values['vendor-class'] ?? (arch !== undefined ? `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:002001` : undefined),
        agentSubOptions: values['circuit-id'] ? ([[1, Buffer.from(values['circuit-id'])]] as [number, Buffer][]) : undefined,
      };
      if (values['discover-only']) {
        const offer = await client.exchange(client.request(MessageType.DISCOVER, id), timeout);
        if (offer) process.stdout.write(`${print(offer)}\n`);
        else process.stderr.write('no answer\n');
        return offer && messageType(offer) === MessageType.OFFER ? EXIT_OK : EXIT_FAILURE;
      }
      const { offer, ack } = await client.dora(id, timeout);
      for (const p of [offer, ack]) if (p) process.stdout.write(`${print(p)}\n`);
      if (!offer) process.stderr.write('no answer to DISCOVER\n');
      else if (!ack) process.stderr.write('no answer to REQUEST\n');
      return ack && messageType(ack) === MessageType.ACK ? EXIT_OK : EXIT_FAILURE;
    } finally {
      await client.close();
    }
  },
};

/**
 * A reply for a terminal: its header fields on one line, then one line per
 * option in the order the server sent them: code, name, value.
 */
export function replyText(r: ReplyView): string {
  const head = [r.type, `xid ${r.xid}`, `yiaddr ${r.yiaddr}`, `siaddr ${r.siaddr}`, `giaddr ${r.giaddr}`, `hops ${r.hops}`, ...(r.file ? [`file ${r.file}`] : [])];
  const width = Math.max(0, ...r.options.map((o) => (o.name ?? '(unknown)').length));
  const lines = r.options.map((o) => `  ${String(o.code).padStart(3)}  ${(o.name ?? '(unknown)').padEnd(width)}  ${optionText(o)}`.trimEnd());
  return [head.join('  '), ...lines].join('\n');
}
