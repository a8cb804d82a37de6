// The servers of one pod, for the central API: read from (and, for a
// reinstall, written to) the pod's own database next to its running
// instance, as `podboot nodes` does. SQLite in WAL mode takes a second
// process, and the instance reads install state from the database on every
// request, so a reinstall takes effect at the server's next boot.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openPodDatabase } from '../store/database.js';
import { SqliteNodeStateStore } from '../store/sqlite-store.js';
import type { NodeEvent, NodeRecord } from '../store/types.js';

function withStore<T>(stateRoot: string, pod: string, fn: (s: SqliteNodeStateStore) => T): T | undefined {
  const dir = join(stateRoot, pod);
  if (!existsSync(join(dir, 'pod.db'))) return undefined;
  const db = openPodDatabase(dir);
  try {
    return fn(new SqliteNodeStateStore(db));
  } finally {
    db.close();
  }
}

export function podNodes(stateRoot: string, pod: string): NodeRecord[] {
  return withStore(stateRoot, pod, (s) => s.nodes()) ?? [];
}

export function podNode(stateRoot: string, pod: string, mac: string): { node?: NodeRecord; events: NodeEvent[] } {
  return withStore(stateRoot, pod, (s) => ({ node: s.node(mac), events: s.events(mac, 200) })) ?? { events: [] };
}

/** The operator's way back to a PXE install: a new attempt, older tokens refused, an event. */
export function reinstallNode(stateRoot: string, pod: string, mac: string, by: string): NodeRecord | undefined {
  return withStore(stateRoot, pod, (s) => s.reinstall(mac, Math.floor(Date.now() / 1000), by));
}
