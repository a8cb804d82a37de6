// File input for verification: streamed hashing of images (never held in
// memory) and size-capped reads of the small inputs.
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, link, open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VerificationError } from './errors.js';

/**
 * 4 MiB reads, two buffers: the next read runs on libuv's thread pool while
 * this thread hashes the previous buffer, so hashing barely waits for I/O
 * (measured: `npm run bench -- verify`).
 */
const CHUNK = 4 << 20;

export interface FileDigest {
  sha256: Buffer;
  size: number;
  /** with `chunkBytes`: the sha256 of each chunkBytes-long piece, the last one shorter */
  chunks?: Buffer[];
}

/**
 * Reads an open file to its end, handing each read to `take` (the buffer is
 * reused: copy what must be kept) while the next read is under way. Returns
 * the bytes read.
 */
export async function readThrough(fh: FileHandle, take: (bytes: Buffer) => void): Promise<number> {
  const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  let which = 0;
  let size = 0;
  let pending = fh.read(bufs[0]!, 0, CHUNK, null);
  for (;;) {
    const { bytesRead } = await pending;
    if (bytesRead === 0) return size;
    const ready = bufs[which]!;
    which ^= 1;
    pending = fh.read(bufs[which]!, 0, CHUNK, null);
    take(ready.subarray(0, bytesRead));
    size += bytesRead;
  }
}

export async function sha256File(path: string, chunkBytes?: number): Promise<FileDigest> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const pieces = chunkBytes ? new PieceHasher(chunkBytes) : undefined;
    const size = await readThrough(fh, (bytes) => {
      hash.update(bytes);
      pieces?.update(bytes);
    });
    return { sha256: hash.digest(), size, ...(pieces ? { chunks: pieces.digests() } : {}) };
  } finally {
    await fh.close();
  }
}

/** The sha256 of every `bytes`-long piece of a stream fed in reads of any length. */
class PieceHasher {
  private readonly done: Buffer[] = [];
  private hash = createHash('sha256');
  private filled = 0;

  constructor(private readonly bytes: number) {}

  update(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const take = Math.min(this.bytes - this.filled, data.length - at);
      this.hash.update(data.subarray(at, at + take));
      this.filled += take;
      at += take;
      if (this.filled === this.bytes) {
        this.done.push(this.hash.digest());
        this.hash = createHash('sha256');
        this.filled = 0;
      }
    }
  }

  digests(): Buffer[] {
    return this.filled ? [...this.done, this.hash.digest()] : this.done;
  }
}

/**
 * Reads a whole small file, refusing one larger than `cap` bytes before
 * reading any of it.
 */
export async function readCapped(path: string, cap: number, what: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size > cap) throw new VerificationError('too-large', `${what} is ${size} bytes; more than ${cap} is never legitimate`);
    // One spare byte tells a file that grew after stat() from one that did not.
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > size) throw new VerificationError('malformed', `${what} changed while being read`);
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/**
 * Writes `data` so that `path` shows either the old content or all of the new,
 * never a part: temp file in the same directory, fsync, rename, fsync the directory.
 * `exclusive` refuses to replace an existing file (keys are never overwritten).
 */
export async function writeFileAtomic(path: string, data: Buffer | string, opts: { mode?: number; exclusive?: boolean } = {}): Promise<void> {
  const dir = dirname(path);
  const mode = opts.mode ?? 0o644;
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // the umask may have narrowed it
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.exclusive) {
      // link() fails if the target exists, where rename() would silently replace it.
      await link(tmp, path);
      await unlink(tmp);
    } else {
      await rename(tmp, path);
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
