// Where the bytes of a requested name come from. The server never touches the
// disk itself: it asks a resolver, which either hands back a readable source
// or says why not (a TFTP error code and a reason for the log).
import { close, constants, fstat, open, type Stats } from 'node:fs';
import { readlink, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode } from './codec.js';
import { fdSource, type FileSource } from './file-source.js';
import { checkName } from './names.js';

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

export interface ClientInfo {
  address: string;
  port: number;
}

export type ResolveResult =
  | { ok: true; source: FileSource /** the node the file is about, for logs */; mac?: string }
  | { ok: false; code: ErrorCode /** for logs and counters */; reason: string /** for the client's ERROR packet */; message: string };

export interface FileResolver {
  resolve(name: string, client: ClientInfo): Promise<ResolveResult>;
}

export function notFound(reason = 'not-found'): ResolveResult {
  return { ok: false, code: ErrorCode.FILE_NOT_FOUND, reason, message: 'File not found' };
}

export function accessViolation(reason: string): ResolveResult {
  return { ok: false, code: ErrorCode.ACCESS_VIOLATION, reason, message: `Access violation (${reason})` };
}

function within(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : root + '/');
}

/**
 * The pod's boot tree (bootloaders, kernels, initrds) under one directory.
 * Names are checked as strings first (names.ts); then the real path of the
 * file must stay inside the tree, so a symlink to another file of the tree
 * is fine and one leaving it is refused. The open is checked against
 * /proc/self/fd afterwards, so swapping a directory for a symlink between
 * the check and the open does not help either.
 */
export class BootTreeResolver implements FileResolver {
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<BootTreeResolver> {
    const real = await realpath(root);
    if (!(await stat(real)).isDirectory()) throw new Error(`boot tree ${root} is not a directory`);
    return new BootTreeResolver(real);
  }

  async resolve(name: string): Promise<ResolveResult> {
    const checked = checkName(name);
    if (!checked.ok) return accessViolation(checked.reason);
    let real: string;
    try {
      real = await realpath(join(this.root, checked.path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return notFound();
      if (code === 'ELOOP') return accessViolation('symlink-loop');
      return accessViolation(`unreadable:${code ?? 'unknown'}`);
    }
    if (!within(this.root, real)) return accessViolation('outside-root');

    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO someone left in the tree must not hang the server.
      fd = await openFd(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return notFound();
      return accessViolation(code === 'ELOOP' ? 'symlink-swapped' : `unreadable:${code ?? 'unknown'}`);
    }
    // A plain descriptor rather than a FileHandle: it may be handed to a worker thread.
    let st: Stats;
    let opened: string;
    try {
      st = await fstatFd(fd);
      opened = await readlink(`/proc/self/fd/${fd}`);
    } catch (err) {
      await closeFd(fd);
      return accessViolation(`unreadable:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`);
    }
    const refusal = !within(this.root, opened) ? 'outside-root' : st.isDirectory() ? 'directory' : !st.isFile() ? 'not-regular' : undefined;
    if (refusal) {
      await closeFd(fd);
      return accessViolation(refusal);
    }
    return { ok: true, source: fdSource(fd, st.size) };
  }
}

/** Asks each resolver in turn; the first answer other than "not found" wins. */
export class FirstMatchResolver implements FileResolver {
  constructor(private readonly resolvers: FileResolver[]) {}

  async resolve(name: string, client: ClientInfo): Promise<ResolveResult> {
    let last: ResolveResult = notFound();
    for (const r of this.resolvers) {
      last = await r.resolve(name, client);
      if (last.ok || last.code !== ErrorCode.FILE_NOT_FOUND) return last;
    }
    return last;
  }
}
