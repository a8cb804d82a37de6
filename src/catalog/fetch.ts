// Resumable HTTPS downloads to a file with undici. A cut connection resumes
// where it stopped (Range + If-Range, RFC 9110 §14.2 and §13.1.5): the server
// sends the rest only if the file is still the one we started, otherwise the
// whole file again, and we start over.
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, interceptors, request, type Dispatcher } from 'undici';

export class DownloadError extends Error {
  constructor(
    message: string,
    /** whether trying again can help (a cut connection) or not (404, bad certificate, too large) */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface DownloadProgress {
  received: number;
  total?: number;
}

export interface DownloadOptions {
  url: string;
  dest: string;
  dispatcher: Dispatcher;
  /** refuse a body longer than this */
  maxBytes: number;
  onProgress?: (p: DownloadProgress) => void;
  onRetry?: (r: { offset: number; attempt: number; error: string; resume: boolean }) => void;
  /** consecutive attempts that make no progress before giving up */
  maxStalledAttempts?: number;
  /** pause before attempt n is retryDelayMs × 2^(n-2), at most 10 s */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

export interface DownloadResult {
  size: number;
  /** how many times the transfer resumed from a non-zero offset */
  resumed: number;
}

/** HTTPS only, TLS 1.2 or later, an optional private CA, at most 5 redirects. */
export function httpsDispatcher(opts: { ca?: Buffer } = {}): Dispatcher {
  return new Agent({
    connect: { minVersion: 'TLSv1.2', ...(opts.ca ? { ca: opts.ca } : {}) },
    headersTimeout: 30_000,
    bodyTimeout: 60_000,
  }).compose(interceptors.redirect({ maxRedirections: 5 }));
}

// TLS verification failures: retrying cannot help, and the message must say what is wrong.
const PERMANENT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|ERR_TLS|ERR_SSL|ENOTFOUND|ERR_INVALID_URL/;

/** Even with progress on every attempt, a download stops somewhere. */
const MAX_ATTEMPTS = 1000;

function contentRangeStart(v: string | string[] | undefined): { start: number; total?: number } | undefined {
  const m = (Array.isArray(v) ? v[0] : v)?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
  if (!m) return undefined;
  return m[3] === '*' ? { start: Number(m[1]) } : { start: Number(m[1]), total: Number(m[3]) };
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const fh = await open(opts.dest, 'w', 0o600);
  const maxStalled = opts.maxStalledAttempts ?? 5;
  let offset = 0;
  let total: number | undefined;
  let validator: string | undefined;
  let resumed = 0;
  let stalled = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      const before = offset;
      const resume = offset > 0 && validator !== undefined;
      try {
        if (offset > 0 && !resume) {
          // No validator to prove the file is unchanged: a range could splice two versions.
          offset = 0;
          await fh.truncate(0);
        }
        const headers: Record<string, string> = resume ? { range: `bytes=${offset}-`, 'if-range': validator! } : {};
        const res = await request(opts.url, { dispatcher: opts.dispatcher, headers, ...(opts.signal ? { signal: opts.signal } : {}) });
        if (res.statusCode === 206 && resume) {
          const cr = contentRangeStart(res.headers['content-range']);
          if (!cr || cr.start !== offset) {
            await res.body.dump();
            throw new DownloadError(`${opts.url}: server answered range ${offset}- with Content-Range ${String(res.headers['content-range'])}`, false);
          }
          if (cr.total !== undefined) total = cr.total;
          resumed++;
        } else if (res.statusCode === 200) {
          if (offset > 0) {
            // The file changed since we started (If-Range did not match): start over.
            offset = 0;
            await fh.truncate(0);
          }
          const len = header(res.headers, 'content-length');
          total = len !== undefined ? Number(len) : undefined;
          const etag = header(res.headers, 'etag');
          validator = etag && !etag.startsWith('W/') ? etag : header(res.headers, 'last-modified');
        } else {
          await res.body.dump();
          const retryable = res.statusCode >= 500 || res.statusCode === 408 || res.statusCode === 429;
          throw new DownloadError(`${opts.url}: HTTP ${res.statusCode}`, retryable);
        }
        if (total !== undefined && total > opts.maxBytes) {
          await res.body.dump().catch(() => undefined);
          throw new DownloadError(`${opts.url}: ${total} bytes is more than the ${opts.maxBytes} expected`, false);
        }
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          if (offset + chunk.length > opts.maxBytes) {
            res.body.destroy();
            throw new DownloadError(`${opts.url}: body runs past the ${opts.maxBytes} bytes expected`, false);
          }
          await fh.write(chunk, 0, chunk.length, offset);
          offset += chunk.length;
          opts.onProgress?.({ received: offset, ...(total !== undefined ? { total } : {}) });
        }
        if (total !== undefined && offset !== total) throw new DownloadError(`${opts.url}: connection ended at byte ${offset} of ${total}`, true);
        await fh.sync();
        return { size: offset, resumed };
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        const retryable = err instanceof DownloadError ? err.retryable : !PERMANENT_CODES.test(code) && !opts.signal?.aborted;
        stalled = offset > before ? 0 : stalled + 1;
        const message = err instanceof DownloadError ? err.message : `${opts.url}: ${(err as Error).message}${code ? ` (${code})` : ''}`;
        if (!retryable) throw err instanceof DownloadError ? err : new DownloadError(message, false);
        if (stalled >= maxStalled) throw new DownloadError(`${message}; gave up after ${stalled} attempts without progress`, false);
        if (attempt >= MAX_ATTEMPTS) throw new DownloadError(`${message}; gave up after ${attempt} attempts`, false);
        opts.onRetry?.({ offset, attempt: attempt + 1, error: message, resume: offset > 0 && validator !== undefined });
        await sleep(Math.min(10_000, (opts.retryDelayMs ?? 500) * 2 ** Math.max(0, stalled - 1)), undefined, opts.signal ? { signal: opts.signal } : {});
      }
    }
  } finally {
    await fh.close();
  }
}
