// The bytes of one file being served: an open descriptor or a buffer made in
// memory. Either can be described as plain data and rebuilt on a worker
// thread (descriptors are process-wide), which then owns it and closes it.
import { close, readv } from 'node:fs';

export type SourceDescriptor = { kind: 'fd'; fd: number; size: number } | { kind: 'bytes'; bytes: Uint8Array };

export interface FileSource {
  readonly size: number;
  /** Fills `targets` in order from `position`; resolves with the bytes read (fewer only at end of file). */
  read(position: number, targets: Buffer[]): Promise<number>;
  close(): Promise<void>;
  /** what a worker needs to rebuild this source; handing it over hands over the duty to close */
  readonly descriptor: SourceDescriptor;
}

/** Targets after the first `n` bytes have been filled. */
function remaining(targets: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const t of targets) {
    if (n >= t.length) {
      n -= t.length;
      continue;
    }
    out.push(n > 0 ? t.subarray(n) : t);
    n = 0;
  }
  return out;
}

/** A file generated in memory (boot configs, netascii conversions). */
export function bufferSource(data: Uint8Array): FileSource {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return {
    size: buf.length,
    descriptor: { kind: 'bytes', bytes: buf },
    async read(position, targets) {
      let at = position;
      for (const t of targets) {
        if (at >= buf.length) break;
        at += buf.copy(t, 0, at, Math.min(buf.length, at + t.length));
      }
      return at - position;
    },
    async close() {},
  };
}

function readvAt(fd: number, targets: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => readv(fd, targets, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** An open regular file; `size` as fstat saw it when it was opened. */
export function fdSource(fd: number, size: number): FileSource {
  let closed = false;
  return {
    size,
    descriptor: { kind: 'fd', fd, size },
    async read(position, targets) {
      let total = 0;
      // readv may stop short (signals, more buffers than IOV_MAX); only 0 means end of file.
      for (let left = targets; left.length > 0; left = remaining(targets, total)) {
        const n = await readvAt(fd, left, position + total);
        if (n === 0) break;
        total += n;
      }
      return total;
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => close(fd, () => resolve()));
    },
  };
}

export function sourceFromDescriptor(d: SourceDescriptor): FileSource {
  return d.kind === 'fd' ? fdSource(d.fd, d.size) : bufferSource(d.bytes);
}
