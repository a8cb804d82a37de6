// `podboot serve`'s periodic check of the pods' cached image copies
// (pod-cache.ts), with repair: the first run a few minutes after the start
// (not while every pod is starting), then every interval. The catalog is
// opened for a run and closed after it, the root CA and CRLs read again each
// time (CRLs are re-signed while the node runs).
import type { Family } from '../metrics/exposition.js';
import type { CacheCheckResult, CacheStatus } from './cache-verdict.js';
import { type CatalogSource, NoCatalog, withCatalog } from './catalog-session.js';
import { checkPodImages } from './pod-cache.js';

export const DEFAULT_IMAGE_CHECK_INTERVAL_SEC = 6 * 3600;
const FIRST_RUN_MAX_DELAY_MS = 5 * 60_000;

export interface ImageCheckScheduleOptions extends CatalogSource {
  stateRoot: string;
  intervalMs: number;
  /** the pods to check, asked at every run */
  pods: () => readonly string[];
  /** the first run's delay; default the interval, at most 5 minutes */
  firstDelayMs?: number;
}

export class ImageCheckSchedule {
  private timer?: NodeJS.Timeout;
  private running?: Promise<CacheCheckResult[]>;
  private stopped = false;
  private noCatalogLogged = false;
  private last = new Map<string, { results: CacheCheckResult[]; at: number }>();

  constructor(private readonly o: ImageCheckScheduleOptions) {}

  start(): void {
    this.schedule(this.o.firstDelayMs ?? Math.min(this.o.intervalMs, FIRST_RUN_MAX_DELAY_MS));
    this.o.log.info({ catalog: this.o.catalogDir, intervalSec: this.o.intervalMs / 1000 }, 'cached image check scheduled');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runNow().finally(() => this.schedule(this.o.intervalMs));
    }, ms);
    this.timer.unref();
  }

  /** One run over every pod now (or the run already under way); never throws. */
  runNow(): Promise<CacheCheckResult[]> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<CacheCheckResult[]> {
    const { log } = this.o;
    const all: CacheCheckResult[] = [];
    try {
      await withCatalog(this.o, async ({ catalog, rootCa, crl }) => {
        this.noCatalogLogged = false;
        for (const pod of this.o.pods()) {
          if (this.stopped) break;
          try {
            const results = await checkPodImages({ stateRoot: this.o.stateRoot, pod, catalog, rootCa, crl, log });
            this.last.set(pod, { results, at: Date.now() });
            all.push(...results);
          } catch (err) {
            log.error({ pod, err: (err as Error).message }, 'cached image check of a pod failed');
          }
        }
      });
    } catch (err) {
      if (!(err instanceof NoCatalog)) log.error({ catalog: this.o.catalogDir, err: (err as Error).message }, 'cached image check could not run');
      else if (!this.noCatalogLogged) log.warn({ catalog: this.o.catalogDir }, 'cached image check skipped: no catalog there (give serve --catalog DIR)');
      this.noCatalogLogged = err instanceof NoCatalog;
    }
    return all;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /**
   * podboot_image_copies{pod,status}: a pod's cached copies by what the last
   * check found or did; status="unrepairable" > 0 is a pod left without a
   * version it had (PodbootCachedImageUnrepairable).
   */
  families(): Family[] {
    // A pod whose file was removed since its last check is no longer reported.
    const live = new Set(this.o.pods());
    for (const pod of this.last.keys()) if (!live.has(pod)) this.last.delete(pod);
    const samples = [...this.last].flatMap(([pod, { results }]) => {
      const by: Record<CacheStatus, number> = { ok: 0, corrupt: 0, repaired: 0, unrepairable: 0 };
      for (const r of results) by[r.status]++;
      return Object.entries(by).map(([status, value]) => ({ labels: { pod, status }, value }));
    });
    const at = [...this.last].map(([pod, { at }]) => ({ labels: { pod }, value: at / 1000 }));
    return [
      { name: 'podboot_image_copies', help: "a pod's cached image copies by the result of the last check (ok, repaired, unrepairable)", type: 'gauge', samples },
      { name: 'podboot_image_check_timestamp_seconds', help: "when the last check of a pod's cached image copies ended", type: 'gauge', samples: at },
    ];
  }
}
