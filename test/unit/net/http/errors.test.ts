// Typed HTTP errors: the status a handler means is the status sent, with a
// fixed reason word; anything else is an unexpected 500.
import { describe, expect, it } from 'vitest';
import { asHttpError, defaultReason, HttpError, INTERNAL_ERROR } from '../../../../src/net/http/errors.js';
import { BodyTooLarge } from '../../../../src/net/http/body.js';

describe('HttpError', () => {
  it("carries its status, message and reason (the status's own word unless named)", () => {
    const e = new HttpError(413, 'too big');
    expect([e.status, e.message, e.reason]).toEqual([413, 'too big', 'body-too-large']);
    expect(new HttpError(403, 'no', 'not-in-pod').reason).toBe('not-in-pod');
    expect(e).toBeInstanceOf(Error);
  });

  it('gives every status a reason word', () => {
    expect([400, 401, 403, 404, 405, 409, 413, 416, 431, 500, 503].map(defaultReason)).toEqual([
      'bad-request',
      'unauthorized',
      'forbidden',
      'not-found',
      'method-not-allowed',
      'conflict',
      'body-too-large',
      'range-not-satisfiable',
      'headers-too-large',
      'internal-error',
      'unavailable',
    ]);
    expect([418, 502].map(defaultReason)).toEqual(['client-error', 'server-error']);
  });
});

describe('asHttpError', () => {
  it('keeps what a handler meant: a thrown 413 is a 413, never a 500', () => {
    const meant = new HttpError(413, 'too big');
    expect(asHttpError(meant)).toEqual({ error: meant, unexpected: false });
    const body = new BodyTooLarge(10, true);
    expect(asHttpError(body)).toEqual({ error: body, unexpected: false });
    expect(asHttpError(new HttpError(500, 'kickstart: no template')).unexpected).toBe(false);
  });

  it('makes anything else an unexpected 500, whatever status it claims', () => {
    for (const thrown of [new Error('boom'), Object.assign(new Error('x'), { status: 404 }), 'a string', undefined]) {
      const r = asHttpError(thrown);
      expect(r.unexpected).toBe(true);
      expect([r.error.status, r.error.message, r.error.reason]).toEqual([500, INTERNAL_ERROR, 'internal-error']);
    }
  });
});
