// The pod's stores in plain JS, kept in memory only: for the DHCP warm-up
// (throwaway state; SQLite's native calls are not what the JIT needs to see)
// and as test doubles. Same interfaces, same rules as the SQLite ones
// (src/store/sqlite-store.ts), nothing durable.
import { inRange, lowestFree } from './address-pool.js';
import type {
  AddressRange,
  Heartbeat,
  InstallStateChange,
  LeaseRecord,
  LeaseStore,
  Liveness,
  ManagementAddress,
  ManagementAddressStore,
  NodeEvent,
  NodeRecord,
  NodeStateStore,
  NodeWrites,
} from './types.js';

export interface MemoryNodeStateOptions {
  /** keep event rows (tests read them); the warm-up drops them */
  keepEvents?: boolean;
}

export class MemoryNodeStateStore implements NodeStateStore {
  private readonly byMac = new Map<string, NodeRecord>();
  private readonly log: NodeEvent[] = [];
  private readonly keepEvents: boolean;

  constructor(opts: MemoryNodeStateOptions = {}) {
    this.keepEvents = opts.keepEvents ?? true;
  }

  installState(mac: string): string | undefined {
    return this.byMac.get(mac)?.state;
  }

  changeInstallState(c: InstallStateChange): void {
    const before = this.byMac.get(c.mac);
    // As in SQLite: the reason belongs to a failure, the report is the last one seen; liveness and the last heartbeat stay,
    // the image until a new install starts writing the disk.
    const image = c.image ?? (c.state === 'installing' ? undefined : before?.image);
    this.byMac.set(c.mac, {
      mac: c.mac,
      state: c.state,
      attempt: before?.attempt ?? 1,
      updatedAt: c.time,
      ...(c.reason !== undefined ? { reason: c.reason } : {}),
      lastSeen: c.time,
      ...(before?.liveness !== undefined ? { liveness: before.liveness } : {}),
      ...(before?.heartbeat !== undefined ? { heartbeat: before.heartbeat } : {}),
      ...(image !== undefined ? { image } : {}),
    });
    if (c.event !== false) this.addEvent({ time: c.time, mac: c.mac, kind: c.state, ...(c.detail !== undefined ? { detail: c.detail } : {}) });
  }

  node(mac: string): NodeRecord | undefined {
    return this.byMac.get(mac);
  }

  nodes(): NodeRecord[] {
    return [...this.byMac.values()].sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  }

  touch(mac: string, time: number): void {
    const n = this.byMac.get(mac);
    if (n) this.byMac.set(mac, { ...n, lastSeen: time });
  }

  recordHeartbeat(mac: string, heartbeat: Heartbeat): void {
    const n = this.byMac.get(mac);
    if (n) this.byMac.set(mac, { ...n, lastSeen: heartbeat.time, heartbeat: { time: heartbeat.time, metrics: { ...heartbeat.metrics } } });
  }

  setLiveness(mac: string, liveness: Liveness | undefined, event?: NodeEvent): void {
    const n = this.byMac.get(mac);
    if (n) {
      const { liveness: _was, ...rest } = n;
      this.byMac.set(mac, liveness === undefined ? rest : { ...rest, liveness });
    }
    if (event) this.addEvent(event);
  }

  reinstall(mac: string, time: number, by: string): NodeRecord {
    const before = this.byMac.get(mac);
    const after: NodeRecord = {
      mac,
      state: 'discovered',
      attempt: before ? before.attempt + 1 : 2,
      updatedAt: time,
      ...(before?.lastSeen !== undefined ? { lastSeen: before.lastSeen } : {}),
      ...(before?.image !== undefined ? { image: before.image } : {}),
    };
    this.byMac.set(mac, after);
    this.addEvent({ time, mac, kind: 'reinstall', detail: `by ${by}; was ${before?.state ?? 'never seen'}; attempt ${after.attempt}` });
    return after;
  }

  addEvent(e: NodeEvent): void {
    if (this.keepEvents) this.log.push(e);
  }

  /** Newest first, as the SQLite store answers. */
  events(mac?: string, limit = 100): NodeEvent[] {
    const out: NodeEvent[] = [];
    for (let i = this.log.length - 1; i >= 0 && out.length < limit; i--) {
      const e = this.log[i]!;
      if (mac === undefined || e.mac === mac) out.push(e);
    }
    return out;
  }

  admit(writes: NodeWrites): NodeWrites {
    return writes;
  }

  /** What a LeaseStore's commit does with the rows about servers. */
  write(w: NodeWrites): void {
    for (const c of w.changes) this.changeInstallState(c);
    for (const e of w.events) this.addEvent(e);
  }
}

/** Leases in memory; commits the rows about servers into `nodes`, as the SQLite store does in the same transaction. */
export class MemoryLeaseStore implements LeaseStore {
  private readonly byAddress = new Map<number, LeaseRecord>();

  constructor(private readonly nodes?: MemoryNodeStateStore) {}

  loadAll(): LeaseRecord[] {
    return [...this.byAddress.values()];
  }

  commit(records: readonly LeaseRecord[], nodes?: NodeWrites): void {
    for (const r of records) this.byAddress.set(r.address, r);
    if (nodes) {
      if (!this.nodes && (nodes.changes.length || nodes.events.length)) throw new Error('MemoryLeaseStore: rows about servers but no node store to write them to');
      this.nodes?.write(nodes);
    }
  }
}

/** Management addresses from the pod's pool, in memory; the same choice as the SQLite store's. */
export class MemoryManagementAddressStore implements ManagementAddressStore {
  private readonly byMac = new Map<string, ManagementAddress>();

  managementAddress(mac: string, pool: AddressRange, reserved: ReadonlySet<number>, now: number): number {
    const mine = this.byMac.get(mac);
    if (mine && inRange(pool, mine.address) && !reserved.has(mine.address)) return mine.address;
    const taken = new Set([...this.byMac.values()].filter((a) => a.mac !== mac).map((a) => a.address));
    const address = lowestFree(pool, taken, reserved);
    this.byMac.set(mac, { mac, address, allocatedAt: now });
    return address;
  }

  managementAddresses(): ManagementAddress[] {
    return [...this.byMac.values()].sort((a, b) => a.address - b.address);
  }
}
