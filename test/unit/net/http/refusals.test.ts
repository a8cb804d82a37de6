// One refusal path for both servers: every answer counted by status, every
// refusal by code and reason with a bounded number of lines, what a handler
// throws answered with the status it means (a thrown 413 is a 413), anything
// else a 500 logged at a bounded rate, and requests Node cannot parse and
// failed TLS handshakes counted too.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RefusalCounts } from '../../../../src/metrics/refusals.js';
import { readBody } from '../../../../src/net/http/body.js';
import { HttpError } from '../../../../src/net/http/errors.js';
import { closeServer, listen, tlsServerOptions } from '../../../../src/net/http/listen.js';
import { HttpRefusals, pathOnly, REFUSAL_LOG_BURST } from '../../../../src/net/http/refusals.js';
import { captureLogger } from '../../../helpers/logs.js';

type Handler = (req: IncomingMessage, res: ServerResponse, refusals: HttpRefusals) => Promise<void>;

describe('HttpRefusals', () => {
  let server: Server | undefined;
  let refusals: HttpRefusals | undefined;
  afterEach(async () => {
    if (server) await closeServer(server, 0);
    server = undefined;
    refusals = undefined;
  });

  async function serve(handler: Handler) {
    const { log, lines } = captureLogger({ component: 'test' });
    const counters = { requests: {} as Record<string, number>, refused: new RefusalCounts() };
    const r = new HttpRefusals({
      log,
      counters,
      refusedMsg: 'test request refused',
      failedMsg: 'test handler failed',
      tls: { kind: 'tls', msg: 'test TLS failed', remote: false },
      remoteField: 'from',
      json: { newline: true },
    });
    refusals = r;
    server = createServer((req, res) => {
      res.on('finish', () => r.finished(res, { method: req.method, path: pathOnly(req.url), status: res.statusCode }));
      handler(req, res, r).catch((err: unknown) => r.answerThrown(res, err, { path: pathOnly(req.url) }));
    });
    r.watch(server, { listener: 'test' });
    await listen(server, { port: 0, address: '127.0.0.1' });
    const port = (server.address() as AddressInfo).port;
    const send = (method: string, path: string, body?: Buffer) =>
      new Promise<{ status: number; body: string; connection?: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method, path, headers: body ? { 'content-length': body.length } : {} }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: text, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.end(body);
      });
    return { lines, counters, send, port };
  }

  it('answers a thrown HttpError with its own status: 413 is a 413 (connection closed), never a 500', async () => {
    const { lines, counters, send } = await serve(async (req) => {
      await readBody(req, 1024);
      throw new HttpError(409, 'already running', 'busy');
    });
    const big = await send('POST', '/x?token=secret', Buffer.alloc(2048, 1));
    expect(big).toEqual({ status: 413, body: '{"error":"request body over 1024 bytes"}\n', connection: 'close' });
    expect(await send('POST', '/y', Buffer.alloc(10, 1))).toMatchObject({ status: 409, body: '{"error":"already running"}\n' });
    expect(counters.refused.get(413, 'body-too-large')).toBe(1);
    expect(counters.refused.get(409, 'busy')).toBe(1);
    expect(counters.requests).toEqual({ 413: 1, 409: 1 });
    expect(lines.find((l) => l.status === 413)).toMatchObject({
      level: 'warn',
      msg: 'test request refused',
      kind: 'refused:413:body-too-large',
      path: '/x',
      reason: 'body-too-large',
      detail: 'request body over 1024 bytes',
    });
    expect(lines.some((l) => l.level === 'error')).toBe(false);
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('answers anything else 500 `internal error` and logs its cause at a bounded rate', async () => {
    const { lines, counters, send } = await serve(async () => {
      throw new Error('database is locked');
    });
    for (let i = 0; i < 30; i++) expect(await send('GET', '/z')).toMatchObject({ status: 500, body: '{"error":"internal error"}\n' });
    expect(counters.refused.get(500, 'internal-error')).toBe(30);
    const failed = lines.filter((l) => l.msg === 'test handler failed');
    expect(failed).toHaveLength(REFUSAL_LOG_BURST);
    expect(failed[0]).toMatchObject({ level: 'error', kind: 'handler-failed', path: '/z', err: expect.objectContaining({ message: 'database is locked' }) });
    expect(lines.filter((l) => l.msg === 'test request refused')).toHaveLength(REFUSAL_LOG_BURST);
    refusals!.flush();
    expect(lines.find((l) => l.msg === 'suppressed 20 similar lines: test handler failed')).toMatchObject({ kind: 'handler-failed', suppressed: 20 });
  });

  it('counts a refusal its handler logged itself without a second line, and successes without any', async () => {
    const { lines, counters, send } = await serve(async (req, res, r) => {
      if (req.url === '/ok') return void res.end('ok');
      r.refusing(res, 'no-token', { logged: true });
      res.statusCode = 401;
      res.end();
    });
    expect((await send('GET', '/ok')).status).toBe(200);
    expect((await send('GET', '/secret')).status).toBe(401);
    expect(counters.requests).toEqual({ 200: 1, 401: 1 });
    expect(counters.refused.get(401, 'no-token')).toBe(1);
    expect(lines).toEqual([]);
  });

  it('counts and logs requests Node cannot parse, with the fields of their listener', async () => {
    const { lines, counters, port } = await serve(async (_req, res) => void res.end());
    const raw = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('BREW /coffee HTCPCP/1.0\r\n\r\n'));
      let got = '';
      s.on('data', (c) => (got += c));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(counters.requests).toEqual({ 400: 1 });
    expect(counters.refused.get(400, 'malformed-request')).toBe(1);
    expect(lines).toEqual([
      expect.objectContaining({ msg: 'test request refused', from: '127.0.0.1', status: 400, reason: 'malformed-request', listener: 'test', kind: 'refused:400:malformed-request' }),
    ]);
  });
});

describe('HttpRefusals on a TLS listener', () => {
  it('counts a failed TLS handshake and logs it with the kind and fields its server chose', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podboot-refusals-tls-'));
    try {
      const r = spawnSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      const { log, lines } = captureLogger({ component: 'test' });
      const counters = { requests: {} as Record<string, number>, refused: new RefusalCounts() };
      const refusals = new HttpRefusals({ log, counters, refusedMsg: 'refused', failedMsg: 'failed', tls: { kind: 'refused:tls', msg: 'TLS handshake refused', remote: true }, remoteField: 'remote' });
      const server = createHttpsServer(tlsServerOptions({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }), (_req, res) => void res.end());
      refusals.watch(server);
      await listen(server, { port: 0, address: '127.0.0.1' });
      try {
        // Plain HTTP to the TLS port: not a handshake.
        await new Promise<void>((resolve) => {
          const s = connect((server.address() as AddressInfo).port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
          s.on('data', () => undefined);
          s.on('close', () => resolve());
          s.on('error', () => resolve());
        });
        await new Promise((r) => setTimeout(r, 50));
        expect(counters.refused.get('tls', 'handshake')).toBe(1);
        expect(lines).toEqual([expect.objectContaining({ level: 'warn', kind: 'refused:tls', msg: 'TLS handshake refused', remote: '127.0.0.1', err: expect.any(String) })]);
      } finally {
        await closeServer(server, 0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pathOnly', () => {
  it('drops the query string and bounds the length', () => {
    expect(pathOnly('/v1/stage2/x?token=abc')).toBe('/v1/stage2/x');
    expect(pathOnly(undefined)).toBe('');
    expect(pathOnly(`/${'a'.repeat(300)}`)).toBe(`/${'a'.repeat(199)}…`);
  });
});
