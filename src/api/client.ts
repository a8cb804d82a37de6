// A small client of the central API for the CLI: finds the node from its
// state directory (STATE/central/api.json) unless told explicitly, and says
// where it looked when no node answers there.
import { defaultStateRoot } from '../config/state-root.js';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ApiTarget {
  url: string;
  ca: string;
  token: string;
  /** where the URL came from (DIR/central/api.json, or --url), for messages */
  source?: string;
}

/**
 * No central node to ask: none found (no api.json), or none answering at
 * the address found. The message names where the CLI looked.
 */
export class CentralUnavailable extends Error {}

export function resolveTarget(o: { state?: string; url?: string; ca?: string; tokenFile?: string }): ApiTarget {
  let info: { url?: string; ca?: string; tokenFile?: string } = {};
  const apiJson = join(o.state ?? defaultStateRoot(), 'central', 'api.json');
  if (!o.url || !o.ca || !o.tokenFile) {
    try {
      info = JSON.parse(readFileSync(apiJson, 'utf8'));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw new CentralUnavailable(`no central node found: cannot read ${apiJson} (${why}); is podboot serve running with this state root? Or give --url, --ca and --token-file`);
    }
  }
  const url = o.url ?? info.url;
  const ca = o.ca ?? info.ca;
  const tokenFile = o.tokenFile ?? info.tokenFile;
  if (!url || !ca || !tokenFile) throw new Error(`${apiJson} lacks url, ca or tokenFile`);
  return { url, ca: readFileSync(ca, 'utf8'), token: readFileSync(tokenFile, 'utf8').trim(), source: o.url ? '--url' : apiJson };
}

/** Errors that mean nobody listens there (or the way there is gone), as opposed to a refusal or a TLS failure. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

/** The error of a request that got no answer, naming the URL and where it came from. */
function unanswered(t: ApiTarget, err: Error): Error {
  const from = t.source ? ` (from ${t.source})` : '';
  if (UNREACHABLE.has((err as NodeJS.ErrnoException).code ?? '')) return new CentralUnavailable(`no central node answers at ${t.url}${from}: ${err.message}`);
  if (err instanceof CentralUnavailable) return err;
  return new Error(`central API at ${t.url}${from}: ${err.message}`);
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

export function callApi(t: ApiTarget, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, t.url),
      {
        method,
        ca: t.ca,
        minVersion: 'TLSv1.2',
        headers: { authorization: `Bearer ${t.token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* metrics and errors may be text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new CentralUnavailable(`no answer from ${t.url}${t.source ? ` (from ${t.source})` : ''} within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(unanswered(t, err)));
    req.end(payload);
  });
}
