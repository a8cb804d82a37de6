// Which rack peer holds which chunk of a stage2 image, and who is fetching
// what from the pod: the pod's half of rack sharing (issue 17, I4). Servers of
// one rack installing one image form a swarm. For each chunk a server asks
// where to get it; the answer is, in this order:
//   - a peer of its rack that said it holds the chunk (the LAN, not the WAN);
//   - wait, when another member is fetching that chunk from the pod right
//     now: the WAN carries each chunk about once;
//   - the pod, and the asker becomes that chunk's fetcher until it says it
//     holds it or its lease runs out (a peer powered off mid-fetch).
// Nothing here is trusted for integrity: every chunk is checked against the
// signed manifest's digest by the server that receives it. A peer whose chunk
// failed that check is struck from the swarm for good. Pure: no I/O, the
// clock comes in with each call.

export interface BoardOptions {
  /** how long a member may take fetching one chunk from the pod before another may */
  fetchLeaseMs: number;
  /** a holder that has not said `have` for this long is no longer offered */
  holderTtlMs: number;
  /** assignments to one holder are counted over this window to spread the load */
  loadWindowMs: number;
}

export const DEFAULT_BOARD_OPTIONS: BoardOptions = { fetchLeaseMs: 60_000, holderTtlMs: 120_000, loadWindowMs: 10_000 };

/** One swarm: a rack (the pod subnet, src/pod/boot-services.ts rackOf) and an image (its sha256). */
export interface SwarmKey {
  rack: string;
  image: string;
}

export interface Member {
  mac: string;
  /** the address its chunk server listens on (the source of its requests: its rack LAN address) */
  address: string;
}

export type ChunkSource =
  | { kind: 'peer'; mac: string; address: string }
  | { kind: 'pod' }
  /** another member is fetching it; `untilMs` is when its lease runs out */
  | { kind: 'wait'; fetcher: string; untilMs: number };

export type RefusalWhy = 'digest' | 'download';

interface Holder {
  address: string;
  from: number;
  to: number;
  seenMs: number;
  /** times this holder was handed out, within loadWindowMs */
  assigned: number[];
}

interface Swarm {
  holders: Map<string, Holder>;
  /** chunk → its current WAN fetcher */
  fetching: Map<number, { mac: string; untilMs: number }>;
  /** addresses whose chunk failed its digest: never offered again in this swarm */
  struck: Set<string>;
}

export interface BoardStats {
  swarms: number;
  holders: number;
  fetching: number;
}

const swarmId = (k: SwarmKey) => `${k.rack}|${k.image}`;

export class ChunkBoard {
  private readonly swarms = new Map<string, Swarm>();
  /** mac → the swarms it is in, so an install that ends leaves every one */
  private readonly memberOf = new Map<string, Set<string>>();

  constructor(private readonly opts: BoardOptions = DEFAULT_BOARD_OPTIONS) {}

  /** Where `who` gets `chunk` (1-based); `exclude` are addresses it already failed with for this chunk. */
  source(key: SwarmKey, who: Member, chunk: number, exclude: ReadonlySet<string>, nowMs: number): ChunkSource {
    const s = this.swarm(key, who.mac);
    let best: { mac: string; h: Holder; load: number } | undefined;
    for (const [mac, h] of s.holders) {
      // a holder silent past its TTL is gone (powered off, rebooted): dropped, so the board stays as big as the racks
      if (nowMs - h.seenMs > this.opts.holderTtlMs) {
        s.holders.delete(mac);
        continue;
      }
      if (mac === who.mac || chunk < h.from || chunk > h.to) continue;
      if (exclude.has(h.address) || s.struck.has(h.address)) continue;
      h.assigned = h.assigned.filter((t) => nowMs - t < this.opts.loadWindowMs);
      const load = h.assigned.length;
      // least loaded first, then the lowest MAC: the same state always gives the same answer
      if (!best || load < best.load || (load === best.load && mac < best.mac)) best = { mac, h, load };
    }
    if (best) {
      best.h.assigned.push(nowMs);
      return { kind: 'peer', mac: best.mac, address: best.h.address };
    }
    const f = s.fetching.get(chunk);
    if (f && f.mac !== who.mac && f.untilMs > nowMs) return { kind: 'wait', fetcher: f.mac, untilMs: f.untilMs };
    s.fetching.set(chunk, { mac: who.mac, untilMs: nowMs + this.opts.fetchLeaseMs });
    return { kind: 'pod' };
  }

  /** `who` holds, verified, chunks from..to. Its fetches of those chunks are done. */
  have(key: SwarmKey, who: Member, from: number, to: number, nowMs: number): void {
    const s = this.swarm(key, who.mac);
    if (s.struck.has(who.address)) return;
    const h = s.holders.get(who.mac);
    s.holders.set(who.mac, { address: who.address, from, to, seenMs: nowMs, assigned: h?.assigned ?? [] });
    for (const chunk of s.fetching.keys()) if (chunk >= from && chunk <= to) s.fetching.delete(chunk);
  }

  /**
   * `who` could not use `address`'s copy of a chunk. A wrong digest strikes
   * that address from the swarm; a failed download (gone, cut, too slow)
   * drops what it claims until it says `have` again.
   * Returns the MAC of the holder at that address, when there is one.
   */
  refuse(key: SwarmKey, who: Member, address: string, why: RefusalWhy): string | undefined {
    const s = this.swarm(key, who.mac);
    if (why === 'digest') s.struck.add(address);
    for (const [mac, h] of s.holders) {
      if (h.address !== address) continue;
      s.holders.delete(mac);
      return mac;
    }
    return undefined;
  }

  /** An install ended (installed, failed, or a new attempt began): `mac` leaves every swarm. */
  forget(mac: string): void {
    const ids = this.memberOf.get(mac);
    if (!ids) return;
    this.memberOf.delete(mac);
    for (const id of ids) {
      const s = this.swarms.get(id);
      if (!s) continue;
      s.holders.delete(mac);
      for (const [chunk, f] of s.fetching) if (f.mac === mac) s.fetching.delete(chunk);
      if (s.holders.size === 0 && s.fetching.size === 0 && ![...this.memberOf.values()].some((m) => m.has(id))) this.swarms.delete(id);
    }
  }

  stats(): BoardStats {
    let holders = 0;
    let fetching = 0;
    for (const s of this.swarms.values()) {
      holders += s.holders.size;
      fetching += s.fetching.size;
    }
    return { swarms: this.swarms.size, holders, fetching };
  }

  private swarm(key: SwarmKey, mac: string): Swarm {
    const id = swarmId(key);
    let s = this.swarms.get(id);
    if (!s) {
      s = { holders: new Map(), fetching: new Map(), struck: new Set() };
      this.swarms.set(id, s);
    }
    let ids = this.memberOf.get(mac);
    if (!ids) this.memberOf.set(mac, (ids = new Set()));
    ids.add(id);
    return s;
  }
}
