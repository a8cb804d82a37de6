import type Database from 'better-sqlite3';
import { inRange, lowestFree } from './address-pool.js';
import type {
  AddressRange,
  Heartbeat,
  InstallStateChange,
  LeaseRecord,
  LeaseState,
  LeaseStore,
  Liveness,
  ManagementAddress,
  ManagementAddressStore,
  NodeEvent,
  NodeMetrics,
  NodeRecord,
  NodeStateStore,
  NodeWrites,
} from './types.js';

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
    // The reason belongs to a failure: any other state clears it. The image stays
    // what the disk holds until a new install starts writing it.
    this.putState = db.prepare(
      `INSERT INTO nodes (mac, state, updated_at, reason, last_seen, image) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(mac) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,
         reason = excluded.reason, last_seen = excluded.last_seen,
         image = CASE WHEN excluded.image IS NOT NULL THEN excluded.image WHEN excluded.state = 'installing' THEN NULL ELSE nodes.image END`,
    );
    this.putEvent = db.prepare('INSERT INTO events (time, mac, kind, detail) VALUES (?, ?, ?, ?)');
  }

  /** Call inside a transaction. */
  change(c: InstallStateChange): void {
    this.putState.run(c.mac, c.state, c.time, c.reason ?? null, c.time, c.image ?? null);
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

/** heartbeats' columns by the figure they hold */
const METRIC_COLUMNS: Readonly<Record<keyof NodeMetrics, string>> = {
  uptime: 'uptime',
  load1: 'load1',
  load5: 'load5',
  load15: 'load15',
  memTotal: 'mem_total',
  memAvailable: 'mem_available',
  diskSize: 'disk_size',
  diskUsed: 'disk_used',
};
const METRICS = Object.entries(METRIC_COLUMNS) as [keyof NodeMetrics, string][];

/** A node row with its last heartbeat, if any (`hb_time` and the figures' columns, null without one). */
const NODE_SELECT = `SELECT nodes.*, heartbeats.time AS hb_time, ${METRICS.map(([, c]) => `heartbeats.${c}`).join(', ')}
  FROM nodes LEFT JOIN heartbeats ON heartbeats.mac = nodes.mac`;

interface NodeRow {
  mac: string;
  state: string;
  attempt: number;
  updated_at: number;
  reason: string | null;
  last_seen: number | null;
  liveness: string | null;
  image: string | null;
  hb_time: number | null;
  [metric: string]: string | number | null;
}

function nodeRecord(r: NodeRow): NodeRecord {
  let heartbeat: Heartbeat | undefined;
  if (r.hb_time !== null) {
    const metrics: NodeMetrics = {};
    for (const [name, column] of METRICS) {
      const v = r[column];
      if (typeof v === 'number') metrics[name] = v;
    }
    heartbeat = { time: r.hb_time, metrics };
  }
  return {
    mac: r.mac,
    state: r.state,
    attempt: r.attempt,
    updatedAt: r.updated_at,
    ...(r.reason !== null ? { reason: r.reason } : {}),
    ...(r.last_seen !== null ? { lastSeen: r.last_seen } : {}),
    ...(r.liveness === 'active' || r.liveness === 'silent' ? { liveness: r.liveness } : {}),
    ...(heartbeat ? { heartbeat } : {}),
    ...(r.image !== null ? { image: r.image } : {}),
  };
}

export class SqliteNodeStateStore implements NodeStateStore {
  private readonly getState: Database.Statement;
  private readonly getNode: Database.Statement;
  private readonly putSeen: Database.Statement;
  private readonly rows: NodeRows;
  private readonly doChange: (change: InstallStateChange) => void;
  private readonly doReinstall: (mac: string, time: number, by: string) => NodeRecord;
  private readonly doHeartbeat: (mac: string, heartbeat: Heartbeat) => void;
  private readonly doLiveness: (mac: string, liveness: Liveness | undefined, event: NodeEvent | undefined) => void;

  constructor(private readonly db: Database.Database) {
    this.getState = db.prepare('SELECT state FROM nodes WHERE mac = ?').pluck();
    this.getNode = db.prepare(`${NODE_SELECT} WHERE nodes.mac = ?`);
    this.putSeen = db.prepare('UPDATE nodes SET last_seen = ? WHERE mac = ?');
    const rows = new NodeRows(db);
    this.rows = rows;
    this.doChange = db.transaction((change: InstallStateChange) => rows.change(change));
    const bump = db.prepare(
      `INSERT INTO nodes (mac, state, updated_at, attempt) VALUES (?, 'discovered', ?, 2)
       ON CONFLICT(mac) DO UPDATE SET state = 'discovered', updated_at = excluded.updated_at,
         attempt = nodes.attempt + 1, reason = NULL, liveness = NULL`,
    );
    const dropHeartbeat = db.prepare('DELETE FROM heartbeats WHERE mac = ?');
    this.doReinstall = db.transaction((mac: string, time: number, by: string) => {
      const before = this.installState(mac);
      bump.run(mac, time);
      // The figures were the old OS's.
      dropHeartbeat.run(mac);
      const after = this.node(mac)!;
      this.addEvent({ time, mac, kind: 'reinstall', detail: `by ${by}; was ${before ?? 'never seen'}; attempt ${after.attempt}` });
      return after;
    });
    const putHeartbeat = db.prepare(
      `INSERT INTO heartbeats (mac, time, ${METRICS.map(([, c]) => c).join(', ')}) VALUES (?, ?, ${METRICS.map(() => '?').join(', ')})
       ON CONFLICT(mac) DO UPDATE SET time = excluded.time, ${METRICS.map(([, c]) => `${c} = excluded.${c}`).join(', ')}`,
    );
    this.doHeartbeat = db.transaction((mac: string, hb: Heartbeat) => {
      putHeartbeat.run(mac, hb.time, ...METRICS.map(([name]) => hb.metrics[name] ?? null));
      this.putSeen.run(hb.time, mac);
    });
    const putLiveness = db.prepare('UPDATE nodes SET liveness = ? WHERE mac = ?');
    this.doLiveness = db.transaction((mac: string, liveness: Liveness | undefined, event: NodeEvent | undefined) => {
      putLiveness.run(liveness ?? null, mac);
      if (event) rows.event(event);
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
    return (this.db.prepare(`${NODE_SELECT} ORDER BY nodes.mac`).all() as NodeRow[]).map(nodeRecord);
  }

  touch(mac: string, time: number): void {
    this.putSeen.run(time, mac);
  }

  recordHeartbeat(mac: string, heartbeat: Heartbeat): void {
    this.doHeartbeat(mac, heartbeat);
  }

  setLiveness(mac: string, liveness: Liveness | undefined, event?: NodeEvent): void {
    this.doLiveness(mac, liveness, event);
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

/** Management addresses from the pod's pool, in its database (table management_addresses). */
export class SqliteManagementAddressStore implements ManagementAddressStore {
  private readonly doAllocate: (mac: string, pool: AddressRange, reserved: ReadonlySet<number>, now: number) => number;

  constructor(private readonly db: Database.Database) {
    const held = db.prepare('SELECT address FROM management_addresses WHERE mac = ?').pluck();
    const others = db.prepare('SELECT address FROM management_addresses WHERE mac != ? AND address BETWEEN ? AND ?').pluck();
    const put = db.prepare(
      `INSERT INTO management_addresses (mac, address, allocated_at) VALUES (?, ?, ?)
       ON CONFLICT(mac) DO UPDATE SET address = excluded.address, allocated_at = excluded.allocated_at`,
    );
    const allocate = db.transaction((mac: string, pool: AddressRange, reserved: ReadonlySet<number>, now: number): number => {
      const mine = held.get(mac) as number | undefined;
      if (mine !== undefined && inRange(pool, mine) && !reserved.has(mine)) return mine;
      const taken = new Set(others.all(mac, pool.start, pool.end) as number[]);
      const address = lowestFree(pool, taken, reserved);
      put.run(mac, address, now);
      return address;
    });
    // IMMEDIATE: the read and the write are one step, whoever else opens the database.
    this.doAllocate = (mac, pool, reserved, now) => allocate.immediate(mac, pool, reserved, now);
  }

  managementAddress(mac: string, pool: AddressRange, reserved: ReadonlySet<number>, now: number): number {
    return this.doAllocate(mac, pool, reserved, now);
  }

  managementAddresses(): ManagementAddress[] {
    const rows = this.db.prepare('SELECT mac, address, allocated_at FROM management_addresses ORDER BY address').all() as { mac: string; address: number; allocated_at: number }[];
    return rows.map((r) => ({ mac: r.mac, address: r.address, allocatedAt: r.allocated_at }));
  }
}
