// Pods' registrations as scrape targets (src/api/targets.ts): tokens bound to
// pod names, what a registration may say, expiry after missed heartbeats.
// (How a token is made and kept: test/unit/pod-link/registration.test.ts.)
import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../../src/api/routes.js';
import { parseRegisterBody, TargetRegistry, type Registration } from '../../../src/api/targets.js';
import { registrationToken } from '../../../src/pod-link/registration.js';

describe('registration tokens', () => {
  it("a pod's token is accepted for that pod only", () => {
    const key = Buffer.alloc(32, 7);
    const reg = new TargetRegistry(key);
    expect(reg.accepts('rack-a', registrationToken(key, 'rack-a'))).toBe(true);
    expect(reg.accepts('rack-b', registrationToken(key, 'rack-a'))).toBe(false);
    expect(reg.accepts('rack-a', undefined)).toBe(false);
    expect(reg.accepts('rack-a', '')).toBe(false);
    expect(reg.accepts('rack-a', 'x'.repeat(43))).toBe(false);
  });
});

describe('registration bodies', () => {
  const root = '/var/lib/podboot';
  const ok = { pod: 'rack-a', metricsSocket: '/var/lib/podboot/rack-a/metrics.sock', intervalMs: 15000 };
  it('accepts a pod name, a socket in its own state directory, labels and a heartbeat period', () => {
    expect(parseRegisterBody(root, { ...ok, labels: { site: 'fra1' }, pid: 42 })).toEqual({ ok: true, value: { ...ok, labels: { site: 'fra1' }, pid: 42 } });
    expect(parseRegisterBody(root, { pod: 'rack-a', metricsSocket: '/var/lib/podboot/rack-a/metrics.sock' })).toMatchObject({ ok: true, value: { intervalMs: 15000, labels: {} } });
  });
  it.each([
    ['no body', undefined, /JSON object/],
    ['a bad pod name', { ...ok, pod: 'Rack_A' }, /^pod:/],
    ["another pod's socket", { ...ok, metricsSocket: '/var/lib/podboot/rack-b/metrics.sock' }, /^metricsSocket: must be in/],
    ['a socket climbing out', { ...ok, metricsSocket: '/var/lib/podboot/rack-a/../rack-b/metrics.sock' }, /^metricsSocket: must be in/],
    ['a reserved label', { ...ok, labels: { __metrics_path__: '/x' } }, /labels\.__metrics_path__/],
    ['the pod label', { ...ok, labels: { pod: 'rack-b' } }, /labels\.pod/],
    ['a label that is not a string', { ...ok, labels: { site: 1 } }, /labels\.site/],
    ['a heartbeat too fast', { ...ok, intervalMs: 1 }, /^intervalMs/],
  ])('refuses %s', (_what, body, error) => {
    const r = parseRegisterBody(root, body as Record<string, unknown> | undefined);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });
});

describe('the registry', () => {
  it('lists live registrations by name and drops one after three missed heartbeats', () => {
    let now = 1_000_000;
    const reg = new TargetRegistry(Buffer.alloc(32), () => now);
    const expired: Registration[] = [];
    reg.onExpire = (r) => expired.push(r);
    const body = (pod: string, pid = 1) => ({ pod, metricsSocket: `/s/${pod}/metrics.sock`, labels: {}, pid, intervalMs: 1000 });
    expect(reg.register(body('rack-b'))?.fresh).toBe(true);
    expect(reg.register(body('rack-a'))?.fresh).toBe(true);
    expect(reg.live().map((r) => r.pod)).toEqual(['rack-a', 'rack-b']);
    now += 2500;
    // A heartbeat of the same process is not a new registration; a restarted one (new pid) is.
    expect(reg.register(body('rack-a'))?.fresh).toBe(false);
    now += 600;
    expect(reg.live().map((r) => r.pod)).toEqual(['rack-a']);
    expect(expired.map((r) => r.pod)).toEqual(['rack-b']);
    expect(reg.register(body('rack-a', 2))?.fresh).toBe(true);
    expect(reg.deregister('rack-a')).toBe(true);
    expect(reg.deregister('rack-a')).toBe(false);
    expect(reg.live()).toEqual([]);
  });
});

describe('routes', () => {
  it('POST/GET /api/v1/targets, DELETE /api/v1/targets/POD', () => {
    expect(matchRoute('POST', '/api/v1/targets')).toEqual({ kind: 'register' });
    expect(matchRoute('GET', '/api/v1/targets')).toEqual({ kind: 'targets' });
    expect(matchRoute('PUT', '/api/v1/targets')).toEqual({ kind: 'method-not-allowed', allow: 'GET, POST' });
    expect(matchRoute('DELETE', '/api/v1/targets/rack-a')).toEqual({ kind: 'deregister', pod: 'rack-a' });
    expect(matchRoute('GET', '/api/v1/targets/rack-a')).toEqual({ kind: 'method-not-allowed', allow: 'DELETE' });
  });
});
