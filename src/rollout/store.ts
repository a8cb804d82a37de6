// Releases and rollouts in the pod's database (migration 9). The pod (its
// rollout driver) and the central node (start, pause, promote, rollback)
// both write here: every phase change is a compare-and-set on the phase it
// was decided from, so neither undoes the other's.
import type Database from 'better-sqlite3';
import type { Pass, Phase, Rollout, RolloutServer, ServerState } from './plan.js';

export const RELEASE_ROLES = ['active', 'previous', 'canary', 'staged', 'retired'] as const;
export type ReleaseRole = (typeof RELEASE_ROLES)[number];
/** Roles only one release holds at a time. */
const SINGLE: ReadonlySet<ReleaseRole> = new Set(['active', 'previous', 'canary']);

export interface Release {
  ref: string;
  role: ReleaseRole;
  changedAt: number;
  changedBy: string;
  why?: string;
}

export interface ReleaseChange {
  time: number;
  ref: string;
  role: ReleaseRole;
  by: string;
  why?: string;
}

interface RolloutRow {
  id: string;
  target: string;
  previous: string | null;
  selector: string;
  canary: string;
  batch: number;
  max_failures: number;
  server_timeout: number;
  phase: Phase;
  paused_from: Phase | null;
  reason: string | null;
  created_at: number;
  created_by: string;
  updated_at: number;
}

interface ServerRow {
  rollout: string;
  pass: Pass;
  mac: string;
  ord: number;
  canary: number;
  image: string;
  state: ServerState;
  batch: number | null;
  started_at: number | null;
  finished_at: number | null;
  detail: string | null;
}

const rolloutOf = (r: RolloutRow): Rollout => ({
  id: r.id,
  target: r.target,
  ...(r.previous ? { previous: r.previous } : {}),
  selector: r.selector,
  canary: r.canary,
  batch: r.batch,
  maxFailures: r.max_failures,
  serverTimeout: r.server_timeout,
  phase: r.phase,
  ...(r.paused_from ? { pausedFrom: r.paused_from } : {}),
  ...(r.reason ? { reason: r.reason } : {}),
  createdAt: r.created_at,
  createdBy: r.created_by,
  updatedAt: r.updated_at,
});

const serverOf = (r: ServerRow): RolloutServer => ({
  rollout: r.rollout,
  pass: r.pass,
  mac: r.mac,
  ord: r.ord,
  canary: r.canary === 1,
  image: r.image,
  state: r.state,
  ...(r.batch !== null ? { batch: r.batch } : {}),
  ...(r.started_at !== null ? { startedAt: r.started_at } : {}),
  ...(r.finished_at !== null ? { finishedAt: r.finished_at } : {}),
  ...(r.detail !== null ? { detail: r.detail } : {}),
});

export class RolloutStore {
  constructor(private readonly db: Database.Database) {}

  releases(): Release[] {
    const rows = this.db.prepare('SELECT ref, role, changed_at, changed_by, why FROM releases ORDER BY changed_at DESC, ref').all() as {
      ref: string;
      role: ReleaseRole;
      changed_at: number;
      changed_by: string;
      why: string | null;
    }[];
    return rows.map((r) => ({ ref: r.ref, role: r.role, changedAt: r.changed_at, changedBy: r.changed_by, ...(r.why ? { why: r.why } : {}) }));
  }

  release(role: ReleaseRole): string | undefined {
    return (this.db.prepare('SELECT ref FROM releases WHERE role = ? ORDER BY changed_at DESC LIMIT 1').get(role) as { ref: string } | undefined)?.ref;
  }

  releaseHistory(limit = 50): ReleaseChange[] {
    const rows = this.db.prepare('SELECT time, ref, role, by, why FROM release_history ORDER BY id DESC LIMIT ?').all(limit) as (Omit<ReleaseChange, 'why'> & { why: string | null })[];
    return rows.map((r) => ({ time: r.time, ref: r.ref, role: r.role, by: r.by, ...(r.why ? { why: r.why } : {}) }));
  }

  /**
   * Gives `ref` its role (a role only one release holds is taken from the one
   * holding it, which is retired) and writes the history row. Callers group
   * several in one transaction (transaction()).
   */
  setRole(c: ReleaseChange): void {
    if (SINGLE.has(c.role)) {
      this.db
        .prepare("UPDATE releases SET role = 'retired', changed_at = ?, changed_by = ?, why = ? WHERE role = ? AND ref != ?")
        .run(c.time, c.by, `replaced as ${c.role} by ${c.ref}`, c.role, c.ref);
    }
    this.db
      .prepare(
        'INSERT INTO releases (ref, role, changed_at, changed_by, why) VALUES (?, ?, ?, ?, ?) ON CONFLICT(ref) DO UPDATE SET role = excluded.role, changed_at = excluded.changed_at, changed_by = excluded.changed_by, why = excluded.why',
      )
      .run(c.ref, c.role, c.time, c.by, c.why ?? null);
    this.db.prepare('INSERT INTO release_history (time, ref, role, by, why) VALUES (?, ?, ?, ?, ?)').run(c.time, c.ref, c.role, c.by, c.why ?? null);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  insertRollout(r: Rollout, servers: readonly RolloutServer[]): void {
    this.db
      .prepare(
        `INSERT INTO rollouts (id, target, previous, selector, canary, batch, max_failures, server_timeout, phase, paused_from, reason, created_at, created_by, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)`,
      )
      .run(r.id, r.target, r.previous ?? null, r.selector, r.canary, r.batch, r.maxFailures, r.serverTimeout, r.phase, r.createdAt, r.createdBy, r.updatedAt);
    this.insertServers(servers);
  }

  insertServers(servers: readonly RolloutServer[]): void {
    const insert = this.db.prepare('INSERT INTO rollout_servers (rollout, pass, mac, ord, canary, image, state) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const s of servers) insert.run(s.rollout, s.pass, s.mac, s.ord, s.canary ? 1 : 0, s.image, s.state);
  }

  rollout(id: string): Rollout | undefined {
    const row = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as RolloutRow | undefined;
    return row && rolloutOf(row);
  }

  /** The newest rollout: the one `rollout status` shows. */
  latest(): Rollout | undefined {
    const row = this.db.prepare('SELECT * FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT 1').get() as RolloutRow | undefined;
    return row && rolloutOf(row);
  }

  list(limit = 20): Rollout[] {
    return (this.db.prepare('SELECT * FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT ?').all(limit) as RolloutRow[]).map(rolloutOf);
  }

  servers(rollout: string): RolloutServer[] {
    return (this.db.prepare("SELECT * FROM rollout_servers WHERE rollout = ? ORDER BY pass = 'back', ord").all(rollout) as ServerRow[]).map(serverOf);
  }

  /** Compare-and-set: false when the phase was no longer `from`. */
  setPhase(id: string, from: Phase, to: Phase, now: number, extra: { pausedFrom?: Phase | null; reason?: string | null } = {}): boolean {
    const r = this.db
      .prepare('UPDATE rollouts SET phase = ?, paused_from = ?, reason = ?, updated_at = ? WHERE id = ? AND phase = ?')
      .run(to, extra.pausedFrom ?? null, extra.reason ?? null, now, id, from);
    return r.changes === 1;
  }

  updateServer(rollout: string, pass: Pass, mac: string, change: { state: ServerState; batch?: number; startedAt?: number; finishedAt?: number; detail?: string }, from?: ServerState): boolean {
    const r = this.db
      .prepare(
        `UPDATE rollout_servers SET state = ?, batch = COALESCE(?, batch), started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at), detail = COALESCE(?, detail)
         WHERE rollout = ? AND pass = ? AND mac = ?${from ? ' AND state = ?' : ''}`,
      )
      .run(change.state, change.batch ?? null, change.startedAt ?? null, change.finishedAt ?? null, change.detail ?? null, rollout, pass, mac, ...(from ? [from] : []));
    return r.changes === 1;
  }

  /** The row steering a server's install now: of the newest open rollout, its back pass before its forward one. */
  steering(mac: string, openPhases: readonly Phase[], states: readonly ServerState[]): RolloutServer | undefined {
    const row = this.db
      .prepare(
        `SELECT s.* FROM rollout_servers s JOIN rollouts r ON r.id = s.rollout
         WHERE s.mac = ? AND r.phase IN (${openPhases.map(() => '?').join(',')}) AND s.state IN (${states.map(() => '?').join(',')})
         ORDER BY r.created_at DESC, r.rowid DESC, s.pass = 'back' DESC LIMIT 1`,
      )
      .get(mac, ...openPhases, ...states) as ServerRow | undefined;
    return row && serverOf(row);
  }
}
