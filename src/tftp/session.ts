// One read transfer on its own socket (its TID): feeds ACKs and timeouts to
// the ReadTransfer state machine and carries out what it answers. The socket
// is connected to the client, so the kernel drops datagrams from any other
// address or port (and answers them with ICMP port unreachable).
import type dgram from 'node:dgram';
import { BlockReader } from './block-reader.js';
import { decodePacket, encodeError, encodeOack, ErrorCode, Opcode } from './codec.js';
import type { FileSource } from './file-source.js';
import type { TransferParams } from './negotiate.js';
import { ReadTransfer, type TransferStep } from './transfer.js';

export type FailureKind = 'timeout' | 'no-final-ack' | 'client-error' | 'client-gone' | 'read-error' | 'socket-error' | 'aborted';

export type SessionOutcome = { ok: true } | { ok: false; kind: FailureKind; detail: string };

export interface SessionStats {
  bytesSent: number;
  retransmittedBlocks: number;
  duplicateAcks: number;
}

/** How a transfer ended: plain data, so it can come back from a worker thread. */
export interface TransferResult {
  outcome: SessionOutcome;
  stats: SessionStats;
  blocksAcked: number;
  ms: number;
}

export interface SessionEvents {
  /** the client acknowledged the OACK or a first block: a repeated request now means a restart */
  onProgress(): void;
  onEnd(result: TransferResult): void;
}

export class TransferSession {
  private readonly transfer: ReadTransfer;
  private readonly reader: BlockReader;
  private readonly oack?: Buffer;
  private readonly stats: SessionStats = { bytesSent: 0, retransmittedBlocks: 0, duplicateAcks: 0 };
  private readonly startedAt = performance.now();
  private next = 1;
  private until = 0;
  private deadline = 0;
  private timer?: NodeJS.Timeout;
  private ended = false;
  private progressed = false;

  constructor(
    /** bound and connected to the client */
    private readonly socket: dgram.Socket,
    params: TransferParams,
    private readonly source: FileSource,
    private readonly maxRetries: number,
    private readonly events: SessionEvents,
  ) {
    this.transfer = new ReadTransfer({
      blksize: params.blksize,
      windowsize: params.windowsize,
      size: params.size,
      oack: params.oack !== undefined,
      timeoutMs: params.timeoutMs,
      maxRetries,
    });
    if (params.oack) this.oack = encodeOack(params.oack);
    this.reader = new BlockReader(source, {
      blksize: params.blksize,
      windowsize: params.windowsize,
      totalBlocks: this.transfer.totalBlocks,
      blockLength: (b) => this.transfer.blockLength(b),
      sendsIdle: () => socket.getSendQueueCount() === 0,
      onReady: () => this.pump(),
      onError: (err) => this.fail('read-error', err.message, 'Read error'),
    });
    socket.on('message', (data) => this.onMessage(data));
    // On a connected socket, ICMP port unreachable from the client comes back as ECONNREFUSED.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.end({ ok: false, kind: 'client-gone', detail: 'client port unreachable' });
    });
  }

  start(): void {
    this.apply(this.transfer.start());
  }

  /** The client sent its request again before acknowledging anything: its OACK or first block was lost. */
  repeat(): void {
    if (!this.ended && !this.transfer.progressed) this.apply(this.transfer.onTimeout());
  }

  abort(detail: string): void {
    this.fail('aborted', detail, 'Transfer aborted');
  }

  private onMessage(data: Buffer): void {
    if (this.ended) return;
    // The hot path: a 4-byte ACK, read without building a packet object.
    if (data.length >= 4 && data[0] === 0 && data[1] === Opcode.ACK) {
      this.apply(this.transfer.onAck(data.readUInt16BE(2)));
      if (!this.progressed && this.transfer.progressed) {
        this.progressed = true;
        this.events.onProgress();
      }
      return;
    }
    const d = decodePacket(data);
    // Anything else but an ERROR is ignored: a mangled ACK is as good as a lost one, the timer covers it.
    if (d.ok && d.packet.op === 'error') {
      this.end({ ok: false, kind: 'client-error', detail: `client sent error ${d.packet.code}: ${d.packet.message.slice(0, 100)}` });
    }
  }

  private apply(step: TransferStep): void {
    switch (step.kind) {
      case 'send':
        if (step.retransmit) this.stats.retransmittedBlocks += step.to - step.from + 1;
        this.next = step.from;
        this.until = step.to;
        // The DATA first: the client waits for it, the timer's deadline can wait a few microseconds.
        this.pump();
        if (!this.ended) this.arm(step.timeoutMs);
        return;
      case 'ignore':
        if (step.why === 'duplicate-ack') this.stats.duplicateAcks++;
        return;
      case 'done':
        this.end({ ok: true });
        return;
      case 'give-up':
        this.end({ ok: false, kind: step.why, detail: `no ACK after ${this.maxRetries} retransmissions (block ${this.transfer.acked} acknowledged)` });
        return;
    }
  }

  /** Sends what the last step asked for, as far as the data is in memory; the reader calls back for the rest. */
  private pump(): void {
    while (!this.ended && this.next <= this.until) {
      if (this.next === 0) {
        this.socket.send(this.oack!);
        this.next = 1;
        continue;
      }
      const chunk = this.reader.chunkFor(this.next);
      if (!chunk) break;
      const packet = chunk.packet(this.next);
      this.socket.send(packet);
      this.stats.bytesSent += packet.length - 4;
      this.next++;
    }
    if (!this.ended) this.reader.readAhead();
  }

  // One timer per transfer, pushed forward by moving a deadline instead of
  // clearing and setting a timer for every block.
  private arm(ms: number): void {
    this.deadline = performance.now() + ms;
    if (!this.timer) this.timer = setTimeout(() => this.onTimer(), ms);
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.ended) return;
    const left = this.deadline - performance.now();
    if (left > 1) {
      this.timer = setTimeout(() => this.onTimer(), left);
      return;
    }
    this.apply(this.transfer.onTimeout());
  }

  private fail(kind: FailureKind, detail: string, message: string): void {
    if (this.ended) return;
    this.socket.send(encodeError(ErrorCode.NOT_DEFINED, message));
    this.end({ ok: false, kind, detail });
  }

  private end(outcome: SessionOutcome): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.reader.close();
    this.source.close().catch(() => undefined);
    // Let a final ERROR leave before the socket goes.
    setImmediate(() => this.socket.close());
    this.events.onEnd({ outcome, stats: this.stats, blocksAcked: this.transfer.acked, ms: Math.round(performance.now() - this.startedAt) });
  }
}
