// A request body read under a limit: a clean 413 past it (BodyTooLarge is an
// HttpError, so the status it means is the status sent).
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyIncomplete, BodyTooLarge, readBody } from '../../../../src/net/http/body.js';
import { HttpError } from '../../../../src/net/http/errors.js';

describe('body errors', () => {
  it('are HttpErrors with their status and reason', () => {
    const big = new BodyTooLarge(4096, true);
    expect(big).toBeInstanceOf(HttpError);
    expect([big.status, big.reason, big.message]).toEqual([413, 'body-too-large', 'request body over 4096 bytes']);
    const cut = new BodyIncomplete('reset');
    expect(cut).toBeInstanceOf(HttpError);
    expect([cut.status, cut.reason, cut.message]).toEqual([400, 'bad-request', 'request body incomplete: reset']);
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
