// The pod's HTTP(S) boot server at its edges, in process: a flood of refused
// requests is counted one by one but logged at a bounded rate, an oversized
// install callback is answered 413 (and logged), the auth scheme is read in
// any case, and requests Node cannot parse are refusals too.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBootServer } from '../../../src/http-boot/server.js';
import type { InstallCredentials } from '../../../src/install/credentials.js';
import type { TokenAuthority } from '../../../src/install/tokens.js';
import { render } from '../../../src/metrics/exposition.js';
import { newHistogram } from '../../../src/metrics/histogram.js';
import { podFamilies } from '../../../src/metrics/pod-metrics.js';
import type { NodeStateStore } from '../../../src/store/types.js';
import type { FileResolver } from '../../../src/tftp/resolver.js';
import { captureLogger } from '../../helpers/logs.js';

const MAC = '52:54:00:77:00:10';
const GOOD = 'good-session';
const INSIDE = '127.0.0.1';

/** A throwaway self-signed certificate: these tests are about HTTP, not the pod's PKI. */
function selfSigned(dir: string): { cert: Buffer; key: Buffer } {
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
}

interface Answer {
  status: number;
  body: string;
}

describe('HTTP boot server edges', () => {
  let dir: string;
  let server: HttpBootServer;
  let lines: Record<string, unknown>[];
  let allowInside = true;
  const reports: string[] = [];
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 8 });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 4, rejectUnauthorized: false });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podboot-http-edges-'));
    const captured = captureLogger({ pod: 'rack-e' });
    lines = captured.lines;
    const credentials = {
      authorize: (token: string | undefined) =>
        token === GOOD
          ? { ok: true, claims: { scope: 'install', mac: MAC, attempt: 1, expires: 2_000_000_000 }, node: undefined }
          : { ok: false, status: 401, reason: token === undefined ? 'no token' : 'session malformed' },
    } as unknown as InstallCredentials;
    const nodes = {
      node: () => undefined,
      installState: () => undefined,
      changeInstallState: (c: { state: string }) => void reports.push(c.state),
      addEvent: () => undefined,
      touch: () => undefined,
    } as unknown as NodeStateStore;
    server = new HttpBootServer(
      { address: INSIDE, httpPort: 0, httpsPort: 0, tls: selfSigned(dir), allowSource: () => allowInside },
      {
        pod: 'rack-e',
        log: captured.log,
        nodes,
        tokens: credentials as unknown as TokenAuthority,
        credentials,
        bootFiles: { resolve: async () => ({ ok: false, reason: 'not-found' }) } as unknown as FileResolver,
        stage2: () => undefined,
        kickstart: () => '',
        seed: async () => Buffer.alloc(0),
      },
    );
    await server.start();
  });

  afterAll(async () => {
    httpAgent.destroy();
    httpsAgent.destroy();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function send(secure: boolean, method: string, path: string, opts: { body?: Buffer | string; auth?: string } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
      const headers: Record<string, string | number> = {};
      if (opts.auth) headers.authorization = opts.auth;
      if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': body.length });
      const o = { host: INSIDE, port: secure ? server.httpsPort : server.httpPort, method, path, headers };
      const req = secure ? httpsRequest({ ...o, agent: httpsAgent }, onRes) : httpRequest({ ...o, agent: httpAgent }, onRes);
      function onRes(res: import('node:http').IncomingMessage) {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      }
      req.on('error', reject);
      req.end(body);
    });
  }

  const refusedLines = () => lines.filter((l) => l.msg === 'http request refused' || String(l.msg).startsWith('suppressed '));

  it('counts 3,000 refused requests one by one and logs a bounded number of lines, then one summary', async () => {
    allowInside = false;
    try {
      const before = refusedLines().length;
      for (let i = 0; i < 3000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => send(false, 'GET', `/ipxe/52-54-00-00-00-${String((i + j) % 100).padStart(2, '0')}.ipxe`)));
        for (const a of batch) expect(a.status).toBe(403);
      }
      expect(server.counters.refused.get(403, 'not-in-pod')).toBe(3000);
      expect(server.counters.requests['403']).toBe(3000);
      const logged = refusedLines().slice(before);
      expect(logged.length).toBeLessThanOrEqual(10);
      expect(logged[0]).toMatchObject({ level: 'warn', status: 403, reason: 'not-in-pod', detail: 'source 127.0.0.1 is not in this pod', kind: 'refused:403:not-in-pod' });
    } finally {
      allowInside = true;
    }
    // The metrics say it by code and reason.
    const text = render(
      podFamilies({
        dhcp: { received: {}, sent: {}, dropped: {}, commits: 0, commitFailures: 0, replySeconds: newHistogram() },
        leases: 0,
        poolAddresses: 0,
        http: server.counters,
        nodesByState: {},
        degraded: false,
        startTimeSec: 0,
        rssBytes: 0,
        heapUsedBytes: 0,
      }),
    );
    expect(text).toContain('podboot_http_refused_total{code="403",reason="not-in-pod"} 3000\n');
  });

  it('answers an oversized /v1/events body with 413 and a log line, and the connection stays usable for the next request', async () => {
    const big = JSON.stringify({ state: 'stage1', detail: 'x'.repeat(8 * 1024) });
    const r = await send(true, 'POST', '/v1/events', { body: big, auth: `Bearer ${GOOD}` });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ error: 'event body over 4096 bytes' });
    expect(server.counters.refused.get(413, 'body-too-large')).toBe(1);
    expect(lines.filter((l) => l.status === 413)).toEqual([expect.objectContaining({ msg: 'http request refused', mac: MAC, path: '/v1/events', reason: 'body-too-large' })]);
    // Declared far past the limit: refused before a byte of it is read.
    const huge = await send(true, 'POST', '/v1/events', { body: Buffer.alloc(3 * 1024 * 1024, 0x20), auth: `Bearer ${GOOD}` }).catch((err: Error) => ({ status: 0, body: err.message }));
    // (Node may reset a client still writing megabytes after the answer; if it reads one, it is 413.)
    if (huge.status) expect(huge.status).toBe(413);
    expect(server.counters.refused.get(413, 'body-too-large')).toBe(2);
    expect(reports).toEqual([]);
  });

  it('reads the auth scheme in any case: `bearer` is accepted where `Bearer` is', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const r = await send(true, 'POST', '/v1/events', { body: JSON.stringify({ state: 'stage1' }), auth: `${scheme} ${GOOD}` });
      expect(r.status, scheme).toBe(200);
    }
    expect(reports).toEqual(['stage1', 'stage1', 'stage1']);
    expect((await send(true, 'POST', '/v1/events', { body: '{}', auth: `Basic ${GOOD}` })).status).toBe(401);
  });

  it('counts and logs the refusals no handler throws (405, requests Node cannot parse)', async () => {
    expect((await send(false, 'PUT', '/boot/x')).status).toBe(405);
    expect(server.counters.refused.get(405, 'method-not-allowed')).toBe(1);
    const raw = await new Promise<string>((resolve) => {
      const s = connect(server.httpPort, INSIDE, () => s.write('BREW /coffee HTCPCP/1.0\r\n\r\n'));
      let got = '';
      s.on('data', (c) => (got += c));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(server.counters.refused.get(400, 'malformed-request')).toBe(1);
    expect(lines.find((l) => l.reason === 'malformed-request')).toMatchObject({ msg: 'http request refused', status: 400, tls: false });
  });

  it('writes the summary of the flood when it stops', async () => {
    await server.stop();
    const summary = lines.find((l) => l.kind === 'refused:403:not-in-pod' && String(l.msg).startsWith('suppressed '));
    expect(summary).toMatchObject({ level: 'warn', suppressed: 3000 - 10, msg: 'suppressed 2990 similar lines: http request refused' });
  });
});
