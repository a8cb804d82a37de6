import type Database from 'better-sqlite3';
import type { InstallStateChange, LeaseRecord, LeaseState, LeaseStore, NodeEvent, NodeRecord, NodeStateStore, NodeWrites } from './types.js';

interface LeaseRow {
  address: number;
  client_key: string;
  mac: string;
  hostname: string | null;
  state: string;
  starts: number;
  ends: number;
  subnet: string;
}

/** The statements that write rows about servers; shared by both stores (one database, one transaction). */
class NodeRows {
  private readonly putState: Database.Statement;
  private readonly putEvent: Database.Statement;

  constructor(db: Database.Database) {
    // The reason belongs to a failure: any other state clears it.
    this.putState = db.prepare(
      `INSERT INTO nodes (mac, state, updated_at, reason, last_seen) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(mac) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
         reason = excluded.reason, last_seen = excluded.last_seen`,
    );
    this.putEvent = db.prepare('INSERT INTO events (time, mac, kind, detail) VALUES (?, ?, ?, ?)');
  }

  /** Call inside a transaction. */
  change(c: InstallStateChange): void {
    this.putState.run(c.mac, c.state, c.time, c.reason ?? null, c.time);
    if (c.event !== false) this.putEvent.run(c.time, c.mac, c.state, c.detail ?? null);
  }

  event(e: NodeEvent): void {
    this.putEvent.run(e.time, e.mac, e.kind, e.detail ?? null);
  }

  write(w: NodeWrites): void {
    for (const c of w.changes) this.change(c);
    for (const e of w.events) this.event(e);
  }
}

export class SqliteLeaseStore implements LeaseStore {
  private readonly upsert: Database.Statement;
  private readonly commitMany: (records: readonly LeaseRecord[], nodes: NodeWrites | undefined) => void;

  constructor(private readonly db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO leases (address, client_key, mac, hostname, state, starts, ends, subnet)
       VALUES (@address, @clientKey, @mac, @hostname, @state, @starts, @ends, @subnet)
       ON CONFLICT(address) DO UPDATE SET client_key = excluded.client_key, mac = excluded.mac,
         hostname = excluded.hostname, state = excluded.state, starts = excluded.starts,
         ends = excluded.ends, subnet = excluded.subnet`,
    );
    const nodeRows = new NodeRows(db);
    this.commitMany = db.transaction((records: readonly LeaseRecord[], nodes: NodeWrites | undefined) => {
      for (const r of records) this.upsert.run({ ...r, hostname: r.hostname ?? null });
      if (nodes) nodeRows.write(nodes);
    });
  }

  loadAll(): LeaseRecord[] {
    const rows = this.db.prepare('SELECT * FROM leases').all() as LeaseRow[];
    return rows.map((r) => ({
      address: r.address >>> 0,
      clientKey: r.client_key,
      mac: r.mac,
      hostname: r.hostname ?? undefined,
      state: r.state as LeaseState,
      starts: r.starts,
      ends: r.ends,
      subnet: r.subnet,
    }));
  }

  commit(records: readonly LeaseRecord[], nodes?: NodeWrites): void {
    const rows = nodes && (nodes.changes.length || nodes.events.length) ? nodes : undefined;
    if (records.length || rows) this.commitMany(records, rows);
  }
}

interface NodeRow {
  mac: string;
  state: string;
  attempt: number;
  updated_at: number;
  reason: string | null;
  last_seen: number | null;
}

function nodeRecord(r: NodeRow): NodeRecord {
  return {
    mac: r.mac,
    state: r.state,
    attempt: r.attempt,
    updatedAt: r.updated_at,
    ...(r.reason !== null ? { reason: r.reason } : {}),
    ...(r.last_seen !== null ? { lastSeen: r.last_seen } : {}),
  };
}

export class SqliteNodeStateStore implements NodeStateStore {
  private readonly getState: Database.Statement;
  private readonly getNode: Database.Statement;
  private readonly putSeen: Database.Statement;
  private readonly rows: NodeRows;
  private readonly doChange: (change: InstallStateChange) => void;
  private readonly doReinstall: (mac: string, time: number, by: string) => NodeRecord;

  constructor(private readonly db: Database.Database) {
    this.getState = db.prepare('SELECT state FROM nodes WHERE mac = ?').pluck();
    this.getNode = db.prepare('SELECT * FROM nodes WHERE mac = ?');
    this.putSeen = db.prepare('UPDATE nodes SET last_seen = ? WHERE mac = ?');
    const rows = new NodeRows(db);
    this.rows = rows;
    this.doChange = db.transaction((change: InstallStateChange) => rows.change(change));
    const bump = db.prepare(
      `INSERT INTO nodes (mac, state, updated_at, attempt) VALUES (?, 'discovered', ?, 2)
       ON CONFLICT(mac) DO UPDATE SET state = 'discovered', updated_at = excluded.updated_at,
         attempt = nodes.attempt + 1, reason = NULL`,
    );
    this.doReinstall = db.transaction((mac: string, time: number, by: string) => {
      const before = this.installState(mac);
      bump.run(mac, time);
      const after = this.node(mac)!;
      this.addEvent({ time, mac, kind: 'reinstall', detail: `by ${by}; was ${before ?? 'never seen'}; attempt ${after.attempt}` });
      return after;
    });
  }

  installState(mac: string): string | undefined {
    return (this.getState.get(mac) as string | undefined) ?? undefined;
  }

  changeInstallState(change: InstallStateChange): void {
    this.doChange(change);
  }

  node(mac: string): NodeRecord | undefined {
    const row = this.getNode.get(mac) as NodeRow | undefined;
    return row && nodeRecord(row);
  }

  nodes(): NodeRecord[] {
    return (this.db.prepare('SELECT * FROM nodes ORDER BY mac').all() as NodeRow[]).map(nodeRecord);
  }

  touch(mac: string, time: number): void {
    this.putSeen.run(time, mac);
  }

  reinstall(mac: string, time: number, by: string): NodeRecord {
    return this.doReinstall(mac, time, by);
  }

  addEvent(e: NodeEvent): void {
    this.rows.event(e);
  }

  /** Takes every row: nothing bounds this store (src/install/admission.ts wraps it where that matters). */
  admit(writes: NodeWrites): NodeWrites {
    return writes;
  }

  events(mac?: string, limit = 100): NodeEvent[] {
    const rows = (
      mac
        ? this.db.prepare('SELECT time, mac, kind, detail FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?').all(mac, limit)
        : this.db.prepare('SELECT time, mac, kind, detail FROM events ORDER BY id DESC LIMIT ?').all(limit)
    ) as { time: number; mac: string; kind: string; detail: string | null }[];
    return rows.map((r) => ({ time: r.time, mac: r.mac, kind: r.kind, detail: r.detail ?? undefined }));
  }
}
