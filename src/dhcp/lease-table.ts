// The pod's leases in memory: which address belongs to whom, which are held
// for an outstanding OFFER, and where each pool's free-address scan resumes.
// Decisions read it synchronously; the store is the durable copy.
import type { NodeConfig, SubnetConfig } from '../config/types.js';
import type { LeaseRecord } from '../store/types.js';

interface OfferHold {
  clientKey: string;
  until: number;
}

export class LeaseTable {
  private readonly byAddress = new Map<number, LeaseRecord>();
  private readonly byClient = new Map<string, number>();
  /** mac → addresses it holds a record for: boot configs with a token go only to that address */
  private readonly byMac = new Map<string, Set<number>>();
  private readonly offers = new Map<number, OfferHold>();
  private readonly offerByClient = new Map<string, number>();
  /** fixed addresses of known nodes: address → mac */
  private readonly fixed = new Map<number, string>();
  private readonly cursors = new Map<string, number>();

  constructor(nodes: readonly NodeConfig[], records: readonly LeaseRecord[]) {
    for (const n of nodes) if (n.address !== undefined) this.fixed.set(n.address, n.mac);
    for (const r of records) this.put(r);
  }

  get size(): number {
    return this.byAddress.size;
  }

  lease(address: number): LeaseRecord | undefined {
    return this.byAddress.get(address);
  }

  leaseOf(clientKey: string): LeaseRecord | undefined {
    const a = this.byClient.get(clientKey);
    return a === undefined ? undefined : this.byAddress.get(a);
  }

  offerOf(clientKey: string, now: number): number | undefined {
    const a = this.offerByClient.get(clientKey);
    if (a === undefined) return undefined;
    const hold = this.offers.get(a);
    return hold && hold.clientKey === clientKey && hold.until > now ? a : undefined;
  }

  /** Every record naming this MAC (any state: the caller decides what counts). */
  leasesOfMac(mac: string): LeaseRecord[] {
    const addresses = this.byMac.get(mac);
    return addresses ? [...addresses].map((a) => this.byAddress.get(a)!).filter((r) => r.mac === mac) : [];
  }

  /** Records a lease (after or on the way to the store); the table's view follows it. */
  put(r: LeaseRecord): void {
    const old = this.byAddress.get(r.address);
    if (old && old.clientKey !== r.clientKey && this.byClient.get(old.clientKey) === r.address) this.byClient.delete(old.clientKey);
    if (old && old.mac !== r.mac) {
      const set = this.byMac.get(old.mac);
      set?.delete(r.address);
      if (set?.size === 0) this.byMac.delete(old.mac);
    }
    if (r.mac) {
      let set = this.byMac.get(r.mac);
      if (!set) this.byMac.set(r.mac, (set = new Set()));
      set.add(r.address);
    }
    this.byAddress.set(r.address, r);
    if (r.clientKey) this.byClient.set(r.clientKey, r.address);
    const hold = this.offers.get(r.address);
    if (hold) {
      this.offers.delete(r.address);
      if (this.offerByClient.get(hold.clientKey) === r.address) this.offerByClient.delete(hold.clientKey);
    }
  }

  hold(address: number, clientKey: string, until: number): void {
    const previous = this.offerByClient.get(clientKey);
    if (previous !== undefined && previous !== address) this.offers.delete(previous);
    this.offers.set(address, { clientKey, until });
    this.offerByClient.set(clientKey, address);
  }

  dropOffer(clientKey: string): void {
    const a = this.offerByClient.get(clientKey);
    if (a === undefined) return;
    this.offerByClient.delete(clientKey);
    if (this.offers.get(a)?.clientKey === clientKey) this.offers.delete(a);
  }

  /** Forgets expired offer holds so the maps do not grow under a DISCOVER flood. */
  sweepOffers(now: number): number {
    let removed = 0;
    for (const [a, h] of this.offers) {
      if (h.until <= now) {
        this.offers.delete(a);
        if (this.offerByClient.get(h.clientKey) === a) this.offerByClient.delete(h.clientKey);
        removed++;
      }
    }
    return removed;
  }

  /** May `clientKey` (with hardware address `mac`) use `address` at `now`? */
  isFreeFor(address: number, clientKey: string, mac: string, now: number): boolean {
    const owner = this.fixed.get(address);
    if (owner !== undefined && owner !== mac) return false;
    const hold = this.offers.get(address);
    if (hold && hold.clientKey !== clientKey && hold.until > now) return false;
    const lease = this.byAddress.get(address);
    if (!lease || lease.clientKey === clientKey) return lease?.state === 'declined' ? lease.ends <= now : true;
    if (lease.state === 'released' || lease.state === 'expired') return true;
    return lease.ends <= now;
  }

  /**
   * Next free pool address, scanning on from where the last scan stopped so
   * a burst of new clients costs O(1) each; wraps once, then gives up.
   */
  nextFree(subnet: SubnetConfig, clientKey: string, mac: string, now: number): number | undefined {
    const pool = subnet.pool;
    if (!pool) return undefined;
    const span = pool.end - pool.start + 1;
    let cursor = this.cursors.get(subnet.cidr) ?? pool.start;
    if (cursor < pool.start || cursor > pool.end) cursor = pool.start;
    for (let i = 0; i < span; i++) {
      const a = cursor;
      cursor = cursor === pool.end ? pool.start : cursor + 1;
      if (this.isFreeFor(a, clientKey, mac, now)) {
        this.cursors.set(subnet.cidr, cursor);
        return a;
      }
    }
    this.cursors.set(subnet.cidr, cursor);
    return undefined;
  }

  /** Counts for metrics: bound (unexpired) leases per subnet. */
  boundCount(subnet: string, now: number): number {
    let n = 0;
    for (const r of this.byAddress.values()) if (r.subnet === subnet && r.state === 'bound' && r.ends > now) n++;
    return n;
  }
}
