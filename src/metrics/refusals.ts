// Refused requests by status code and reason, for both HTTP servers (the
// pod's boot server and the central API). Codes are the ones answered, or a
// word for refusals that never got an HTTP status (`tls`); reasons are short
// fixed words chosen by the code that refuses, never text from a client, so
// the label set stays small.
import type { Family } from './exposition.js';

export class RefusalCounts {
  private readonly counts = new Map<string, { code: string; reason: string; value: number }>();

  add(code: number | string, reason: string): void {
    const c = String(code);
    const key = `${c}\u0000${reason}`;
    const e = this.counts.get(key);
    if (e) e.value++;
    else this.counts.set(key, { code: c, reason, value: 1 });
  }

  /** Refusals with this code (any reason), or all of them. */
  total(code?: number | string): number {
    let n = 0;
    for (const e of this.counts.values()) if (code === undefined || e.code === String(code)) n += e.value;
    return n;
  }

  get(code: number | string, reason: string): number {
    return this.counts.get(`${String(code)}\u0000${reason}`)?.value ?? 0;
  }

  family(name: string, help: string): Family {
    return { name, help, type: 'counter', samples: [...this.counts.values()].map((e) => ({ labels: { code: e.code, reason: e.reason }, value: e.value })) };
  }
}

/** The reason word for a status when the refusing code named none. */
export function defaultReason(status: number): string {
  return DEFAULT_REASONS[status] ?? (status >= 500 ? 'server-error' : 'client-error');
}

const DEFAULT_REASONS: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  408: 'request-timeout',
  409: 'conflict',
  413: 'body-too-large',
  416: 'range-not-satisfiable',
  429: 'too-many-requests',
  431: 'headers-too-large',
  500: 'internal-error',
  503: 'unavailable',
};
