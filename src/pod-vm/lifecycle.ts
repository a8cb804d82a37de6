// The life of one pod instance as the supervisor drives it, as a pure
// transition table (PodInstanceProcess in instance.ts goes through it):
//
//   stopped ─start→ starting ─spawned→ starting ─reported→ running ⇄ degraded
//   starting, running, degraded ─end→ stopping ─exited(stop)→ stopped
//                                      stopping ─exited(restart)→ starting
//   starting, running, degraded ─exited(backoff)→ crashed | crash-loop
//   starting ─start-failed→ crashed | crash-loop          ─start→ starting
//   stopped, starting, crashed, crash-loop ─cancel→ stopped
//
// A process is alive in starting (once spawned), running, degraded and
// stopping; never in stopped, crashed or crash-loop. What the operator sees
// adds display states on top (busy, error, upgrading: see displayState in
// instance.ts); they are never the state an event moves from.

/** The states the lifecycle moves between. */
export const LIFECYCLE_STATES = ['stopped', 'starting', 'running', 'degraded', 'stopping', 'crashed', 'crash-loop'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/** States shown for a live instance on top of its lifecycle state; never moved from. */
export const DISPLAY_ONLY_STATES = ['busy', 'error', 'upgrading'] as const;
export type InstanceState = LifecycleState | (typeof DISPLAY_ONLY_STATES)[number];

export type LifecycleEvent =
  /** a start begins: wait for a start slot, then prepare (netns, cgroups, certificate) and spawn */
  | { type: 'start' }
  /** the process was spawned; not ready yet */
  | { type: 'spawned' }
  /** a ready message or a heartbeat, with the degrade flag the instance reports */
  | { type: 'reported'; degraded: boolean }
  /** the supervisor asks the process to end (SIGTERM), to stop it or to restart it */
  | { type: 'end' }
  /**
   * The process exited: `stop` and `restart` when the supervisor ended it for
   * that, `backoff` when it ended on its own or was killed as hung.
   */
  | { type: 'exited'; after: 'stop' | 'restart' | 'backoff'; crashLoop?: boolean }
  /** a start failed before any process ran (its preparation threw) */
  | { type: 'start-failed'; crashLoop: boolean }
  /** a stop with no process: a pending start or a backoff wait is dropped */
  | { type: 'cancel' };

export type LifecycleEventType = LifecycleEvent['type'];

export type LifecycleTransition = { ok: true; next: LifecycleState } | { ok: false; reason: string };

const LIVE: ReadonlySet<LifecycleState> = new Set(['starting', 'running', 'degraded']);
const WAITING: ReadonlySet<LifecycleState> = new Set(['stopped', 'crashed', 'crash-loop']);

/** The state `event` leads to from `state`, or why it cannot happen there. Pure. */
export function next(state: LifecycleState, event: LifecycleEvent): LifecycleTransition {
  const to = (n: LifecycleState): LifecycleTransition => ({ ok: true, next: n });
  const refuse = (): LifecycleTransition => ({ ok: false, reason: `${describe(event)} is not possible while ${state}` });
  const backoff = (crashLoop: boolean | undefined) => to(crashLoop ? 'crash-loop' : 'crashed');
  switch (event.type) {
    case 'start':
      return WAITING.has(state) ? to('starting') : refuse();
    case 'spawned':
      return state === 'starting' ? to('starting') : refuse();
    case 'reported':
      if (LIVE.has(state)) return to(event.degraded ? 'degraded' : 'running');
      // A heartbeat sent before the instance saw its SIGTERM: still stopping.
      return state === 'stopping' ? to('stopping') : refuse();
    case 'end':
      return LIVE.has(state) || state === 'stopping' ? to('stopping') : refuse();
    case 'exited':
      if (event.after === 'backoff') return LIVE.has(state) ? backoff(event.crashLoop) : refuse();
      if (state !== 'stopping') return refuse();
      return to(event.after === 'stop' ? 'stopped' : 'starting');
    case 'start-failed':
      return state === 'starting' ? backoff(event.crashLoop) : refuse();
    case 'cancel':
      return WAITING.has(state) || state === 'starting' ? to('stopped') : refuse();
  }
}

function describe(e: LifecycleEvent): string {
  return e.type === 'exited' ? `exited (${e.after})` : e.type;
}
