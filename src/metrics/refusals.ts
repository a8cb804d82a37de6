// Refused requests by status code and reason, for both HTTP servers (the
// pod's boot server and the central API). Codes are the ones answered, or a
// word for refusals that never got an HTTP status (`tls`); reasons are short
// fixed words chosen by the code that refuses, never text from a client, so
// the label set stays small. Counted and logged by one path for both servers:
// src/net/http/refusals.ts.
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
