import type { Logger } from 'pino';

/**
 * At most one log line per kind per interval, so a flood of bad packets
 * cannot fill a disk or drown real events; the next line after a quiet
 * spell says how many were suppressed.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, msg: string): boolean {
    const now = this.clock();
    const seen = this.last.get(kind);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return false;
    }
    this.log.warn({ ...fields, kind, suppressed: seen?.suppressed ?? 0 }, msg);
    this.last.set(kind, { at: now, suppressed: 0 });
    return true;
  }
}
