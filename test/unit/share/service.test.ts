import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../../src/net/ipv4.js';
import { ChunkBoard } from '../../../src/share/chunk-board.js';
import { DEFAULT_SHARING, ShareError, ShareService, type SharingConfig } from '../../../src/share/service.js';
import { PEER_TLS_NAME, SwarmTlsKeys } from '../../../src/share/swarm-tls.js';

const RACK = parseCidr('10.20.1.0/24')!;
const IMAGE = 'c'.repeat(64);
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

function service(o: { config?: Partial<SharingConfig>; leaseMs?: number } = {}) {
  const events: { mac: string; kind: string; detail: string }[] = [];
  const s = new ShareService({
    config: { ...DEFAULT_SHARING, ...o.config },
    board: new ChunkBoard({ fetchLeaseMs: o.leaseMs ?? 60_000, holderTtlMs: 120_000, loadWindowMs: 10_000 }),
    keys: new SwarmTlsKeys('rack-1'),
    rackOf: (a) => ((a & RACK.mask) >>> 0 === RACK.network ? '10.20.1.0/24' : undefined),
    image: () => ({ sha256: IMAGE, chunkBytes: 16 << 20 }),
    event: (mac, kind, detail) => events.push({ mac, kind, detail }),
    log: pino({ level: 'silent' }),
  });
  const call = (method: string, path: string, mac: string, source: string) => s.handle(method, new URL(path, 'https://pod'), mac, source, () => false);
  return { s, call, events };
}

describe('ShareService', () => {
  it('hands a member the swarm key: port, path, how many chunks to keep, a certificate for the peer name and its key', async () => {
    const { call } = service();
    const a = await call('GET', '/v1/share/key', A, '10.20.1.10');
    expect(a.status).toBe(200);
    const [first, ...pem] = a.body.split('\n');
    expect(first).toMatch(/^share 8070 [0-9a-f]{32} 8$/);
    const cert = new X509Certificate(pem.join('\n'));
    expect(cert.subjectAltName).toBe(`DNS:${PEER_TLS_NAME}`);
    expect(pem.join('\n')).toContain('-----BEGIN PRIVATE KEY-----');
    // the same swarm, the same key; the path is what a member must know to fetch
    const b = await call('GET', '/v1/share/key', B, '10.20.1.11');
    expect(b.body).toBe(a.body);
  });

  it('says off when sharing is off or the server is on no rack subnet', async () => {
    expect((await service({ config: { enabled: false } }).call('GET', '/v1/share/key', A, '10.20.1.10')).body).toBe('off\n');
    expect((await service().call('GET', '/v1/share/key', A, '10.30.1.10')).body).toBe('off\n');
    expect((await service({ config: { enabled: false } }).call('POST', '/v1/share/source?chunk=1', A, '10.20.1.10')).status).toBe(404);
  });

  it('holds a waiting member until the fetcher has the chunk, then names that peer', async () => {
    const { call } = service();
    expect((await call('POST', '/v1/share/source?chunk=1', A, '10.20.1.10')).body).toBe('pod\n');
    let answered: string | undefined;
    const waiting = call('POST', '/v1/share/source?chunk=1', B, '10.20.1.11').then((a) => (answered = a.body));
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBeUndefined();
    expect((await call('POST', '/v1/share/have?from=1&to=1', A, '10.20.1.10')).body).toBe('ok\n');
    expect(await waiting).toBe('peer 10.20.1.10\n');
  });

  it('what a member holds can ride on its next question', async () => {
    const { call } = service();
    expect((await call('POST', '/v1/share/source?chunk=1', A, '10.20.1.10')).body).toBe('pod\n');
    expect((await call('POST', '/v1/share/source?chunk=2&from=1&to=1', A, '10.20.1.10')).body).toBe('pod\n');
    expect((await call('POST', '/v1/share/source?chunk=1', B, '10.20.1.11')).body).toBe('peer 10.20.1.10\n');
    await expect(call('POST', '/v1/share/source?chunk=3&from=2', A, '10.20.1.10')).rejects.toThrow(/to must be/);
  });

  it('a fetcher whose lease runs out: the waiting member is told to fetch from the pod', async () => {
    const { call } = service({ leaseMs: 50 });
    expect((await call('POST', '/v1/share/source?chunk=3', A, '10.20.1.10')).body).toBe('pod\n');
    expect((await call('POST', '/v1/share/source?chunk=3', B, '10.20.1.11')).body).toBe('pod\n');
  });

  it('a member that leaves (forget) frees its fetches at once', async () => {
    const { s, call } = service();
    await call('POST', '/v1/share/source?chunk=2', A, '10.20.1.10');
    const waiting = call('POST', '/v1/share/source?chunk=2', B, '10.20.1.11');
    await new Promise((r) => setTimeout(r, 20));
    s.forget(A);
    expect((await waiting).body).toBe('pod\n');
  });

  it('a corrupt chunk: the holder is struck and an event is recorded against it', async () => {
    const { s, call, events } = service();
    await call('POST', '/v1/share/have?from=1&to=4', A, '10.20.1.10');
    expect((await call('POST', '/v1/share/refuse?chunk=2&peer=10.20.1.10&why=digest', B, '10.20.1.11')).body).toBe('ok\n');
    expect(events).toEqual([{ mac: A, kind: 'peer-chunk-corrupt', detail: expect.stringContaining('chunk 2 from 10.20.1.10') }]);
    expect(s.counters.refusals.digest).toBe(1);
    await call('POST', '/v1/share/have?from=1&to=5', A, '10.20.1.10');
    expect((await call('POST', '/v1/share/source?chunk=2', B, '10.20.1.11')).body).toBe('pod\n');
  });

  it('refuses malformed questions with what was wrong', async () => {
    const { call } = service();
    await expect(call('POST', '/v1/share/source?chunk=0', A, '10.20.1.10')).rejects.toThrow(ShareError);
    await expect(call('POST', '/v1/share/source?chunk=1e3', A, '10.20.1.10')).rejects.toThrow(/chunk must be a whole number/);
    await expect(call('POST', '/v1/share/have?from=5&to=4', A, '10.20.1.10')).rejects.toThrow(/to must be/);
    await expect(call('POST', '/v1/share/refuse?chunk=1&peer=evil&why=digest', A, '10.20.1.10')).rejects.toThrow(/peer must be/);
    await expect(call('POST', '/v1/share/refuse?chunk=1&peer=10.20.1.9&why=bored', A, '10.20.1.10')).rejects.toThrow(/why must be/);
    expect((await call('POST', '/v1/share/source?chunk=1', A, '10.30.0.5')).status).toBe(409);
    expect((await call('GET', '/v1/share/nothing', A, '10.20.1.10')).status).toBe(404);
  });
});
