// A pod's own copy of a catalog image, STATE/<pod>/images/<name>@<version>/,
// and the one safe way to read such a copy's files.
//
// A copy, never a hard link: a link shares the catalog blob's inode, so a
// byte flipped in the pod's copy would flip it in the catalog too, and the
// copy meant to repair it would be just as bad (docs/decisions.md, "Pod
// image copies"). copyFile with COPYFILE_FICLONE shares blocks copy-on-write
// where the file system can (btrfs, XFS) and copies elsewhere. Every file is
// hashed again once written, against the digest the catalog recorded at
// admission (I3: onboarding into a pod re-hashes). A copy is assembled in a
// temporary directory beside its place and renamed into it, so a pod sees
// the whole copy or none.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, copyFile, lchown, lstat, mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../log.js';
import { readThrough } from '../signing/index.js';
import { COPY_FILES, COPY_ROLES, type ObservedFile } from './cache-verdict.js';
import type { CatalogEntry } from './index-db.js';

export class PodCopyError extends Error {}

/** Prefix of copies being assembled in STATE/<pod>/images: never served, never checked. */
export const PLACING_PREFIX = '.placing-';

function describeType(st: { isSymbolicLink(): boolean; isFIFO(): boolean; isDirectory(): boolean; isSocket(): boolean; isBlockDevice(): boolean; isCharacterDevice(): boolean }): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Streams a file's sha256 (two 4 MiB buffers, as signing/files.ts does).
 * Opened with O_NOFOLLOW (a symlink is refused, never followed) and
 * O_NONBLOCK (opening a FIFO does not wait for a writer), then fstat'ed:
 * only a regular file is read. `keepUpTo`: also return the bytes of a file
 * up to that size (the small files, for their manifest).
 */
export async function observeFile(path: string, keepUpTo = 0): Promise<ObservedFile> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'ELOOP') return { kind: 'not-regular', what: 'a symbolic link' };
    return { kind: 'unreadable', error: (err as Error).message };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { kind: 'not-regular', what: describeType(st) };
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let seen = 0;
    const size = await readThrough(fh, (bytes) => {
      hash.update(bytes);
      if (seen + bytes.length <= keepUpTo) kept.push(Buffer.from(bytes));
      seen += bytes.length;
    });
    return { kind: 'file', sha256: hash.digest('hex'), size, ...(size <= keepUpTo ? { bytes: Buffer.concat(kept) } : {}) };
  } catch (err) {
    return { kind: 'unreadable', error: (err as Error).message };
  } finally {
    await fh.close();
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Who should own a new copy: the pod's state directory's owner, when this
 * process is root and the pod runs as its own user (it must read its copy;
 * the supervisor hands the state over only once, src/pod-vm/confine.ts).
 */
async function podOwner(podDir: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const st = await stat(podDir).catch(() => undefined);
  return st && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : undefined;
}

export interface PlaceCopyOptions {
  /** the catalog entry, whose blobs were verified for this pod (Catalog.resolveForPod) */
  entry: CatalogEntry;
  blobPath: (hex: string) => string;
  /** STATE/<pod>/images */
  imagesDir: string;
  log: Logger;
}

/**
 * Places entry's four blobs as STATE/<pod>/images/<name>@<version>/, each
 * copied (reflinked where possible), made read-only, hashed again against
 * the catalog's digest and fsynced before the directory is renamed into
 * place. A copy already there is replaced whole. Throws PodCopyError naming
 * the file whose copy does not hash right; nothing is left behind then.
 */
export async function placeCopy(o: PlaceCopyOptions): Promise<{ dir: string; sha256: string; size: number }> {
  const { entry, imagesDir } = o;
  const ref = `${entry.name}@${entry.version}`;
  const to = join(imagesDir, ref);
  await mkdir(imagesDir, { recursive: true, mode: 0o755 });
  const owner = await podOwner(dirname(imagesDir));
  const tmp = await mkdtemp(join(imagesDir, PLACING_PREFIX));
  try {
    await chmod(tmp, 0o755);
    for (const role of COPY_ROLES) {
      const file = join(tmp, COPY_FILES[role]);
      await copyFile(o.blobPath(entry[role]), file, constants.COPYFILE_FICLONE);
      await chmod(file, 0o444);
      const got = await observeFile(file);
      if (got.kind !== 'file') throw new PodCopyError(`copying ${ref}/${COPY_FILES[role]}: the copy is ${got.kind === 'not-regular' ? got.what : got.kind}`);
      if (got.sha256 !== entry[role] || (role === 'image' && got.size !== entry.size)) {
        throw new PodCopyError(
          `copying ${ref}/${COPY_FILES[role]}: the copy has sha256 ${got.sha256} (${got.size} bytes), the catalog says ${entry[role]}; the catalog blob ${o.blobPath(entry[role])} may be corrupt`,
        );
      }
      await fsyncPath(file);
      if (owner) await lchown(file, owner.uid, owner.gid);
    }
    if (owner) await lchown(tmp, owner.uid, owner.gid);
    await fsyncPath(tmp);
    // A copy already in place is moved aside first: rename cannot replace a non-empty directory.
    const old = (await lstat(to).catch(() => undefined)) ? `${tmp}.old` : undefined;
    if (old) await rename(to, old);
    try {
      await rename(tmp, to);
    } catch (err) {
      if (old) await rename(old, to).catch(() => undefined);
      throw err;
    }
    await fsyncPath(imagesDir);
    if (old) await rm(old, { recursive: true, force: true });
    o.log.info({ image: entry.name, version: entry.version, sha256: entry.image, dir: to }, 'image copy placed and re-hashed');
    return { dir: to, sha256: entry.image, size: entry.size };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof PodCopyError) throw err;
    throw new PodCopyError(`placing ${ref} in ${imagesDir} (as ${basename(tmp)}): ${(err as Error).message}`);
  }
}
