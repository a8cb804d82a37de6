import { describe, expect, it } from 'vitest';
import { ReadTransfer, type TransferConfig, type TransferStep } from '../../../src/tftp/transfer.js';
import { prng } from '../../helpers/prng.js';

const base: TransferConfig = { blksize: 512, windowsize: 1, size: 1500, oack: false, timeoutMs: 1000, maxRetries: 5 };
const send = (from: number, to: number, timeoutMs = 1000, retransmit = false): TransferStep => ({ kind: 'send', from, to, timeoutMs, retransmit });

describe('ReadTransfer (sender state machine)', () => {
  it('lock-step without options: DATA 1, then one block per ACK, short last block ends it', () => {
    const t = new ReadTransfer(base);
    expect(t.totalBlocks).toBe(3);
    expect(t.start()).toEqual(send(1, 1));
    expect(t.onAck(1)).toEqual(send(2, 2));
    expect(t.onAck(2)).toEqual(send(3, 3));
    expect(t.blockLength(3)).toBe(1500 - 1024);
    expect(t.onAck(3)).toEqual({ kind: 'done' });
    expect(t.onAck(3)).toEqual({ kind: 'ignore', why: 'finished' });
  });

  it('a size that is a multiple of blksize ends with an empty block; an empty file is one empty block', () => {
    const t = new ReadTransfer({ ...base, size: 1024 });
    expect(t.totalBlocks).toBe(3);
    expect(t.blockLength(3)).toBe(0);
    const empty = new ReadTransfer({ ...base, size: 0 });
    expect(empty.totalBlocks).toBe(1);
    expect(empty.blockLength(1)).toBe(0);
  });

  it('OACK first: it is resent until ACK 0 arrives, and only then DATA 1', () => {
    const t = new ReadTransfer({ ...base, oack: true, windowsize: 4, size: 512 * 10 });
    expect(t.start()).toEqual(send(0, 0));
    expect(t.onAck(5)).toEqual({ kind: 'ignore', why: 'unexpected-ack' });
    expect(t.onTimeout()).toEqual(send(0, 0, 2000, true));
    expect(t.onAck(0)).toEqual(send(1, 4));
    expect(t.onAck(0)).toEqual({ kind: 'ignore', why: 'duplicate-ack' });
  });

  it('windowsize: the ACK of the window end opens the next; a mid-window ACK restarts after it', () => {
    const t = new ReadTransfer({ ...base, windowsize: 4, size: 512 * 10 + 1 });
    expect(t.totalBlocks).toBe(11);
    expect(t.start()).toEqual(send(1, 4));
    expect(t.onAck(4)).toEqual(send(5, 8));
    expect(t.onAck(6)).toEqual(send(7, 10)); // 7 and 8 were lost
    expect(t.onAck(10)).toEqual(send(11, 11));
    expect(t.onAck(11)).toEqual({ kind: 'done' });
  });

  it("duplicate and late ACKs never send anything (no Sorcerer's Apprentice)", () => {
    const t = new ReadTransfer({ ...base, windowsize: 4, size: 512 * 20 });
    t.start();
    t.onAck(4);
    for (const old of [4, 4, 3, 1, 0, 65535]) expect(t.onAck(old)).toEqual({ kind: 'ignore', why: 'duplicate-ack' });
    expect(t.onAck(9)).toEqual({ kind: 'ignore', why: 'unexpected-ack' }); // not sent yet
    expect(t.onAck(8)).toEqual(send(9, 12));
  });

  it('timeouts resend the outstanding window with exponential backoff, then give up', () => {
    const t = new ReadTransfer({ ...base, windowsize: 2, size: 512 * 5 });
    t.start();
    expect(t.onAck(2)).toEqual(send(3, 4));
    const waits = [1, 2, 3, 4, 5].map(() => t.onTimeout());
    expect(waits).toEqual([send(3, 4, 2000, true), send(3, 4, 4000, true), send(3, 4, 8000, true), send(3, 4, 8000, true), send(3, 4, 8000, true)]);
    expect(t.onTimeout()).toEqual({ kind: 'give-up', why: 'timeout' });
  });

  it('an ACK resets the backoff; a lost final ACK is told apart from a stalled transfer', () => {
    const t = new ReadTransfer({ ...base, maxRetries: 1, size: 100 });
    t.start();
    expect(t.onTimeout()).toEqual(send(1, 1, 2000, true));
    expect(t.onTimeout()).toEqual({ kind: 'give-up', why: 'no-final-ack' });
  });

  it('block numbers wrap to 0 after 65535 and are still matched to the right block', () => {
    const blocks = 65535 + 3;
    const t = new ReadTransfer({ ...base, windowsize: 2, size: 512 * (blocks - 1) + 10 });
    expect(t.totalBlocks).toBe(blocks);
    let step = t.start();
    while (step.kind === 'send' && step.to < 65535) step = t.onAck(step.to & 0xffff);
    expect(step).toEqual(send(65535, 65536));
    expect(t.onAck(0)).toEqual(send(65537, 65538)); // wire 0 = absolute 65536
    expect(t.onAck(65535)).toEqual({ kind: 'ignore', why: 'duplicate-ack' });
    expect(t.onAck(65538 & 0xffff)).toEqual({ kind: 'done' });
  });

  it('delivers every block in order over a lossy, duplicating network (simulation, 300 runs)', () => {
    const r = prng(0xbeef);
    for (let run = 0; run < 300; run++) {
      const windowsize = 1 + r.int(16);
      const oack = r.int(2) === 0;
      const size = r.int(512 * 60);
      const t = new ReadTransfer({ ...base, windowsize, oack, size, maxRetries: 50 });
      const lossy = () => r.int(100) < 15;
      // Receiver per RFC 7440: ACK every `windowsize` in-order blocks, the last block, or on its timeout.
      let expected = oack ? 0 : 1;
      let sinceAck = 0;
      let received = 0;
      let dataSent = 0;
      let outcome: TransferStep = t.start();
      for (let round = 0; round < 10_000 && outcome.kind !== 'done' && outcome.kind !== 'give-up'; round++) {
        const acks: number[] = [];
        if (outcome.kind === 'send') {
          for (let b = outcome.from; b <= outcome.to; b++) {
            if (b > 0) dataSent++;
            if (lossy()) continue;
            if (b === 0 && expected === 0) {
              expected = 1;
              acks.push(0);
            } else if (b === expected) {
              received++;
              expected++;
              sinceAck++;
              if (sinceAck === windowsize || b === t.totalBlocks) {
                sinceAck = 0;
                acks.push(b);
              }
            }
          }
        }
        if (r.int(4) === 0) acks.push(...acks); // duplicated ACKs
        let next: TransferStep | undefined;
        for (const a of acks) {
          if (lossy()) continue;
          const s = t.onAck(a & 0xffff);
          if (s.kind !== 'ignore') next = s;
        }
        if (!next && expected > 0) {
          // The receiver's timer: it acknowledges its last in-order block (new to the sender after a gap).
          sinceAck = 0;
          const s = t.onAck((expected - 1) & 0xffff);
          if (s.kind !== 'ignore') next = s;
        }
        // Then the sender's timer: resend the outstanding window.
        if (!next) next = t.onTimeout();
        outcome = next;
      }
      expect(outcome).toEqual({ kind: 'done' });
      expect(received).toBe(t.totalBlocks);
      // Resends only follow a timeout or a gap, never a duplicate: no runaway growth.
      expect(dataSent).toBeLessThan(t.totalBlocks * 10 + 200);
    }
  });
});
