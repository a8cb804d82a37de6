// The central node's console shows its pods' own lines (a DHCP exchange, an
// install step), not only its own. Each pod instance writes its log straight
// to STATE/<pod>/instance.log (src/pod-vm/instance.ts: the supervisor never
// copies a busy pod's lines through its own loop, and the file is what the
// logs API reads); this relay follows those files from the node and writes
// their new lines to its console, as the console shows lines (JSON or pretty).
//
// Bounded: at most maxReadBytes a pod a poll; a pod more than maxBacklogBytes
// ahead of the console (a DHCP storm) has the excess skipped, and the node
// says how much. The files keep every line.
import type { Logger } from 'pino';
import type { LogConsole } from './log.js';
import { type FollowOptions, LogFollower } from './log-tail.js';

export interface LogRelayOptions extends FollowOptions {
  console: Pick<LogConsole, 'relay'>;
  /** the node's own logger: for a pod's lines that are not JSON log lines, and skipped bytes */
  log: Logger;
  /** how often the files are looked at (default 250 ms) */
  intervalMs?: number;
  /**
   * Bytes read a poll over every pod (default 1 MiB): a hundred pods in a
   * DHCP storm must not make the node spend its time on its console. Pods
   * left over are read first next time; one too far behind skips ahead.
   */
  maxBytesPerPoll?: number;
}

/** The part the supervisor drives: which pods' files to follow. */
export interface InstanceLogWatcher {
  /** From now on, `file`'s new lines are the pod's (what it held before is not shown). */
  track(pod: string, file: string): void;
  /** The pod is gone: its last lines are shown, then its file is no longer followed. */
  untrack(pod: string): Promise<void>;
}

export class InstanceLogRelay implements InstanceLogWatcher {
  private readonly followers = new Map<string, LogFollower>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  /** where the next poll starts in the list of pods */
  private next = 0;

  constructor(private readonly o: LogRelayOptions) {}

  track(pod: string, file: string): void {
    if (this.followers.has(pod)) return;
    // Synchronous, before the instance is spawned: its very first line is shown.
    this.followers.set(pod, LogFollower.fromEndSync(file, this.o));
  }

  async untrack(pod: string): Promise<void> {
    const f = this.followers.get(pod);
    if (!f) return;
    await this.flush();
    this.followers.delete(pod);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.o.intervalMs ?? 250);
    this.timer.unref();
  }

  /** Shows what is left in every file, then stops following them. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.followers.clear();
  }

  /** A poll that starts after everything written so far (not one already half-way). */
  private async flush(): Promise<void> {
    await this.polling;
    await this.poll();
  }

  /** One look at every followed file; polls never overlap (a slow disk only slows the console). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    let budget = this.o.maxBytesPerPoll ?? 1024 * 1024;
    const order = [...this.followers];
    // Round-robin: this poll starts where the last one ran out of budget.
    const first = this.next % Math.max(1, order.length);
    for (const [i, [pod, f]] of [...order.slice(first), ...order.slice(0, first)].entries()) {
      if (budget <= 0) {
        this.next = (first + i) % order.length;
        return;
      }
      try {
        const got = await f.poll();
        budget -= got.read;
        if (got.skipped) this.o.log.warn({ pod, skippedBytes: got.skipped, file: f.file }, "pod log lines not shown on the console (too many at once); they are in the pod's log");
        for (const line of got.lines) this.show(pod, line);
      } catch (err) {
        this.o.log.warn({ pod, err: (err as Error).message, file: f.file }, "could not read the pod's log for the console");
      }
    }
  }

  private show(pod: string, line: string): void {
    if (isJsonObject(line)) this.o.console.relay(line);
    // What the instance wrote on stderr (a crash's stack, a Node warning): the node says whose it is.
    else if (line.trim()) this.o.log.warn({ pod, output: line.slice(0, 2000) }, 'pod instance output');
  }
}

/** A pino line, by its shape: parsing every line of a busy pod here would cost the node for nothing. */
function isJsonObject(line: string): boolean {
  return line.startsWith('{') && line.trimEnd().endsWith('}');
}
