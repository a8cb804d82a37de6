// A small client of the central API for the CLI: finds the node from its
// state directory (STATE/central/api.json) unless told explicitly.
import { defaultStateRoot } from '../config/state-root.js';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ApiTarget {
  url: string;
  ca: string;
  token: string;
}

export function resolveTarget(o: { state?: string; url?: string; ca?: string; tokenFile?: string }): ApiTarget {
  let info: { url?: string; ca?: string; tokenFile?: string } = {};
  const apiJson = join(o.state ?? defaultStateRoot(), 'central', 'api.json');
  if (!o.url || !o.ca || !o.tokenFile) {
    try {
      info = JSON.parse(readFileSync(apiJson, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read ${apiJson} (is podboot serve running with this --state?); or give --url, --ca and --token-file: ${(err as Error).message}`);
    }
  }
  const url = o.url ?? info.url;
  const ca = o.ca ?? info.ca;
  const tokenFile = o.tokenFile ?? info.tokenFile;
  if (!url || !ca || !tokenFile) throw new Error(`${apiJson} lacks url, ca or tokenFile`);
  return { url, ca: readFileSync(ca, 'utf8'), token: readFileSync(tokenFile, 'utf8').trim() };
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
    req.on('timeout', () => req.destroy(new Error(`no answer from ${t.url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
