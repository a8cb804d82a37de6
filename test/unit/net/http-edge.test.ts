// The HTTP edges both servers share: the bearer credential (scheme
// case-insensitive), a body read under a limit that ends in a clean 413, and
// the answer to a request Node cannot parse.
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answerClientError, bearerToken, BodyTooLarge, readBody } from '../../../src/net/http-edge.js';
import { tokenFromRequest } from '../../../src/http-boot/token.js';

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

describe('readBody', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
  });

  /** A server answering 200 with the body's length, or the status readBody's error carries. */
  async function serve(limit: number, drainBytes?: number): Promise<number> {
    server = createServer((req, res) => {
      readBody(req, limit, { drainBytes }).then(
        (b) => res.end(String(b.length)),
        (err: Error & { status?: number; drained?: boolean }) => {
          res.setHeader('connection', 'close');
          res.writeHead(err.status ?? 500);
          res.end(err instanceof BodyTooLarge ? `drained=${err.drained}` : err.message);
        },
      );
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  function post(port: number, body: Buffer, chunked = false): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('returns a body within the limit', async () => {
    const port = await serve(4096);
    expect(await post(port, Buffer.alloc(4096, 1))).toEqual({ status: 200, text: '4096' });
    expect(await post(port, Buffer.alloc(10, 1), true)).toEqual({ status: 200, text: '10' });
  });

  it('answers 413 past the limit, having read the rest so the client sees the answer, chunked or not', async () => {
    const port = await serve(4096);
    expect(await post(port, Buffer.alloc(4097, 1))).toEqual({ status: 413, text: 'drained=true' });
    expect(await post(port, Buffer.alloc(64 * 1024, 1), true)).toEqual({ status: 413, text: 'drained=true' });
  });

  it('refuses at once when Content-Length is past what it would read, and stops reading a chunked flood', async () => {
    const port = await serve(4096, 8192);
    expect(await post(port, Buffer.alloc(64 * 1024, 1))).toEqual({ status: 413, text: 'drained=false' });
    // Chunked, past limit + drain: refused without reading the rest (the client may or may not see it).
    const r = await post(port, Buffer.alloc(64 * 1024, 1), true).catch((err: Error) => ({ status: 0, text: err.message }));
    if (r.status) expect(r).toEqual({ status: 413, text: 'drained=false' });
  });
});

describe('answerClientError', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
  });

  it('answers an unparseable request with 400 and a header flood with 431, and says so', async () => {
    const seen: unknown[] = [];
    server = createServer({ maxHeaderSize: 1024 }, (_req, res) => res.end('ok'));
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => seen.push(answerClientError(err, socket)));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const raw = (text: string) =>
      new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write(text));
        let got = '';
        s.on('data', (c) => (got += c));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
      });
    expect(await raw('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(seen).toEqual([expect.objectContaining({ status: 400, reason: 'malformed-request', remote: '127.0.0.1' }), expect.objectContaining({ status: 431, reason: 'headers-too-large' })]);
  });
});
