// The bearer credential both servers read: the scheme in any case (RFC 7235),
// the token as sent.
import { describe, expect, it } from 'vitest';
import { bearerToken } from '../../../../src/net/http/auth.js';
import { tokenFromRequest } from '../../../../src/install/token.js';

describe('bearerToken', () => {
  it('takes the scheme in any case (RFC 7235) and the token as sent', () => {
    for (const h of ['Bearer abc.DEF-1', 'bearer abc.DEF-1', 'BEARER abc.DEF-1', 'bEaReR \tabc.DEF-1  ']) expect(bearerToken(h), h).toBe('abc.DEF-1');
  });

  it('refuses other schemes, an empty credential and more than one word', () => {
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic YWJj', 'Bearerabc', 'Bearer a b', 'Token abc']) expect(bearerToken(h), String(h)).toBeUndefined();
  });

  it("is the pod's parser too: a lower-case scheme reads the same token", () => {
    const q = new URLSearchParams('token=fromquery');
    expect(tokenFromRequest('bearer pb1.x', q)).toBe(tokenFromRequest('Bearer pb1.x', q));
    expect(tokenFromRequest('bearer pb1.x', q)).toBe('pb1.x');
  });
});
