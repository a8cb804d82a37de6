import { describe, expect, it } from 'vitest';
import { BlockReader } from '../../../src/tftp/block-reader.js';
import { bufferSource, type FileSource } from '../../../src/tftp/file-source.js';
import { ReadTransfer } from '../../../src/tftp/transfer.js';

/** A source that counts reads and lets the test decide when each one completes. */
function gatedSource(data: Buffer) {
  const inner = bufferSource(data);
  const pending: (() => void)[] = [];
  const reads: number[] = [];
  const source: FileSource = {
    ...inner,
    read(position, targets) {
      reads.push(position);
      return new Promise((resolve) => pending.push(() => resolve(inner.read(position, targets))));
    },
  };
  const settle = async () => {
    while (pending.length) pending.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { source, reads, settle };
}

function reader(data: Buffer, blksize: number, source: FileSource) {
  const t = new ReadTransfer({ blksize, windowsize: 1, size: data.length, oack: false, timeoutMs: 1000, maxRetries: 5 });
  let ready = 0;
  const r = new BlockReader(source, {
    blksize,
    windowsize: 1,
    totalBlocks: t.totalBlocks,
    blockLength: (b) => t.blockLength(b),
    sendsIdle: () => true,
    onReady: () => ready++,
    onError: (err) => {
      throw err;
    },
  });
  return { r, t, ready: () => ready };
}

describe('BlockReader', () => {
  it('serves every block as a DATA packet (header in place, wire number wrapping after 65535)', async () => {
    const blksize = 8;
    const data = Buffer.alloc(blksize * 65540 + 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    const { source, settle } = gatedSource(data);
    const { r, t } = reader(data, blksize, source);
    const wrong: number[] = [];
    for (let b = 1; b <= t.totalBlocks; b++) {
      let chunk = r.chunkFor(b);
      r.readAhead();
      if (!chunk) {
        await settle();
        chunk = r.chunkFor(b);
      }
      const p = chunk!.packet(b);
      const ok = p.readUInt16BE(0) === 3 && p.readUInt16BE(2) === (b & 0xffff) && p.subarray(4).equals(data.subarray((b - 1) * blksize, b * blksize));
      // The same block asked twice is the same view: nothing is allocated per send.
      if (!ok || chunk!.packet(b) !== p) wrong.push(b);
    }
    expect(wrong).toEqual([]);
    expect(t.totalBlocks).toBe(65541);
    r.close();
  });

  it('reads the next chunk only when asked to read ahead, and only once', async () => {
    const data = Buffer.alloc(1468 * 2000, 1);
    const { source, reads, settle } = gatedSource(data);
    const { r, ready } = reader(data, 1468, source);
    expect(r.chunkFor(1)).toBeUndefined();
    expect(reads).toEqual([0]);
    r.readAhead();
    r.readAhead();
    const second = reads[1]!;
    expect(reads).toHaveLength(2);
    expect(second).toBeGreaterThan(0);
    await settle();
    expect(ready()).toBe(2);
    const first = r.chunkFor(1)!;
    expect(first).toBeDefined();
    // The first block of the next chunk makes it current; its successor is read on readAhead, not before.
    const nextBlock = second / 1468 + 1;
    expect(r.chunkFor(nextBlock)?.has(nextBlock)).toBe(true);
    expect(reads).toHaveLength(2);
    r.readAhead();
    expect(reads).toHaveLength(3);
    expect(reads[2]).toBe(2 * second);
    r.close();
    r.readAhead();
    expect(reads).toHaveLength(3);
  });
});
