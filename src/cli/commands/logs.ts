import { parseArgs } from 'node:util';
import { isatty } from 'node:tty';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { CONNECT, connectOptions, fail, target } from './pods.js';
import { getApi, streamLines, type StreamEnd } from '../../api/client-stream.js';
import type { ApiTarget } from '../../api/client.js';
import { DEFAULT_LOG_LINES, MAX_LOG_LINES } from '../../api/logs-query.js';
import { formatLogLine } from '../../log-pretty.js';
import { normalizeMac } from '../../net/mac.js';
import { stopOnSignal } from '../signals.js';

export const logsCommand: Command = {
  summary: "pods' own log lines through the central API: DHCP, TFTP, HTTP, install steps; --follow for new ones",
  usage: `usage: podboot logs [--pod POD] [--server MAC] [--lines N] [--follow] [--json]
                    [--state DIR | --url … --ca … --token-file …]

The pod instances' log lines (each pod's STATE/<pod>/instance.log, read by the
central node; nothing is read whole: the last lines come from the end of the
file), one readable line each: time (UTC), level, pod, server MAC, message,
the other fields. Without --pod, every pod's, merged by time.

  --pod POD          only this pod's lines
  --server MAC       only lines about this server (their mac field)
  --lines N          the last N lines (default ${DEFAULT_LOG_LINES}, at most ${MAX_LOG_LINES}; 0 for none)
  --follow           then print each new line as the pods write it, until
                     interrupted (Ctrl-C, SIGTERM: exit 0); pods that start
                     afterwards are not followed
${CONNECT}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...connectOptions, pod: { type: 'string' }, server: { type: 'string' }, lines: { type: 'string' }, follow: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const server = values.server === undefined ? undefined : normalizeMac(values.server);
    if (values.server !== undefined && !server) throw new UsageError(`--server must be a MAC address, not ${values.server}`);
    const lines = Number(values.lines ?? DEFAULT_LOG_LINES);
    if (!Number.isInteger(lines) || lines < 0 || lines > MAX_LOG_LINES) throw new UsageError(`--lines must be a whole number from 0 to ${MAX_LOG_LINES}, not ${values.lines}`);
    const t = target(values);
    const stop = stopOnSignal();
    try {
      let pods: string[];
      if (values.pod) pods = [values.pod];
      else {
        const r = await getApi(t, '/api/v1/pods', stop.signal);
        if (r.status !== 200) return fail(r.status, r.body);
        pods = (r.body as { pods: { name: string }[] }).pods.map((p) => p.name);
      }
      const color = !values.json && isatty(1) && !process.env.NO_COLOR;
      const print = (line: string) => process.stdout.write((values.json ? line : formatLogLine(line, { date: true, color })) + '\n');
      const query = (follow: boolean) => {
        const q = new URLSearchParams({ lines: String(lines) });
        if (server) q.set('server', server);
        if (follow) q.set('follow', '1');
        return q;
      };
      if (!values.follow) return await printTails(t, pods, query(false), print, stop.signal);
      return await follow(t, pods, query(true), print, stop.signal);
    } finally {
      stop.done();
    }
  },
};

const path = (pod: string, q: URLSearchParams) => `/api/v1/pods/${encodeURIComponent(pod)}/logs?${q}`;

/** Every pod's last lines, merged by time (a line without one keeps its place after the line before it). */
async function printTails(t: ApiTarget, pods: string[], q: URLSearchParams, print: (line: string) => void, signal: AbortSignal): Promise<number> {
  const all: { time: string; line: string }[] = [];
  for (const pod of pods) {
    const got: string[] = [];
    const end = await streamLines(t, path(pod, q), (l) => got.push(l), signal);
    if (end.ended === 'aborted') return EXIT_OK;
    if (end.status !== 200 || end.ended === 'error') return failed(pod, end);
    let time = '';
    for (const line of got) {
      time = timeOf(line) ?? time;
      all.push({ time, line });
    }
  }
  // Stable: one pod's lines keep their order among equal times.
  if (pods.length > 1) all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  const n = Number(q.get('lines'));
  for (const { line } of all.slice(Math.max(0, all.length - n))) print(line);
  return EXIT_OK;
}

/** One stream a pod, each line printed as it arrives, until the operator stops (0) or a stream fails (1). */
async function follow(t: ApiTarget, pods: string[], q: URLSearchParams, print: (line: string) => void, signal: AbortSignal): Promise<number> {
  const inner = new AbortController();
  signal.addEventListener('abort', () => inner.abort(), { once: true });
  const ends = pods.map(async (pod) => {
    const end = await streamLines(t, path(pod, q), print, inner.signal);
    // Any stream that ends by itself ends the command: the others are stopped too.
    if (end.ended !== 'aborted') inner.abort();
    return { pod, end };
  });
  const results = await Promise.all(ends);
  if (signal.aborted) return EXIT_OK;
  const bad = results.find((r) => r.end.ended !== 'aborted');
  return bad ? failed(bad.pod, bad.end.ended === 'end' && bad.end.status === 200 ? { ...bad.end, error: 'the central node ended the stream (stopping?)' } : bad.end) : EXIT_OK;
}

function failed(pod: string, end: StreamEnd): number {
  const http = end.status && end.status !== 200 ? `central API: HTTP ${end.status}: ` : '';
  process.stderr.write(`podboot logs: pod ${pod}: ${http}${end.error ?? 'no answer'}\n`);
  return EXIT_FAILURE;
}

function timeOf(line: string): string | undefined {
  try {
    const v = (JSON.parse(line) as { time?: unknown }).time;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
