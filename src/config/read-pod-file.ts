// Reading one pod file from a directory anyone with write access to it can
// fill: the only thing read is a regular file, at most MAX_POD_FILE_BYTES of
// it, and a refusal names the problem, never the bytes. Used by `podboot
// validate`/`pod run` (sync: a CLI may block) and by the supervisor (async:
// its event loop serves the API and the other pods meanwhile).
import { constants, closeSync, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { lstat, open, stat } from 'node:fs/promises';

/**
 * A pod file lists one rack's relays, subnets and servers: a thousand
 * servers with hostnames, addresses and UUIDs take about 150 KiB. Anything
 * past this is a mistake or an attack, and parsing it would hold the
 * supervisor for seconds.
 */
export const MAX_POD_FILE_BYTES = 1024 * 1024;
const MAX_LABEL = '1 MiB';

/** O_NONBLOCK: should a FIFO or device get past the type check (a race), open and read return at once. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
const CHUNK = 64 * 1024;

export type RefusalKind = 'missing' | 'not-regular' | 'too-large' | 'not-text' | 'unreadable';

/** Why a pod file was not read. `reason` is safe to log: it never quotes the file. */
export class PodFileRefused extends Error {
  constructor(
    readonly file: string,
    readonly kind: RefusalKind,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'PodFileRefused';
  }
}

export interface PodFileContent {
  text: string;
  bytes: Buffer;
  /** permission bits of the file read (the target, for a symlink): copies keep them or stricter */
  mode: number;
}

/** "FIFO", "character device", …: what a path is, for a refusal. */
export function fileTypeName(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  if (st.isSymbolicLink()) return 'symlink';
  return 'special file';
}

/** Refuses anything but a regular file; `link` says the path was a symlink to it. */
export function checkType(file: string, st: Stats, link: boolean): void {
  if (st.isFile()) return;
  throw new PodFileRefused(file, 'not-regular', `not a regular file: ${link ? 'symlink to a ' : ''}${fileTypeName(st)}`);
}

function tooLarge(file: string, maxBytes: number): PodFileRefused {
  const limit = maxBytes === MAX_POD_FILE_BYTES ? MAX_LABEL : `${maxBytes} bytes`;
  return new PodFileRefused(file, 'too-large', `larger than ${limit}; pod files are limited to ${limit}`);
}

/** UTF-8 text without NUL bytes; the bytes themselves never reach the message. */
export function decodePodText(file: string, bytes: Buffer): string {
  if (bytes.includes(0)) throw new PodFileRefused(file, 'not-text', 'not text: contains NUL bytes');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PodFileRefused(file, 'not-text', 'not UTF-8 text');
  }
}

/** A file system error as a refusal: its code and syscall, not the path's content. */
function fsRefusal(file: string, err: unknown): PodFileRefused {
  if (err instanceof PodFileRefused) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return new PodFileRefused(file, 'missing', 'no such file (or a symlink to nothing)');
  if (e.code === 'ELOOP') return new PodFileRefused(file, 'unreadable', 'cannot read: too many levels of symlinks');
  return new PodFileRefused(file, 'unreadable', `cannot read: ${e.code ?? 'error'}${e.syscall ? ` (${e.syscall})` : ''}`);
}

export async function readPodFile(file: string, maxBytes = MAX_POD_FILE_BYTES): Promise<PodFileContent> {
  try {
    // By type before anything is opened: opening some devices has effects of its own.
    const l = await lstat(file);
    const link = l.isSymbolicLink();
    checkType(file, link ? await stat(file) : l, link);
    const fh = await open(file, OPEN_FLAGS);
    try {
      // What was opened is what counts: the path may have been swapped since.
      const st = await fh.stat();
      checkType(file, st, link);
      if (st.size > maxBytes) throw tooLarge(file, maxBytes);
      // The size is only a hint (the file may grow): the cap holds while reading.
      const chunks: Buffer[] = [];
      let len = 0;
      for (;;) {
        const want = Math.min(CHUNK, maxBytes + 1 - len);
        const chunk = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(chunk, 0, want, len);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        len += bytesRead;
        if (len > maxBytes) throw tooLarge(file, maxBytes);
      }
      return finish(file, Buffer.concat(chunks, len), st);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw fsRefusal(file, err);
  }
}

export function readPodFileSync(file: string, maxBytes = MAX_POD_FILE_BYTES): PodFileContent {
  try {
    const l = lstatSync(file);
    const link = l.isSymbolicLink();
    checkType(file, link ? statSync(file) : l, link);
    const fd = openSync(file, OPEN_FLAGS);
    try {
      const st = fstatSync(fd);
      checkType(file, st, link);
      if (st.size > maxBytes) throw tooLarge(file, maxBytes);
      const buf = Buffer.allocUnsafe(maxBytes + 1);
      let len = 0;
      for (;;) {
        const n = readSync(fd, buf, len, Math.min(CHUNK, maxBytes + 1 - len), len);
        if (n === 0) break;
        len += n;
        if (len > maxBytes) throw tooLarge(file, maxBytes);
      }
      return finish(file, buf.subarray(0, len), st);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw fsRefusal(file, err);
  }
}

function finish(file: string, bytes: Buffer, st: Stats): PodFileContent {
  return { text: decodePodText(file, bytes), bytes, mode: st.mode & 0o7777 };
}

/**
 * The mode of a copy of a pod file: the source's permission bits or fewer,
 * never writable by group or others, never executable (it may hold a root
 * password hash: a 0600 source stays 0600).
 */
export function copyMode(sourceMode: number): number {
  return sourceMode & 0o644;
}
