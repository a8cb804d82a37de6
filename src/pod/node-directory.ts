// The pod's inventory as the boot-config generators see it: the pod file's
// nodes, the unknown-node policy and each server's install state from the store.
import type { NodeDirectory, NodeInfo } from '../bootcfg/types.js';
import type { NodeConfig, PodConfig } from '../config/types.js';
import type { NodeStateStore } from '../store/types.js';
import { INSTALL_IN_PROGRESS, INSTALLED_STATES } from '../install/state.js';

export class PodNodeDirectory implements NodeDirectory {
  private readonly byMac = new Map<string, NodeConfig>();
  private readonly byUuid = new Map<string, NodeConfig>();

  constructor(
    private readonly pod: PodConfig,
    private readonly state: NodeStateStore,
    /** a degraded pod hands stage1 only to installs already under way */
    private readonly degraded: () => boolean = () => false,
  ) {
    for (const n of pod.nodes) {
      this.byMac.set(n.mac, n);
      if (n.uuid) this.byUuid.set(n.uuid, n);
    }
  }

  lookupByMac(mac: string): NodeInfo | undefined {
    const node = this.byMac.get(mac);
    const stored = this.state.installState(mac);
    if (stored !== undefined && INSTALLED_STATES.has(stored)) return { hostname: node?.hostname, installState: 'installed' };
    if (this.degraded() && !INSTALL_IN_PROGRESS.has(stored ?? '')) return { hostname: node?.hostname, installState: 'unknown' };
    if (node) return { hostname: node.hostname, installState: 'provision' };
    // An unknown server is provisioned only when the pod says so; otherwise it boots locally.
    return { installState: this.pod.unknownNodes === 'provision' ? 'provision' : 'unknown' };
  }

  lookupByUuid(uuid: string): (NodeInfo & { mac: string }) | undefined {
    const node = this.byUuid.get(uuid);
    return node ? { mac: node.mac, ...this.lookupByMac(node.mac)! } : undefined;
  }
}
