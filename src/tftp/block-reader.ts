// DATA packets of one transfer, read from its source a chunk at a time.
//
// A chunk holds many consecutive blocks laid out as ready-to-send packets
// (4-byte header + payload per slot), filled by one positional vectored read,
// so sending a block is one send call of a view made when the chunk was set
// up. The next chunk is read while the current one is being sent. A chunk's
// buffer is reused only when the socket has no send queued: a send the kernel
// could not take at once waits in libuv holding a view of the buffer, which
// must not change.
import { writeDataHeader } from './codec.js';
import type { FileSource } from './file-source.js';

/** Blocks aimed at per chunk, within the byte bounds below; at least one window is always held. */
const CHUNK_BLOCKS = 64;
const MIN_CHUNK_BYTES = 256 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;
/** Linux IOV_MAX: one readv fills at most this many slots. */
const MAX_CHUNK_BLOCKS = 1024;

export class Chunk {
  ready = false;
  /** no longer current or next */
  dropped = false;
  /** ready-to-send packet of each slot, made once here so sending a block allocates nothing */
  private readonly packets: Buffer[] = [];
  /** payload part of each slot, for the vectored read */
  readonly targets: Buffer[] = [];

  constructor(
    readonly first: number,
    readonly count: number,
    readonly buf: Buffer,
    slot: number,
    blockLength: (block: number) => number,
  ) {
    for (let i = 0; i < count; i++) {
      const at = i * slot;
      const end = at + 4 + blockLength(first + i);
      this.packets.push(buf.subarray(at, end));
      this.targets.push(buf.subarray(at + 4, end));
    }
  }

  has(block: number): boolean {
    return block >= this.first && block < this.first + this.count;
  }

  packet(block: number): Buffer {
    return this.packets[block - this.first]!;
  }
}

export interface BlockReaderOptions {
  blksize: number;
  windowsize: number;
  totalBlocks: number;
  blockLength: (block: number) => number;
  /** true when no send from this transfer is still queued (dgram getSendQueueCount() === 0) */
  sendsIdle: () => boolean;
  /** a chunk finished reading: blocks waited for may now be sent */
  onReady: () => void;
  onError: (err: Error) => void;
}

export class BlockReader {
  private current?: Chunk;
  private next?: Chunk;
  private readonly free: Buffer[] = [];
  private readonly slot: number;
  private readonly chunkBlocks: number;
  private closed = false;

  constructor(
    private readonly source: FileSource,
    private readonly opts: BlockReaderOptions,
  ) {
    this.slot = opts.blksize + 4;
    const bytes = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, CHUNK_BLOCKS * opts.blksize));
    this.chunkBlocks = Math.min(MAX_CHUNK_BLOCKS, Math.max(opts.windowsize, Math.floor(bytes / opts.blksize)));
  }

  /**
   * The chunk holding `block`, ready to send from; undefined while it is
   * being read (onReady follows). Taking a block from the next chunk makes
   * it current; readAhead() then starts reading the one after.
   */
  chunkFor(block: number): Chunk | undefined {
    if (this.current?.has(block)) return this.current.ready ? this.current : undefined;
    if (this.next?.has(block)) {
      this.drop(this.current);
      this.current = this.next;
      this.next = undefined;
    } else {
      // A jump (an ACK from far back, or the start): read from here.
      this.drop(this.current);
      this.drop(this.next);
      this.next = undefined;
      this.current = this.load(block);
    }
    return this.current.ready ? this.current : undefined;
  }

  /**
   * Starts reading the chunk after the current one, if not yet under way.
   * Called after the blocks at hand went out: setting up a read (headers,
   * views, the threadpool request) then costs no time between an ACK and
   * the DATA it lets go.
   */
  readAhead(): void {
    const c = this.current;
    if (this.closed || !c || this.next) return;
    const after = c.first + c.count;
    if (after <= this.opts.totalBlocks) this.next = this.load(after);
  }

  close(): void {
    this.closed = true;
    this.drop(this.current);
    this.drop(this.next);
    this.current = this.next = undefined;
  }

  private load(first: number): Chunk {
    const count = Math.min(this.chunkBlocks, this.opts.totalBlocks - first + 1);
    const bytes = count * this.slot;
    const reuse = this.free.findIndex((b) => b.length >= bytes);
    const buf = reuse >= 0 ? this.free.splice(reuse, 1)[0]! : Buffer.allocUnsafe(bytes);
    const chunk = new Chunk(first, count, buf, this.slot, this.opts.blockLength);
    for (let i = 0; i < count; i++) writeDataHeader(buf, i * this.slot, first + i);
    const targets = chunk.targets;
    const expected = targets.reduce((n, t) => n + t.length, 0);
    this.source.read((first - 1) * this.opts.blksize, targets).then(
      (n) => {
        if (this.closed) return;
        if (n !== expected) {
          this.opts.onError(new Error(`file changed during transfer: read ${n} of ${expected} bytes at block ${first}`));
          return;
        }
        chunk.ready = true;
        if (!chunk.dropped) this.opts.onReady();
        else this.recycle(chunk);
      },
      (err: Error) => {
        if (!this.closed) this.opts.onError(err);
      },
    );
    return chunk;
  }

  private drop(c: Chunk | undefined): void {
    if (!c || c.dropped) return;
    c.dropped = true;
    // A buffer still being read into is recycled when its read completes.
    if (c.ready) this.recycle(c);
  }

  /** Keeps the buffer for the next chunk when nothing can still be sending from it; else the GC takes it. */
  private recycle(c: Chunk): void {
    if (!this.closed && this.free.length < 2 && this.opts.sendsIdle()) this.free.push(c.buf);
  }
}
