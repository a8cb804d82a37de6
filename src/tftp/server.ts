// Owns the pod's TFTP request socket: decodes requests, refuses what it must
// (writes, bad packets, names the resolver refuses, more transfers than the
// cap), and starts a TransferSession on a fresh socket for each accepted read.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { RateLimitedLog } from '../log-limit.js';
import { decodePacket, encodeError, ErrorCode, type RequestPacket } from './codec.js';
import { escapeName } from './names.js';
import { negotiate, type TftpLimits } from './negotiate.js';
import { netasciiSource } from './netascii.js';
import type { FileSource } from './file-source.js';
import type { ClientInfo, FileResolver } from './resolver.js';
import { InlineRunner, type TransferHandle, type TransferRunner } from './runner.js';
import type { FailureKind, SessionStats, TransferResult } from './session.js';

export interface TftpServerOptions extends TftpLimits {
  address: string;
  /** 0 picks a free port (tests); see `port` after start() */
  port: number;
  maxTransfers: number;
  /** consecutive retransmissions of one window before a transfer is given up */
  maxRetries: number;
  /** at most one log line per kind of bad input per interval */
  badInputLogIntervalMs: number;
}

export const DEFAULT_TFTP_TUNING = {
  maxWindowBytes: 1024 * 1024,
  defaultTimeoutMs: 1000,
  maxRetries: 5,
  badInputLogIntervalMs: 10_000,
};

export function tftpOptionsFromPod(pod: PodConfig): TftpServerOptions {
  return { address: pod.listen.address, port: pod.listen.tftpPort, ...pod.tftp, ...DEFAULT_TFTP_TUNING };
}

export type TftpErrorKind =
  | 'badPacket'
  | 'unknownOpcode'
  | 'writeRefused'
  | 'notFound'
  | 'accessViolation'
  | 'busy'
  | 'netasciiTooBig'
  | 'timeout'
  | 'noFinalAck'
  | 'clientError'
  | 'clientGone'
  | 'readError'
  | 'socketError'
  | 'aborted';

/** Plain numbers, read by the metrics endpoint. */
export interface TftpCounters extends SessionStats {
  rrq: number;
  wrq: number;
  completed: number;
  /** transfers a client ended after reading tsize from the OACK (not failures) */
  sizeProbes: number;
  active: number;
  errors: Record<TftpErrorKind, number>;
}

function newCounters(): TftpCounters {
  const errors = {} as Record<TftpErrorKind, number>;
  for (const k of [
    'badPacket',
    'unknownOpcode',
    'writeRefused',
    'notFound',
    'accessViolation',
    'busy',
    'netasciiTooBig',
    'timeout',
    'noFinalAck',
    'clientError',
    'clientGone',
    'readError',
    'socketError',
    'aborted',
  ] as TftpErrorKind[])
    errors[k] = 0;
  return { rrq: 0, wrq: 0, completed: 0, sizeProbes: 0, active: 0, bytesSent: 0, retransmittedBlocks: 0, duplicateAcks: 0, errors };
}

const OUTCOME_KIND: Record<FailureKind, TftpErrorKind> = {
  timeout: 'timeout',
  'no-final-ack': 'noFinalAck',
  'client-error': 'clientError',
  'client-gone': 'clientGone',
  'read-error': 'readError',
  'socket-error': 'socketError',
  aborted: 'aborted',
};

/** A request being resolved, or its running transfer. */
interface Slot {
  transfer?: TransferHandle;
  /** the client has acknowledged something: a repeated request now means it started over */
  progressed: boolean;
  cancelled: boolean;
}

export class TftpServer {
  readonly counters = newCounters();
  private socket?: dgram.Socket;
  private readonly slots = new Map<string, Slot>();
  private readonly limited: RateLimitedLog;
  private stopping = false;

  /** `runner`: where transfers run; by default on this thread (see TftpWorkerPool for more cores). */
  constructor(
    private readonly opts: TftpServerOptions,
    private readonly resolver: FileResolver,
    private readonly log: Logger,
    private readonly runner: TransferRunner = new InlineRunner(),
  ) {
    this.limited = new RateLimitedLog(log, opts.badInputLogIntervalMs);
  }

  /** The bound port (useful when started with port 0). */
  get port(): number {
    return this.socket?.address().port ?? this.opts.port;
  }

  async start(): Promise<void> {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    socket.on('message', (data, rinfo) => this.onRequest(data, rinfo));
    socket.on('error', (err) => this.log.error({ err }, 'tftp socket error'));
    await bind(socket, this.opts.address, this.opts.port);
    this.socket = socket;
    this.log.info(
      { address: this.opts.address, port: this.port, maxBlockSize: this.opts.maxBlockSize, maxWindowSize: this.opts.maxWindowSize, maxTransfers: this.opts.maxTransfers },
      'tftp listening',
    );
  }

  /** Stops taking requests and aborts running transfers (each client gets an ERROR); the runner is its owner's to close. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots.values()) {
      slot.cancelled = true;
      slot.transfer?.abort('server stopping');
    }
    // Transfers on worker threads report their end asynchronously.
    const deadline = Date.now() + 2000;
    while (this.slots.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private reply(rinfo: ClientInfo, code: number, message: string): void {
    this.socket?.send(encodeError(code, message), rinfo.port, rinfo.address);
  }

  private onRequest(data: Buffer, rinfo: dgram.RemoteInfo): void {
    try {
      this.handleRequest(data, rinfo);
    } catch (err) {
      // A bug must cost one request, not the pod.
      this.log.error({ err, client: `${rinfo.address}:${rinfo.port}`, bytes: data.length }, 'tftp request handler failed');
    }
  }

  private handleRequest(data: Buffer, rinfo: dgram.RemoteInfo): void {
    const client = `${rinfo.address}:${rinfo.port}`;
    const d = decodePacket(data);
    if (!d.ok) {
      const kind: TftpErrorKind = d.reason === 'unknown-opcode' ? 'unknownOpcode' : 'badPacket';
      this.counters.errors[kind]++;
      this.limited.warn(`bad-packet:${d.reason}`, { client, reason: d.reason, detail: d.detail, bytes: data.length }, 'tftp request refused: malformed packet');
      // Never answer an ERROR: two servers must not bounce errors at each other.
      if (d.opcode !== 5) this.reply(rinfo, ErrorCode.ILLEGAL_OPERATION, `Illegal TFTP operation: ${d.detail}`);
      return;
    }
    const p = d.packet;
    if (p.op === 'wrq') {
      this.counters.wrq++;
      this.counters.errors.writeRefused++;
      this.limited.warn('write-refused', { client, file: escapeName(p.filename), reason: 'write-request' }, 'tftp write request refused: server is read-only');
      this.reply(rinfo, ErrorCode.ACCESS_VIOLATION, 'Access violation (read-only server)');
      return;
    }
    if (p.op !== 'rrq') {
      if (p.op === 'error') return;
      this.counters.errors.badPacket++;
      this.limited.warn('bad-packet:not-a-request', { client, op: p.op }, 'tftp packet refused: only requests go to the server port');
      this.reply(rinfo, ErrorCode.ILLEGAL_OPERATION, `Illegal TFTP operation: ${p.op.toUpperCase()} on the request port`);
      return;
    }
    this.counters.rrq++;
    const existing = this.slots.get(client);
    if (existing) {
      // Same client, same port: its retransmitted request (OACK or DATA 1 lost), or a restart.
      if (!existing.progressed) {
        existing.transfer?.repeat();
        return;
      }
      existing.cancelled = true;
      existing.transfer?.abort('client sent a new request from the same port');
      this.release(client, existing);
    }
    if (this.slots.size >= this.opts.maxTransfers) {
      this.counters.errors.busy++;
      this.limited.warn('busy', { client, file: escapeName(p.filename), active: this.slots.size, maxTransfers: this.opts.maxTransfers }, 'tftp request refused: transfer limit reached');
      this.reply(rinfo, ErrorCode.NOT_DEFINED, `Server busy: ${this.opts.maxTransfers} transfers running, try again`);
      return;
    }
    const slot: Slot = { progressed: false, cancelled: false };
    this.slots.set(client, slot);
    this.counters.active = this.slots.size;
    this.accept(p, { address: rinfo.address, port: rinfo.port }, client, slot).catch((err: unknown) => {
      this.release(client, slot);
      this.log.error({ err, client, file: escapeName(p.filename) }, 'tftp request failed');
      this.reply(rinfo, ErrorCode.NOT_DEFINED, 'Internal error');
    });
  }

  private async accept(req: RequestPacket, info: ClientInfo, client: string, slot: Slot): Promise<void> {
    const file = escapeName(req.filename);
    const resolved = await this.resolver.resolve(req.filename, info);
    if (!resolved.ok) {
      this.release(client, slot);
      const kind: TftpErrorKind = resolved.code === ErrorCode.FILE_NOT_FOUND ? 'notFound' : 'accessViolation';
      this.counters.errors[kind]++;
      this.limited.warn(`refused:${resolved.reason}`, { client, file, reason: resolved.reason, code: resolved.code }, 'tftp read refused');
      if (!slot.cancelled) this.reply(info, resolved.code, resolved.message);
      return;
    }
    let source: FileSource | undefined = resolved.source;
    if (req.mode === 'netascii') {
      source = await netasciiSource(source);
      if (!source) {
        this.release(client, slot);
        this.counters.errors.netasciiTooBig++;
        this.limited.warn('refused:netascii-too-big', { client, file, reason: 'netascii-too-big' }, 'tftp read refused: file too big for netascii mode');
        this.reply(info, ErrorCode.NOT_DEFINED, 'File too big for netascii mode, use octet');
        return;
      }
    }
    if (slot.cancelled || this.stopping) {
      this.release(client, slot);
      await source.close();
      return;
    }
    const params = negotiate(req.options, source.size, this.opts);
    const mac = resolved.mac;
    this.log.debug({ client, file, mac, mode: req.mode, options: req.options, ignored: req.ignored, params }, 'tftp read accepted');
    slot.transfer = this.runner.start({ address: this.opts.address, client: info, params, maxRetries: this.opts.maxRetries }, source, {
      onProgress: () => (slot.progressed = true),
      onEnd: (result) => this.finished(client, slot, { client, file, mac, size: params.size, blksize: params.blksize, windowsize: params.windowsize }, result, req.options.tsize !== undefined),
    });
  }

  private finished(client: string, slot: Slot, fields: Record<string, unknown>, r: TransferResult, askedSize: boolean): void {
    this.release(client, slot);
    const c = this.counters;
    c.bytesSent += r.stats.bytesSent;
    c.retransmittedBlocks += r.stats.retransmittedBlocks;
    c.duplicateAcks += r.stats.duplicateAcks;
    if (r.outcome.ok) {
      c.completed++;
      this.log.info({ ...fields, ms: r.ms, retransmittedBlocks: r.stats.retransmittedBlocks }, 'tftp transfer complete');
      return;
    }
    // UEFI firmware (OVMF, and PXE ROMs that do the same) asks for tsize,
    // reads the size from the OACK and ends with an ERROR before the first
    // block, then asks again for real (RFC 2349): every UEFI boot does it, so
    // it is counted and logged apart from failures.
    if (r.outcome.kind === 'client-error' && askedSize && r.blocksAcked === 0) {
      c.sizeProbes++;
      this.log.info({ ...fields, ms: r.ms, detail: r.outcome.detail }, 'tftp size probe: the client read the size and ended the transfer');
      return;
    }
    c.errors[OUTCOME_KIND[r.outcome.kind]]++;
    this.limited.warn(`transfer:${r.outcome.kind}`, { ...fields, ms: r.ms, reason: r.outcome.kind, detail: r.outcome.detail, blocksAcked: r.blocksAcked }, 'tftp transfer failed');
  }

  private release(client: string, slot: Slot): void {
    if (this.slots.get(client) === slot) this.slots.delete(client);
    this.counters.active = this.slots.size;
  }
}

function bind(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
