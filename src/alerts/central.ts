// The central node's alerting: its options (podboot serve --alert-webhook,
// --alert-rules, --alert-interval) and the evaluator wired to the metrics the
// node already aggregates.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { MetricsAggregator } from '../metrics/aggregate.js';
import type { Family } from '../metrics/exposition.js';
import { AlertEvaluator } from './evaluator.js';
import { defaultRulesFile, loadRulesFile, type RuleGroup } from './rules.js';
import { parseSamples } from './samples.js';

export const ALERT_USAGE = `  --alert-webhook URL  post alerts (Alertmanager's webhook JSON, receiver
                    "podboot") to URL; repeatable. @FILE reads the URL from
                    FILE, keeping a secret in it out of the process list.
                    Without it no alert is evaluated (docs/alerts.md)
  --alert-rules FILE  the rules to evaluate (default: the shipped
                    deploy/prometheus/podboot-alerts.yml)
  --alert-interval SEC  seconds between evaluations (default 15)`;

export interface AlertingConfig {
  groups: RuleGroup[];
  urls: string[];
  intervalSec: number;
}

/** undefined without --alert-webhook; throws a message naming the option (or the rules file and rule) otherwise. */
export function alertingConfig(v: { webhooks?: string[]; rules?: string; interval?: string }): AlertingConfig | undefined {
  if (!v.webhooks?.length) {
    if (v.rules || v.interval) throw new Error('--alert-rules and --alert-interval need --alert-webhook');
    return undefined;
  }
  const urls = v.webhooks.map((w) => {
    const url = w.startsWith('@') ? readFileSync(w.slice(1), 'utf8').trim() : w;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // The value itself may be a secret: only where it came from is named.
      throw new Error(`--alert-webhook ${w.startsWith('@') ? w : '(value)'}: not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`--alert-webhook: ${parsed.protocol} URLs are not posted to (http or https)`);
    return url;
  });
  const intervalSec = Number(v.interval ?? 15);
  if (!(intervalSec > 0)) throw new Error(`--alert-interval must be a positive number of seconds, not ${v.interval}`);
  return { groups: loadRulesFile(v.rules ?? defaultRulesFile()), urls, intervalSec };
}

export function startAlerting(c: AlertingConfig, o: { metrics: MetricsAggregator; own: () => Family[]; externalURL: string; log: Logger }): AlertEvaluator {
  const ev = new AlertEvaluator({
    groups: c.groups,
    receiver: { name: 'podboot', urls: c.urls },
    externalURL: o.externalURL,
    intervalSec: c.intervalSec,
    source: async () => parseSamples(await o.metrics.scrape(o.own())),
    log: o.log,
  });
  ev.start();
  return ev;
}
