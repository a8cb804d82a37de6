// The sender's side of one read transfer as a state machine: events (an ACK,
// a timeout) in, what to send out. No sockets, no clocks, no files, so every
// loss and reordering case can be driven step by step in a unit test.
//
// Blocks are counted absolutely (1, 2, … past 65535); only the wire form
// wraps. Block 0 stands for the OACK, which the client acknowledges with
// ACK 0 (RFC 2347) before DATA 1 goes out.

export interface TransferConfig {
  /** payload bytes per block */
  blksize: number;
  /** blocks sent before waiting for an ACK (RFC 7440); 1 = RFC 1350 lock-step */
  windowsize: number;
  size: number;
  /** send an OACK first */
  oack: boolean;
  /** first retransmission timeout; doubles on each consecutive timeout up to 8× */
  timeoutMs: number;
  /** consecutive timeouts tolerated before giving up */
  maxRetries: number;
}

export type TransferStep =
  /** send blocks from..to (absolute; 0 = the OACK) and (re)arm the timer */
  | { kind: 'send'; from: number; to: number; timeoutMs: number; retransmit: boolean }
  /** nothing to send; the running timer stays as it is */
  | { kind: 'ignore'; why: 'duplicate-ack' | 'unexpected-ack' | 'finished' }
  | { kind: 'done' }
  | { kind: 'give-up'; why: 'timeout' | 'no-final-ack' };

export class ReadTransfer {
  /** number of DATA blocks; a size that is a multiple of blksize ends with an empty block */
  readonly totalBlocks: number;
  private lastAcked: number;
  private lastSent: number;
  private retries = 0;
  private finished = false;
  private anyAcked = false;

  constructor(private readonly cfg: TransferConfig) {
    this.totalBlocks = Math.floor(cfg.size / cfg.blksize) + 1;
    // Without an OACK, "block 0" counts as acknowledged by the request itself.
    this.lastAcked = cfg.oack ? -1 : 0;
    this.lastSent = this.lastAcked;
  }

  get acked(): number {
    return Math.max(0, this.lastAcked);
  }

  /** the client has acknowledged the OACK or a block */
  get progressed(): boolean {
    return this.anyAcked;
  }

  /** Payload length of an absolute block number. */
  blockLength(block: number): number {
    return Math.max(0, Math.min(this.cfg.blksize, this.cfg.size - (block - 1) * this.cfg.blksize));
  }

  start(): TransferStep {
    return this.cfg.oack ? this.sendRange(0, 0, false) : this.sendWindow(1, false);
  }

  onAck(wireBlock: number): TransferStep {
    if (this.finished) return { kind: 'ignore', why: 'finished' };
    // The one absolute block in (lastAcked, lastSent] with this wire number;
    // anything else is a duplicate or late ACK and must not trigger a resend
    // (RFC 1123 §4.2.3.1, the Sorcerer's Apprentice).
    const span = this.lastSent - this.lastAcked;
    const ahead = (wireBlock - (this.lastAcked & 0xffff) + 0x10000) & 0xffff;
    if (ahead === 0 || ahead > span) {
      return { kind: 'ignore', why: ahead === 0 || ahead > 0x8000 ? 'duplicate-ack' : 'unexpected-ack' };
    }
    this.lastAcked += ahead;
    this.anyAcked = true;
    this.retries = 0;
    if (this.lastAcked >= this.totalBlocks) {
      this.finished = true;
      return { kind: 'done' };
    }
    // RFC 7440: an ACK inside the window means the blocks after it were lost; go on from there.
    return this.sendWindow(this.lastAcked + 1, false);
  }

  onTimeout(): TransferStep {
    if (this.finished) return { kind: 'ignore', why: 'finished' };
    if (++this.retries > this.cfg.maxRetries) {
      this.finished = true;
      return { kind: 'give-up', why: this.lastSent >= this.totalBlocks ? 'no-final-ack' : 'timeout' };
    }
    return this.sendRange(this.lastAcked + 1, this.lastSent, true);
  }

  private sendWindow(from: number, retransmit: boolean): TransferStep {
    return this.sendRange(from, Math.min(from + this.cfg.windowsize - 1, this.totalBlocks), retransmit);
  }

  private sendRange(from: number, to: number, retransmit: boolean): TransferStep {
    this.lastSent = Math.max(this.lastSent, to);
    const backoff = Math.min(2 ** this.retries, 8);
    return { kind: 'send', from, to, timeoutMs: this.cfg.timeoutMs * backoff, retransmit };
  }
}
