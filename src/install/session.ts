// Session credentials: what stage1 uses for everything after its first HTTPS
// call. The install token travels in clear text (iPXE script, kernel command
// line) and is good for one exchange only (POST /v1/session); the session it
// buys comes back over TLS and never appears in a boot config.
//
// `pb1s.<mac12>.<attempt>.<expires>.<hmac>`: HMAC-SHA256 with a key derived
// from the pod's token secret, so an install or node token can never pass as
// a session and back. Deterministic in (mac, attempt, expires): an exchange
// retried within its window gets the very same session again without the pod
// storing any credential. Pure: secret and clock come in as arguments.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface SessionClaims {
  /** canonical lower-case colon form */
  mac: string;
  attempt: number;
  /** unix seconds */
  expires: number;
}

export type SessionCheck = { ok: true; claims: SessionClaims } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' };

const PREFIX = 'pb1s';
const SESSION_RE = /^pb1s\.([0-9a-f]{12})\.(\d{1,9})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The key sessions are signed with: never the token secret itself (domain separation). */
export function sessionKey(tokenSecret: Buffer): Buffer {
  return createHmac('sha256', tokenSecret).update('podboot session credential v1').digest();
}

export function isSessionToken(token: string): boolean {
  return token.startsWith(`${PREFIX}.`);
}

function sign(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

export function issueSession(key: Buffer, claims: SessionClaims): string {
  const body = `${PREFIX}.${claims.mac.replace(/:/g, '')}.${claims.attempt}.${claims.expires}`;
  return `${body}.${sign(key, body)}`;
}

export function checkSession(key: Buffer, token: string, nowSec: number): SessionCheck {
  const m = SESSION_RE.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const want = Buffer.from(sign(key, token.slice(0, token.lastIndexOf('.'))));
  const got = Buffer.from(m[4]!);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, reason: 'bad-signature' };
  const claims = { mac: m[1]!.match(/../g)!.join(':'), attempt: Number(m[2]), expires: Number(m[3]) };
  if (claims.expires <= nowSec) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
