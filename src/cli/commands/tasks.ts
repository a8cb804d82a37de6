// `podboot tasks …`: remote tasks through the running central node's API
// (docs/tasks.md). The node renders the template and writes the tasks into
// the pod's database; the servers' node agents pull them. `list`, `show` and
// `logs` also read a state directory themselves (--state DIR, as `podboot
// nodes` does): the same answers as the API's, from the same function
// (src/tasks/api.ts), printed by the same code.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { CentralUnavailable, callApi, resolveTarget, type ApiTarget } from '../../api/client.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { formatTable } from '../table.js';

const CONNECT = { url: { type: 'string' }, ca: { type: 'string' }, 'token-file': { type: 'string' }, state: { type: 'string' } } as const;

const CONNECT_HELP = `  --url URL --ca FILE --token-file FILE
                the central node to ask; by default the one that
                STATE/central/api.json names, STATE being --state DIR
                (${STATE_DEFAULT_HELP})

Exits 1 when the central node refuses (the reason is printed) or none answers.`;

const READ_HELP = `  --url URL --ca FILE --token-file FILE
                the central node to ask; by default the one that
                STATE/central/api.json names (${STATE_DEFAULT_HELP})
  --state DIR   no central node: read the pod's database and its output
                files (DIR/<pod>/tasks/) directly, read-only; the node need
                not run

Exits 1 when the task or pod is not there (the reason is printed) or no
central node answers.`;

interface TaskRow {
  id: string;
  mac: string;
  hostname?: string;
  template: string;
  state: string;
  createdAt: number;
  deadline: number;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  reason?: string;
  params?: Record<string, string>;
  rules?: Record<string, string>[];
  captures?: Record<string, string>;
  sha256?: string;
  script?: string;
  stdoutLength?: number;
  stderrLength?: number;
  selector?: string;
}

const FINAL = new Set(['succeeded', 'failed', 'timed-out', 'cancelled']);

function target(values: { url?: string; ca?: string; 'token-file'?: string; state?: string }): ApiTarget {
  return resolveTarget({ state: values.state, url: values.url, ca: values.ca, tokenFile: values['token-file'] });
}

/** The API's answer when it is `ok`, else an Error with its message. */
async function api(t: ApiTarget, method: string, path: string, body?: unknown, ok = [200]): Promise<unknown> {
  const r = await callApi(t, method, path, body);
  if (ok.includes(r.status)) return r.body;
  throw new RefusedError(`HTTP ${r.status}: ${errorText(r.body)}`);
}

function errorText(body: unknown): string {
  return typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : JSON.stringify(body);
}

/** A GET of the task API, answered by the central node or read from a state directory. */
type TaskGet = (path: string) => Promise<unknown>;

function reader(values: { url?: string; ca?: string; 'token-file'?: string; state?: string }): TaskGet {
  if (values.state === undefined) {
    const t = resolveTarget({ url: values.url, ca: values.ca, tokenFile: values['token-file'] });
    return (path) => api(t, 'GET', path);
  }
  if (values.url || values.ca || values['token-file'])
    throw new UsageError('--state reads a state directory without a central node; --url, --ca and --token-file name a central node: give one or the other');
  const root = values.state;
  return async (path) => {
    // Loaded only here: the way through the API needs no SQLite.
    const [{ matchRoute }, { taskApi }, { podDatabaseFile }] = await Promise.all([import('../../api/routes.js'), import('../../tasks/api.js'), import('../../store/database.js')]);
    const route = matchRoute('GET', path);
    if (route.kind !== 'tasks' && route.kind !== 'task' && route.kind !== 'task-logs') throw new Error(`${path}: not a task listing (${route.kind})`);
    const db = podDatabaseFile(join(root, route.pod));
    if (!existsSync(db)) throw new RefusedError(`no pod ${route.pod} under ${root} (no ${db})`);
    const r = taskApi(route, root, undefined, 'cli');
    if (r.status !== 200) throw new RefusedError(`${errorText(r.body)} (under ${root})`);
    // Through JSON as the API sends it, so both ways print from the same value.
    return JSON.parse(JSON.stringify(r.body)) as unknown;
  };
}

class RefusedError extends Error {}

/** The commands that can read a state directory instead of asking the node. */
const READS = new Set(['list', 'show', 'logs']);

async function guarded(name: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof CentralUnavailable || err instanceof RefusedError) {
      const hint = err instanceof CentralUnavailable && READS.has(name) ? '\n(--state DIR reads a state directory without a central node)' : '';
      process.stderr.write(`podboot tasks ${name}: ${err.message}${hint}\n`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}

function iso(sec: number | undefined): string {
  return sec === undefined ? '-' : new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function podPath(pod: string | undefined): string {
  if (!pod) throw new UsageError('--pod NAME is required');
  return `/api/v1/pods/${encodeURIComponent(pod)}`;
}

function idArg(positionals: string[]): string {
  if (positionals.length !== 1 || !/^[0-9a-f]{16}$/.test(positionals[0]!)) throw new UsageError('expected one task id (16 hex digits, as tasks list shows)');
  return positionals[0]!;
}

function table(rows: TaskRow[]): string {
  return formatTable(
    ['ID', 'NODE', 'HOSTNAME', 'TEMPLATE', 'STATE', 'EXIT', 'CREATED', 'DEADLINE'],
    rows.map((t) => [t.id, t.mac, t.hostname ?? '-', t.template, t.state, t.exitCode === undefined ? '-' : String(t.exitCode), iso(t.createdAt), iso(t.deadline)]),
  );
}

export const tasksRunCommand: Command = {
  summary: 'run a task template on servers of a pod (their node agents pull it)',
  usage: `usage: podboot tasks run TEMPLATE --pod NAME (--target MAC|HOSTNAME… | --select SELECTOR)
                             [--param NAME=VALUE…] [--rule "STREAM ACTION PATTERN"…]
                             [--timeout SECONDS] [--wait] [--json]

Renders TEMPLATE (podboot tasks templates lists them) with its parameters,
each value quoted as one shell word, and queues one task per target server
(each server once, whether named, selected or both).
A server's node agent picks it up within seconds, runs it and streams its
output back; the task times out if it has not ended by its deadline (the
template's timeout, else 600 s).

  --target T     a server: its MAC address or its hostname in the pod file (repeat)
  --select S     the pod file's servers whose labels (spec.nodes[].labels) match S:
                 "role=web", "role=web,rack!=b", "gpu" (has it), "!drain" (has not);
                 commas mean and. Kept with each task (tasks show)
  --param K=V    a parameter of the template (repeat)
  --rule R       a log rule, checked at the pod on each line as it arrives (repeat):
                 "stdout fail ERROR"                 the task fails if a line matches
                 "stderr webhook=URL timed out"      POST the line as JSON to URL
                 "stdout capture=version ^v(\\S+)"   keep the first group as "version"
                 Patterns use V8's linear-time engine: no backreferences or lookaround.
  --timeout S    seconds from now until the deadline (1..86400)
  --wait         wait until every task has ended; exit 1 unless all succeeded
  --json         the tasks as JSON
${CONNECT_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        pod: { type: 'string' },
        target: { type: 'string', multiple: true },
        select: { type: 'string' },
        param: { type: 'string', multiple: true },
        rule: { type: 'string', multiple: true },
        timeout: { type: 'string' },
        wait: { type: 'boolean' },
        json: { type: 'boolean' },
        ...CONNECT,
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected one TEMPLATE');
    const base = podPath(values.pod);
    if (!values.target?.length && values.select === undefined)
      throw new UsageError('--target or --select is required (a MAC address or hostname, repeated for more; or a label selector such as role=web)');
    // Checked here too (the node checks again), so a mistyped selector is said before anything is sent.
    if (values.select !== undefined) {
      const { parseSelector, SelectorError } = await import('../../config/labels.js');
      if (!values.select.trim()) throw new UsageError('--select: an empty selector would pick every server; write one such as role=web');
      try {
        parseSelector(values.select);
      } catch (err) {
        if (err instanceof SelectorError) throw new UsageError(`--select: ${err.message}`);
        throw err;
      }
    }
    const params: Record<string, string> = {};
    for (const p of values.param ?? []) {
      const eq = p.indexOf('=');
      if (eq < 1) throw new UsageError(`--param ${p}: expected NAME=VALUE`);
      params[p.slice(0, eq)] = p.slice(eq + 1);
    }
    // Checked here too, so a refused pattern is said before anything is sent.
    const { parseRuleText, ruleJson, RuleError } = await import('../../tasks/rules.js');
    let rules: Record<string, string>[];
    try {
      rules = (values.rule ?? []).map((r) => ruleJson(parseRuleText(r)));
    } catch (err) {
      if (err instanceof RuleError) throw new UsageError(`--rule: ${err.message}`);
      throw err;
    }
    const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
    if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400)) throw new UsageError('--timeout: 1..86400 seconds');
    return guarded('run', async () => {
      const t = target(values);
      const body = {
        template: positionals[0],
        params,
        targets: values.target ?? [],
        ...(values.select !== undefined ? { select: values.select } : {}),
        rules,
        ...(timeout ? { timeoutSeconds: timeout } : {}),
      };
      let tasks = ((await api(t, 'POST', `${base}/tasks`, body, [201])) as { tasks: TaskRow[] }).tasks;
      if (values.wait) tasks = await waitFor(t, base, tasks);
      process.stdout.write(values.json ? `${JSON.stringify(tasks, null, 2)}\n` : table(tasks));
      return values.wait && tasks.some((x) => x.state !== 'succeeded') ? EXIT_FAILURE : EXIT_OK;
    });
  },
};

/** Polls until every task has ended: bounded by the latest deadline and a margin for the pod's timer. */
async function waitFor(t: ApiTarget, base: string, tasks: TaskRow[]): Promise<TaskRow[]> {
  const until = Math.max(...tasks.map((x) => x.deadline)) * 1000 + 10_000;
  let current = tasks;
  while (current.some((x) => !FINAL.has(x.state)) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 1000));
    current = await Promise.all(current.map(async (x) => (FINAL.has(x.state) ? x : ((await api(t, 'GET', `${base}/tasks/${x.id}`)) as TaskRow))));
  }
  return current;
}

export const tasksListCommand: Command = {
  summary: "list a pod's tasks, newest first",
  usage: `usage: podboot tasks list --pod NAME [--node MAC] [--json] [--url … --ca … --token-file … | --state DIR]

One row per task and server: its id, server, template, state, exit code,
when it was created and its deadline. --node: one server's only.
--json: the same tasks with their parameters, rules and captured values.
${READ_HELP}`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { pod: { type: 'string' }, node: { type: 'string' }, json: { type: 'boolean' }, ...CONNECT } });
    const base = podPath(values.pod);
    return guarded('list', async () => {
      const q = values.node ? `?mac=${encodeURIComponent(values.node)}` : '';
      const { tasks } = (await reader(values)(`${base}/tasks${q}`)) as { tasks: TaskRow[] };
      process.stdout.write(values.json ? `${JSON.stringify(tasks, null, 2)}\n` : table(tasks));
      return EXIT_OK;
    });
  },
};

export const tasksShowCommand: Command = {
  summary: 'show one task: its state, exit code, parameters, rules and captured values',
  usage: `usage: podboot tasks show ID --pod NAME [--json] [--url … --ca … --token-file … | --state DIR]

--json: the whole task, the rendered script and its sha256 included.
${READ_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { pod: { type: 'string' }, json: { type: 'boolean' }, ...CONNECT }, allowPositionals: true });
    const id = idArg(positionals);
    const base = podPath(values.pod);
    return guarded('show', async () => {
      const t = (await reader(values)(`${base}/tasks/${id}`)) as TaskRow;
      if (values.json) {
        process.stdout.write(`${JSON.stringify(t, null, 2)}\n`);
        return EXIT_OK;
      }
      const lines = [
        t.id,
        `  node       ${t.mac}${t.hostname ? ` (${t.hostname})` : ''}`,
        `  template   ${t.template}`,
        ...(t.selector !== undefined ? [`  selector   ${t.selector}`] : []),
        `  state      ${t.state}${t.exitCode !== undefined ? `  exit ${t.exitCode}` : ''}${t.reason ? `  (${t.reason})` : ''}`,
        `  created    ${iso(t.createdAt)}  deadline ${iso(t.deadline)}`,
        `  started    ${iso(t.startedAt)}  finished ${iso(t.finishedAt)}`,
        `  sha256     ${t.sha256}`,
        `  output     stdout ${t.stdoutLength ?? 0} bytes, stderr ${t.stderrLength ?? 0} bytes`,
        ...Object.entries(t.params ?? {}).map(([k, v]) => `  param      ${k}=${JSON.stringify(v)}`),
        ...(t.rules ?? []).map((r) => `  rule       ${r.stream} ${r.action}${r.url ? `=${r.url}` : r.name ? `=${r.name}` : ''} ${r.pattern}`),
        ...Object.entries(t.captures ?? {}).map(([k, v]) => `  captured   ${k}=${JSON.stringify(v)}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      return EXIT_OK;
    });
  },
};

export const tasksLogsCommand: Command = {
  summary: "print a task's output as it arrived at the pod",
  usage: `usage: podboot tasks logs ID --pod NAME [--stream stdout|stderr] [--json] [--url … --ca … --token-file … | --state DIR]

Both streams in the order their chunks reached the pod (or one, with
--stream). --json: the chunks, each with its stream, byte offset and time.
${READ_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { pod: { type: 'string' }, stream: { type: 'string' }, json: { type: 'boolean' }, ...CONNECT }, allowPositionals: true });
    const id = idArg(positionals);
    const base = podPath(values.pod);
    if (values.stream !== undefined && values.stream !== 'stdout' && values.stream !== 'stderr') throw new UsageError('--stream: stdout or stderr');
    return guarded('logs', async () => {
      const q = values.stream ? `?stream=${values.stream}` : '';
      const r = (await reader(values)(`${base}/tasks/${id}/logs${q}`)) as { chunks: { stream: string; offset: number; time: number; text: string }[] };
      process.stdout.write(values.json ? `${JSON.stringify(r.chunks, null, 2)}\n` : r.chunks.map((c) => c.text).join(''));
      return EXIT_OK;
    });
  },
};

export const tasksCancelCommand: Command = {
  summary: 'cancel a task that has not ended; its agent stops the script',
  usage: `usage: podboot tasks cancel ID --pod NAME

A queued task is never handed out; a running one is stopped by its node
agent at its next report (within seconds). Exit 1 if it had already ended.
${CONNECT_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { pod: { type: 'string' }, ...CONNECT }, allowPositionals: true });
    const id = idArg(positionals);
    const base = podPath(values.pod);
    return guarded('cancel', async () => {
      const t = (await api(target(values), 'POST', `${base}/tasks/${id}/cancel`, {})) as TaskRow;
      process.stdout.write(`${t.id}: ${t.state}\n`);
      return EXIT_OK;
    });
  },
};

export const tasksTemplatesCommand: Command = {
  summary: 'list the task library: shipped templates and the operator’s own',
  usage: `usage: podboot tasks templates [--json]

The templates in the package's tasks/ and in STATE/central/tasks/ (an
operator's template replaces a shipped one of the same name), with their
parameters (NAME or NAME=DEFAULT). An unusable file is listed with why.
${CONNECT_HELP}`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, ...CONNECT } });
    return guarded('templates', async () => {
      const { templates } = (await api(target(values), 'GET', '/api/v1/task-templates')) as {
        templates: { name: string; source: string; description?: string; params?: { name: string; default?: string }[]; error?: string }[];
      };
      if (values.json) process.stdout.write(`${JSON.stringify(templates, null, 2)}\n`);
      else
        process.stdout.write(
          formatTable(
            ['NAME', 'SOURCE', 'PARAMETERS', 'DESCRIPTION'],
            templates.map((t) => [
              t.name,
              t.source,
              (t.params ?? []).map((p) => (p.default === undefined ? p.name : `${p.name}=${p.default}`)).join(' ') || '-',
              t.error ? `unusable: ${t.error}` : t.description || '-',
            ]),
          ),
        );
      return EXIT_OK;
    });
  },
};
