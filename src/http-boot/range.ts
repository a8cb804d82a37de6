// Which bytes of a file a GET asks for (RFC 9110 §14): one range, or all.
// Pure. Several ranges in one request (multipart/byteranges) are answered
// with the whole file, which RFC 9110 allows; no boot client asks for them.

export interface Validators {
  etag: string;
  /** HTTP date */
  lastModified: string;
}

export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * `range` and `ifRange` are the request's headers. If-Range with a validator
 * that no longer matches means the client holds bytes of another version:
 * it gets the whole new file, never a splice of two.
 */
export function decideRange(size: number, range: string | undefined, ifRange: string | undefined, v: Validators): RangeDecision {
  if (range === undefined) return { kind: 'full' };
  if (ifRange !== undefined && ifRange !== v.etag && ifRange !== v.lastModified) return { kind: 'full' };
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(range);
  // Not a single byte range we understand: RFC 9110 says ignore the header.
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  let start: number;
  let end: number;
  if (m[1] === '') {
    // bytes=-N: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (end < start && m[2] !== '') return { kind: 'full' };
  }
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/** A strong validator from what identifies the content: for content-addressed stage2 files, their sha256. */
export function etagOf(identity: string): string {
  return `"${identity}"`;
}

export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
