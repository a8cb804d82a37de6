// The task life as a transition table, and output chunks by offset.
import { describe, expect, it } from 'vitest';
import { planChunk, splitLines } from '../../../src/tasks/chunks.js';
import { FINAL_STATES, taskTransition, type TaskState } from '../../../src/tasks/state.js';

describe('task states', () => {
  const next = (s: TaskState, e: Parameters<typeof taskTransition>[1]) => {
    const t = taskTransition(s, e);
    return t.ok ? t.next : `refused: ${t.reason}`;
  };

  it('queued → delivered → running → succeeded | failed', () => {
    expect(next('queued', { kind: 'deliver' })).toBe('delivered');
    expect(next('delivered', { kind: 'deliver' })).toBe('delivered');
    expect(next('delivered', { kind: 'start' })).toBe('running');
    expect(next('running', { kind: 'exit', code: 0, ruleFailed: false })).toBe('succeeded');
    expect(next('running', { kind: 'exit', code: 3, ruleFailed: false })).toBe('failed');
    // exit 0, but a `fail` rule matched its output
    expect(next('running', { kind: 'exit', code: 0, ruleFailed: true })).toBe('failed');
    expect(next('delivered', { kind: 'error' })).toBe('failed');
  });

  it('never runs a script twice, never starts what was not delivered', () => {
    expect(next('running', { kind: 'deliver' })).toMatch(/^refused: .*never handed out twice/);
    expect(next('queued', { kind: 'start' })).toMatch(/^refused/);
    expect(next('delivered', { kind: 'exit', code: 0, ruleFailed: false })).toMatch(/^refused/);
  });

  it('timeout and cancel end any open task; a final state is final', () => {
    for (const s of ['queued', 'delivered', 'running'] as const) {
      expect(next(s, { kind: 'timeout' })).toBe('timed-out');
      expect(next(s, { kind: 'cancel' })).toBe('cancelled');
    }
    for (const s of FINAL_STATES)
      for (const e of [{ kind: 'deliver' }, { kind: 'start' }, { kind: 'timeout' }, { kind: 'cancel' }, { kind: 'exit', code: 0, ruleFailed: false }] as const)
        expect(next(s, e)).toBe(`refused: task is ${s}`);
  });
});

describe('output chunks by offset', () => {
  it('appends at the end; a retried chunk is accepted and not stored twice; an overlapping one adds only its new bytes', () => {
    expect(planChunk(0, 0, 10, 100)).toEqual({ kind: 'append', skip: 0, take: 10, length: 10 });
    expect(planChunk(10, 0, 10, 100)).toEqual({ kind: 'duplicate', length: 10 });
    expect(planChunk(10, 5, 5, 100)).toEqual({ kind: 'duplicate', length: 10 });
    expect(planChunk(10, 5, 10, 100)).toEqual({ kind: 'append', skip: 5, take: 5, length: 15 });
    // an empty chunk at the end: the agent asking how things stand
    expect(planChunk(10, 10, 0, 100)).toEqual({ kind: 'duplicate', length: 10 });
  });

  it('a gap is refused with the stored length; past the cap is too large', () => {
    expect(planChunk(10, 11, 5, 100)).toEqual({ kind: 'gap', length: 10 });
    expect(planChunk(10, 10, 91, 100)).toEqual({ kind: 'too-large', length: 10 });
    expect(planChunk(10, 10, 90, 100)).toMatchObject({ kind: 'append', length: 100 });
  });

  it('splits whole lines; a partial one waits unless final or too long', () => {
    expect(splitLines(Buffer.from('a\r\nb\npart'), false, 100)).toEqual({ lines: ['a', 'b'], consumed: 5 });
    expect(splitLines(Buffer.from('a\r\nb\npart'), true, 100)).toEqual({ lines: ['a', 'b', 'part'], consumed: 9 });
    expect(splitLines(Buffer.from('abcdefg'), false, 3)).toEqual({ lines: ['abc', 'def'], consumed: 6 });
    expect(splitLines(Buffer.from(''), true, 3)).toEqual({ lines: [], consumed: 0 });
  });
});
