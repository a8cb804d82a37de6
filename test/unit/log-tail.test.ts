// Reading pods' log files for the logs API and the node's console (issue 20):
// the last N lines read backwards, never the whole file; a follower of what
// is appended, across rotation; the console relay of a pod's new lines.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { answerLine, lineIsAbout, parseLogsQuery } from '../../src/api/logs-query.js';
import { matchRoute } from '../../src/api/routes.js';
import { InstanceLogRelay } from '../../src/log-relay.js';
import { LogFollower, MAX_LINE_BYTES, tailLines } from '../../src/log-tail.js';
import { captureLogger } from '../helpers/logs.js';

const dir = mkdtempSync(join(tmpdir(), 'pb-log-tail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (text = '') => {
  const f = join(dir, `f${++n}.log`);
  writeFileSync(f, text);
  return f;
};
const numbered = (from: number, to: number, pad = 0) => Array.from({ length: to - from }, (_, i) => `line ${from + i} ${'x'.repeat(pad)}`);

describe('tailLines', () => {
  it('the last N lines, oldest first, across many 64 KiB chunks; end is just after the last line', async () => {
    const all = numbered(0, 20_000, 30);
    const f = fresh(all.join('\n') + '\n');
    const t = await tailLines([f], { lines: 5000 });
    expect(t.lines).toEqual(all.slice(-5000));
    expect(t.end).toBe(Buffer.byteLength(all.join('\n') + '\n'));
    expect((await tailLines([f], { lines: 1_000_000 })).lines).toEqual(all);
    expect((await tailLines([f], { lines: 0 })).lines).toEqual([]);
  });

  it('an unfinished last line is not a line yet: end stops before it', async () => {
    const f = fresh('a\nb\nhalf-writ');
    const t = await tailLines([f], { lines: 10 });
    expect(t.lines).toEqual(['a', 'b']);
    expect(t.end).toBe(4);
    // All of it one unfinished line: nothing, and a follower starts at 0.
    expect(await tailLines([fresh('no newline yet')], { lines: 10 })).toMatchObject({ lines: [], end: 0 });
  });

  it('only matching lines count, and a file with fewer goes on into the rotated copy', async () => {
    const f = fresh(['{"mac":"m1","msg":"4"}', '{"mac":"m2","msg":"5"}', '{"mac":"m1","msg":"6"}'].join('\n') + '\n');
    writeFileSync(`${f}.1`, ['{"mac":"m1","msg":"1"}', '{"mac":"m1","msg":"2"}', '{"mac":"m2","msg":"3"}'].join('\n') + '\n');
    const t = await tailLines([f, `${f}.1`], { lines: 3, match: (l) => lineIsAbout(l, 'm1') });
    expect(t.lines.map((l) => JSON.parse(l).msg)).toEqual(['2', '4', '6']);
    expect(t.end).toBe(Buffer.byteLength(readFileSync(f)));
    // A missing newest file: the rotated copy alone.
    expect((await tailLines([join(dir, 'absent.log'), `${f}.1`], { lines: 2 })).lines.map((l) => JSON.parse(l).msg)).toEqual(['2', '3']);
  });

  it('stops after maxScanBytes: a filter that matches nothing does not read a huge file whole', async () => {
    const f = fresh(numbered(0, 50_000, 40).join('\n') + '\n');
    const t = await tailLines([f], { lines: 10, match: (l) => l.startsWith('line 0 '), maxScanBytes: 256 * 1024 });
    expect(t.lines).toEqual([]);
    expect((await tailLines([f], { lines: 10, match: (l) => l.startsWith('line 49990 ') })).lines).toHaveLength(1);
  });

  it('a line longer than the limit is left out, the lines around it are whole', async () => {
    const long = 'y'.repeat(MAX_LINE_BYTES + 200_000);
    const f = fresh(['before-1', 'before-2', long, 'after-1', 'after-2'].join('\n') + '\n');
    expect((await tailLines([f], { lines: 10 })).lines.map((l) => l.slice(0, 20))).toEqual(['before-1', 'before-2', 'after-1', 'after-2']);
    // The long line starting exactly on a chunk boundary (the file is read in 64 KiB chunks from its end).
    const head = 'h'.repeat(1000);
    const g = fresh(`first\n${head}\n${'z'.repeat(5 * 64 * 1024 - 6)}\nlast\n`);
    const short = (ls: string[]) => ls.map((l) => `${l.slice(0, 5)}…${l.length}`);
    expect(short((await tailLines([g], { lines: 10 })).lines)).toEqual(short(['first', head, 'last']));
  });

  it('never through a symlink', async () => {
    const target = fresh('secret\n');
    const link = join(dir, 'link.log');
    symlinkSync(target, link);
    expect((await tailLines([link], { lines: 10 })).lines).toEqual([]);
  });
});

describe('LogFollower', () => {
  it('hands over appended lines once whole, and reads a rotated (truncated) or replaced file from its start', async () => {
    const f = fresh('old 1\nold 2\n');
    const t = await tailLines([f], { lines: 1 });
    const follower = new LogFollower(f, t.end, t.id);
    expect((await follower.poll()).lines).toEqual([]);
    appendFileSync(f, 'new 1\nnew 2 par');
    expect((await follower.poll()).lines).toEqual(['new 1']);
    appendFileSync(f, 'tial\n');
    expect((await follower.poll()).lines).toEqual(['new 2 partial']);
    // Rotation: copied away, then truncated; the next lines start the file again.
    truncateSync(f, 0);
    appendFileSync(f, 'after rotation\n');
    expect((await follower.poll()).lines).toEqual(['after rotation']);
    // Replaced by another file under the same name.
    rmSync(f);
    writeFileSync(f, 'replacement 1\nreplacement 2\n' + 'pad\n'.repeat(10));
    expect((await follower.poll()).lines.slice(0, 2)).toEqual(['replacement 1', 'replacement 2']);
  });

  it('far behind, it skips ahead (and says how much) rather than read without bound', async () => {
    const f = fresh('');
    const follower = await LogFollower.fromEnd(f, { maxBacklogBytes: 1000, maxReadBytes: 4096 });
    appendFileSync(f, numbered(0, 1000).join('\n') + '\n');
    const got = await follower.poll();
    expect(got.skipped).toBeGreaterThan(0);
    // Whole lines only, the newest ones, and nothing read twice or lost after.
    expect(got.lines.at(-1)).toBe('line 999 ');
    for (const l of got.lines) expect(l).toMatch(/^line \d+ $/);
    appendFileSync(f, 'next\n');
    expect(await follower.poll()).toEqual({ lines: ['next'], skipped: 0, read: 5 });
  });
});

describe('InstanceLogRelay', () => {
  it("shows a pod's lines written after track (not before), says whose non-JSON output is, and the last lines at untrack", async () => {
    const f = fresh('{"msg":"before the relay"}\n');
    const shown: string[] = [];
    const { log, lines } = captureLogger({ node: 'central' });
    const relay = new InstanceLogRelay({ console: { relay: (l) => shown.push(l) }, log });
    relay.track('rack-a', f);
    const late = join(dir, 'later.log');
    relay.track('rack-b', late);
    appendFileSync(f, '{"pod":"rack-a","msg":"DHCPACK"}\nUncaught Error: boom\n');
    writeFileSync(late, '{"pod":"rack-b","msg":"first line of a new file"}\n');
    await relay.poll();
    expect(shown).toEqual(['{"pod":"rack-a","msg":"DHCPACK"}', '{"pod":"rack-b","msg":"first line of a new file"}']);
    expect(lines).toMatchObject([{ level: 'warn', pod: 'rack-a', output: 'Uncaught Error: boom', msg: 'pod instance output' }]);
    appendFileSync(f, '{"pod":"rack-a","msg":"pod instance stopped"}\n');
    await relay.untrack('rack-a');
    expect(shown.at(-1)).toBe('{"pod":"rack-a","msg":"pod instance stopped"}');
    appendFileSync(f, '{"pod":"rack-a","msg":"not followed any more"}\n');
    await relay.stop();
    expect(shown).not.toContain('{"pod":"rack-a","msg":"not followed any more"}');
  });
  it('reads a bounded number of bytes a poll over every pod, taking turns so none is starved', async () => {
    const [a, b] = [fresh(), fresh()];
    const shown: string[] = [];
    const relay = new InstanceLogRelay({ console: { relay: (l) => shown.push(l) }, log: captureLogger().log, maxBytesPerPoll: 10 });
    relay.track('a', a);
    relay.track('b', b);
    appendFileSync(a, '{"msg":"a1"}\n');
    appendFileSync(b, '{"msg":"b1"}\n');
    await relay.poll();
    expect(shown).toEqual(['{"msg":"a1"}']);
    appendFileSync(a, '{"msg":"a2"}\n');
    await relay.poll();
    expect(shown).toEqual(['{"msg":"a1"}', '{"msg":"b1"}']);
    await relay.poll();
    expect(shown).toEqual(['{"msg":"a1"}', '{"msg":"b1"}', '{"msg":"a2"}']);
    await relay.stop();
  });
});

describe('GET /api/v1/pods/{pod}/logs: the query', () => {
  it('is routed with its query; server is a MAC in canonical form, lines bounded, follow 1/0', () => {
    expect(matchRoute('GET', '/api/v1/pods/rack-a/logs?server=52-54-00-AA-00-01&lines=20&follow=1')).toEqual({
      kind: 'logs',
      pod: 'rack-a',
      query: { server: '52:54:00:aa:00:01', lines: 20, follow: true },
    });
    expect(matchRoute('GET', '/api/v1/pods/rack-a/logs')).toEqual({ kind: 'logs', pod: 'rack-a', query: { lines: 100, follow: false } });
    expect(matchRoute('POST', '/api/v1/pods/rack-a/logs')).toEqual({ kind: 'method-not-allowed', allow: 'GET' });
    expect(parseLogsQuery(new URLSearchParams('lines=999999')).lines).toBe(10_000);
    expect(parseLogsQuery(new URLSearchParams('server=nope')).invalid).toMatch(/server must be a MAC/);
    expect(parseLogsQuery(new URLSearchParams('lines=-1')).invalid).toMatch(/lines must be/);
    expect(parseLogsQuery(new URLSearchParams('follow=maybe')).invalid).toMatch(/follow must be/);
  });

  it('a line is about a server by its mac field only; what is not JSON is carried in a JSON line', () => {
    expect(lineIsAbout('{"mac":"52:54:00:00:00:01","msg":"DHCPACK"}', '52:54:00:00:00:01')).toBe(true);
    expect(lineIsAbout('{"mac":"52:54:00:00:00:02","msg":"about 52:54:00:00:00:01"}', '52:54:00:00:00:01')).toBe(false);
    expect(lineIsAbout('stderr 52:54:00:00:00:01', '52:54:00:00:00:01')).toBe(false);
    expect(answerLine('rack-a', '{"msg":"x"}')).toBe('{"msg":"x"}');
    expect(JSON.parse(answerLine('rack-a', 'Error: boom'))).toEqual({ pod: 'rack-a', level: 'warn', msg: 'pod instance output', output: 'Error: boom' });
  });
});
