// When to start a pod instance again after it exited on its own. Pure: the
// supervisor passes the history of recent exits and the clock.

export interface BackoffPolicy {
  /** delay after the first unexpected exit */
  initialMs: number;
  /** the delay doubles per consecutive failure up to this */
  maxMs: number;
  /** a run at least this long counts as healthy and resets the failure streak */
  stableMs: number;
  /** this many failures in a row, each shorter than stableMs, is a crash loop */
  crashLoopAfter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 60_000, stableMs: 30_000, crashLoopAfter: 5 };

export interface RestartDecision {
  delayMs: number;
  /** failures in a row, this one included */
  streak: number;
  crashLoop: boolean;
}

/**
 * `streak` is the number of consecutive short runs before this exit;
 * `ranMs` is how long the run that just ended lasted.
 */
export function nextRestart(policy: BackoffPolicy, streak: number, ranMs: number): RestartDecision {
  // A long healthy run means this crash is news, not a loop: start over from the shortest delay.
  const s = ranMs >= policy.stableMs ? 1 : streak + 1;
  const delayMs = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(s - 1, 30));
  // A crash loop keeps retrying (at the longest delay) so a pod whose cause
  // went away (a port freed, a disk emptied) comes back without an operator.
  return { delayMs, streak: s, crashLoop: s >= policy.crashLoopAfter };
}
