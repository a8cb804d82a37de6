// One path for counting and logging what an HTTP server refuses, shared by
// the pod's boot server and the central API: every answer counted by status,
// every refusal (status >= 400, a request Node cannot parse, a failed TLS
// handshake) counted by code and reason, and logged at a bounded rate so a
// flood of bad requests cannot fill a disk. What a handler throws is
// answered here too: the status an HttpError means is the status sent, and
// anything else is a 500 whose cause is logged (also at a bounded rate).
import type { ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../../log-limit.js';
import type { RefusalCounts } from '../../metrics/refusals.js';
import { asHttpError, defaultReason, type HttpError } from './errors.js';
import { answerClientError, type AnyHttpServer } from './listen.js';
import { sendJson, type JsonStyle } from './reply.js';

/** Refusal log lines per kind (status and reason) per 10 s; the rest are counted and summed up in one line. */
export const REFUSAL_LOG_BURST = 10;
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** The counters a server shows on its metrics: answers by status, refusals by code and reason. */
export interface RequestCounters {
  requests: Record<string, number>;
  refused: RefusalCounts;
}

export interface HttpRefusalsOptions {
  log: Logger;
  /** unix milliseconds, for the log's rate windows */
  clock?: () => number;
  counters: RequestCounters;
  /** the message of a refused request's line */
  refusedMsg: string;
  /** the message of the line for an unexpected error (answered 500) */
  failedMsg: string;
  /** the rate-limit kind and message of a failed TLS handshake's line, and whether it names the client */
  tls: { kind: string; msg: string; remote: boolean };
  /** the field naming the client in the line of a request Node could not parse */
  remoteField: string;
  /** how the server writes its JSON answers (the error answers too) */
  json?: JsonStyle;
}

interface Refusal {
  reason: string;
  /** the refusing handler wrote its own (rate-limited) line */
  logged: boolean;
  detail?: string;
}

export class HttpRefusals {
  /** the server's bounded log, for the lines its handlers write about refusals of their own */
  readonly limited: RateLimitedLog;
  private readonly marks = new WeakMap<ServerResponse, Refusal>();

  constructor(private readonly o: HttpRefusalsOptions) {
    this.limited = new RateLimitedLog(o.log, REFUSAL_LOG_INTERVAL_MS, o.clock ?? Date.now, { burst: REFUSAL_LOG_BURST });
  }

  /** Names the reason of a refusal about to be sent on `res`; `logged` when the caller wrote its own line. */
  refusing(res: ServerResponse, reason: string, opts: { logged?: boolean; detail?: string } = {}): void {
    this.marks.set(res, { reason, logged: opts.logged ?? false, detail: opts.detail });
  }

  /**
   * For a response's 'finish': the answer counted by status and, for a
   * refusal, by code and reason (the one named by `refusing`, or the
   * status's own word) with one line at a bounded rate unless its handler
   * logged it. `fields` are the line's; true when the answer was a refusal.
   */
  finished(res: ServerResponse, fields: Record<string, unknown>): boolean {
    const status = res.statusCode;
    const c = this.o.counters.requests;
    c[status] = (c[status] ?? 0) + 1;
    if (status < 400) return false;
    const r = this.marks.get(res);
    const reason = r?.reason ?? defaultReason(status);
    this.o.counters.refused.add(status, reason);
    if (!r?.logged) this.limited.warn(`refused:${status}:${reason}`, { ...fields, status, reason, detail: r?.detail }, this.o.refusedMsg);
    return true;
  }

  /**
   * The answer to what a handler threw: an HttpError's status and message
   * (413 closes the connection: the rest of the body is not read), anything
   * else a 500 `internal error` whose cause is logged with `fields`. A
   * response already under way is cut instead. Returns what was answered.
   */
  answerThrown(res: ServerResponse, err: unknown, fields: Record<string, unknown>): HttpError {
    const { error, unexpected } = asHttpError(err);
    if (unexpected) this.limited.error('handler-failed', { err, ...fields }, this.o.failedMsg);
    if (res.headersSent) {
      res.destroy();
      return error;
    }
    this.refusing(res, error.reason, { detail: unexpected ? (err as Error | undefined)?.message : error.message });
    if (error.status === 413) res.setHeader('connection', 'close');
    sendJson(res, error.status, { error: error.message }, this.o.json);
    return error;
  }

  /**
   * Requests Node cannot parse (bad request line, headers too large, too
   * slow) and failed TLS handshakes are refusals too: answered, counted and
   * logged. `fields` go on their lines (which listener, say).
   */
  watch(server: AnyHttpServer, fields: Record<string, unknown> = {}): void {
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const a = answerClientError(err, socket);
      if (!a) return;
      const c = this.o.counters;
      c.requests[a.status] = (c.requests[a.status] ?? 0) + 1;
      c.refused.add(a.status, a.reason);
      this.limited.warn(`refused:${a.status}:${a.reason}`, { [this.o.remoteField]: a.remote, status: a.status, reason: a.reason, err: err.code ?? err.message, ...fields }, this.o.refusedMsg);
    });
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.o.counters.refused.add('tls', 'handshake');
      const who = this.o.tls.remote ? { [this.o.remoteField]: socket.remoteAddress } : {};
      this.limited.warn(this.o.tls.kind, { ...who, err: err.message }, this.o.tls.msg);
    });
  }

  /** Ends the log's windows: the floods still owed a summary line get it now (a server's stop). */
  flush(): void {
    this.limited.flush();
  }
}

/** What the log may show of a URL: never a query string (it can hold a token), and not without bound. */
export function pathOnly(url: string | undefined): string {
  const p = (url ?? '').split('?')[0]!;
  return p.length > 200 ? `${p.slice(0, 200)}…` : p;
}
