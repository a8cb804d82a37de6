// The servers of one pod, for the central API: read from (and, for a
// reinstall, written to) the pod's own database next to its running
// instance, as `podboot nodes` does. SQLite in WAL mode takes a second
// process, and the instance reads install state from the database on every
// request, so a reinstall takes effect at the server's next boot.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openPodDatabase } from '../store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../store/sqlite-store.js';
import { formatIPv4 } from '../net/ipv4.js';
import type { NodeEvent, NodeRecord } from '../store/types.js';
import { INSTALL_STATES } from '../install/state.js';

function withStore<T>(stateRoot: string, pod: string, fn: (s: SqliteNodeStateStore, leases: SqliteLeaseStore) => T): T | undefined {
  const dir = join(stateRoot, pod);
  if (!existsSync(join(dir, 'pod.db'))) return undefined;
  const db = openPodDatabase(dir);
  try {
    return fn(new SqliteNodeStateStore(db), new SqliteLeaseStore(db));
  } finally {
    db.close();
  }
}

/**
 * A server as listed: with the address it holds a lease on (the install
 * state lives apart from the leases), and when it failed, the last step it
 * reached, so its progress can be drawn up to where it broke.
 */
export type ListedNode = NodeRecord & { ip?: string; failedAfter?: string };

export function podNodes(stateRoot: string, pod: string): ListedNode[] {
  return (
    withStore(stateRoot, pod, (s, leases) => {
      const now = Math.floor(Date.now() / 1000);
      const ipOf = new Map(leases.loadAll().filter((l) => l.state === 'bound' && l.ends > now).map((l) => [l.mac, formatIPv4(l.address)]));
      return s.nodes().map((n): ListedNode => {
        const ip = ipOf.get(n.mac);
        return { ...n, ...(ip ? { ip } : {}), ...(n.state === 'failed' ? { failedAfter: stepBeforeFailure(s.events(n.mac, 50)) } : {}) };
      });
    }) ?? []
  );
}

const STEPS: ReadonlySet<string> = new Set(INSTALL_STATES.filter((st) => st !== 'failed'));

/** events come newest first; the first state change that is not the failure itself (or undefined: none within reach) */
function stepBeforeFailure(events: NodeEvent[]): string | undefined {
  let seenFailure = false;
  for (const e of events) {
    if (e.kind === 'failed') seenFailure = true;
    else if (seenFailure && STEPS.has(e.kind)) return e.kind;
  }
  return undefined;
}

export interface PodNodeCounts {
  pod: string;
  total: number;
  /** servers by install state; states nobody is in are left out */
  states: Record<string, number>;
}

const counted = new Map<string, { version: string; counts: PodNodeCounts }>();

/**
 * The database files' sizes and times: any commit of the instance changes the
 * WAL, a checkpoint the main file. Opening a database costs about 1 ms of the
 * node's event loop, so counting a hundred pods at every refresh of an open
 * page would stall the supervisor; unchanged pods are not opened again.
 */
function dbVersion(dir: string): string | undefined {
  const main = statSync(join(dir, 'pod.db'), { throwIfNoEntry: false });
  if (!main) return undefined;
  const wal = statSync(join(dir, 'pod.db-wal'), { throwIfNoEntry: false });
  return `${main.mtimeMs}:${main.size}:${wal?.mtimeMs}:${wal?.size}`;
}

/** How many servers each pod has in each install state: the overview of every pod without listing every server. */
export function podNodeCounts(stateRoot: string, pods: readonly string[]): PodNodeCounts[] {
  return pods.map((pod) => {
    const dir = join(stateRoot, pod);
    const version = dbVersion(dir);
    const key = `${stateRoot}\0${pod}`;
    const cached = counted.get(key);
    if (version !== undefined && cached?.version === version) return cached.counts;
    const states: Record<string, number> = {};
    const nodes = withStore(stateRoot, pod, (s) => s.nodes()) ?? [];
    for (const n of nodes) states[n.state] = (states[n.state] ?? 0) + 1;
    const counts = { pod, total: nodes.length, states };
    // Kept only if nothing was committed while it was read; otherwise counted again next time.
    if (version !== undefined && dbVersion(dir) === version) counted.set(key, { version, counts });
    else counted.delete(key);
    return counts;
  });
}

export function podNode(stateRoot: string, pod: string, mac: string): { node?: NodeRecord; events: NodeEvent[] } {
  return withStore(stateRoot, pod, (s) => ({ node: s.node(mac), events: s.events(mac, 200) })) ?? { events: [] };
}

/** The operator's way back to a PXE install: a new attempt, older tokens refused, an event. */
export function reinstallNode(stateRoot: string, pod: string, mac: string, by: string): NodeRecord | undefined {
  return withStore(stateRoot, pod, (s) => s.reinstall(mac, Math.floor(Date.now() / 1000), by));
}
