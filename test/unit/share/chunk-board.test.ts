import { describe, expect, it } from 'vitest';
import { ChunkBoard } from '../../../src/share/chunk-board.js';

const KEY = { rack: '10.20.1.0/24', image: 'a'.repeat(64) };
const A = { mac: '52:54:00:00:00:0a', address: '10.20.1.10' };
const B = { mac: '52:54:00:00:00:0b', address: '10.20.1.11' };
const C = { mac: '52:54:00:00:00:0c', address: '10.20.1.12' };
const none = new Set<string>();
const opts = { fetchLeaseMs: 30_000, holderTtlMs: 60_000, loadWindowMs: 10_000 };

describe('ChunkBoard', () => {
  it('the first asker fetches from the pod, the others wait for it, then get it from that peer', () => {
    const b = new ChunkBoard(opts);
    expect(b.source(KEY, A, 1, none, 0)).toEqual({ kind: 'pod' });
    expect(b.source(KEY, B, 1, none, 10)).toEqual({ kind: 'wait', fetcher: A.mac, untilMs: 30_000 });
    // the fetcher asking again (a retry) is told the pod again, not to wait on itself
    expect(b.source(KEY, A, 1, none, 20)).toEqual({ kind: 'pod' });
    b.have(KEY, A, 1, 1, 100);
    expect(b.source(KEY, B, 1, none, 110)).toEqual({ kind: 'peer', mac: A.mac, address: A.address });
    // a chunk nobody holds or fetches: the asker fetches it
    expect(b.source(KEY, B, 2, none, 120)).toEqual({ kind: 'pod' });
  });

  it('spreads askers over the holders by recent load', () => {
    const b = new ChunkBoard(opts);
    b.have(KEY, A, 1, 4, 0);
    b.have(KEY, B, 1, 4, 0);
    const first = b.source(KEY, C, 2, none, 1);
    const second = b.source(KEY, C, 3, none, 2);
    expect(first.kind).toBe('peer');
    expect(second.kind).toBe('peer');
    expect(new Set([first, second].map((s) => (s.kind === 'peer' ? s.address : '')))).toEqual(new Set([A.address, B.address]));
  });

  it('offers a holder only for the chunks it still keeps, and not to itself', () => {
    const b = new ChunkBoard(opts);
    b.have(KEY, A, 5, 8, 0);
    expect(b.source(KEY, B, 4, none, 1).kind).toBe('pod');
    expect(b.source(KEY, B, 8, none, 1)).toMatchObject({ kind: 'peer', address: A.address });
    expect(b.source(KEY, A, 9, none, 1).kind).toBe('pod');
    expect(b.source(KEY, A, 6, none, 1).kind).toBe('pod');
  });

  it('a fetcher that goes silent loses its lease: the next asker fetches from the pod', () => {
    const b = new ChunkBoard(opts);
    expect(b.source(KEY, A, 1, none, 0).kind).toBe('pod');
    expect(b.source(KEY, B, 1, none, 29_999).kind).toBe('wait');
    expect(b.source(KEY, B, 1, none, 30_000)).toEqual({ kind: 'pod' });
    expect(b.source(KEY, C, 1, none, 30_001)).toMatchObject({ kind: 'wait', fetcher: B.mac });
  });

  it('a holder not heard from within its TTL is not offered', () => {
    const b = new ChunkBoard(opts);
    b.have(KEY, A, 1, 2, 0);
    expect(b.source(KEY, B, 1, none, 60_000).kind).toBe('peer');
    expect(b.source(KEY, C, 1, none, 60_001).kind).toBe('pod');
    expect(b.stats().holders).toBe(0);
  });

  it('a corrupt chunk strikes its peer for good; a failed download only until it reports again', () => {
    const b = new ChunkBoard(opts);
    b.have(KEY, A, 1, 3, 0);
    b.have(KEY, B, 1, 3, 0);
    expect(b.refuse(KEY, C, A.address, 'digest')).toBe(A.mac);
    b.have(KEY, A, 1, 4, 5);
    for (let i = 0; i < 3; i++) expect(b.source(KEY, C, 2, none, 10 + i)).toMatchObject({ kind: 'peer', address: B.address });
    expect(b.refuse(KEY, C, B.address, 'download')).toBe(B.mac);
    expect(b.source(KEY, C, 2, none, 20).kind).toBe('pod');
    b.have(KEY, B, 1, 3, 30);
    expect(b.source(KEY, C, 3, none, 40)).toMatchObject({ kind: 'peer', address: B.address });
    // the excluded addresses of this one question are skipped
    expect(b.source(KEY, C, 3, new Set([B.address]), 41).kind).toBe('pod');
  });

  it('swarms are per rack and per image', () => {
    const b = new ChunkBoard(opts);
    b.have(KEY, A, 1, 9, 0);
    expect(b.source({ ...KEY, rack: '10.20.2.0/24' }, B, 1, none, 1).kind).toBe('pod');
    expect(b.source({ ...KEY, image: 'b'.repeat(64) }, B, 1, none, 1).kind).toBe('pod');
    expect(b.source(KEY, B, 1, none, 1).kind).toBe('peer');
  });

  it('forget: an install that ended neither holds nor fetches, and an empty swarm is dropped', () => {
    const b = new ChunkBoard(opts);
    b.have(KEY, A, 1, 2, 0);
    expect(b.source(KEY, A, 3, none, 1).kind).toBe('pod');
    expect(b.stats()).toEqual({ swarms: 1, holders: 1, fetching: 1 });
    b.forget(A.mac);
    expect(b.stats()).toEqual({ swarms: 0, holders: 0, fetching: 0 });
    expect(b.source(KEY, B, 3, none, 2).kind).toBe('pod');
    expect(b.source(KEY, C, 1, none, 2).kind).toBe('pod');
  });
});
