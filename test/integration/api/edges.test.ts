// The central API at its edges, in process: every refusal counted by code and
// reason (and on /metrics) with a bounded number of log lines, oversized
// bodies answered 413 (not 500), and the auth scheme read in any case.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CentralApi } from '../../../src/api/server.js';
import type { TargetRegistry } from '../../../src/api/targets.js';
import type { MetricsAggregator } from '../../../src/metrics/aggregate.js';
import { render } from '../../../src/metrics/exposition.js';
import type { Supervisor } from '../../../src/pod-vm/supervisor.js';
import { captureLogger } from '../../helpers/logs.js';

const TOKEN = 'operator-token-0123456789abcdef';

function selfSigned(dir: string): { cert: string; key: string } {
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

describe('central API edges', () => {
  let dir: string;
  let api: CentralApi;
  let lines: Record<string, unknown>[];
  const acted: string[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: false });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podboot-api-edges-'));
    const captured = captureLogger({ component: 'central' });
    lines = captured.lines;
    const supervisor = {
      status: () => [],
      refusedFiles: () => [],
      instance: (pod: string) => (pod === 'rack-a' ? { pod } : undefined),
      act: async (pod: string, action: string) => {
        acted.push(`${pod} ${action}`);
        return true;
      },
    } as unknown as Supervisor;
    const metrics = { scrape: async (extra: Parameters<typeof render>[0]) => render(extra) } as unknown as MetricsAggregator;
    const targets = { expire: () => [], live: () => [], accepts: () => false, get: () => undefined } as unknown as TargetRegistry;
    const { cert, key } = selfSigned(dir);
    api = new CentralApi({
      address: '127.0.0.1',
      port: 0,
      credentials: { cert, key, caFile: join(dir, 'cert.pem'), selfIssued: true },
      token: TOKEN,
      supervisor,
      stateRoot: dir,
      metrics,
      log: captured.log,
      targets,
    });
    await api.start();
  });

  afterAll(async () => {
    agent.destroy();
    await api?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function send(method: string, path: string, opts: { auth?: string; body?: Buffer | string } = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
      const headers: Record<string, string | number> = {};
      if (opts.auth) headers.authorization = opts.auth;
      if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': body.length });
      const req = request({ host: '127.0.0.1', port: api.port, method, path, headers, agent }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('accepts the operator token with the scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) expect((await send('GET', '/api/v1/pods', { auth: `${scheme} ${TOKEN}` })).status, scheme).toBe(200);
    expect((await send('GET', '/api/v1/pods', { auth: `Basic ${TOKEN}` })).status).toBe(401);
    expect((await send('GET', '/api/v1/pods', { auth: `bearer ${TOKEN}x` })).status).toBe(403);
  });

  it('answers an oversized body with 413, not 500, and logs it', async () => {
    const big = JSON.stringify({ reason: 'x'.repeat(80 * 1024) });
    const r = await send('POST', '/api/v1/pods/rack-a/restart', { auth: `bearer ${TOKEN}`, body: big });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ error: 'request body over 65536 bytes' });
    expect(acted).toEqual([]);
    // A registration is read before its token can be checked: the same limit, the same answer.
    expect((await send('POST', '/api/v1/targets', { auth: 'Bearer some-pod-token', body: big })).status).toBe(413);
    expect(api.counters.refused.get(413, 'body-too-large')).toBe(2);
    expect(lines.filter((l) => l.status === 413)[0]).toMatchObject({ msg: 'central API request refused', level: 'warn', path: '/api/v1/pods/rack-a/restart', reason: 'body-too-large' });
    expect(lines.some((l) => l.level === 'error')).toBe(false);
    // Within the limit the action goes through.
    expect((await send('POST', '/api/v1/pods/rack-a/restart', { auth: `Bearer ${TOKEN}`, body: '{"reason":"test"}' })).status).toBe(200);
    expect(acted).toEqual(['rack-a restart']);
  });

  it('counts 3,000 refused requests one by one, logs a bounded number of lines and shows the count on /metrics', async () => {
    const before = lines.length;
    const c = api.counters.refused;
    const counts = () => [c.get(401, 'no-token'), c.get(403, 'bad-token'), c.get(404, 'not-found'), c.get(405, 'method-not-allowed')];
    const was = counts();
    const kinds = [
      () => send('GET', '/api/v1/pods'), // 401 no token
      () => send('GET', '/api/v1/pods', { auth: 'Bearer wrong-token-wrong-token' }), // 403
      () => send('GET', '/api/v1/nope', { auth: `Bearer ${TOKEN}` }), // 404
      () => send('DELETE', '/api/v1/pods', { auth: `Bearer ${TOKEN}` }), // 405
    ];
    for (let i = 0; i < 3000; i += 60) {
      const batch = await Promise.all(Array.from({ length: 60 }, (_, j) => kinds[(i + j) % 4]!()));
      for (const a of batch) expect(a.status).toBeGreaterThanOrEqual(400);
    }
    expect(counts().map((n, i) => n - was[i]!)).toEqual([750, 750, 750, 750]);
    const logged = lines.slice(before);
    // at most the burst (10) per kind, for four kinds
    expect(logged.length).toBeLessThanOrEqual(40);
    expect(logged.filter((l) => l.reason === 'not-found')[0]).toMatchObject({ msg: 'central API request refused', status: 404, path: '/api/v1/nope' });
    const m = await send('GET', '/metrics', { auth: `Bearer ${TOKEN}` });
    expect(m.body).toContain(`podboot_api_refused_total{code="401",reason="no-token"} ${c.get(401, 'no-token')}\n`);
    expect(m.body).toContain('podboot_api_requests_total{code="404"} 750\n');
    // The summaries come when the flood's window ends, or at stop: every refusal is a line or part of a summary.
    await api.stop();
    const summaries = lines.filter((l) => l.kind !== undefined && String(l.msg).startsWith('suppressed '));
    const plain = lines.filter((l) => l.kind !== undefined && !String(l.msg).startsWith('suppressed '));
    expect(summaries.map((l) => l.suppressed as number).reduce((a, b) => a + b, 0) + plain.length).toBe(c.total());
  });
});
