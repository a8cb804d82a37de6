// GET /api/v1/pods/{pod}/logs: a pod's own log lines (STATE/<pod>/instance.log
// and its rotated copy), newline-delimited JSON, for `podboot logs`. The last
// N lines are read backwards from the end, never the whole file; with
// follow=1 the answer stays open and carries each line the pod writes after
// them, until the client goes (or the node stops).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { LogFollower, tailLines } from '../log-tail.js';
import { answerLine, lineIsAbout, type LogsQuery } from './logs-query.js';

/** Open follows at once across clients; each holds a timer and a connection. */
const MAX_FOLLOWS = 64;
/** Bytes read backwards at most for one answer (a server filter that matches little stops here). */
const MAX_SCAN_BYTES = 128 * 1024 * 1024;
let follows = 0;

export interface PodLogsOptions {
  stateRoot: string;
  pod: string;
  query: LogsQuery;
  /** how often a follow looks for new lines (default 250 ms) */
  pollMs?: number;
  /** headers on the answer besides type and cache control */
  headers?: Record<string, string>;
}

/** The pod's log files, newest first. */
export function podLogFiles(stateRoot: string, pod: string): string[] {
  const file = join(stateRoot, pod, 'instance.log');
  return [file, `${file}.1`];
}

/** Answers the request; the caller checked the token, that the pod exists and that the query is valid. */
export async function sendPodLogs(req: IncomingMessage, res: ServerResponse, o: PodLogsOptions): Promise<void> {
  const q = o.query;
  if (q.follow && follows >= MAX_FOLLOWS) {
    const text = JSON.stringify({ error: `too many logs followed at once (${MAX_FOLLOWS})` });
    res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store', ...o.headers });
    return void res.end(text);
  }
  // Known from the start: a client may go while the tail is read.
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const files = podLogFiles(o.stateRoot, o.pod);
  const match = q.server ? (line: string) => lineIsAbout(line, q.server!) : undefined;
  const tail = await tailLines(files, { lines: q.lines, match, maxScanBytes: MAX_SCAN_BYTES });
  res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', ...o.headers });
  if (req.method === 'HEAD') return void res.end();
  const text = tail.lines.map((l) => answerLine(o.pod, l) + '\n').join('');
  if (!q.follow) return void res.end(text);
  follows++;
  try {
    if (text) res.write(text);
    // The status and what there is so far reach the client now, not with the first new line.
    else res.flushHeaders();
    const f = new LogFollower(files[0]!, tail.end, tail.id, { maxReadBytes: 1024 * 1024, maxBacklogBytes: 4 * 1024 * 1024 });
    await follow(res, f, gone.signal, o, match);
  } finally {
    follows--;
  }
}

async function follow(res: ServerResponse, f: LogFollower, gone: AbortSignal, o: PodLogsOptions, match?: (line: string) => boolean): Promise<void> {
  while (!gone.aborted) {
    const got = await f.poll();
    let text = '';
    if (got.skipped) text += JSON.stringify({ pod: o.pod, level: 'warn', msg: 'log lines skipped: this reader fell behind the pod', skippedBytes: got.skipped }) + '\n';
    for (const line of got.lines) if (line.trim() && (!match || match(line))) text += answerLine(o.pod, line) + '\n';
    if (text && !res.write(text)) {
      // A slow reader: wait for it rather than buffer without bound.
      await new Promise<void>((resolve) => {
        const go = () => {
          res.off('drain', go);
          gone.removeEventListener('abort', go);
          resolve();
        };
        res.once('drain', go);
        gone.addEventListener('abort', go);
      });
      continue;
    }
    await sleep(o.pollMs ?? 250, gone);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
