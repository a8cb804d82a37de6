// The pod's token authority: its secret, how long tokens live, and the one
// check every download and callback goes through (signature, expiry, then
// the server's current install attempt from the store).
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync, fsyncSync } from 'node:fs';
import type { NodeRecord, NodeStateStore } from '../store/types.js';
import { checkToken, issueToken, type TokenClaims, type TokenScope } from './token.js';

export interface TokenLifetimes {
  /** long enough for a slow install over a WAN; the agent refreshes it while it works */
  installSec: number;
  /** the installed OS keeps reporting with it */
  nodeSec: number;
}

export const DEFAULT_TOKEN_LIFETIMES: TokenLifetimes = { installSec: 4 * 3600, nodeSec: 365 * 86400 };

export type Authorization =
  | { ok: true; claims: TokenClaims; node: NodeRecord | undefined }
  | { ok: false; status: 401 | 403; reason: string /** the MAC the token names, when it is genuine */; mac?: string };

/** Reads the pod's token secret, creating it (32 random bytes, mode 0600) on first start. */
export function loadTokenSecret(path: string): Buffer {
  try {
    const s = readFileSync(path);
    if (s.length < 32) throw new Error(`token secret ${path} is shorter than 32 bytes`);
    return s;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32);
  // wx: never overwrite a secret another process wrote meanwhile.
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, secret);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return secret;
}

export class TokenAuthority {
  constructor(
    private readonly secret: Buffer,
    private readonly store: NodeStateStore,
    private readonly lifetimes: TokenLifetimes = DEFAULT_TOKEN_LIFETIMES,
  ) {}

  issue(mac: string, scope: TokenScope, nowSec: number): string {
    const attempt = this.store.node(mac)?.attempt ?? 1;
    const ttl = scope === 'install' ? this.lifetimes.installSec : this.lifetimes.nodeSec;
    return issueToken(this.secret, { scope, mac, attempt, expires: nowSec + ttl });
  }

  authorize(token: string | undefined, nowSec: number): Authorization {
    if (token === undefined) return { ok: false, status: 401, reason: 'no token' };
    const c = checkToken(this.secret, token, nowSec);
    if (!c.ok) return { ok: false, status: 401, reason: `token ${c.reason}` };
    const node = this.store.node(c.claims.mac);
    const attempt = node?.attempt ?? 1;
    // A reinstall bumps the attempt: tokens handed out before it are dead.
    if (c.claims.attempt !== attempt) {
      return { ok: false, status: 403, reason: `token of install attempt ${c.claims.attempt}, current is ${attempt}`, mac: c.claims.mac };
    }
    return { ok: true, claims: c.claims, node };
  }
}
