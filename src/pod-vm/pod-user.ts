// Each pod instance runs as its own unprivileged uid/gid, allocated once per
// pod name from a range and recorded in the state root (pod-users.json), so
// it never changes and never collides — like systemd's DynamicUser, with no
// /etc/passwd entry. What the pod may touch is its own state directory (0700,
// owned by it); the CA directory, the operator token, the registration key
// and every other pod's state stay root's.
//
// The central node runs as root and writes into directories a pod owns: a
// compromised pod may have planted symlinks there, so every such write here
// creates its file with O_EXCL (never through a symlink), fixes its owner by
// descriptor and renames it into place; ownership walks use lchown and never
// follow a link.
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export interface PodUser {
  uid: number;
  gid: number;
}

/**
 * 1,900,000,000 + pod index: inside the range systemd leaves unused
 * (0x70000000-0x7FFDFFFF, docs UIDS-GIDS), far from Debian's static, dynamic
 * and container (subuid 100000+) allocations.
 */
export const POD_UID_FIRST = 1_900_000_000;
export const POD_UID_COUNT = 65_536;
export const POD_USERS_FILE = 'pod-users.json';

interface PodUsersFile {
  first: number;
  pods: Record<string, number>;
}

/** ids already in /etc/passwd or /etc/group (a pod must not share one with a real account) */
export function systemIds(passwd: string, group: string): Set<number> {
  const ids = new Set<number>();
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length > 3) ids.add(Number(f[2])).add(Number(f[3]));
  }
  for (const line of group.split('\n')) {
    const f = line.split(':');
    if (f.length > 2) ids.add(Number(f[2]));
  }
  return ids;
}

/** Pure: the uid of `pod`, allocated the first time (lowest free id of the range). */
export function allocate(recorded: Record<string, number>, pod: string, taken: Set<number>, first = POD_UID_FIRST, count = POD_UID_COUNT): { uid: number; added: boolean } {
  const have = recorded[pod];
  if (have !== undefined) return { uid: have, added: false };
  const used = new Set(Object.values(recorded));
  for (let uid = first; uid < first + count; uid++) if (!used.has(uid) && !taken.has(uid)) return { uid, added: true };
  throw new Error(`no free pod uid left in ${first}..${first + count - 1}`);
}

/** The pod's user, from (or added to) STATE/pod-users.json. A uid is never given back: a removed pod's files stay its own. */
export function podUser(stateRoot: string, pod: string): PodUser {
  const file = join(stateRoot, POD_USERS_FILE);
  let data: PodUsersFile = { first: POD_UID_FIRST, pods: {} };
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as PodUsersFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: ${(err as Error).message}`);
  }
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const { uid, added } = allocate(data.pods, pod, systemIds(read('/etc/passwd'), read('/etc/group')), data.first);
  if (added) {
    data.pods[pod] = uid;
    writeOwned(file, JSON.stringify(data, null, 2) + '\n', { uid: 0, gid: 0 }, 0o644);
  }
  return { uid, gid: uid };
}

/**
 * Writes `path` as `owner` with `mode`: a new file made with O_EXCL next to
 * it (a planted symlink is removed, never followed), chowned and chmodded by
 * descriptor, renamed over the old one.
 */
export function writeOwned(path: string, data: string | Buffer, owner: PodUser, mode: number): void {
  const tmp = `${path}.podboot-tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** A directory that is a directory (a symlink or file in its place is removed), owned and moded as asked. */
export function ensureOwnedDir(dir: string, owner: PodUser, mode: number): void {
  let st = lstatOrUndefined(dir);
  if (st && !st.isDirectory()) {
    rmSync(dir, { force: true });
    st = undefined;
  }
  if (!st) mkdirSync(dir, { mode });
  lchownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, mode);
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Hands a state directory written by root (an older podboot, `--pod-user
 * root`, a lab) to the pod's user: lchown of everything under it, links not
 * followed. Run only while no process of the pod runs.
 */
export function chownTree(dir: string, owner: PodUser): number {
  let n = 0;
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.uid !== owner.uid || st.gid !== owner.gid) {
      lchownSync(p, owner.uid, owner.gid);
      n++;
    }
    if (st.isDirectory() && !st.isSymbolicLink()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
  return n;
}

/** A uid that owns no directory: with it, blockedAncestor asks whether any other user gets through. */
export const NOBODY_UID = 65534;

/**
 * The first directory on the way to `dir` that a uid with no groups cannot
 * pass (no o+x and not its own), or undefined when the way is open.
 */
export function blockedAncestor(dir: string, uid: number): { dir: string; mode: number } | undefined {
  let p = resolve(dir);
  const chain: string[] = [];
  for (;;) {
    chain.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of chain.slice(0, -1)) {
    const st = statSync(d);
    if (st.uid !== uid && (st.mode & 0o001) === 0) return { dir: d, mode: st.mode & 0o7777 };
  }
  return undefined;
}

/** Capabilities a pod keeps: binding DHCP (67), TFTP (69), HTTP (80) and HTTPS (443). Nothing else. */
export const POD_CAPS = ['net_bind_service'];

/**
 * The command that runs `command args` as `user`: setpriv (util-linux)
 * switches uid/gid, drops supplementary groups, keeps only POD_CAPS (ambient,
 * so they survive the exec of node) and sets no_new_privs (no setuid binary
 * can give any back).
 */
export function asUser(user: PodUser, command: string, args: string[]): { command: string; args: string[] } {
  const caps = POD_CAPS.map((c) => `+${c}`).join(',');
  return {
    command: 'setpriv',
    args: [
      '--reuid',
      String(user.uid),
      '--regid',
      String(user.gid),
      '--clear-groups',
      '--inh-caps',
      `-all,${caps}`,
      '--ambient-caps',
      caps,
      '--bounding-set',
      `-all,${caps}`,
      '--no-new-privs',
      '--',
      command,
      ...args,
    ],
  };
}

/**
 * Where a pod sees podboot's own code. The package may sit where a pod's user
 * cannot pass (a checkout under /root, mode 0700): each pod gets a private
 * mount namespace with the package root bound read-only here, a path every
 * user can reach, and runs its CLI script from it.
 */
export const CODE_MOUNT = '/run/podboot/code';

export interface CodeMount {
  /** the package root on the host (holds package.json, dist/, node_modules/) */
  root: string;
  /** the CLI script, inside root */
  script: string;
  /** where root is bound in the pod's mount namespace */
  at: string;
}

/** The package a script belongs to: the nearest directory above it holding a package.json. */
export function packageRootOf(script: string): string {
  let dir = dirname(resolve(script));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${script}`);
    dir = up;
  }
}

/** `command args` with the CLI script run from the bound copy, in a mount namespace of its own that binds it there. */
export function withCodeMount(code: CodeMount, command: string, args: string[]): { command: string; args: string[] } {
  const inside = code.at + code.script.slice(code.root.length);
  const moved = args.map((a) => (a === code.script ? inside : a));
  const script = 'mount --bind -o ro "$1" "$2" || { echo "podboot: cannot bind $1 at $2" >&2; exit 125; }; shift 2; exec "$@"';
  return { command: 'unshare', args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'podboot-code', code.root, code.at, command, ...moved] };
}

/**
 * The command that puts itself into the pod's cgroups, then runs `command
 * args` in the same process (exec), so node starts already limited and the
 * pid the supervisor sees is the pod's.
 */
export function inCgroups(procs: string[], command: string, args: string[]): { command: string; args: string[] } {
  if (!procs.length) return { command, args };
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1" || { echo "podboot: cannot enter cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@"';
  return { command: '/bin/sh', args: ['-c', script, 'podboot-cgroup', ...procs, '--', command, ...args] };
}
