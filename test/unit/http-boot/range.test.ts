import { describe, expect, it } from 'vitest';
import { decideRange, ifNoneMatchHits } from '../../../src/http-boot/range.js';

const v = { etag: '"abc"', lastModified: 'Thu, 03 Dec 2026 07:00:00 GMT' };

describe('byte ranges', () => {
  it('answers single ranges, suffixes and open ends', () => {
    expect(decideRange(1000, undefined, undefined, v)).toEqual({ kind: 'full' });
    expect(decideRange(1000, 'bytes=0-99', undefined, v)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(decideRange(1000, 'bytes=900-', undefined, v)).toEqual({ kind: 'partial', start: 900, end: 999 });
    expect(decideRange(1000, 'bytes=900-5000', undefined, v)).toEqual({ kind: 'partial', start: 900, end: 999 });
    expect(decideRange(1000, 'bytes=-100', undefined, v)).toEqual({ kind: 'partial', start: 900, end: 999 });
    expect(decideRange(1000, 'bytes=-5000', undefined, v)).toEqual({ kind: 'partial', start: 0, end: 999 });
  });

  it('says 416 for ranges past the end, and ignores what it does not understand', () => {
    expect(decideRange(1000, 'bytes=1000-', undefined, v)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange(1000, 'bytes=-0', undefined, v)).toEqual({ kind: 'unsatisfiable' });
    for (const r of ['bytes=0-1,5-9', 'items=0-1', 'bytes=5-1', 'bytes=-', 'bytes=a-b']) expect(decideRange(1000, r, undefined, v)).toEqual({ kind: 'full' });
  });

  it('If-Range: a partial answer only while the validator still matches', () => {
    expect(decideRange(1000, 'bytes=10-', '"abc"', v)).toEqual({ kind: 'partial', start: 10, end: 999 });
    expect(decideRange(1000, 'bytes=10-', v.lastModified, v)).toEqual({ kind: 'partial', start: 10, end: 999 });
    expect(decideRange(1000, 'bytes=10-', '"old"', v)).toEqual({ kind: 'full' });
  });

  it('If-None-Match', () => {
    expect(ifNoneMatchHits('"x", W/"abc"', '"abc"')).toBe(true);
    expect(ifNoneMatchHits('*', '"abc"')).toBe(true);
    expect(ifNoneMatchHits('"x"', '"abc"')).toBe(false);
    expect(ifNoneMatchHits(undefined, '"abc"')).toBe(false);
  });
});
