// GET /api/v1/pods/{pod}/logs: what is asked (pure, for the route table and
// its tests) and which lines answer it. The handler is src/api/logs.ts.
import { normalizeMac } from '../net/mac.js';

export const DEFAULT_LOG_LINES = 100;
export const MAX_LOG_LINES = 10_000;

export interface LogsQuery {
  /** only lines about this server (their `mac` field), canonical form */
  server?: string;
  /** the last this many (matching) lines before following */
  lines: number;
  /** keep the answer open and stream new lines as the pod writes them */
  follow: boolean;
  /** why the query cannot be answered (400) */
  invalid?: string;
}

export function parseLogsQuery(q: URLSearchParams): LogsQuery {
  const out: LogsQuery = { lines: DEFAULT_LOG_LINES, follow: false };
  const server = q.get('server');
  if (server !== null && server !== '') {
    out.server = normalizeMac(server);
    if (!out.server) out.invalid = `server must be a MAC address, not ${server.slice(0, 40)}`;
  }
  const lines = q.get('lines');
  if (lines !== null && lines !== '') {
    const n = Number(lines);
    if (!Number.isInteger(n) || n < 0) out.invalid ??= `lines must be a whole number, not ${lines.slice(0, 40)}`;
    else out.lines = Math.min(n, MAX_LOG_LINES);
  }
  const follow = q.get('follow');
  if (follow !== null) {
    if (['1', 'true', ''].includes(follow)) out.follow = true;
    else if (!['0', 'false'].includes(follow)) out.invalid ??= `follow must be 1 or 0, not ${follow.slice(0, 40)}`;
  }
  return out;
}

/** Whether a log line is about `mac` (its `mac` field; a line that is not JSON is about no server). */
export function lineIsAbout(line: string, mac: string): boolean {
  // Most lines are about no server or another one: no parse for those.
  if (!line.includes(mac)) return false;
  try {
    return (JSON.parse(line) as { mac?: unknown }).mac === mac;
  } catch {
    return false;
  }
}

/**
 * One line of the answer: the pod's JSON line as it wrote it, or for what it
 * wrote that is not JSON (a crash's stack on stderr), a JSON line carrying it,
 * so every line of the answer parses.
 */
export function answerLine(pod: string, line: string): string {
  if (line.startsWith('{')) {
    try {
      const v = JSON.parse(line) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return line;
    } catch {
      // wrapped below
    }
  }
  return JSON.stringify({ pod, level: 'warn', msg: 'pod instance output', output: line });
}
