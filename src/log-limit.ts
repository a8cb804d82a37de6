import type { Logger } from 'pino';

export type LimitedLevel = 'info' | 'warn' | 'error';

export interface RateLimitOptions {
  /** lines written per kind per interval before the rest are only counted (default 1) */
  burst?: number;
  /**
   * Kinds tracked at once (default 256). Kinds are chosen by code, not by
   * clients, but a caller that builds them from input must not grow the map
   * without bound: past the cap, new kinds share one `other` window.
   */
  maxKinds?: number;
  /**
   * Write the summary line when a window with suppressed lines ends, not only
   * when the next line of its kind comes (default true). A flood that stops
   * still says how big it was. The timers are unref'd.
   */
  timers?: boolean;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
  level: LimitedLevel;
  msg: string;
  timer?: NodeJS.Timeout;
}

const OTHER = 'other';

/**
 * At most `burst` log lines per kind per interval, so a flood of bad packets
 * or refused requests cannot fill a disk or drown real events. The lines
 * past the burst are counted, and one summary line per window says how many
 * ("suppressed K similar lines") with the kind and the window's length.
 *
 * Ordinary lines carry `kind` and `suppressed` (always 0 since summaries
 * became lines of their own; kept so existing log readers see the field).
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private readonly burst: number;
  private readonly maxKinds: number;
  private readonly timers: boolean;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly clock: () => number = Date.now,
    opts: RateLimitOptions = {},
  ) {
    this.burst = Math.max(1, opts.burst ?? 1);
    this.maxKinds = Math.max(1, opts.maxKinds ?? 256);
    this.timers = opts.timers ?? true;
  }

  warn(kind: string, fields: Record<string, unknown>, msg: string): boolean {
    return this.write('warn', kind, fields, msg);
  }

  info(kind: string, fields: Record<string, unknown>, msg: string): boolean {
    return this.write('info', kind, fields, msg);
  }

  error(kind: string, fields: Record<string, unknown>, msg: string): boolean {
    return this.write('error', kind, fields, msg);
  }

  /** Writes the line unless its kind used up its burst in this window; true when written. */
  write(level: LimitedLevel, kind: string, fields: Record<string, unknown>, msg: string): boolean {
    const now = this.clock();
    let w = this.windows.get(kind);
    if (w && now - w.start >= this.intervalMs) {
      this.close(kind, w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= this.maxKinds) this.closeExpired(now);
      if (this.windows.size >= this.maxKinds) kind = OTHER;
      w = this.windows.get(kind);
      if (!w) {
        w = { start: now, written: 0, suppressed: 0, level, msg };
        this.windows.set(kind, w);
      }
    }
    if (w.written < this.burst) {
      w.written++;
      this.log[level]({ ...fields, kind, suppressed: 0 }, msg);
      return true;
    }
    w.suppressed++;
    if (this.timers && !w.timer) {
      const window = w;
      const key = kind;
      window.timer = setTimeout(
        () => {
          if (this.windows.get(key) === window) this.close(key, window);
        },
        Math.max(0, window.start + this.intervalMs - now),
      );
      window.timer.unref();
    }
    return false;
  }

  /** Lines of `kind` suppressed in its current window (0 when none or no window). */
  suppressed(kind: string): number {
    return this.windows.get(kind)?.suppressed ?? 0;
  }

  /** Ends every window now, writing the summaries still owed (a server's stop). */
  flush(): void {
    for (const [kind, w] of [...this.windows]) this.close(kind, w);
  }

  private closeExpired(now: number): void {
    for (const [kind, w] of [...this.windows]) if (now - w.start >= this.intervalMs) this.close(kind, w);
  }

  private close(kind: string, w: Window): void {
    if (w.timer) clearTimeout(w.timer);
    this.windows.delete(kind);
    if (w.suppressed > 0) {
      this.log[w.level]({ kind, suppressed: w.suppressed, intervalMs: this.intervalMs }, `suppressed ${w.suppressed} similar lines: ${w.msg}`);
    }
  }
}
