import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { exitLogLine } from '../../../src/pod-vm/exit-line.js';

describe('exitLogLine: the line that says why an instance exited', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-exitline-'));
  const file = join(dir, 'instance.log');
  afterEach(() => rmSync(file, { force: true }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const info = (msg: string) => JSON.stringify({ level: 'info', pod: 'p', msg });
  const error = (msg: string) => JSON.stringify({ level: 'error', pod: 'p', msg });

  it('prefers the error over the shutdown line logged after it', () => {
    writeFileSync(file, [info('starting'), error('bind EADDRNOTAVAIL 10.99.0.9:67'), info('pod instance stopped'), ''].join('\n'));
    expect(exitLogLine(file, 0)).toContain('EADDRNOTAVAIL');
  });

  it('takes a plain stderr line (not JSON) as an error', () => {
    writeFileSync(file, [info('pod instance stopped'), 'podboot pod run: bind EADDRNOTAVAIL 10.99.0.9:67', info('late flush'), ''].join('\n'));
    expect(exitLogLine(file, 0)).toBe('podboot pod run: bind EADDRNOTAVAIL 10.99.0.9:67');
  });

  it('falls back to the last line when nothing was an error', () => {
    writeFileSync(file, [info('one'), info('two'), ''].join('\n'));
    expect(exitLogLine(file, 0)).toBe(info('two'));
  });

  it('ignores what an earlier run wrote before `from`', () => {
    writeFileSync(file, error('an old run failed') + '\n');
    const from = Buffer.byteLength(error('an old run failed') + '\n');
    appendFileSync(file, info('this run ended quietly') + '\n');
    expect(exitLogLine(file, from)).toBe(info('this run ended quietly'));
    expect(exitLogLine(file, Buffer.byteLength(readAll()))).toBeUndefined();
  });

  it('a log rotated (truncated) since the run began is read from its start', () => {
    writeFileSync(file, error('bind EADDRINUSE') + '\n');
    expect(exitLogLine(file, 1_000_000)).toContain('EADDRINUSE');
  });

  it('does not take the cut-off head of a long tail for a stderr line', () => {
    writeFileSync(file, info('x'.repeat(20_000)) + '\n' + info('last') + '\n');
    expect(exitLogLine(file, 0)).toBe(info('last'));
  });

  it('a missing file gives no line, not an exception', () => {
    expect(exitLogLine(join(dir, 'absent.log'), 0)).toBeUndefined();
  });

  function readAll(): string {
    return [error('an old run failed'), info('this run ended quietly'), ''].join('\n');
  }
});
