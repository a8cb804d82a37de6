// spec.users and SSH keys: the logins cloud-init makes on the installed OS.
// The keys end up in every server's authorized_keys, so each is checked as
// sshd would read it (type, base64 body, the type the body itself names)
// rather than passed on as text: a pasted private key, a key cut in two by a
// line break or a key with options that widen what it may do is refused
// here, with its position, instead of silently locking the operator out.
import { fieldsOf, USER_SHAPE } from './pod-shape.js';
import type { UserConfig } from './types.js';
import type { Section } from './yaml-reader.js';

const USER_FIELDS = fieldsOf(USER_SHAPE);

/** The key types OpenSSH's sshd accepts by default (ssh-dss has been off by default since OpenSSH 7.0). */
export const SSH_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;

/** useradd's default NAME_REGEX, 32 characters at most (utmp's limit). */
const USER_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Why `line` is not one SSH public key sshd would accept, or undefined when it is one. */
export function sshKeyProblem(line: string): string | undefined {
  if (/[\r\n]/.test(line)) return 'holds a line break: give one key per list item';
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) return 'holds control characters';
  const text = line.trim();
  if (text === '') return 'is empty';
  if (text.startsWith('-----BEGIN')) return 'is a PEM block (a private key?), not an SSH public key line such as "ssh-ed25519 AAAA... comment"';
  const [type = '', body] = text.split(/[ \t]+/, 2);
  if (!(SSH_KEY_TYPES as readonly string[]).includes(type)) {
    // authorized_keys options (from=, command=) would change what the key may do: not taken from a pod file.
    const hint = /[=,"]/.test(type) ? ' (authorized_keys options such as from= or command= are not supported)' : '';
    return `unknown key type ${JSON.stringify(type.slice(0, 40))}${hint}; known: ${SSH_KEY_TYPES.join(', ')}`;
  }
  if (body === undefined) return `has no key body after ${type}`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) return 'key body is not base64';
  const blob = Buffer.from(body, 'base64');
  const fields = sshStrings(blob);
  if (!fields) return 'key body is truncated or has bytes after its last field';
  const named = fields[0]?.toString('latin1');
  if (named !== type) return `key body is a ${JSON.stringify(named?.slice(0, 40) ?? '')} key, but the line says ${type}`;
  if (fields.length < 2) return 'key body holds no key';
  return undefined;
}

/**
 * The length-prefixed fields (RFC 4251 string and mpint) an SSH public key
 * blob is made of, or undefined unless they fill it exactly.
 */
function sshStrings(blob: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) return undefined;
    const len = blob.readUInt32BE(at);
    if (at + 4 + len > blob.length) return undefined;
    out.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out.length ? out : undefined;
}

/** A list of SSH public keys at `key` of `s`, each checked; bad ones are reported and left out. */
export function readSshKeys(s: Section, key: string): string[] | undefined {
  const items = s.list(key);
  if (!items) return undefined;
  const keys: string[] = [];
  for (const item of items) {
    const line = s.reader.string(item.node, item.path);
    if (line === undefined) continue;
    const problem = sshKeyProblem(line);
    if (problem) s.reader.report(item.node, item.path, `not an SSH public key: ${problem}`);
    else keys.push(line.trim());
  }
  return keys;
}

export function readUsers(spec: Section): UserConfig[] {
  const users: UserConfig[] = [];
  const seen = new Map<string, string>();
  for (const item of spec.list('users') ?? []) {
    const u = spec.reader.section(item.node, item.path, USER_FIELDS);
    if (!u) continue;
    const name = u.string('name');
    let ok = name !== undefined;
    if (name !== undefined && !USER_NAME_RE.test(name)) {
      u.report('name', `${JSON.stringify(name)} is not a user name (a-z or _ first, then a-z 0-9 _ -, at most 32)`);
      ok = false;
    } else if (name === 'root') {
      // disable_root stays on: root logs in by no key podboot hands out.
      u.report('name', 'root cannot be a user here: give a named user with sudo: true');
      ok = false;
    } else if (name !== undefined) {
      const first = seen.get(name);
      if (first) u.report('name', `duplicate user ${name} (also ${first})`);
      else seen.set(name, u.path);
    }
    const sshAuthorizedKeys = readSshKeys(u, 'sshAuthorizedKeys') ?? [];
    const sudo = u.boolean('sudo') ?? false;
    if (ok) users.push({ name: name!, sshAuthorizedKeys, sudo });
  }
  return users;
}
