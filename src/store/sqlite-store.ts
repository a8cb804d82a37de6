import type Database from 'better-sqlite3';
import type { LeaseRecord, LeaseState, LeaseStore, NodeEvent, NodeRecord, NodeStateStore } from './types.js';

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

export class SqliteLeaseStore implements LeaseStore {
  private readonly upsert: Database.Statement;
  private readonly commitMany: (records: readonly LeaseRecord[]) => void;

  constructor(private readonly db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO leases (address, client_key, mac, hostname, state, starts, ends, subnet)
       VALUES (@address, @clientKey, @mac, @hostname, @state, @starts, @ends, @subnet)
       ON CONFLICT(address) DO UPDATE SET client_key = excluded.client_key, mac = excluded.mac,
         hostname = excluded.hostname, state = excluded.state, starts = excluded.starts,
         ends = excluded.ends, subnet = excluded.subnet`,
    );
    this.commitMany = db.transaction((records: readonly LeaseRecord[]) => {
      for (const r of records) this.upsert.run({ ...r, hostname: r.hostname ?? null });
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

  commit(records: readonly LeaseRecord[]): void {
    if (records.length) this.commitMany(records);
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
  private readonly putState: Database.Statement;
  private readonly putSeen: Database.Statement;
  private readonly putEvent: Database.Statement;
  private readonly doReinstall: (mac: string, time: number, by: string) => NodeRecord;

  constructor(private readonly db: Database.Database) {
    this.getState = db.prepare('SELECT state FROM nodes WHERE mac = ?').pluck();
    this.getNode = db.prepare('SELECT * FROM nodes WHERE mac = ?');
    // The reason belongs to a failure: any other state clears it.
    this.putState = db.prepare(
      `INSERT INTO nodes (mac, state, updated_at, reason, last_seen) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(mac) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
         reason = excluded.reason, last_seen = excluded.last_seen`,
    );
    this.putSeen = db.prepare('UPDATE nodes SET last_seen = ? WHERE mac = ?');
    this.putEvent = db.prepare('INSERT INTO events (time, mac, kind, detail) VALUES (?, ?, ?, ?)');
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

  setInstallState(mac: string, state: string, time: number, reason?: string): void {
    this.putState.run(mac, state, time, reason ?? null, time);
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
    this.putEvent.run(e.time, e.mac, e.kind, e.detail ?? null);
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
