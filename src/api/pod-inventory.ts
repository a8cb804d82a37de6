// What a pod's file says about its servers, for the operator's listings:
// the names and management addresses the operator gave known servers, and
// the image the pod installs. Read from the copy the instance runs
// (STATE/<pod>/pod.yaml, src/pod-vm/supervisor.ts), so it is the file in
// force, not one edited since; parsed again only when that copy changes.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadPodFile } from '../config/load.js';
import type { Labels } from '../config/labels.js';
import type { PodConfig } from '../config/types.js';
import { formatIPv4 } from '../net/ipv4.js';

/** A known server as its pod file describes it; what the file leaves out is absent. */
export interface InventoryNode {
  hostname?: string;
  /** its fixed management address in the installed OS (nodes[].management.address) */
  management?: string;
}

export interface PodInventory {
  /** by MAC (lower case, colons) */
  nodes: ReadonlyMap<string, InventoryNode>;
  /**
   * Every server the file names, by MAC, with its labels ({} for none): what
   * a task's label selector picks from (`!drain` picks the unlabelled too).
   */
  labels: ReadonlyMap<string, Labels>;
  /** spec.stage2 as name@version: the image the pod's servers install now */
  image?: string;
}

const EMPTY: PodInventory = { nodes: new Map(), labels: new Map() };

/** The inventory part of a validated pod file (pure). */
export function inventoryOf(pod: PodConfig): PodInventory {
  const nodes = new Map<string, InventoryNode>();
  const labels = new Map<string, Labels>();
  for (const n of pod.nodes) {
    labels.set(n.mac, n.labels ?? {});
    const address = n.management?.address;
    const entry: InventoryNode = { ...(n.hostname ? { hostname: n.hostname } : {}), ...(address !== undefined ? { management: formatIPv4(address) } : {}) };
    if (entry.hostname || entry.management) nodes.set(n.mac, entry);
  }
  return { nodes, labels, ...(pod.stage2 ? { image: `${pod.stage2.image}@${pod.stage2.version}` } : {}) };
}

const cache = new Map<string, { version: string; inventory: PodInventory }>();

/**
 * The inventory of the pod whose state directory is STATE/<pod>; empty when
 * the pod has no copy of its file (never started) or the copy does not parse
 * (an older podboot's; the instance would not run from it either).
 */
export function podInventory(stateRoot: string, pod: string): PodInventory {
  const file = join(stateRoot, pod, 'pod.yaml');
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) {
    cache.delete(file);
    return EMPTY;
  }
  // Parsing a pod file of thousands of servers takes a while: once per change of the copy (written by rename, so a new inode).
  const version = `${st.ino}:${st.mtimeMs}:${st.size}`;
  const hit = cache.get(file);
  if (hit?.version === version) return hit.inventory;
  let inventory = EMPTY;
  try {
    const { pod: config } = loadPodFile(file);
    if (config) inventory = inventoryOf(config);
  } catch {
    // Unreadable now (permissions, removed meanwhile): nothing to add, and tried again next time.
    return EMPTY;
  }
  cache.set(file, { version, inventory });
  return inventory;
}
