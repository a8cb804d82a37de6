// The central node's side of remote tasks: it renders a template from the
// library and writes one queued task per target server into the pod's own
// database (as an operator's reinstall is written, src/api/nodes.ts); the
// pod hands it out at its agent's next long-poll. Listings, logs and cancel
// read and write the same database and the pod's output files.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { podInventory } from '../api/pod-inventory.js';
import { parseSelector, type Selector, SelectorError, selects } from '../config/labels.js';
import { normalizeMac } from '../net/mac.js';
import { openExistingPodDatabase } from '../store/database.js';
import { SqliteNodeStateStore } from '../store/sqlite-store.js';
import { libraryDirs, readLibrary } from './library.js';
import { parseRules, type Rule, RuleError, ruleJson, type Stream } from './rules.js';
import { isFinal, taskTransition } from './state.js';
import { type NewTask, SqliteTaskStore, type TaskRecord, taskOutputFile } from './store.js';
import { renderTemplate, TemplateError } from './template.js';

export const DEFAULT_TIMEOUT_SECONDS = 600;
const MAX_TARGETS = 1000;
const MAX_SELECTOR = 1024;

/** A refusal with the status the API answers. */
export class TaskRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function withDb<T>(stateRoot: string, pod: string, readonly: boolean, fn: (db: Database.Database) => T): T {
  const db = openExistingPodDatabase(join(stateRoot, pod), readonly);
  if (!db) throw new TaskRequestError(404, `pod ${pod} has no database yet`);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export interface SubmitRequest {
  template: string;
  params: Record<string, string>;
  targets: string[];
  /** servers of the pod file whose labels match, besides `targets` */
  select?: Selector;
  rules: Rule[];
  timeoutSeconds?: number;
}

/** The API's JSON body, checked: every rule's pattern compiled by the linear engine. */
export function parseSubmit(body: Record<string, unknown> | undefined): SubmitRequest {
  if (!body) throw new TaskRequestError(400, 'a JSON object {template, params, targets, select, rules, timeoutSeconds}');
  if (typeof body.template !== 'string') throw new TaskRequestError(400, 'template: the name of a template (GET /api/v1/task-templates)');
  const params: Record<string, string> = {};
  if (body.params !== undefined) {
    if (typeof body.params !== 'object' || body.params === null || Array.isArray(body.params)) throw new TaskRequestError(400, 'params: an object of strings');
    for (const [k, v] of Object.entries(body.params)) {
      if (typeof v !== 'string') throw new TaskRequestError(400, `params.${k}: a string`);
      params[k] = v;
    }
  }
  const select = parseSelect(body.select);
  const targets = body.targets ?? [];
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) throw new TaskRequestError(400, 'targets: a list of MAC addresses or hostnames');
  if (!targets.length && !select) throw new TaskRequestError(400, 'targets or select: name the servers (MAC addresses or hostnames), or select them by label (role=web)');
  if (targets.length > MAX_TARGETS) throw new TaskRequestError(400, `at most ${MAX_TARGETS} targets`);
  let rules: Rule[];
  try {
    rules = parseRules(body.rules);
  } catch (err) {
    if (err instanceof RuleError) throw new TaskRequestError(400, err.message);
    throw err;
  }
  let timeoutSeconds: number | undefined;
  if (body.timeoutSeconds !== undefined) {
    if (typeof body.timeoutSeconds !== 'number' || !Number.isInteger(body.timeoutSeconds) || body.timeoutSeconds < 1 || body.timeoutSeconds > 86400)
      throw new TaskRequestError(400, 'timeoutSeconds: 1..86400');
    timeoutSeconds = body.timeoutSeconds;
  }
  return { template: body.template, params, targets: targets as string[], ...(select ? { select } : {}), rules, ...(timeoutSeconds ? { timeoutSeconds } : {}) };
}

/**
 * `select`, a label selector (src/config/labels.ts). An empty one would pick
 * every server of the pod, which a forgotten shell variable should not do:
 * refused, so "all of them" is always spelt out.
 */
function parseSelect(value: unknown): Selector | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_SELECTOR) throw new TaskRequestError(400, `select: a label selector such as "role=web,rack!=b" (text, at most ${MAX_SELECTOR} characters)`);
  if (!value.trim()) throw new TaskRequestError(400, 'select: an empty selector would pick every server; write one such as role=web');
  try {
    return parseSelector(value);
  } catch (err) {
    if (err instanceof SelectorError) throw new TaskRequestError(400, err.message);
    throw err;
  }
}

/**
 * Each target (a MAC or a hostname from the pod file) as one server the pod
 * knows, then the pod file's servers whose labels the selector matches: the
 * union, each server once, in that order.
 */
function resolveTargets(stateRoot: string, pod: string, db: Database.Database, targets: string[], select?: Selector): { mac: string; hostname?: string }[] {
  const inventory = podInventory(stateRoot, pod);
  const known = new Set(new SqliteNodeStateStore(db).nodes().map((n) => n.mac));
  for (const mac of inventory.nodes.keys()) known.add(mac);
  const byHost = new Map<string, string>();
  for (const [mac, n] of inventory.nodes) if (n.hostname) byHost.set(n.hostname.toLowerCase(), mac);
  const out = new Map<string, { mac: string; hostname?: string }>();
  for (const target of targets) {
    const mac = normalizeMac(target) ?? byHost.get(target.toLowerCase());
    if (!mac || !known.has(mac)) throw new TaskRequestError(400, `pod ${pod} has no server ${target} (a MAC address it has seen, or a hostname from its pod file)`);
    const hostname = inventory.nodes.get(mac)?.hostname;
    out.set(mac, { mac, ...(hostname ? { hostname } : {}) });
  }
  if (select) {
    // Labels live in the pod file the pod runs, so only its servers can match, seen by the pod yet or not.
    const matched = [...inventory.labels].filter(([, labels]) => selects(select, labels)).map(([mac]) => mac);
    if (!matched.length) throw new TaskRequestError(400, `pod ${pod}: no server matches the selector ${JSON.stringify(select.text)} (labels from spec.nodes[].labels of its pod file)`);
    for (const mac of matched) {
      const hostname = inventory.nodes.get(mac)?.hostname;
      out.set(mac, { mac, ...(hostname ? { hostname } : {}) });
    }
  }
  if (out.size > MAX_TARGETS) throw new TaskRequestError(400, `${out.size} servers: at most ${MAX_TARGETS} per request (narrow the selector)`);
  return [...out.values()];
}

export function submitTasks(stateRoot: string, pod: string, req: SubmitRequest, by: string, now = Math.floor(Date.now() / 1000)): TaskRecord[] {
  const entry = readLibrary(libraryDirs(stateRoot)).find((e) => e.name === req.template);
  if (!entry) throw new TaskRequestError(400, `no task template ${req.template} (GET /api/v1/task-templates lists them)`);
  if (!entry.template) throw new TaskRequestError(400, `template ${req.template} is unusable: ${entry.error}`);
  let rendered: ReturnType<typeof renderTemplate>;
  try {
    rendered = renderTemplate(entry.template, req.params);
  } catch (err) {
    if (err instanceof TemplateError) throw new TaskRequestError(400, err.message);
    throw err;
  }
  const rules = [...entry.template.rules, ...req.rules];
  const timeout = req.timeoutSeconds ?? entry.template.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  return withDb(stateRoot, pod, false, (db) => {
    const servers = resolveTargets(stateRoot, pod, db, req.targets, req.select);
    const tasks: NewTask[] = servers.map((s) => ({
      id: randomBytes(8).toString('hex'),
      mac: s.mac,
      ...(s.hostname ? { hostname: s.hostname } : {}),
      template: entry.name,
      params: rendered.values,
      rules,
      script: rendered.script,
      sha256: rendered.sha256,
      createdAt: now,
      deadline: now + timeout,
      submittedBy: by,
      ...(req.select ? { selector: req.select.text } : {}),
    }));
    const store = new SqliteTaskStore(db);
    store.insert(tasks);
    return tasks.map((t) => store.get(t.id)!);
  });
}

/** A task as the API shows it: rules in their JSON form; no script in listings. */
export function taskJson(t: TaskRecord, withScript = false): Record<string, unknown> {
  const { script, stdoutChecked: _a, stderrChecked: _b, rules, ...rest } = t;
  return { ...rest, rules: rules.map(ruleJson), ...(withScript ? { script } : {}) };
}

export function taskSummary(t: TaskRecord): Record<string, unknown> {
  return taskJson(t);
}

export function listTasks(stateRoot: string, pod: string, o: { mac?: string; limit?: number } = {}): TaskRecord[] {
  return withDb(stateRoot, pod, true, (db) => new SqliteTaskStore(db).list(o));
}

export function getTask(stateRoot: string, pod: string, id: string): TaskRecord | undefined {
  return withDb(stateRoot, pod, true, (db) => new SqliteTaskStore(db).get(id));
}

export interface LogChunk {
  stream: Stream;
  offset: number;
  time: number;
  text: string;
}

/** The task's output in the order it arrived (both streams, or one), read from the pod's files. */
export function taskLogs(stateRoot: string, pod: string, id: string, stream?: Stream): { task: TaskRecord; chunks: LogChunk[] } | undefined {
  return withDb(stateRoot, pod, true, (db) => {
    const store = new SqliteTaskStore(db);
    const task = store.get(id);
    if (!task) return undefined;
    const chunks: LogChunk[] = [];
    const fds = new Map<Stream, number>();
    try {
      for (const c of store.output(id)) {
        if (stream && c.stream !== stream) continue;
        let fd = fds.get(c.stream);
        if (fd === undefined) {
          fd = openSync(taskOutputFile(join(stateRoot, pod), id, c.stream), 'r');
          fds.set(c.stream, fd);
        }
        const buf = Buffer.alloc(c.length);
        const n = readSync(fd, buf, 0, c.length, c.offset);
        chunks.push({ stream: c.stream, offset: c.offset, time: c.time, text: buf.subarray(0, n).toString('utf8') });
      }
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
    return { task, chunks };
  });
}

/** Cancels an open task; the pod's answer to the agent's next output post tells it to stop the script. */
export function cancelTask(stateRoot: string, pod: string, id: string, by: string, now = Math.floor(Date.now() / 1000)): TaskRecord | undefined {
  return withDb(stateRoot, pod, false, (db) => {
    const store = new SqliteTaskStore(db);
    // Compare-and-set against the pod, which may change the state meanwhile: a few rounds at most.
    for (let i = 0; i < 5; i++) {
      const t = store.get(id);
      if (!t) return undefined;
      if (isFinal(t.state)) throw new TaskRequestError(409, `task ${id} is already ${t.state}`);
      const d = taskTransition(t.state, { kind: 'cancel' });
      if (!d.ok) throw new TaskRequestError(409, d.reason);
      if (store.transition(id, t.state, d.next, now, { finishedAt: now, reason: `cancelled by ${by}` })) return store.get(id);
    }
    throw new TaskRequestError(409, `task ${id} kept changing; try again`);
  });
}
