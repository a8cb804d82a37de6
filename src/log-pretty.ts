// The console's readable form of a log line (`podboot serve` and `pod run` on
// a terminal, `podboot logs`): pure, one JSON line in, one text line out, so
// the same function serves pino's destination, the relay of pod instances'
// lines and the CLI. What is written to files and sent by the API stays JSON.

/**
 * Field names whose values are secrets. The logger redacts them at the root
 * and one level down (src/log.ts); the formatter does the same again for
 * lines it did not write itself (a pod's, read back from its log file).
 */
export const SECRET_FIELDS = ['token', 'secret', 'key', 'password', 'authorization'] as const;
export const REDACTED = '[redacted]';

export interface PrettyOptions {
  /** ANSI colours for the level (a terminal that wants them) */
  color?: boolean;
  /** the date before the time (lines that may span days: `podboot logs`) */
  date?: boolean;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const COLORS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '1;31' };
/** Shown in their own columns, not among the remaining fields. */
const COLUMNS = new Set(['time', 'level', 'msg', 'pod', 'node', 'mac']);
const SECRETS: ReadonlySet<string> = new Set(SECRET_FIELDS);

/**
 * `12:00:01.123Z INFO  rack-a 52:54:00:00:00:01 DHCPACK address=10.0.0.5 …`:
 * time (UTC, as logged), level, where it comes from (the pod, or the central
 * node and the pod it is about), the server's MAC when the line is about one,
 * the message, then every other field as key=value. A line that is not a JSON
 * log record (a stack trace on stderr, a blank line) comes back unchanged.
 */
export function formatLogLine(line: string, opts: PrettyOptions = {}): string {
  const rec = parseRecord(line);
  if (!rec) return line;
  const level = levelName(rec.level);
  const parts: string[] = [];
  const time = timeText(rec.time, opts.date === true);
  if (time) parts.push(time);
  const label = level.toUpperCase().padEnd(5);
  parts.push(opts.color && COLORS[level] ? `\x1b[${COLORS[level]}m${label}\x1b[0m` : label);
  const where = [rec.node, rec.pod].filter((v) => typeof v === 'string' && v !== '').join('/');
  if (where) parts.push(where);
  if (typeof rec.mac === 'string' && rec.mac) parts.push(rec.mac);
  parts.push(String(rec.msg));
  let stack = '';
  for (const [k, raw] of Object.entries(rec)) {
    if (COLUMNS.has(k)) continue;
    const v = redact(k, raw, 1);
    if (k === 'err' && isErrorObject(v)) {
      parts.push(`err=${value(v.message)}`);
      // The first line of a stack repeats the message; the frames go under the line.
      const frames = v.stack.split('\n').slice(1);
      if (frames.length) stack = '\n' + frames.map((f) => `    ${f.trim()}`).join('\n');
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  return parts.join(' ') + stack;
}

type LogRecord = Record<string, unknown> & { msg: string };

/** A JSON object with a message: pino's lines, a pod's, and the API's wrapped output lines. */
function parseRecord(line: string): LogRecord | undefined {
  const t = line.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { msg?: unknown }).msg !== 'string') return undefined;
    return v as LogRecord;
  } catch {
    return undefined;
  }
}

function levelName(level: unknown): string {
  if (typeof level === 'number') return LEVELS[level] ?? String(level);
  return typeof level === 'string' && level ? level : '-';
}

/** The ISO time as logged, cut to the time of day (and the date when asked); no time, no column. */
function timeText(time: unknown, date: boolean): string | undefined {
  const d = typeof time === 'string' ? time : typeof time === 'number' ? new Date(time).toISOString() : undefined;
  const m = d?.match(/^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?$/);
  if (!m) return d;
  return `${date ? `${m[1]} ` : ''}${m[2]}${m[3] ?? ''}`;
}

/** Secrets' values hidden, at the root and `depth` levels below it (the logger's own paths are root and one). */
function redact(key: string, v: unknown, depth: number): unknown {
  if (SECRETS.has(key)) return REDACTED;
  if (depth <= 0 || typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(k, x, depth - 1)]));
}

function isErrorObject(v: unknown): v is { message: string; stack: string } {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string' && typeof (v as { stack?: unknown }).stack === 'string';
}

/** Bare when it reads unambiguously, JSON otherwise (strings with blanks, quotes or `=`, objects). */
function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (v === undefined) return 'undefined';
  return JSON.stringify(v);
}
