// A server's cloud-init seed as the pod serves it at GET /v1/seed: its
// management address (from the pod file, or the pod's pool, allocated once
// and kept in its database), a fresh node token, its install attempt, then
// the FAT image. Images are made one at a time: each spawns mkfs.vfat and
// mcopy, and a pod's cgroup allows it few processes (spec.limits.pids), so a
// rack installing at once must not spawn hundreds.
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { formatIPv4 } from '../net/ipv4.js';
import { seedImage } from '../install/seed-image.js';
import { needsPoolAddress, renderSeed, type Seed } from '../install/seed.js';
import type { ManagementAddressStore } from '../store/types.js';

export interface SeedSourceInputs {
  /** the pod's root CA, PEM */
  rootCa: string;
  /** a node token for the installed OS (scope node) */
  nodeToken: (mac: string) => string;
  /** the server's current install attempt */
  attempt: (mac: string) => number;
  addresses: ManagementAddressStore;
  log: Logger;
  /** unix seconds */
  now?: () => number;
}

export class SeedSource {
  /** the management addresses the pod file fixes: the pool never hands them out */
  private readonly fixed: ReadonlySet<number>;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pod: PodConfig,
    private readonly inputs: SeedSourceInputs,
  ) {
    this.fixed = new Set(pod.nodes.flatMap((n) => (n.management?.address !== undefined ? [n.management.address] : [])));
  }

  /** The three texts for one server; allocates its pool address on first need. */
  seed(mac: string): Seed {
    const pool = this.pod.managementNetwork?.pool;
    const now = this.inputs.now?.() ?? Math.floor(Date.now() / 1000);
    const poolAddress = pool && needsPoolAddress(this.pod, mac) ? this.inputs.addresses.managementAddress(mac, pool, this.fixed, now) : undefined;
    const seed = renderSeed({ pod: this.pod, mac, attempt: this.inputs.attempt(mac), nodeToken: this.inputs.nodeToken(mac), rootCa: this.inputs.rootCa, poolAddress });
    this.inputs.log.info(
      { node: mac, ...(poolAddress !== undefined ? { managementAddress: formatIPv4(poolAddress) } : {}), networkConfig: seed['network-config'] !== undefined },
      'cloud-init seed rendered',
    );
    return seed;
  }

  /** The seed's FAT image; one image is made at a time. */
  image(mac: string): Promise<Buffer> {
    const made = this.queue.then(() => seedImage(this.seed(mac)));
    this.queue = made.catch(() => undefined);
    return made;
  }
}
