// A fresh Node process interprets the DHCP path for its first few thousand
// packets; under a relay's burst that showed as ~150 ms latency for the
// first second (bench: perfdhcp at 4,800/s). Running synthetic exchanges
// through a throwaway service gets the optimised code in place. It runs after
// the socket is open, in slices that leave the event loop to real packets in
// between: it is half of an instance's start-up CPU, and a hundred instances
// starting together should all be serving before any of them warms up (the
// supervisor says when: src/pod-vm). Nothing here touches the pod's real state.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PodConfig, SubnetConfig } from '../config/types.js';
import { formatIPv4 } from '../net/ipv4.js';
import { MemoryLeaseStore, MemoryNodeStateStore } from '../store/memory-store.js';
import { buildClientRequest } from './client.js';
import { MessageType, Opt } from './codec/constants.js';
import { decodePacket, encodePacket } from './codec/packet.js';
import { DhcpService, type HandleResult } from './service.js';

export interface WarmUpOptions {
  exchanges?: number;
  /** exchanges between two turns of the event loop (~0.2 ms each once optimised) */
  slice?: number;
  signal?: AbortSignal;
}

/** Resolves with the number of exchanges run (fewer when aborted). */
export async function warmUpDhcp(pod: PodConfig, log: Logger, opts: WarmUpOptions = {}): Promise<number> {
  const { exchanges = 1500, slice = 50, signal } = opts;
  // A synthetic rack big enough for every exchange; the pod's own pools may be tiny.
  const relay = 0x0a000001;
  const subnet: SubnetConfig = { cidr: '10.0.0.0/8', network: 0x0a000000, prefix: 8, mask: 0xff000000, gateway: relay, pool: { start: 0x0a000100, end: 0x0affff00 }, dns: [relay], leaseTimeSec: 3600 };
  // Throwaway stores in plain JS: SQLite's native calls are not what the JIT
  // needs to see, and cost a sixth of the start-up CPU. Events are dropped.
  const nodes = new MemoryNodeStateStore({ keepEvents: false });
  const leases = new MemoryLeaseStore(nodes);
  const svc = new DhcpService({ ...pod, relays: [relay], subnets: [subnet], nodes: [], unknownNodes: 'provision' }, leases, nodes, log.child({}, { level: 'silent' }));
  // What the server does with a result, minus the socket.
  const commit = (r: HandleResult) => {
    if (r.commit.length === 0 && r.nodes === undefined) return;
    leases.commit(r.commit, r.nodes);
    svc.committed();
  };
  const via = { relay: { address: formatIPv4(relay), port: 67 } };
  const from = { address: via.relay.address, port: 67 };
  let done = 0;
  while (done < exchanges && !signal?.aborted) {
    for (const end = Math.min(exchanges, done + slice); done < end; done++) {
      const i = done;
      const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const pxe = i % 3 === 0 ? { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' } : {};
      const discover = buildClientRequest(MessageType.DISCOVER, { mac, ...pxe }, {}, via);
      const offered = svc.handle(encodePacket(discover, 0), from, 1);
      commit(offered);
      const sent = offered.send[0];
      const offer = sent && decodePacket(sent.data);
      if (!offer?.ok) throw new Error('DHCP warm-up got no OFFER from its own service');
      const serverId = offer.packet.options.get(Opt.SERVER_ID)?.readUInt32BE(0);
      const request = buildClientRequest(MessageType.REQUEST, { mac, ...pxe }, { xid: discover.xid, requestedIp: offer.packet.yiaddr, serverId }, via);
      const ack = svc.handle(encodePacket(request, 0), from, 1);
      if (ack.commit.length === 0) throw new Error('DHCP warm-up got no lease from its own service');
      commit(ack);
    }
    if (done < exchanges) await nextTurn();
  }
  return done;
}
