// The pod's rack-sharing endpoints, called by stage1 (images/stage1/stream.sh)
// with its install session. Answers are one line of words for a shell:
//   GET  /v1/share/key                        share PORT PATH KEEP, then the swarm's key and certificate (PEM); or off
//   POST /v1/share/source?chunk=N&exclude=A,B[&from=A&to=B]  peer ADDRESS | pod | wait
//   POST /v1/share/have?from=A&to=B           ok (from..to: the chunks the asker holds, verified)
//   POST /v1/share/refuse?chunk=N&peer=A&why=digest|download   ok
// `source` is a long poll: while another member fetches the chunk from the
// pod the request is held until that member has it (then: peer) or its lease
// runs out (then: pod), at most LONG_POLL_MS, and a `wait` asks again.
import type { Logger } from 'pino';
import { parseIPv4 } from '../net/ipv4.js';
import type { ChunkBoard, ChunkSource, Member, RefusalWhy, SwarmKey } from './chunk-board.js';
import type { SwarmTlsKeys } from './swarm-tls.js';

export interface SharingConfig {
  enabled: boolean;
  /** the TCP port members serve their chunks on */
  port: number;
  /** how many bytes of verified chunks a member keeps to serve (at least two chunks) */
  keepBytes: number;
}

export const DEFAULT_SHARING: SharingConfig = { enabled: true, port: 8070, keepBytes: 128 * 1024 * 1024 };

/** How long one `source` request is held before it answers `wait`: under stage1's curl timeout. */
export const LONG_POLL_MS = 15_000;
const MAX_CHUNK = 1_000_000;

export interface ShareAnswer {
  status: number;
  body: string;
  /** a fixed word for the refusal's metric, when status >= 400 */
  reason?: string;
}

export interface ShareCounters {
  answers: Record<'peer' | 'pod' | 'wait', number>;
  refusals: Record<RefusalWhy, number>;
}

export interface ShareDeps {
  config: SharingConfig;
  board: ChunkBoard;
  keys: SwarmTlsKeys;
  rackOf: (address: number) => string | undefined;
  /** the sha256 and chunk size of the image this server installs, when the pod holds it */
  image: (mac: string) => { sha256: string; chunkBytes?: number } | undefined;
  /** a peer struck for a bad chunk: recorded against the holder's MAC */
  event: (mac: string, kind: string, detail: string) => void;
  log: Logger;
  clock?: () => number;
}

export class ShareService {
  readonly counters: ShareCounters = { answers: { peer: 0, pod: 0, wait: 0 }, refusals: { digest: 0, download: 0 } };
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly clock: () => number;

  constructor(private readonly deps: ShareDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /** The route is one of ours (whatever the answer). */
  static owns(pathname: string): boolean {
    return pathname.startsWith('/v1/share/');
  }

  async handle(method: string, url: URL, mac: string, source: string, closed: () => boolean): Promise<ShareAnswer> {
    const route = `${method} ${url.pathname}`;
    if (!this.deps.config.enabled) return route === 'GET /v1/share/key' ? { status: 200, body: 'off\n' } : { status: 404, body: 'rack sharing is off in this pod', reason: 'sharing-off' };
    const address = parseIPv4(source);
    const rack = address === undefined ? undefined : this.deps.rackOf(address);
    // A server that is not on a rack LAN of this pod (its management network, say) has no peers.
    if (rack === undefined) return route === 'GET /v1/share/key' ? { status: 200, body: 'off\n' } : { status: 409, body: `${source} is on no rack subnet of this pod`, reason: 'no-rack' };
    const image = this.deps.image(mac);
    if (!image) return { status: 404, body: 'this pod holds no stage2 image for this server', reason: 'no-image' };
    const key: SwarmKey = { rack, image: image.sha256 };
    const who: Member = { mac, address: source };
    const now = this.clock();
    switch (route) {
      case 'GET /v1/share/key': {
        const tls = this.deps.keys.for(`${rack}|${image.sha256}`, now);
        const keep = Math.max(2, Math.floor(this.deps.config.keepBytes / (image.chunkBytes ?? this.deps.config.keepBytes)));
        return { status: 200, body: `share ${this.deps.config.port} ${tls.path} ${keep}\n${tls.pem}` };
      }
      case 'POST /v1/share/source': {
        const chunk = intParam(url, 'chunk', 1, MAX_CHUNK);
        // what the asker holds now rides on its question (a call fewer per chunk)
        if (url.searchParams.has('from') || url.searchParams.has('to')) this.held(key, who, url, now);
        const exclude = new Set((url.searchParams.get('exclude') ?? '').split(',').filter((a) => parseIPv4(a) !== undefined));
        const answer = await this.sourceWhenReady(key, who, chunk, exclude, closed);
        this.counters.answers[answer.kind]++;
        if (answer.kind === 'peer') return { status: 200, body: `peer ${answer.address}\n` };
        return { status: 200, body: `${answer.kind}\n` };
      }
      case 'POST /v1/share/have':
        this.held(key, who, url, now);
        return { status: 200, body: 'ok\n' };
      case 'POST /v1/share/refuse': {
        const chunk = intParam(url, 'chunk', 1, MAX_CHUNK);
        const peer = url.searchParams.get('peer') ?? '';
        const why = url.searchParams.get('why');
        if (parseIPv4(peer) === undefined) throw new ShareError('peer must be an IPv4 address');
        if (why !== 'digest' && why !== 'download') throw new ShareError('why must be digest or download');
        const holder = this.deps.board.refuse(key, who, peer, why);
        this.counters.refusals[why]++;
        const detail = `chunk ${chunk} from ${peer}${holder ? ` (${holder})` : ''} refused by ${mac}: ${why === 'digest' ? 'its sha256 is not the signed manifest’s; struck from the rack’s peers' : 'download failed; not offered until it reports again'}`;
        if (why === 'digest') {
          this.deps.log.warn({ mac: holder, peer, by: mac, chunk }, 'rack peer served a corrupt chunk');
          if (holder) this.deps.event(holder, 'peer-chunk-corrupt', detail);
        } else {
          this.deps.log.info({ mac: holder, peer, by: mac, chunk }, 'rack peer download failed');
        }
        this.wake(key);
        return { status: 200, body: 'ok\n' };
      }
      default:
        return { status: 404, body: 'not found', reason: 'not-found' };
    }
  }

  private held(key: SwarmKey, who: Member, url: URL, now: number): void {
    const from = intParam(url, 'from', 1, MAX_CHUNK);
    const to = intParam(url, 'to', from, MAX_CHUNK);
    this.deps.board.have(key, who, from, to, now);
    this.wake(key);
  }

  /** What the metrics show: answers and refusals so far, the board now. */
  stats(): { counters: ShareCounters; board: ReturnType<ChunkBoard['stats']> } {
    return { counters: this.counters, board: this.deps.board.stats() };
  }

  /** An install ended: the server serves nothing any more. */
  forget(mac: string): void {
    this.deps.board.forget(mac);
    // a fetcher that left frees its chunks: whoever waits on one asks again now
    for (const set of [...this.waiters.values()]) for (const done of [...set]) done();
  }

  private async sourceWhenReady(key: SwarmKey, who: Member, chunk: number, exclude: ReadonlySet<string>, closed: () => boolean): Promise<ChunkSource> {
    const deadline = this.clock() + LONG_POLL_MS;
    for (;;) {
      const now = this.clock();
      const answer = this.deps.board.source(key, who, chunk, exclude, now);
      if (answer.kind !== 'wait' || now >= deadline || closed()) return answer;
      // woken by a have or refuse in this swarm, else when the fetcher's lease runs out or the poll ends
      await this.nextChange(key, Math.min(deadline, answer.untilMs) - now);
    }
  }

  private nextChange(key: SwarmKey, ms: number): Promise<void> {
    const id = `${key.rack}|${key.image}`;
    return new Promise((resolve) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      set.add(done);
    });
  }

  private wake(key: SwarmKey): void {
    const set = this.waiters.get(`${key.rack}|${key.image}`);
    if (set) for (const done of [...set]) done();
  }
}

export class ShareError extends Error {}

function intParam(url: URL, name: string, min: number, max: number): number {
  const text = url.searchParams.get(name);
  const n = text !== null && /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) throw new ShareError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}
