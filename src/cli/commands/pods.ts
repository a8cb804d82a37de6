import { STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { formatTable } from '../table.js';
import { callApi, resolveTarget, type ApiTarget } from '../../api/client.js';
import { getApi } from '../../api/client-stream.js';
import { stopOnSignal } from '../signals.js';

/** How the API commands find the central node (pods, events, logs). */
export const CONNECT = `  --state DIR        the central node's state root: its API address, CA root and
                     token file are read from DIR/central/api.json
                     (${STATE_DEFAULT_HELP})
  --url URL --ca FILE --token-file FILE   the same, given explicitly
  --json             print the API's JSON as it is`;

export const connectOptions = {
  state: { type: 'string' },
  url: { type: 'string' },
  ca: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export function target(values: { state?: string; url?: string; ca?: string; 'token-file'?: string }): ApiTarget {
  return resolveTarget({ state: values.state, url: values.url, ca: values.ca, tokenFile: values['token-file'] });
}

export function fail(status: number, body: unknown): number {
  const msg = typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : JSON.stringify(body);
  process.stderr.write(`central API: HTTP ${status}: ${msg}\n`);
  return EXIT_FAILURE;
}

const mib = (b?: number) => (b === undefined ? '-' : (b / 1048576).toFixed(1));

interface Instance {
  pod: string;
  state: string;
  pid?: number;
  cpuPercent?: number;
  rssBytes?: number;
  threads?: number;
  fds?: number;
  uptimeSec?: number;
  restarts: number;
  degraded: boolean;
  lastExit?: { reason: string };
  self?: { leases: number };
}

export const podsListCommand: Command = {
  summary: "list the central node's pods: state, pid, CPU, memory, restarts (and refused files)",
  usage: `usage: podboot pods list [--sort name|pid|cpu|rss] [--state DIR | --url … --ca … --token-file …] [--json]

${CONNECT}
  --sort KEY         name (default), pid, cpu or rss`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { ...connectOptions, sort: { type: 'string' } }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const sort = values.sort ?? 'name';
    if (!['name', 'pid', 'cpu', 'rss'].includes(sort)) throw new UsageError(`--sort must be name, pid, cpu or rss`);
    const t = target(values);
    const [inst, pods] = await Promise.all([callApi(t, 'GET', '/api/v1/instances'), callApi(t, 'GET', '/api/v1/pods')]);
    if (inst.status !== 200) return fail(inst.status, inst.body);
    const list = (inst.body as { instances: Instance[] }).instances;
    const refused = (pods.body as { refused?: { file: string; problems: { file: string; line: number; col: number; path: string; message: string }[] }[] }).refused ?? [];
    if (values.json) {
      process.stdout.write(JSON.stringify({ instances: list, refused }, null, 2) + '\n');
      return EXIT_OK;
    }
    const key: Record<string, (i: Instance) => number | string> = { name: (i) => i.pod, pid: (i) => i.pid ?? 0, cpu: (i) => -(i.cpuPercent ?? 0), rss: (i) => -(i.rssBytes ?? 0) };
    list.sort((a, b) => {
      const x = key[sort]!(a);
      const y = key[sort]!(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    const rows = list.map((i) => [
      i.pod,
      i.state,
      String(i.pid ?? '-'),
      i.cpuPercent === undefined ? '-' : i.cpuPercent.toFixed(1),
      mib(i.rssBytes),
      String(i.threads ?? '-'),
      String(i.fds ?? '-'),
      i.uptimeSec === undefined ? '-' : `${i.uptimeSec}s`,
      String(i.restarts),
      String(i.self?.leases ?? '-'),
      i.lastExit?.reason ?? '',
    ]);
    process.stdout.write(formatTable(['POD', 'STATE', 'PID', 'CPU%', 'RSS MiB', 'THREADS', 'FDS', 'UPTIME', 'RESTARTS', 'LEASES', 'LAST EXIT'], rows));
    for (const r of refused) for (const p of r.problems) process.stdout.write(`refused: ${p.file}:${p.line}:${p.col}: ${p.path}: ${p.message}\n`);
    return EXIT_OK;
  },
};

export const podsStatusCommand: Command = {
  summary: 'one pod instance in full (P1): state, /proc figures, restarts, last exit, degrade',
  usage: `usage: podboot pods status POD [--state DIR | --url … --ca … --token-file …]

Prints the instance's status as JSON.

${CONNECT}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: connectOptions, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('expected one pod name');
    const r = await callApi(target(values), 'GET', `/api/v1/instances/${encodeURIComponent(positionals[0]!)}`);
    if (r.status !== 200) return fail(r.status, r.body);
    process.stdout.write(JSON.stringify(r.body, null, 2) + '\n');
    return EXIT_OK;
  },
};

function actionCommand(action: 'start' | 'stop' | 'restart' | 'degrade' | 'undegrade', summary: string): Command {
  return {
    summary,
    usage: `usage: podboot pods ${action} POD [--reason TEXT] [--state DIR | --url … --ca … --token-file …]

${summary}. Prints the instance's status afterwards as JSON.

${CONNECT}
  --reason TEXT      recorded in the node's events`,
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, options: { ...connectOptions, reason: { type: 'string' } }, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError('expected one pod name');
      const r = await callApi(target(values), 'POST', `/api/v1/pods/${encodeURIComponent(positionals[0]!)}/${action}`, values.reason ? { reason: values.reason } : {});
      if (r.status !== 200) return fail(r.status, r.body);
      process.stdout.write(JSON.stringify(r.body, null, 2) + '\n');
      return EXIT_OK;
    },
  };
}

export const podsStartCommand = actionCommand('start', 'start a stopped pod instance');
export const podsStopCommand = actionCommand('stop', 'stop a pod instance gracefully (it stays stopped until started)');
export const podsRestartCommand = actionCommand('restart', 'restart a pod instance (leases are kept)');
export const podsDegradeCommand = actionCommand('degrade', 'stop new installs on a pod, keep serving its leases');
export const podsUndegradeCommand = actionCommand('undegrade', 'allow new installs on a degraded pod again');

interface SupervisorEvent {
  seq: number;
  time: string;
  pod?: string;
  kind: string;
  message: string;
}

/** How often `events --follow` asks the node for new events. */
const EVENTS_POLL_MS = 1000;

export const eventsCommand: Command = {
  summary: "the central node's events: pods added, refused, crashed, restarted, operator actions; --follow for new ones",
  usage: `usage: podboot events [--pod POD] [--after SEQ] [--follow] [--state DIR | --url … --ca … --token-file …] [--json]

${CONNECT}
                     (with --follow: one JSON object a line)
  --pod POD          only this pod's events
  --after SEQ        only events after this sequence number
  --follow           then print each new event as it happens (the node is
                     asked once a second) until interrupted (Ctrl-C, SIGTERM:
                     exit 0)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...connectOptions, pod: { type: 'string' }, after: { type: 'string' }, follow: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const query = (after: string | undefined) => {
      const q = new URLSearchParams();
      if (values.pod) q.set('pod', values.pod);
      if (after) q.set('after', after);
      return `/api/v1/events?${q}`;
    };
    if (values.after !== undefined && !/^\d+$/.test(values.after)) throw new UsageError(`--after must be a sequence number, not ${values.after}`);
    const line = (e: SupervisorEvent) => `${e.seq}\t${e.time}\t${e.pod ?? '-'}\t${e.kind}\t${e.message}\n`;
    if (!values.follow) {
      const r = await callApi(target(values), 'GET', query(values.after));
      if (r.status !== 200) return fail(r.status, r.body);
      const events = (r.body as { events: SupervisorEvent[] }).events;
      if (values.json) process.stdout.write(JSON.stringify(events, null, 2) + '\n');
      else for (const e of events) process.stdout.write(line(e));
      return EXIT_OK;
    }
    const t = target(values);
    const stop = stopOnSignal();
    let after = values.after;
    try {
      while (!stop.signal.aborted) {
        let r: Awaited<ReturnType<typeof getApi>>;
        try {
          r = await getApi(t, query(after), stop.signal);
        } catch (err) {
          if (stop.signal.aborted) break;
          throw err;
        }
        if (r.status !== 200) return fail(r.status, r.body);
        for (const e of (r.body as { events: SupervisorEvent[] }).events) {
          process.stdout.write(values.json ? JSON.stringify(e) + '\n' : line(e));
          after = String(e.seq);
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            stop.signal.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, EVENTS_POLL_MS);
          stop.signal.addEventListener('abort', done);
        });
      }
      return EXIT_OK;
    } finally {
      stop.done();
    }
  },
};

export const podsRollingRestartCommand: Command = {
  summary: 'restart every pod instance onto the build now installed, one at a time, each after the last is ready',
  usage: `usage: podboot pods rolling-restart [--state DIR | --url … --ca … --token-file …]

After installing a new podboot build: each instance is restarted in turn and
the next only once it is ready again; the first pod that does not come back
stops the roll (the others keep running the old build). Returns at once;
follow it with \`podboot events\`.

${CONNECT}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: connectOptions, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const r = await callApi(target(values), 'POST', '/api/v1/rolling-restart', {});
    if (r.status !== 202) return fail(r.status, r.body);
    const pods = (r.body as { pods: string[] }).pods;
    process.stdout.write(`rolling restart of ${pods.length} pods started: ${pods.join(', ')}\n`);
    return EXIT_OK;
  },
};
