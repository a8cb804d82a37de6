// Per-server tokens for every download and callback that crosses the WAN.
// A token is bound to one MAC, one install attempt (a reinstall or a new
// attempt makes older tokens worthless) and a scope, and it expires. It is
// stateless (HMAC over its fields with the pod's secret), so checking one
// costs no database read and a restarted instance still honours the tokens it
// handed out. Pure: secret and clock come in as arguments.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { bearerToken } from '../net/http/auth.js';

/** `install`: stage1 agent (stage2, kickstart, install callbacks); `node`: the installed OS reporting in. */
export type TokenScope = 'install' | 'node';

export interface TokenClaims {
  scope: TokenScope;
  /** canonical lower-case colon form */
  mac: string;
  attempt: number;
  /** unix seconds */
  expires: number;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' };

const VERSION = 'pb1';
const SCOPES: readonly TokenScope[] = ['install', 'node'];
/** Longer than any real token; anything bigger is refused before it is hashed. */
export const MAX_TOKEN_LENGTH = 200;

function mac12(mac: string): string {
  return mac.replace(/:/g, '');
}

function sign(secret: Buffer, body: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url');
}

export function issueToken(secret: Buffer, claims: TokenClaims): string {
  const body = `${VERSION}.${claims.scope}.${mac12(claims.mac)}.${claims.attempt}.${claims.expires}`;
  return `${body}.${sign(secret, body)}`;
}

export function checkToken(secret: Buffer, token: string, nowSec: number): TokenCheck {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const m = /^pb1\.(install|node)\.([0-9a-f]{12})\.(\d{1,9})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const body = token.slice(0, token.lastIndexOf('.'));
  const want = Buffer.from(sign(secret, body));
  const got = Buffer.from(m[5]!);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, reason: 'bad-signature' };
  const scope = m[1] as TokenScope;
  if (!SCOPES.includes(scope)) return { ok: false, reason: 'malformed' };
  const claims: TokenClaims = { scope, mac: m[2]!.match(/../g)!.join(':'), attempt: Number(m[3]), expires: Number(m[4]) };
  // Signature first: an expired token is only reported as such when it is genuine.
  if (claims.expires <= nowSec) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}

/** The token from `Authorization: Bearer …`, else from `?token=` (iPXE and curl one-liners). */
export function tokenFromRequest(authorization: string | undefined, query: URLSearchParams): string | undefined {
  // One parser for both servers: the scheme is case-insensitive (RFC 7235).
  if (authorization) return bearerToken(authorization);
  return query.get('token') ?? undefined;
}
