// Owns the pod's DHCP socket and nothing else: receive, hand to the service,
// make the rows it decided durable (leases, install-state changes, events;
// one group commit), then send its replies.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { InstallStateChange, LeaseRecord, LeaseStore, NodeEvent } from '../store/types.js';
import type { Datagram, DhcpService } from './service.js';
import { RateLimitedLog } from '../log-limit.js';
import { observe } from '../metrics/histogram.js';

export interface DhcpServerOptions {
  address: string;
  port: number;
  /** socket receive buffer; bursts of relayed DISCOVERs arrive faster than one event-loop turn */
  receiveBufferBytes?: number;
}

export class DhcpServer {
  private socket?: dgram.Socket;
  private pendingRecords: LeaseRecord[] = [];
  private pendingChanges: InstallStateChange[] = [];
  private pendingEvents: NodeEvent[] = [];
  private pendingSends: { d: Datagram; received: number }[] = [];
  private flushScheduled = false;
  private sweepTimer?: NodeJS.Timeout;
  private readonly limited: RateLimitedLog;

  constructor(
    private readonly service: DhcpService,
    private readonly store: LeaseStore,
    private readonly log: Logger,
    private readonly opts: DhcpServerOptions,
  ) {
    this.limited = new RateLimitedLog(log);
  }

  async start(): Promise<void> {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    this.socket = socket;
    socket.on('message', (data, rinfo) => this.onMessage(data, rinfo));
    socket.on('error', (err) => this.log.error({ err }, 'dhcp socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(this.opts.receiveBufferBytes ?? 4 * 1024 * 1024);
    } catch (err) {
      this.log.warn({ err }, 'could not enlarge the DHCP receive buffer');
    }
    this.sweepTimer = setInterval(() => this.service.sweep(nowSeconds()), 5_000);
    this.sweepTimer.unref();
    this.log.info({ address: this.opts.address, port: this.opts.port }, 'dhcp listening');
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.flush();
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private onMessage(data: Buffer, rinfo: dgram.RemoteInfo): void {
    const received = performance.now();
    let result: ReturnType<DhcpService['handle']>;
    try {
      result = this.service.handle(data, rinfo, nowSeconds());
    } catch (err) {
      // A bug must cost one packet, not the pod.
      this.log.error({ err, from: rinfo.address, bytes: data.length }, 'dhcp handler failed; packet dropped');
      return;
    }
    const nodes = result.nodes;
    if (result.commit.length === 0 && nodes === undefined) {
      for (const d of result.send) this.send(d, received);
      return;
    }
    // Group commit: every row decided in this turn of the event loop goes to
    // the store in one transaction; their replies leave only after it.
    this.pendingRecords.push(...result.commit);
    if (nodes) {
      this.pendingChanges.push(...nodes.changes);
      this.pendingEvents.push(...nodes.events);
    }
    for (const d of result.send) this.pendingSends.push({ d, received });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const changes = this.pendingChanges;
    const events = this.pendingEvents;
    if (this.pendingRecords.length === 0 && this.pendingSends.length === 0 && changes.length === 0 && events.length === 0) return;
    const records = this.pendingRecords;
    const sends = this.pendingSends;
    this.pendingRecords = [];
    this.pendingSends = [];
    const withNodes = changes.length > 0 || events.length > 0;
    if (withNodes) {
      this.pendingChanges = [];
      this.pendingEvents = [];
    }
    try {
      this.store.commit(records, withNodes ? { changes, events } : undefined);
      this.service.counters.commits++;
      this.service.committed();
    } catch (err) {
      // Nothing was promised yet: drop the replies, forget the uncommitted leases and install states.
      this.service.counters.commitFailures++;
      this.log.error({ err, records: records.length, installChanges: changes.length }, 'lease commit failed; ACKs withheld');
      this.service.resync();
      return;
    }
    for (const s of sends) this.send(s.d, s.received);
  }

  private send(d: Datagram, received: number): void {
    observe(this.service.counters.replySeconds, (performance.now() - received) / 1000);
    this.socket?.send(d.data, d.port, d.address, (err) => {
      // An unroutable relay would otherwise log once per packet.
      if (err) this.limited.warn('send-failed', { err: err.message, to: d.address }, 'dhcp send failed');
    });
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
