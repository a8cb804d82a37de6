// The servers of one pod, for the central API and `podboot nodes --state`
// alike: read from (and, for a reinstall, written to) the pod's own state
// through src/store/pod-state.ts; a reinstall takes effect at the server's
// next boot.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { podDatabaseFile } from '../store/database.js';
import { openPodState, podStateVersion } from '../store/pod-state.js';
import { formatIPv4 } from '../net/ipv4.js';
import type { NodeEvent, NodeRecord, PodStateAdmin, PodStateView } from '../store/types.js';
import { INSTALL_STATES } from '../install/state.js';
import { podInventory, type PodInventory } from './pod-inventory.js';
import { heartbeatSummary, type HeartbeatSummary } from '../metrics/fleet-metrics.js';

/** Opens the pod's state for one call (undefined: the pod has recorded nothing yet). */
function withState<T>(stateRoot: string, pod: string, fn: (s: PodStateView) => T): T | undefined {
  const s = openPodState(join(stateRoot, pod), { readonly: true });
  if (!s) return undefined;
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

function withAdmin<T>(stateRoot: string, pod: string, fn: (s: PodStateAdmin) => T): T | undefined {
  const s = openPodState(join(stateRoot, pod), { readonly: false });
  if (!s) return undefined;
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

/**
 * A server as listed: its pod; the address it holds a lease on (the install
 * state lives apart from the leases); when it failed, the last step it
 * reached, so its progress can be drawn up to where it broke. A server the
 * pod file knows also has the hostname and management address given there;
 * `image` is what its disk holds (recorded at install), `assigned` what its
 * pod installs from now on (spec.stage2), both name@version.
 */
export type ListedNode = { pod: string } & NodeRecord & { ip?: string; failedAfter?: string; hostname?: string; management?: string; assigned?: string };

export function podNodes(stateRoot: string, pod: string): ListedNode[] {
  const inventory = podInventory(stateRoot, pod);
  return withState(stateRoot, pod, (s) => s.nodesWithLeases(Math.floor(Date.now() / 1000)).map(({ address, ...n }) => listed(pod, n, address, inventory, () => s.events(n.mac, 50)))) ?? [];
}

/** One server's row; `events` (newest first) only read for a failed one. */
function listed(pod: string, n: NodeRecord, address: number | undefined, inventory: PodInventory, events: () => NodeEvent[]): ListedNode {
  return {
    pod,
    ...n,
    ...(address !== undefined ? { ip: formatIPv4(address) } : {}),
    ...inventory.nodes.get(n.mac),
    ...(inventory.image ? { assigned: inventory.image } : {}),
    ...(n.state === 'failed' ? { failedAfter: stepBeforeFailure(events()) } : {}),
  };
}

/** The pods that have a database under `stateRoot` (the central node's own entries have none), by name. */
export function statePods(stateRoot: string): string[] {
  let names: string[];
  try {
    names = readdirSync(stateRoot);
  } catch {
    return [];
  }
  const hasDatabase = (name: string) => {
    try {
      return statSync(podDatabaseFile(join(stateRoot, name))).isFile();
    } catch {
      // Not there, or `name` is a file (ENOTDIR): no pod.
      return false;
    }
  };
  return names.filter(hasDatabase).sort();
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
  /** the image (name@version) the pod's servers install, from its file's spec.stage2 */
  image?: string;
  /** its booted-from-disk servers' node-agent heartbeats summed up (the same figures as its podboot_heartbeat_* metrics); absent while it watches none */
  heartbeats?: HeartbeatSummary;
}

const counted = new Map<string, { version: string; counts: PodNodeCounts }>();

/** How many servers each pod has in each install state, and the image it installs: the overview of every pod without listing every server. */
export function podNodeCounts(stateRoot: string, pods: readonly string[]): PodNodeCounts[] {
  return countByState(stateRoot, pods).map((counts) => {
    const { image } = podInventory(stateRoot, counts.pod);
    return image ? { ...counts, image } : counts;
  });
}

function countByState(stateRoot: string, pods: readonly string[]): PodNodeCounts[] {
  return pods.map((pod) => {
    const dir = join(stateRoot, pod);
    // Opening a database costs about 1 ms of the node's event loop, so counting
    // a hundred pods at every refresh of an open page would stall the
    // supervisor: a pod's database is opened again only when its files changed.
    const version = podStateVersion(dir);
    const key = `${stateRoot}\0${pod}`;
    const cached = counted.get(key);
    if (version !== undefined && cached?.version === version) return cached.counts;
    const states: Record<string, number> = {};
    const nodes = withState(stateRoot, pod, (s) => s.nodes()) ?? [];
    for (const n of nodes) states[n.state] = (states[n.state] ?? 0) + 1;
    const heartbeats = heartbeatSummary(nodes);
    const counts: PodNodeCounts = { pod, total: nodes.length, states, ...(heartbeats.active + heartbeats.silent > 0 ? { heartbeats } : {}) };
    // Kept only if nothing was committed while it was read; otherwise counted again next time.
    if (version !== undefined && podStateVersion(dir) === version) counted.set(key, { version, counts });
    else counted.delete(key);
    return counts;
  });
}

/** One server as `podNodes` lists it, with its latest events (newest first). */
export function podNode(stateRoot: string, pod: string, mac: string): { node?: ListedNode; events: NodeEvent[] } {
  const inventory = podInventory(stateRoot, pod);
  return (
    withState(stateRoot, pod, (s) => {
      const events = s.events(mac, 200);
      const found = s.node(mac) && s.nodesWithLeases(Math.floor(Date.now() / 1000)).find((n) => n.mac === mac);
      if (!found) return { events };
      const { address, ...n } = found;
      return { node: listed(pod, n, address, inventory, () => events), events };
    }) ?? { events: [] }
  );
}

/** The operator's way back to a PXE install: a new attempt, older tokens refused, an event. */
export function reinstallNode(stateRoot: string, pod: string, mac: string, by: string): NodeRecord | undefined {
  return withAdmin(stateRoot, pod, (s) => s.reinstall(mac, Math.floor(Date.now() / 1000), by));
}
