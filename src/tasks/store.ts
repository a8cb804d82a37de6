// Tasks in the pod's database (the `tasks` and `task_output` tables). Both
// the pod (delivery, output, exit, deadlines) and the central node (submit,
// cancel, listings) open it: every state change is a compare-and-set on the
// state it was decided from, so the two processes never undo each other.
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Rule, Stream } from './rules.js';
import type { TaskState } from './state.js';

/** One stream of a task's output: STATE/<pod>/tasks/ID.STREAM, written by the pod. */
export function taskOutputFile(stateDir: string, id: string, stream: Stream): string {
  return join(stateDir, 'tasks', `${id}.${stream}`);
}

export interface TaskRecord {
  id: string;
  mac: string;
  hostname?: string;
  template: string;
  params: Record<string, string>;
  rules: Rule[];
  script: string;
  sha256: string;
  state: TaskState;
  createdAt: number;
  deadline: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  reason?: string;
  ruleFailed: boolean;
  captures: Record<string, string>;
  stdoutLength: number;
  stderrLength: number;
  stdoutChecked: number;
  stderrChecked: number;
  submittedBy?: string;
  /** the label selector the task was submitted with, when it was (`role=web`) */
  selector?: string;
}

export interface OutputChunk {
  seq: number;
  stream: Stream;
  offset: number;
  length: number;
  time: number;
}

interface Row {
  id: string;
  mac: string;
  hostname: string | null;
  template: string;
  params: string;
  rules: string;
  script: string;
  sha256: string;
  state: TaskState;
  created_at: number;
  deadline: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  reason: string | null;
  rule_failed: number;
  captures: string;
  stdout_length: number;
  stderr_length: number;
  stdout_checked: number;
  stderr_checked: number;
  submitted_by: string | null;
  selector: string | null;
}

function record(r: Row): TaskRecord {
  return {
    id: r.id,
    mac: r.mac,
    ...(r.hostname !== null ? { hostname: r.hostname } : {}),
    template: r.template,
    params: JSON.parse(r.params) as Record<string, string>,
    rules: JSON.parse(r.rules) as Rule[],
    script: r.script,
    sha256: r.sha256,
    state: r.state,
    createdAt: r.created_at,
    deadline: r.deadline,
    updatedAt: r.updated_at,
    ...(r.started_at !== null ? { startedAt: r.started_at } : {}),
    ...(r.finished_at !== null ? { finishedAt: r.finished_at } : {}),
    ...(r.exit_code !== null ? { exitCode: r.exit_code } : {}),
    ...(r.reason !== null ? { reason: r.reason } : {}),
    ruleFailed: r.rule_failed !== 0,
    captures: JSON.parse(r.captures) as Record<string, string>,
    stdoutLength: r.stdout_length,
    stderrLength: r.stderr_length,
    stdoutChecked: r.stdout_checked,
    stderrChecked: r.stderr_checked,
    ...(r.submitted_by !== null ? { submittedBy: r.submitted_by } : {}),
    ...(r.selector !== null ? { selector: r.selector } : {}),
  };
}

export type NewTask = Pick<TaskRecord, 'id' | 'mac' | 'hostname' | 'template' | 'params' | 'rules' | 'script' | 'sha256' | 'createdAt' | 'deadline' | 'submittedBy' | 'selector'>;

/** What a state change sets besides the state. */
export interface TaskChange {
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  reason?: string;
}

export class SqliteTaskStore {
  private readonly byId: Database.Statement;
  private readonly nextOf: Database.Statement;
  private readonly openPast: Database.Statement;
  private readonly lastChunk: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.byId = db.prepare('SELECT * FROM tasks WHERE id = ?');
    this.nextOf = db.prepare("SELECT * FROM tasks WHERE mac = ? AND state IN ('queued', 'delivered') ORDER BY created_at, rowid LIMIT 1");
    this.openPast = db.prepare("SELECT * FROM tasks WHERE state IN ('queued', 'delivered', 'running') AND deadline <= ?");
    this.lastChunk = db.prepare('SELECT seq, stream, offset, length, time FROM task_output WHERE task = ? ORDER BY seq DESC LIMIT 1');
  }

  insert(tasks: readonly NewTask[]): void {
    const ins = this.db.prepare(
      `INSERT INTO tasks (id, mac, hostname, template, params, rules, script, sha256, state, created_at, deadline, updated_at, submitted_by, selector)
       VALUES (@id, @mac, @hostname, @template, @params, @rules, @script, @sha256, 'queued', @createdAt, @deadline, @createdAt, @submittedBy, @selector)`,
    );
    this.db.transaction(() => {
      for (const t of tasks)
        ins.run({ ...t, hostname: t.hostname ?? null, submittedBy: t.submittedBy ?? null, selector: t.selector ?? null, params: JSON.stringify(t.params), rules: JSON.stringify(t.rules) });
    })();
  }

  get(id: string): TaskRecord | undefined {
    const r = this.byId.get(id) as Row | undefined;
    return r && record(r);
  }

  /** Newest first. */
  list(o: { mac?: string; limit?: number } = {}): TaskRecord[] {
    const limit = Math.min(Math.max(o.limit ?? 200, 1), 5000);
    const rows = (
      o.mac
        ? this.db.prepare('SELECT * FROM tasks WHERE mac = ? ORDER BY created_at DESC, rowid DESC LIMIT ?').all(o.mac, limit)
        : this.db.prepare('SELECT * FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?').all(limit)
    ) as Row[];
    return rows.map(record);
  }

  /** The oldest task of this server not yet started. */
  next(mac: string): TaskRecord | undefined {
    const r = this.nextOf.get(mac) as Row | undefined;
    return r && record(r);
  }

  /** Tasks still open whose deadline has come. */
  overdue(now: number): TaskRecord[] {
    return (this.openPast.all(now) as Row[]).map(record);
  }

  /** Sets `to` only if the task is still `from`; false when someone changed it first. */
  transition(id: string, from: TaskState, to: TaskState, now: number, change: TaskChange = {}): boolean {
    const r = this.db
      .prepare(
        `UPDATE tasks SET state = ?, updated_at = ?, started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at),
           exit_code = COALESCE(?, exit_code), reason = COALESCE(?, reason) WHERE id = ? AND state = ?`,
      )
      .run(to, now, change.startedAt ?? null, change.finishedAt ?? null, change.exitCode ?? null, change.reason ?? null, id, from);
    return r.changes === 1;
  }

  /**
   * Records that `length` bytes of `stream` from `offset` are in its file;
   * a chunk right after the task's last one, on the same stream within the
   * same second, extends it, so a chatty agent does not make a row per line.
   */
  addOutput(id: string, stream: Stream, offset: number, length: number, time: number): void {
    this.db.transaction(() => {
      const last = this.lastChunk.get(id) as OutputChunk | undefined;
      if (last && last.stream === stream && last.offset + last.length === offset && last.time === time) {
        this.db.prepare('UPDATE task_output SET length = length + ? WHERE seq = ?').run(length, last.seq);
      } else {
        this.db.prepare('INSERT INTO task_output (task, stream, offset, length, time) VALUES (?, ?, ?, ?, ?)').run(id, stream, offset, length, time);
      }
      this.db.prepare(`UPDATE tasks SET ${stream}_length = ?, updated_at = ? WHERE id = ?`).run(offset + length, time, id);
    })();
  }

  output(id: string): OutputChunk[] {
    return this.db.prepare('SELECT seq, stream, offset, length, time FROM task_output WHERE task = ? ORDER BY seq').all(id) as OutputChunk[];
  }

  /** How far the rules have read a stream (whole lines only). */
  setChecked(id: string, stream: Stream, checked: number): void {
    this.db.prepare(`UPDATE tasks SET ${stream}_checked = ? WHERE id = ?`).run(checked, id);
  }

  markRuleFailed(id: string, reason: string): void {
    this.db.prepare('UPDATE tasks SET rule_failed = 1, reason = COALESCE(reason, ?) WHERE id = ?').run(reason, id);
  }

  setCaptures(id: string, captures: Record<string, string>): void {
    this.db.prepare('UPDATE tasks SET captures = ? WHERE id = ?').run(JSON.stringify(captures), id);
  }
}
