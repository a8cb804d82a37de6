// A Prometheus histogram as plain data, so it crosses the supervisor's IPC
// channel as JSON and renders without a client library. Pure.
import type { Sample } from './exposition.js';

export interface HistogramData {
  /** upper bounds, ascending; +Inf is implied */
  bounds: readonly number[];
  /** per bucket, not cumulative; one more than bounds (the +Inf bucket) */
  counts: number[];
  sum: number;
  count: number;
}

/** Seconds, from 50 µs (a DHCP reply on a quiet pod) to 10 s (a slow download over a WAN). */
export const LATENCY_BUCKETS_SEC: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function newHistogram(bounds: readonly number[] = LATENCY_BUCKETS_SEC): HistogramData {
  return { bounds, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
}

export function observe(h: HistogramData, value: number): void {
  let i = 0;
  while (i < h.bounds.length && value > h.bounds[i]!) i++;
  h.counts[i]!++;
  h.sum += value;
  h.count++;
}

/** `_bucket{le}` (cumulative), `_sum` and `_count` samples, with `labels` on each. */
export function histogramSamples(h: HistogramData, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  let running = 0;
  h.bounds.forEach((b, i) => {
    running += h.counts[i]!;
    out.push({ suffix: '_bucket', labels: { ...labels, le: String(b) }, value: running });
  });
  out.push({ suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ suffix: '_sum', labels, value: h.sum });
  out.push({ suffix: '_count', labels, value: h.count });
  return out;
}
