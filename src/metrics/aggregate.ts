// The central node's one scrape of every pod: fan out in parallel to each
// pod's metrics socket with a per-pod timeout, keep the last good answer of
// each, and merge them into one exposition with a `pod` label on every sample.
import { lstat } from 'node:fs/promises';
import { request } from 'node:http';
import { escapeLabelValue, render, type Family } from './exposition.js';

export interface ParsedFamily {
  name: string;
  help?: string;
  type?: string;
  /** sample lines as written, without the family's HELP/TYPE */
  samples: string[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** Text exposition → families in order; samples before any TYPE line form their own untyped family. */
export function parseExposition(text: string): ParsedFamily[] {
  const out: ParsedFamily[] = [];
  const byName = new Map<string, ParsedFamily>();
  let current: ParsedFamily | undefined;
  const family = (name: string) => {
    let f = byName.get(name);
    if (!f) {
      f = { name, samples: [] };
      byName.set(name, f);
      out.push(f);
    }
    return f;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const meta = line.match(/^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/);
    if (meta) {
      current = family(meta[2]!);
      if (meta[1] === 'HELP') current.help = meta[3] ?? '';
      else current.type = meta[3] ?? 'untyped';
      continue;
    }
    if (line.startsWith('#')) continue;
    const name = line.match(NAME_RE)?.[0];
    if (!name) continue;
    // Histogram and summary samples (_bucket, _sum, _count) belong to the family above them.
    const owner = current && (name === current.name || name.startsWith(`${current.name}_`)) ? current : family(name);
    owner.samples.push(line);
  }
  return out;
}

/** Adds a label to one sample line (`name{a="b"} 1` or `name 1`). */
export function withLabel(line: string, label: string, value: string): string {
  const name = line.match(NAME_RE)![0];
  const rest = line.slice(name.length);
  const pair = `${label}="${escapeLabelValue(value)}"`;
  if (rest.startsWith('{')) {
    const inner = rest.slice(1).trimStart();
    return inner.startsWith('}') ? `${name}{${pair}${inner}` : `${name}{${pair},${inner}`;
  }
  return `${name}{${pair}}${rest}`;
}

/** One exposition from many pods' texts: each family once, every sample labelled with its pod. */
export function mergeByPod(parts: readonly { pod: string; text: string }[]): string {
  const merged = new Map<string, ParsedFamily>();
  for (const { pod, text } of parts) {
    for (const f of parseExposition(text)) {
      let m = merged.get(f.name);
      if (!m) {
        m = { name: f.name, help: f.help, type: f.type, samples: [] };
        merged.set(f.name, m);
      }
      for (const s of f.samples) m.samples.push(withLabel(s, 'pod', pod));
    }
  }
  let out = '';
  for (const f of merged.values()) {
    if (f.help !== undefined) out += `# HELP ${f.name} ${f.help}\n`;
    if (f.type !== undefined) out += `# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${s}\n`;
  }
  return out;
}

export interface ScrapeTarget {
  pod: string;
  socketPath: string;
}

interface Cached {
  text: string;
  at: number;
}

/**
 * GET /metrics over a unix socket, bounded by timeoutMs and maxBytes. The
 * socket sits in the pod's own directory, which its (possibly compromised)
 * user controls: anything there but a socket, a symlink to another one
 * included, is refused before the node connects as root.
 */
export async function fetchSocketMetrics(socketPath: string, timeoutMs: number, maxBytes = 8 * 1024 * 1024): Promise<string> {
  const st = await lstat(socketPath);
  if (!st.isSocket()) throw new Error(`${socketPath} is not a socket (${st.isSymbolicLink() ? 'a symlink' : 'another kind of file'}): not scraped`);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics', timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`HTTP ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > maxBytes) req.destroy(new Error(`more than ${maxBytes} bytes`));
        else chunks.push(d);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    // `timeout` only covers idle sockets; the whole exchange gets the same bound.
    const t = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(t));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface ScrapeOutcome {
  pod: string;
  ok: boolean;
  ms: number;
  /** age of the values served, when they came from the cache */
  cachedAgeSec?: number;
  error?: string;
}

export class MetricsAggregator {
  private readonly cache = new Map<string, Cached>();
  last: ScrapeOutcome[] = [];

  constructor(
    private readonly targets: () => ScrapeTarget[],
    private readonly timeoutMs = 1000,
    private readonly fetch: (t: ScrapeTarget, timeoutMs: number) => Promise<string> = (t, ms) => fetchSocketMetrics(t.socketPath, ms),
  ) {}

  /** Every pod's metrics, merged; `extra` (the supervisor's own families) is appended. */
  async scrape(extra: Family[] = []): Promise<string> {
    const targets = this.targets();
    const live = new Set(targets.map((t) => t.pod));
    for (const pod of this.cache.keys()) if (!live.has(pod)) this.cache.delete(pod);
    const outcomes = await Promise.all(
      targets.map(async (t): Promise<ScrapeOutcome> => {
        const started = Date.now();
        try {
          const text = await this.fetch(t, this.timeoutMs);
          this.cache.set(t.pod, { text, at: Date.now() });
          return { pod: t.pod, ok: true, ms: Date.now() - started };
        } catch (err) {
          const c = this.cache.get(t.pod);
          return { pod: t.pod, ok: false, ms: Date.now() - started, error: (err as Error).message, cachedAgeSec: c ? (Date.now() - c.at) / 1000 : undefined };
        }
      }),
    );
    this.last = outcomes;
    const parts = targets.flatMap((t) => {
      const c = this.cache.get(t.pod);
      return c ? [{ pod: t.pod, text: c.text }] : [];
    });
    const own: Family[] = [
      {
        name: 'podboot_scrape_up',
        help: '1 when the pod answered this scrape; 0 when its last good values (if any) were served',
        type: 'gauge',
        samples: outcomes.map((o) => ({ labels: { pod: o.pod }, value: o.ok ? 1 : 0 })),
      },
      { name: 'podboot_scrape_duration_seconds', help: 'time the pod took to answer this scrape', type: 'gauge', samples: outcomes.map((o) => ({ labels: { pod: o.pod }, value: o.ms / 1000 })) },
      {
        name: 'podboot_scrape_cached_age_seconds',
        help: 'age of the cached values served for a pod that did not answer',
        type: 'gauge',
        samples: outcomes.filter((o) => o.cachedAgeSec !== undefined).map((o) => ({ labels: { pod: o.pod }, value: o.cachedAgeSec! })),
      },
    ];
    return mergeByPod(parts) + render([...own, ...extra]);
  }

  /** One pod's own metrics, no label added (Prometheus adds `pod` from the discovery target). */
  async scrapeOne(t: ScrapeTarget): Promise<string | undefined> {
    try {
      const text = await this.fetch(t, this.timeoutMs);
      this.cache.set(t.pod, { text, at: Date.now() });
      return text;
    } catch {
      return this.cache.get(t.pod)?.text;
    }
  }
}
