// The life of a task as a transition table, as the install life is
// (src/install/state.ts): pure, so the HTTP handlers, the deadline timer and
// an operator's cancel (from another process) all decide the same way.

export const TASK_STATES = ['queued', 'delivered', 'running', 'succeeded', 'failed', 'timed-out', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const OPEN_STATES: readonly TaskState[] = ['queued', 'delivered', 'running'];
export const FINAL_STATES: readonly TaskState[] = ['succeeded', 'failed', 'timed-out', 'cancelled'];

export type TaskEvent =
  /** the agent's long-poll handed out the task's id */
  | { kind: 'deliver' }
  /** the agent checked the script's sha256 and started it */
  | { kind: 'start' }
  /** the script ended with `code`; `ruleFailed` when a `fail` rule matched its output */
  | { kind: 'exit'; code: number; ruleFailed: boolean }
  /** the agent could not run it (a sha256 that does not match, no shell) */
  | { kind: 'error' }
  | { kind: 'timeout' }
  | { kind: 'cancel' };

export type TaskTransition = { ok: true; next: TaskState; changed: boolean } | { ok: false; reason: string };

export function isFinal(state: TaskState): boolean {
  return (FINAL_STATES as readonly string[]).includes(state);
}

export function taskTransition(state: TaskState, event: TaskEvent): TaskTransition {
  if (isFinal(state)) return { ok: false, reason: `task is ${state}` };
  const to = (next: TaskState): TaskTransition => ({ ok: true, next, changed: next !== state });
  switch (event.kind) {
    case 'deliver':
      // An agent that restarted before starting it asks again and gets it again: nothing ran yet.
      if (state === 'queued' || state === 'delivered') return to('delivered');
      return { ok: false, reason: `task is ${state}: never handed out twice once running` };
    case 'start':
      if (state === 'delivered') return to('running');
      if (state === 'running') return to('running');
      return { ok: false, reason: `task is ${state}: fetch it first` };
    case 'exit':
      if (state !== 'running') return { ok: false, reason: `task is ${state}: not running` };
      return to(event.code === 0 && !event.ruleFailed ? 'succeeded' : 'failed');
    case 'error':
      return state === 'queued' ? { ok: false, reason: 'task is queued: not delivered' } : to('failed');
    case 'timeout':
      return to('timed-out');
    case 'cancel':
      return to('cancelled');
  }
}
