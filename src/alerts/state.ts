// pending → firing → resolved, as Prometheus' alerting rule does it
// (rules/alerting.go): an alert is pending from the first evaluation its
// series matches, firing once it has matched for the rule's `for:`, and
// resolved at the first evaluation it no longer matches; a pending alert
// that stops matching is forgotten. Resolved alerts are kept a while so
// receivers hear of the resolution. Pure: times are passed in.
import { evaluate, type Sample } from './expr.js';
import { expandTemplate, type AlertRule } from './rules.js';
import { fingerprint } from './fingerprint.js';

export type AlertState = 'pending' | 'firing' | 'resolved';

export interface ActiveAlert {
  rule: string;
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: AlertState;
  value: number;
  /** unix seconds: first evaluation it matched */
  activeAt: number;
  firedAt?: number;
  resolvedAt?: number;
}

/** Prometheus keeps a resolved alert 15 minutes for its notifications. */
export const RESOLVED_RETENTION_SEC = 15 * 60;

export class RuleState {
  private readonly active = new Map<string, ActiveAlert>();

  constructor(readonly rule: AlertRule) {}

  /** One evaluation at `now` (unix seconds) against these samples. */
  evaluate(samples: readonly Sample[], now: number): void {
    const seen = new Set<string>();
    for (const s of evaluate(this.rule.expr, samples)) {
      const series = { ...s.labels };
      delete series.__name__;
      const labels: Record<string, string> = { ...series };
      for (const [k, v] of Object.entries(this.rule.labels)) labels[k] = expandTemplate(v, series, s.value);
      labels.alertname = this.rule.alert;
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(this.rule.annotations)) annotations[k] = expandTemplate(v, series, s.value);
      const fp = fingerprint(labels);
      seen.add(fp);
      const a = this.active.get(fp);
      if (a && a.state !== 'resolved') {
        a.value = s.value;
        a.annotations = annotations;
      } else {
        this.active.set(fp, { rule: this.rule.alert, fingerprint: fp, labels, annotations, state: 'pending', value: s.value, activeAt: now });
      }
    }
    for (const [fp, a] of this.active) {
      if (!seen.has(fp)) {
        if (a.state === 'pending' || (a.resolvedAt !== undefined && now - a.resolvedAt > RESOLVED_RETENTION_SEC)) this.active.delete(fp);
        else if (a.state === 'firing') {
          a.state = 'resolved';
          a.resolvedAt = now;
        }
        continue;
      }
      if (a.state === 'pending' && now - a.activeAt >= this.rule.forSec) {
        a.state = 'firing';
        a.firedAt = now;
      }
    }
  }

  alerts(): ActiveAlert[] {
    return [...this.active.values()];
  }
}
