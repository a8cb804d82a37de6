// JSON replies: type, exact length, no-store, each server's own style.
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendJson } from '../../../../src/net/http/reply.js';
import { listen, closeServer } from '../../../../src/net/http/listen.js';

describe('sendJson', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await closeServer(server, 0);
    server = undefined;
  });

  async function fetchOnce(handler: Parameters<typeof createServer>[1]): Promise<{ status: number; headers: IncomingHttpHeaders; body: string } | 'cut'> {
    server = createServer(handler!);
    await listen(server, { port: 0, address: '127.0.0.1' });
    const port = (server.address() as AddressInfo).port;
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(res.complete ? { status: res.statusCode!, headers: res.headers, body } : 'cut'));
        res.on('error', () => resolve('cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end();
    });
  }

  it('writes the JSON with its type, exact length and no-store', async () => {
    const r = await fetchOnce((_req, res) => sendJson(res, 404, { error: 'no pod ü' }));
    expect(r).toMatchObject({ status: 404, body: '{"error":"no pod ü"}' });
    if (r === 'cut') return;
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength('{"error":"no pod ü"}')));
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it("adds a server's newline and headers", async () => {
    const r = await fetchOnce((_req, res) => sendJson(res, 200, { ok: true }, { newline: true, headers: { 'x-content-type-options': 'nosniff' } }));
    expect(r).toMatchObject({ status: 200, body: '{"ok":true}\n', headers: { 'content-length': '12', 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' } });
  });

  it('cuts a response whose headers already went out instead of writing a second answer', async () => {
    const r = await fetchOnce((_req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('partial');
      sendJson(res, 500, { error: 'internal error' });
    });
    expect(r).toBe('cut');
  });
});
