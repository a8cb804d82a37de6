import { describe, expect, it } from 'vitest';
import { checkToken, issueToken, tokenFromRequest, MAX_TOKEN_LENGTH } from '../../../src/install/token.js';

const SECRET = Buffer.alloc(32, 7);
const OTHER = Buffer.alloc(32, 8);
const claims = { scope: 'install' as const, mac: '52:54:00:aa:bb:cc', attempt: 3, expires: 2_000_000_000 };

describe('install tokens', () => {
  it('round-trips its claims and is bound to the secret', () => {
    const t = issueToken(SECRET, claims);
    expect(t).toMatch(/^pb1\.install\.525400aabbcc\.3\.2000000000\.[\w-]{43}$/);
    expect(checkToken(SECRET, t, 1_999_999_999)).toEqual({ ok: true, claims });
    expect(checkToken(OTHER, t, 1_999_999_999)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a token whose MAC, attempt, scope or expiry was edited', () => {
    const t = issueToken(SECRET, claims);
    for (const forged of [t.replace('525400aabbcc', '525400aabbcd'), t.replace('.3.', '.4.'), t.replace('pb1.install', 'pb1.node'), t.replace('2000000000', '2000000999')]) {
      expect(checkToken(SECRET, forged, 0)).toEqual({ ok: false, reason: 'bad-signature' });
    }
  });

  it('refuses expired, malformed and oversized tokens', () => {
    const t = issueToken(SECRET, claims);
    expect(checkToken(SECRET, t, 2_000_000_000)).toEqual({ ok: false, reason: 'expired' });
    for (const bad of ['', 'pb1', t + 'x', t.replace('pb1', 'pb2'), 'x'.repeat(MAX_TOKEN_LENGTH + 1), t.replace(/\.[\w-]+$/, '.' + '!'.repeat(43))]) {
      expect(checkToken(SECRET, bad, 0).ok).toBe(false);
    }
  });

  it('is read from Authorization: Bearer first, else from ?token=', () => {
    const q = new URLSearchParams('token=fromquery');
    expect(tokenFromRequest('Bearer abc', q)).toBe('abc');
    expect(tokenFromRequest('bearer  abc ', q)).toBe('abc');
    expect(tokenFromRequest(undefined, q)).toBe('fromquery');
    // A malformed header is not silently replaced by the query.
    expect(tokenFromRequest('Basic abc', q)).toBeUndefined();
  });
});
