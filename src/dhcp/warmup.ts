// A fresh Node process interprets the DHCP path for its first few thousand
// packets; under a relay's burst that showed as ~150 ms latency for the
// first second (bench: perfdhcp at 4,800/s). Running synthetic exchanges
// through a throwaway service before the socket opens gets the optimised
// code in place first. Nothing here touches the pod's real state.
import type { Logger } from 'pino';
import type { PodConfig, SubnetConfig } from '../config/types.js';
import { formatIPv4 } from '../net/ipv4.js';
import { openMemoryDatabase } from '../store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../store/sqlite-store.js';
import { buildClientRequest } from './client.js';
import { MessageType, Opt } from './codec/constants.js';
import { decodePacket, encodePacket } from './codec/packet.js';
import { DhcpService } from './service.js';

export function warmUpDhcp(pod: PodConfig, log: Logger, exchanges = 1500): void {
  // A synthetic rack big enough for every exchange; the pod's own pools may be tiny.
  const relay = 0x0a000001;
  const subnet: SubnetConfig = { cidr: '10.0.0.0/8', network: 0x0a000000, prefix: 8, mask: 0xff000000, gateway: relay, pool: { start: 0x0a000100, end: 0x0affff00 }, dns: [relay], leaseTimeSec: 3600 };
  const db = openMemoryDatabase();
  try {
    const leases = new SqliteLeaseStore(db);
    const svc = new DhcpService({ ...pod, relays: [relay], subnets: [subnet], nodes: [], unknownNodes: 'provision' }, leases, new SqliteNodeStateStore(db), log.child({}, { level: 'silent' }));
    const via = { relay: { address: formatIPv4(relay), port: 67 } };
    const from = { address: via.relay.address, port: 67 };
    for (let i = 0; i < exchanges; i++) {
      const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const pxe = i % 3 === 0 ? { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' } : {};
      const discover = buildClientRequest(MessageType.DISCOVER, { mac, ...pxe }, {}, via);
      const sent = svc.handle(encodePacket(discover, 0), from, 1).send[0];
      const offer = sent && decodePacket(sent.data);
      if (!offer?.ok) throw new Error('DHCP warm-up got no OFFER from its own service');
      const serverId = offer.packet.options.get(Opt.SERVER_ID)?.readUInt32BE(0);
      const request = buildClientRequest(MessageType.REQUEST, { mac, ...pxe }, { xid: discover.xid, requestedIp: offer.packet.yiaddr, serverId }, via);
      leases.commit(svc.handle(encodePacket(request, 0), from, 1).commit);
    }
  } finally {
    db.close();
  }
}
