// Listening for both servers: a TCP address or a unix socket (a stale socket
// file does not stop it), TLS 1.2+ options, requests Node cannot parse
// answered 400/431, and a close that cuts a stalled client after its bound.
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { constants } from 'node:crypto';
import { answerClientError, closeServer, listen, tlsServerOptions } from '../../../../src/net/http/listen.js';

describe('tlsServerOptions', () => {
  it('is this key pair with TLS 1.2 or later, ChaCha20 for a client that asks for it first', () => {
    expect(tlsServerOptions({ cert: 'C', key: 'K' })).toEqual({ cert: 'C', key: 'K', minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_PRIORITIZE_CHACHA });
  });
});

describe('listen and closeServer', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function get(o: { port?: number; socketPath?: string }): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', ...o, path: '/', agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('listens on a TCP address and rejects with the error when it cannot', async () => {
    const a = createServer((_req, res) => res.end('a'));
    await listen(a, { port: 0, address: '127.0.0.1' });
    const port = (a.address() as AddressInfo).port;
    expect(await get({ port })).toBe('a');
    const b = createServer();
    await expect(listen(b, { port, address: '127.0.0.1' })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await closeServer(a, 0);
    expect(a.listening).toBe(false);
  });

  it('listens on a unix socket over a stale file, and removes the file on close', async () => {
    dir = mkdtempSync(join(tmpdir(), 'podboot-listen-'));
    const path = join(dir, 'api.sock');
    writeFileSync(path, 'left by a killed process');
    const s = createServer((_req, res) => res.end('unix'));
    await listen(s, { path });
    expect(await get({ socketPath: path })).toBe('unix');
    await closeServer(s, 0);
    expect(existsSync(path)).toBe(false);
  });

  it('lets a request in flight run for the grace period, then cuts it', async () => {
    let hung: (() => void) | undefined;
    const s: Server = createServer((_req, res) => {
      res.writeHead(200);
      res.write('started');
      hung?.();
    });
    await listen(s, { port: 0, address: '127.0.0.1' });
    const port = (s.address() as AddressInfo).port;
    const cut = new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.on('data', () => undefined);
        res.on('error', () => resolve('cut'));
        res.on('close', () => resolve(res.complete ? 'complete' : 'cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end();
    });
    await new Promise<void>((r) => (hung = r));
    const t0 = Date.now();
    await closeServer(s, 300);
    const took = Date.now() - t0;
    expect(await cut).toBe('cut');
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(5000);
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
