// The one way into a pod's state from outside the pod: the central node's
// API, `podboot nodes` and the lab read a pod's servers and events here, and
// an operator's reinstall is written here. The pod itself owns its database
// (src/pod/instance.ts); SQLite in WAL mode lets this second process read
// while the pod writes, and the pod reads install state at every request, so
// a reinstall takes effect at the server's next boot without a restart.
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { openExistingPodDatabase, podDatabaseFile } from './database.js';
import { SqliteNodeStateStore } from './sqlite-store.js';
import type { NodeEvent, NodeRecord, NodeWithLease, PodStateAdmin, PodStateView } from './types.js';

export interface OpenPodStateOptions {
  /** true: reads only (no file written, no migration); false: also the operator's reinstall */
  readonly: boolean;
}

/**
 * Opens the state of the pod whose state directory is `stateDir`, or
 * undefined when that pod has not recorded anything yet. Close it after use.
 */
export function openPodState(stateDir: string, opts: { readonly: true }): PodStateView | undefined;
export function openPodState(stateDir: string, opts: { readonly: false }): PodStateAdmin | undefined;
export function openPodState(stateDir: string, opts: OpenPodStateOptions): PodStateView | PodStateAdmin | undefined {
  const db = openExistingPodDatabase(stateDir, opts.readonly);
  return db && new SqlitePodState(db);
}

/**
 * Changes whenever the pod commits (its WAL) or checkpoints (its database
 * file); undefined when it has no database. Lets a reader skip opening a pod
 * whose state it has already read.
 */
export function podStateVersion(stateDir: string): string | undefined {
  const file = podDatabaseFile(stateDir);
  const main = statSync(file, { throwIfNoEntry: false });
  if (!main) return undefined;
  const wal = statSync(`${file}-wal`, { throwIfNoEntry: false });
  return `${main.mtimeMs}:${main.size}:${wal?.mtimeMs}:${wal?.size}`;
}

class SqlitePodState implements PodStateAdmin {
  private readonly nodeStore: SqliteNodeStateStore;
  private readonly bound: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.nodeStore = new SqliteNodeStateStore(db);
    this.bound = db.prepare("SELECT mac, address FROM leases WHERE state = 'bound' AND ends > ? ORDER BY address");
  }

  nodesWithLeases(now: number): NodeWithLease[] {
    // One address per MAC; should a MAC hold two, the higher one.
    const addressOf = new Map((this.bound.all(now) as { mac: string; address: number }[]).map((l) => [l.mac, l.address >>> 0]));
    return this.nodeStore.nodes().map((n) => {
      const address = addressOf.get(n.mac);
      return address === undefined ? n : { ...n, address };
    });
  }

  nodes(): NodeRecord[] {
    return this.nodeStore.nodes();
  }

  node(mac: string): NodeRecord | undefined {
    return this.nodeStore.node(mac);
  }

  events(mac?: string, limit?: number): NodeEvent[] {
    return this.nodeStore.events(mac, limit);
  }

  reinstall(mac: string, time: number, by: string): NodeRecord {
    if (this.db.readonly) throw new Error('pod state opened read-only: cannot reinstall');
    return this.nodeStore.reinstall(mac, time, by);
  }

  addEvent(event: NodeEvent): void {
    if (this.db.readonly) throw new Error('pod state opened read-only: cannot record an event');
    this.nodeStore.addEvent(event);
  }

  close(): void {
    this.db.close();
  }
}
