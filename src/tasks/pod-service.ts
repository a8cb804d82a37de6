// The pod's side of remote tasks: the node agent's endpoints on the pod's
// HTTPS server (node tokens only; a server reaches only its own tasks), the
// deadline timer, and the log rules checked as output arrives. Output is
// kept in files under STATE/<pod>/tasks/ (ID.stdout, ID.stderr), indexed in
// the pod's database (src/tasks/store.ts).
import { closeSync, constants, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { BodyTooLarge, readBody } from '../net/http/body.js';
import { HttpError } from '../net/http/errors.js';
import { sendJson } from '../net/http/reply.js';
import { planChunk, splitLines } from './chunks.js';
import { type CompiledRule, compileRules, matchLine, STREAMS, type Stream } from './rules.js';
import { isFinal, type TaskEvent, taskTransition } from './state.js';
import { SqliteTaskStore, type TaskRecord, taskOutputFile } from './store.js';
import { WebhookPoster } from './webhook.js';

export const TASK_ID = /^[0-9a-f]{16}$/;
/** The longest long-poll the pod holds (the agent's curl waits longer). */
export const MAX_WAIT_SECONDS = 25;
/** One output chunk; the agent sends at most this much a request. */
export const MAX_CHUNK = 64 * 1024;
/** One stream of one task; past it output is refused (413) and the agent stops sending it. */
export const MAX_STREAM = 8 * 1024 * 1024;
/** A line nobody ends is checked once it is this long. */
export const MAX_LINE = 64 * 1024;
/** How often a waiting long-poll looks for a task the central node wrote (another process). */
const POLL_MS = 250;
/** Webhook posts one task may cause: a rule matching every line must not flood a receiver. */
const MAX_WEBHOOKS_PER_TASK = 20;
const JSON_STYLE = { newline: true } as const;

export interface PodTaskOptions {
  pod: string;
  log: Logger;
  db: Database.Database;
  stateDir: string;
  /** unix milliseconds */
  clock?: () => number;
  webhookTimeoutMs?: number;
}

export class PodTaskService {
  readonly store: SqliteTaskStore;
  readonly webhooks: WebhookPoster;
  private readonly clock: () => number;
  private timer?: NodeJS.Timeout;
  private readonly stopping = new AbortController();
  /** one long-poll per server: a newer one answers the older with 204 */
  private readonly waiting = new Map<string, AbortController>();
  private readonly compiled = new Map<string, CompiledRule[]>();
  private readonly webhookCount = new Map<string, number>();

  constructor(private readonly o: PodTaskOptions) {
    this.store = new SqliteTaskStore(o.db);
    this.clock = o.clock ?? Date.now;
    this.webhooks = new WebhookPoster(o.log, o.webhookTimeoutMs);
  }

  private now(): number {
    return Math.floor(this.clock() / 1000);
  }

  start(): void {
    mkdirSync(join(this.o.stateDir, 'tasks'), { recursive: true, mode: 0o700 });
    // Deadlines are whole seconds: a check a second finds each within one of it.
    this.timer = setInterval(() => {
      try {
        this.expire();
      } catch (err) {
        this.o.log.error({ err }, 'task deadline check failed');
      }
    }, 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.stopping.abort();
  }

  /** Every open task past its deadline is timed-out (whether or not an agent ever asked for it). */
  expire(): void {
    const now = this.now();
    for (const t of this.store.overdue(now)) this.change(t, { kind: 'timeout' }, now, { finishedAt: now, reason: `deadline ${new Date(t.deadline * 1000).toISOString()} passed while ${t.state}` });
  }

  /** Applies `event` to the task as last read; false when it was refused or someone else changed the task first. */
  private change(t: TaskRecord, event: TaskEvent, now: number, extra: Parameters<SqliteTaskStore['transition']>[4] = {}): boolean {
    const d = taskTransition(t.state, event);
    if (!d.ok) return false;
    if (!d.changed) return true;
    if (!this.store.transition(t.id, t.state, d.next, now, extra)) return false;
    const fields = { node: t.mac, task: t.id, template: t.template, from: t.state, to: d.next, exitCode: extra.exitCode, reason: extra.reason };
    if (d.next === 'failed' || d.next === 'timed-out') this.o.log.warn(fields, 'task state');
    else this.o.log.info(fields, 'task state');
    if (isFinal(d.next)) {
      this.compiled.delete(t.id);
      this.webhookCount.delete(t.id);
    }
    return true;
  }

  /** /v1/tasks/… for a node token of `mac`. */
  async handle(req: IncomingMessage, res: ServerResponse, method: string, url: URL, mac: string): Promise<void> {
    if (url.pathname === '/v1/tasks/next') {
      if (method !== 'GET') throw new HttpError(405, 'use GET');
      return this.next(res, url, mac);
    }
    const m = /^\/v1\/tasks\/([^/]+)\/(script|start|output|exit)$/.exec(url.pathname);
    if (!m) throw new HttpError(404, 'not found');
    const [, id, what] = m as unknown as [string, string, string];
    const t = TASK_ID.test(id) ? this.store.get(id) : undefined;
    // Another server's task does not exist, as far as this server can tell.
    if (!t || t.mac !== mac) throw new HttpError(404, 'no such task', 'no-task');
    if (what === 'script') {
      if (method !== 'GET') throw new HttpError(405, 'use GET');
      return this.script(res, t);
    }
    if (method !== 'POST') throw new HttpError(405, 'use POST');
    if (what === 'start') return this.startTask(res, t);
    if (what === 'output') return this.output(req, res, url, t);
    return this.exit(req, res, t);
  }

  private async next(res: ServerResponse, url: URL, mac: string): Promise<void> {
    const wait = Math.min(Math.max(Math.floor(Number(url.searchParams.get('wait') ?? 0)) || 0, 0), MAX_WAIT_SECONDS);
    const end = this.clock() + wait * 1000;
    this.waiting.get(mac)?.abort();
    const mine = new AbortController();
    this.waiting.set(mac, mine);
    // A client gone meanwhile must not be handed a task it will never read.
    res.on('close', () => mine.abort());
    try {
      for (;;) {
        const t = this.store.next(mac);
        if (t && !mine.signal.aborted && this.change(t, { kind: 'deliver' }, this.now())) {
          return sendJson(res, 200, { id: t.id, template: t.template, deadline: t.deadline }, JSON_STYLE);
        }
        if (mine.signal.aborted || this.stopping.signal.aborted || this.clock() >= end) break;
        await sleep(Math.min(POLL_MS, Math.max(end - this.clock(), 1)), mine.signal, this.stopping.signal);
      }
    } finally {
      if (this.waiting.get(mac) === mine) this.waiting.delete(mac);
    }
    if (!res.writableEnded && !res.destroyed) {
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
    }
  }

  private script(res: ServerResponse, t: TaskRecord): void {
    if (isFinal(t.state)) {
      sendJson(res, 410, { error: `task is ${t.state}`, state: t.state }, JSON_STYLE);
      return;
    }
    if (t.state === 'running') throw new HttpError(409, 'task already started: a script runs once', 'task-started');
    const body = Buffer.from(t.script, 'utf8');
    res.writeHead(200, {
      'content-type': 'text/x-shellscript; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': body.length,
      'x-podboot-task-sha256': t.sha256,
      'x-podboot-task-deadline': String(t.deadline),
      // The agent's clock may differ from the pod's: it counts from now.
      'x-podboot-task-seconds': String(Math.max(t.deadline - this.now(), 0)),
    });
    res.end(body);
  }

  private startTask(res: ServerResponse, t: TaskRecord): void {
    const now = this.now();
    if (isFinal(t.state)) {
      sendJson(res, 410, { error: `task is ${t.state}`, state: t.state }, JSON_STYLE);
      return;
    }
    if (!this.change(t, { kind: 'start' }, now, { startedAt: now })) throw new HttpError(409, `task is ${this.store.get(t.id)?.state ?? t.state}: cannot start`, 'task-state');
    sendJson(res, 200, { state: 'running' }, JSON_STYLE);
  }

  private async output(req: IncomingMessage, res: ServerResponse, url: URL, t: TaskRecord): Promise<void> {
    const stream = url.searchParams.get('stream') as Stream;
    if (!(STREAMS as readonly string[]).includes(stream)) throw new HttpError(400, 'stream must be stdout or stderr');
    const offsetText = url.searchParams.get('offset') ?? '';
    if (!/^\d{1,10}$/.test(offsetText)) throw new HttpError(400, 'offset must be a byte offset');
    const offset = Number(offsetText);
    const body = await readBody(req, MAX_CHUNK).catch((err: Error) => {
      if (err instanceof BodyTooLarge) throw err;
      throw new HttpError(400, `output chunk: ${err.message}`);
    });
    // Cancelled or timed out meanwhile: the agent stops the script when it reads this.
    if (isFinal(t.state)) return sendJson(res, 410, { error: `task is ${t.state}`, state: t.state }, JSON_STYLE);
    if (t.state !== 'running') throw new HttpError(409, `task is ${t.state}: start it first`, 'task-state');
    const stored = stream === 'stdout' ? t.stdoutLength : t.stderrLength;
    const plan = planChunk(stored, offset, body.length, MAX_STREAM);
    if (plan.kind === 'gap') return sendJson(res, 409, { error: `offset ${offset} is past the ${plan.length} bytes stored: send from there`, length: plan.length }, JSON_STYLE);
    if (plan.kind === 'too-large') return sendJson(res, 413, { error: `${stream} is capped at ${MAX_STREAM} bytes`, length: plan.length }, JSON_STYLE);
    if (plan.kind === 'append') {
      const fd = openSync(taskOutputFile(this.o.stateDir, t.id, stream), constants.O_WRONLY | constants.O_CREAT, 0o600);
      try {
        // At the stored length, not the file's end: bytes written before a crash but never recorded are overwritten.
        writeSync(fd, body, plan.skip, plan.take, stored);
      } finally {
        closeSync(fd);
      }
      this.store.addOutput(t.id, stream, stored, plan.take, this.now());
      this.checkRules(this.store.get(t.id)!, stream, false);
    }
    sendJson(res, 200, { length: plan.length, state: this.store.get(t.id)?.state ?? t.state }, JSON_STYLE);
  }

  private async exit(req: IncomingMessage, res: ServerResponse, t: TaskRecord): Promise<void> {
    const raw = await readBody(req, 1024).catch((err: Error) => {
      throw err instanceof HttpError ? err : new HttpError(400, err.message);
    });
    let msg: { code?: unknown; error?: unknown };
    try {
      msg = JSON.parse(raw.toString('utf8')) as typeof msg;
    } catch {
      throw new HttpError(400, 'exit body is not JSON: {"code":N} or {"error":"…"}');
    }
    if (isFinal(t.state)) return sendJson(res, 410, { error: `task is ${t.state}`, state: t.state }, JSON_STYLE);
    const now = this.now();
    if (typeof msg.error === 'string') {
      const reason = `agent: ${msg.error.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)}`;
      if (!this.change(t, { kind: 'error' }, now, { finishedAt: now, reason })) throw new HttpError(409, `task is ${t.state}`, 'task-state');
      return sendJson(res, 200, { state: 'failed' }, JSON_STYLE);
    }
    if (typeof msg.code !== 'number' || !Number.isInteger(msg.code) || msg.code < 0 || msg.code > 255) throw new HttpError(400, 'exit code must be 0..255');
    // The last line of each stream, if it had no newline, is checked now.
    for (const s of STREAMS) this.checkRules(this.store.get(t.id)!, s, true);
    const latest = this.store.get(t.id)!;
    const ok = this.change(latest, { kind: 'exit', code: msg.code, ruleFailed: latest.ruleFailed }, now, {
      finishedAt: now,
      exitCode: msg.code,
      ...(msg.code !== 0 && !latest.ruleFailed ? { reason: `exit code ${msg.code}` } : {}),
    });
    if (!ok) throw new HttpError(409, `task is ${latest.state}: not running`, 'task-state');
    sendJson(res, 200, { state: this.store.get(t.id)!.state }, JSON_STYLE);
  }

  /** Runs the task's rules over the whole lines of `stream` not yet checked. */
  private checkRules(t: TaskRecord, stream: Stream, final: boolean): void {
    if (!t.rules.length) return;
    const checked = stream === 'stdout' ? t.stdoutChecked : t.stderrChecked;
    const length = stream === 'stdout' ? t.stdoutLength : t.stderrLength;
    if (length <= checked) return;
    const buf = Buffer.alloc(length - checked);
    const fd = openSync(taskOutputFile(this.o.stateDir, t.id, stream), 'r');
    try {
      readSync(fd, buf, 0, buf.length, checked);
    } finally {
      closeSync(fd);
    }
    const { lines, consumed } = splitLines(buf, final, MAX_LINE);
    if (!consumed) return;
    let rules = this.compiled.get(t.id);
    if (!rules) {
      rules = compileRules(t.rules);
      this.compiled.set(t.id, rules);
    }
    const captures = { ...t.captures };
    let captured = false;
    let failed = t.ruleFailed;
    const fields = { node: t.mac, task: t.id, template: t.template, stream };
    for (const line of lines) {
      for (const hit of matchLine(rules, stream, line)) {
        const a = hit.rule.action;
        if (a.kind === 'fail' && !failed) {
          failed = true;
          this.store.markRuleFailed(t.id, `rule: ${stream} /${hit.rule.pattern}/ matched`);
          this.o.log.warn({ ...fields, pattern: hit.rule.pattern }, 'task rule matched: the task will be failed');
        } else if (a.kind === 'capture' && hit.value !== undefined) {
          captures[a.name] = hit.value;
          captured = true;
        } else if (a.kind === 'webhook') {
          const n = this.webhookCount.get(t.id) ?? 0;
          if (n >= MAX_WEBHOOKS_PER_TASK) continue;
          this.webhookCount.set(t.id, n + 1);
          this.webhooks.post(
            a.url,
            { pod: this.o.pod, task: t.id, mac: t.mac, hostname: t.hostname, template: t.template, stream, pattern: hit.rule.pattern, line: line.slice(0, 1000), time: this.now() },
            fields,
          );
        }
      }
    }
    if (captured) this.store.setCaptures(t.id, captures);
    this.store.setChecked(t.id, stream, checked + consumed);
  }
}

function sleep(ms: number, ...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of signals) s.addEventListener('abort', done, { once: true });
  });
}
