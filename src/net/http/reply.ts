// JSON replies, the same for both HTTP servers: content type, exact length,
// and `Cache-Control: no-store` (what both servers answer in JSON is about
// live state, and most of it is behind a token: no browser or proxy may keep
// a copy).
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** How one server writes its JSON answers. */
export interface JsonStyle {
  /** a newline after the JSON text (the pod's answers are read by shell scripts) */
  newline?: boolean;
  /** headers on every JSON answer besides content type, length and cache control */
  headers?: OutgoingHttpHeaders;
}

/**
 * `body` as JSON with `status`. A response whose headers already went out
 * (a stream that failed half-way) cannot carry another answer: it is
 * destroyed, so the client sees a cut, not a wrong body.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, style: JsonStyle = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = style.newline ? JSON.stringify(body) + '\n' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...style.headers });
  res.end(text);
}
