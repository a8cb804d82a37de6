// The CLI's side of answers that last (`podboot logs --follow`, `podboot
// events --follow`): lines handed over as they arrive, and every request
// ended at once when the operator interrupts (an AbortSignal), so the
// command exits cleanly without waiting for a timeout.
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { ApiTarget, ApiResponse } from './client.js';

export interface StreamEnd {
  status: number;
  /** why it ended: the answer was complete, the operator stopped it, or the connection failed */
  ended: 'end' | 'aborted' | 'error';
  /** a refusal's text (status ≠ 200), or the connection's error */
  error?: string;
}

function open(t: ApiTarget, path: string, signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, t.url), { method: 'GET', ca: t.ca, minVersion: 'TLSv1.2', headers: { authorization: `Bearer ${t.token}` }, signal }, resolve);
    // Only until the answer starts: a followed answer may then be quiet for hours.
    if (timeoutMs) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${t.url} within ${timeoutMs} ms`)));
    req.on('response', () => req.setTimeout(0));
    req.on('error', reject);
    req.end();
  });
}

/** GETs `path` and hands each line of a 200 answer to onLine as it arrives. */
export async function streamLines(t: ApiTarget, path: string, onLine: (line: string) => void, signal?: AbortSignal): Promise<StreamEnd> {
  let res: IncomingMessage;
  try {
    res = await open(t, path, signal, 30_000);
  } catch (err) {
    return signal?.aborted ? { status: 0, ended: 'aborted' } : { status: 0, ended: 'error', error: (err as Error).message };
  }
  const status = res.statusCode ?? 0;
  let carry = '';
  let refusal = '';
  return new Promise((resolve) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (status !== 200) {
        refusal = (refusal + chunk).slice(0, 4096);
        return;
      }
      const parts = (carry + chunk).split('\n');
      carry = parts.pop()!;
      for (const p of parts) if (p) onLine(p);
    });
    res.on('end', () => {
      if (carry) onLine(carry);
      resolve(status === 200 ? { status, ended: 'end' } : { status, ended: 'end', error: errorText(refusal) });
    });
    res.on('error', (err) => resolve(signal?.aborted ? { status, ended: 'aborted' } : { status, ended: 'error', error: err.message }));
    // 'aborted' does not always come as an error: a destroyed answer just closes.
    res.on('close', () => {
      if (!res.complete) resolve(signal?.aborted ? { status, ended: 'aborted' } : { status, ended: 'error', error: 'the central node closed the connection' });
    });
  });
}

/** One JSON answer, as callApi gives it, but ended at once by `signal`. */
export async function getApi(t: ApiTarget, path: string, signal?: AbortSignal, timeoutMs = 30_000): Promise<ApiResponse> {
  const res = await open(t, path, signal, timeoutMs);
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { status: res.statusCode ?? 0, body: JSON.parse(text) };
  } catch {
    return { status: res.statusCode ?? 0, body: text };
  }
}

function errorText(body: string): string {
  try {
    const v = JSON.parse(body) as { error?: unknown };
    if (typeof v.error === 'string') return v.error;
  } catch {
    // not JSON: as it is
  }
  return body.trim();
}
