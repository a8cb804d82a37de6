// Reading pod instances' log files (STATE/<pod>/instance.log, rotated to
// instance.log.1) without ever holding a whole one in memory: the last N
// lines, read backwards in chunks from the end, and a follower that reads
// what is appended after a position. Used by the central API's logs route and
// by the node's console, which shows its pods' lines.
//
// The files sit in the pods' own directories and the node runs as root: they
// are opened with O_NOFOLLOW, never through a symlink a pod planted there.
import { constants, lstatSync, type Stats } from 'node:fs';
import { lstat, open } from 'node:fs/promises';

const CHUNK = 64 * 1024;
/** A longer line (no log line is) is left out rather than held whole. */
export const MAX_LINE_BYTES = 256 * 1024;

export interface TailOptions {
  /** the last this many lines (that match) */
  lines: number;
  /** only lines this accepts count */
  match?: (line: string) => boolean;
  /** bytes read backwards at most, over every file (a filter that matches nothing stops here) */
  maxScanBytes?: number;
}

export interface Tail {
  /** oldest first */
  lines: string[];
  /** where a follower of files[0] goes on: just after its last complete line */
  end: number;
  /** files[0]'s identity (fileId), to tell a file replaced under the same name */
  id?: string;
}

/**
 * The last `lines` matching lines of files[0], continued into files[1] … (the
 * rotated copies, newest first) when files[0] holds fewer. A last line still
 * being written (no newline yet) is not a line: the follower gets it whole.
 */
export async function tailLines(files: string[], o: TailOptions): Promise<Tail> {
  const found: string[] = [];
  const tail: Tail = { lines: [], end: 0 };
  let budget = o.maxScanBytes ?? 64 * 1024 * 1024;
  for (const [i, file] of files.entries()) {
    if (found.length >= o.lines || budget <= 0) break;
    const fh = await openLog(file);
    if (!fh) continue;
    try {
      const st = await fh.stat();
      let pos = st.size;
      if (i === 0) tail.id = fileId(st);
      // `carry`: bytes after the current chunk, up to a newline, whose line began before them.
      // `dropping`: the bytes after the current chunk belong to a line too long to keep.
      let carry: Buffer = Buffer.alloc(0);
      let dropping = false;
      // The newest file's unfinished last line (no newline yet) is not a line.
      let seekEnd = i === 0;
      while (pos > 0 && found.length < o.lines && budget > 0) {
        const len = Math.min(CHUNK, pos);
        pos -= len;
        budget -= len;
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, pos);
        let data = carry.length ? Buffer.concat([buf, carry]) : buf;
        if (seekEnd) {
          const nl = data.lastIndexOf(0x0a);
          if (nl < 0) continue;
          seekEnd = false;
          data = data.subarray(0, nl + 1);
          tail.end = pos + nl + 1;
        }
        const hasNewline = data.indexOf(0x0a) >= 0;
        const pieces = splitLines(data);
        if (dropping && data.at(-1) !== 0x0a) {
          // The last piece is the long line's start (or, with no newline, more of its middle).
          pieces.pop();
          dropping = !hasNewline;
        } else dropping = false;
        // The first piece began before this chunk unless the file starts here.
        const head = pos > 0 ? pieces.shift() : undefined;
        for (let k = pieces.length - 1; k >= 0 && found.length < o.lines; k--) take(pieces[k]!, o, found);
        carry = head ?? Buffer.alloc(0);
        if (carry.length > MAX_LINE_BYTES) {
          carry = Buffer.alloc(0);
          dropping = true;
        }
      }
    } finally {
      await fh.close();
    }
  }
  tail.lines = found.reverse();
  return tail;
}

/** Lines of `data` by newline, the empty piece after a final newline left out. */
function splitLines(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
    out.push(data.subarray(start, nl));
    start = nl + 1;
  }
  if (start < data.length) out.push(data.subarray(start));
  return out;
}

function take(piece: Buffer, o: TailOptions, found: string[]): void {
  if (piece.length === 0 || piece.length > MAX_LINE_BYTES) return;
  const line = piece.toString('utf8');
  if (!line.trim() || (o.match && !o.match(line))) return;
  found.push(line);
}

/**
 * A file's identity: its inode, and its birth time, as an inode number is
 * reused at once when a file is removed and another created.
 */
function fileId(st: { dev: number; ino: number; birthtimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.birthtimeMs}`;
}

async function openLog(file: string) {
  try {
    return await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
}

export interface FollowOptions {
  /** read at most this many bytes a poll (default 256 KiB) */
  maxReadBytes?: number;
  /** further behind than this, skip ahead rather than fall ever further behind (default 1 MiB) */
  maxBacklogBytes?: number;
}

export interface Appended {
  lines: string[];
  /** bytes skipped because the reader was too far behind */
  skipped: number;
  /** bytes read by this poll */
  read: number;
}

/**
 * What is appended to a log file after a position, a poll at a time. A file
 * that shrank was rotated (copied, then truncated: src/pod-vm/log-rotate.ts)
 * and another file under its name replaced it: either is read from its start.
 */
export class LogFollower {
  private carry: Buffer = Buffer.alloc(0);
  /** skipping ahead landed mid-line: the rest of that line is not a line */
  private partial = false;
  private readonly maxRead: number;
  private readonly maxBacklog: number;

  constructor(
    readonly file: string,
    private pos: number,
    private id: string | undefined,
    o: FollowOptions = {},
  ) {
    this.maxRead = o.maxReadBytes ?? 256 * 1024;
    this.maxBacklog = o.maxBacklogBytes ?? 1024 * 1024;
  }

  /** Follows from the file's end as it is now (nothing before this call is read). */
  static async fromEnd(file: string, o?: FollowOptions): Promise<LogFollower> {
    const st = await lstat(file).catch(() => undefined);
    return new LogFollower(file, st?.isFile() ? st.size : 0, st?.isFile() ? fileId(st) : undefined, o);
  }

  /** The same, synchronously: follows from the end as it is at this very moment. */
  static fromEndSync(file: string, o?: FollowOptions): LogFollower {
    let st: Stats | undefined;
    try {
      st = lstatSync(file);
    } catch {
      st = undefined;
    }
    return new LogFollower(file, st?.isFile() ? st.size : 0, st?.isFile() ? fileId(st) : undefined, o);
  }

  async poll(): Promise<Appended> {
    const got: Appended = { lines: [], skipped: 0, read: 0 };
    const st = await lstat(this.file).catch(() => undefined);
    if (!st?.isFile()) return got;
    const id = fileId(st);
    if (id !== this.id || st.size < this.pos) {
      this.id = id;
      this.pos = 0;
      this.carry = Buffer.alloc(0);
      this.partial = false;
    }
    if (st.size === this.pos) return got;
    if (st.size - this.pos > this.maxBacklog) {
      const to = st.size - this.maxBacklog;
      got.skipped = to - this.pos + this.carry.length;
      this.pos = to;
      this.carry = Buffer.alloc(0);
      this.partial = true;
    }
    const fh = await openLog(this.file);
    if (!fh) return got;
    let data: Buffer;
    try {
      const len = Math.min(this.maxRead, st.size - this.pos);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, this.pos);
      this.pos += bytesRead;
      got.read = bytesRead;
      data = this.carry.length ? Buffer.concat([this.carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
    const nl = data.lastIndexOf(0x0a);
    this.carry = Buffer.from(data.subarray(nl + 1));
    if (this.carry.length > MAX_LINE_BYTES) {
      got.skipped += this.carry.length;
      this.carry = Buffer.alloc(0);
      this.partial = true;
    }
    const pieces = nl < 0 ? [] : splitLines(data.subarray(0, nl + 1));
    if (this.partial && pieces.length) {
      got.skipped += pieces.shift()!.length + 1;
      this.partial = false;
    }
    for (const p of pieces) if (p.length && p.length <= MAX_LINE_BYTES) got.lines.push(p.toString('utf8'));
    return got;
  }
}
