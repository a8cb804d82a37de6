// A reproducible initramfs writer: "newc" cpio (the only format the kernel's
// initramfs unpacker reads), gzip'd. Same entries in → same bytes out: entries
// are sorted by name, inode numbers are assigned in that order, and mtime,
// uid, gid and device numbers are fixed, so a rebuild can be compared byte for
// byte and a cache can trust a digest.
import { gunzipSync, gzipSync, constants as zc } from 'node:zlib';

export type CpioEntry =
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'file'; name: string; mode?: number; data: Buffer }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'chardev'; name: string; mode?: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

/** Names are stored relative ("bin/sh"): the kernel accepts both, and relative is what `cpio -o` writes from `find .`. */
export function normalizeName(name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new Error(`cpio: '..' in entry name ${name}`);
  if (parts.length === 0) throw new Error(`cpio: empty entry name ${JSON.stringify(name)}`);
  return parts.join('/');
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio: header field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): number {
  return (4 - (len % 4)) % 4;
}

function header(f: { ino: number; mode: number; nlink: number; size: number; devmajor?: number; devminor?: number; namesize: number }): string {
  return (
    MAGIC +
    hex8(f.ino) +
    hex8(f.mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(f.nlink) +
    hex8(0) + // mtime: fixed, so the archive does not depend on when it was built
    hex8(f.size) +
    hex8(0) + // dev major
    hex8(0) + // dev minor
    hex8(f.devmajor ?? 0) +
    hex8(f.devminor ?? 0) +
    hex8(f.namesize) +
    hex8(0) // check (unused by newc)
  );
}

/**
 * Adds the parent directories every entry needs (the kernel does not create
 * them), refuses duplicates, and sorts by name. Byte order of the names, so
 * "bin" comes before "bin/sh" and the result does not depend on locale.
 */
export function completeEntries(entries: CpioEntry[]): CpioEntry[] {
  const byName = new Map<string, CpioEntry>();
  for (const e of entries) {
    const name = normalizeName(e.name);
    if (byName.has(name)) throw new Error(`cpio: duplicate entry ${name}`);
    byName.set(name, { ...e, name });
  }
  for (const name of [...byName.keys()]) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const existing = byName.get(dir);
      if (!existing) byName.set(dir, { type: 'dir', name: dir });
      else if (existing.type !== 'dir') throw new Error(`cpio: ${dir} is needed as a directory for ${name}`);
    }
  }
  return [...byName.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/** The uncompressed newc archive. */
export function encodeCpio(entries: CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const push = (hdr: string, name: string, data: Buffer) => {
    const head = Buffer.from(hdr + name + '\0', 'latin1');
    chunks.push(head, Buffer.alloc(pad4(head.length)));
    if (data.length) chunks.push(data, Buffer.alloc(pad4(data.length)));
  };
  let ino = 1;
  for (const e of completeEntries(entries)) {
    const nameBytes = Buffer.byteLength(e.name, 'latin1') + 1;
    if (Buffer.from(e.name, 'latin1').toString('latin1') !== e.name) throw new Error(`cpio: non-latin1 name ${e.name}`);
    let mode: number;
    let data: Buffer = Buffer.alloc(0);
    let nlink = 1;
    let devmajor = 0;
    let devminor = 0;
    switch (e.type) {
      case 'dir':
        mode = S_IFDIR | (e.mode ?? 0o755);
        nlink = 2;
        break;
      case 'file':
        mode = S_IFREG | (e.mode ?? 0o644);
        data = e.data;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        data = Buffer.from(e.target, 'latin1');
        break;
      case 'chardev':
        mode = S_IFCHR | (e.mode ?? 0o600);
        devmajor = e.major;
        devminor = e.minor;
        break;
    }
    push(header({ ino: ino++, mode, nlink, size: data.length, devmajor, devminor, namesize: nameBytes }), e.name, data);
  }
  push(header({ ino: 0, mode: 0, nlink: 1, size: 0, namesize: TRAILER.length + 1 }), TRAILER, Buffer.alloc(0));
  return Buffer.concat(chunks);
}

/**
 * gzip with a fixed header: zlib's gzip wrapper writes mtime 0 and no file
 * name already; the OS byte is set to 255 ("unknown") so the output does not
 * depend on which platform built it.
 */
export function gzipReproducible(data: Buffer): Buffer {
  const out = gzipSync(data, { level: 9, memLevel: 9, strategy: zc.Z_DEFAULT_STRATEGY });
  out[9] = 0xff;
  return out;
}

/** encodeCpio + gzipReproducible: one initramfs segment. */
export function buildInitramfs(entries: CpioEntry[]): Buffer {
  return gzipReproducible(encodeCpio(entries));
}

export interface DecodedCpioEntry {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  ino: number;
  nlink: number;
  rdevmajor: number;
  rdevminor: number;
  data: Buffer;
}

/** Reads one uncompressed newc archive (up to its trailer). For tests and for inspecting built images. */
export function decodeCpio(buf: Buffer): DecodedCpioEntry[] {
  const out: DecodedCpioEntry[] = [];
  let off = 0;
  for (;;) {
    if (off + 110 > buf.length) throw new Error('cpio: truncated header');
    const hdr = buf.subarray(off, off + 110).toString('latin1');
    if (hdr.slice(0, 6) !== MAGIC) throw new Error(`cpio: bad magic at ${off}`);
    const field = (i: number) => parseInt(hdr.slice(6 + i * 8, 14 + i * 8), 16);
    const namesize = field(11);
    const size = field(6);
    const nameStart = off + 110;
    const name = buf.subarray(nameStart, nameStart + namesize - 1).toString('latin1');
    const dataStart = nameStart + namesize + pad4(110 + namesize);
    if (dataStart + size > buf.length) throw new Error(`cpio: truncated data for ${name}`);
    if (name === TRAILER) return out;
    out.push({
      name,
      ino: field(0),
      mode: field(1),
      uid: field(2),
      gid: field(3),
      nlink: field(4),
      mtime: field(5),
      rdevmajor: field(9),
      rdevminor: field(10),
      data: Buffer.from(buf.subarray(dataStart, dataStart + size)),
    });
    off = dataStart + size + pad4(size);
  }
}

/**
 * Reads an initramfs as the kernel does: a sequence of gzip'd (or plain)
 * newc archives, concatenated. Later entries with the same name win.
 */
export function decodeInitramfs(buf: Buffer): Map<string, DecodedCpioEntry> {
  const files = new Map<string, DecodedCpioEntry>();
  // gunzipSync reads concatenated gzip members as one stream: the concatenation of the archives.
  const raw = buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf;
  let off = 0;
  while (off < raw.length) {
    // Archives are padded to 4 bytes; skip zero padding between them.
    if (raw[off] === 0) {
      off++;
      continue;
    }
    const rest = raw.subarray(off);
    const entries = decodeCpio(rest);
    for (const e of entries) files.set(e.name, e);
    off += archiveLength(rest);
  }
  return files;
}

/** Length of the first archive in buf, trailer included (padded to 4). */
function archiveLength(buf: Buffer): number {
  let off = 0;
  for (;;) {
    const hdr = buf.subarray(off, off + 110).toString('latin1');
    const namesize = parseInt(hdr.slice(94, 102), 16);
    const size = parseInt(hdr.slice(54, 62), 16);
    const name = buf.subarray(off + 110, off + 110 + namesize - 1).toString('latin1');
    const dataStart = off + 110 + namesize + pad4(110 + namesize);
    off = dataStart + size + pad4(size);
    if (name === TRAILER) return off;
  }
}
