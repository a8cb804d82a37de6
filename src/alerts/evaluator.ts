// The central node's alert evaluator: every interval it takes the samples it
// already aggregates (every pod's metrics with a `pod` label, the
// supervisor's own), evaluates the rules file, and posts Alertmanager's
// webhook message to each configured receiver URL. The decisions are pure
// (state.ts, webhook.ts); here are only the timer and the HTTP posts.
import type { Logger } from 'pino';
import type { Sample } from './expr.js';
import type { RuleGroup } from './rules.js';
import { RuleState, type ActiveAlert } from './state.js';
import { GroupNotifier, webhookMessage, type WebhookMessage } from './webhook.js';

export interface AlertReceiver {
  /** the receiver's name in every message (Alertmanager's `receiver`) */
  name: string;
  /** webhook URLs; they may carry credentials, so only their host is ever logged */
  urls: string[];
}

export interface AlertEvaluatorOptions {
  groups: RuleGroup[];
  receiver: AlertReceiver;
  /** the central node's URL, Alertmanager's externalURL */
  externalURL: string;
  /** seconds between evaluations (a group's own interval, when shorter, wins) */
  intervalSec: number;
  groupBy?: string[];
  /** seconds before a still-firing group is sent again (Alertmanager's repeat_interval, 4h) */
  repeatSec?: number;
  source: () => Promise<Sample[]>;
  log: Logger;
  post?: (url: string, message: WebhookMessage) => Promise<void>;
  /** unix seconds */
  now?: () => number;
}

const POST_TIMEOUT_MS = 10_000;

export async function postWebhook(url: string, message: WebhookMessage): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'podboot-alerts' },
    body: JSON.stringify(message),
    signal: AbortSignal.timeout(POST_TIMEOUT_MS),
  });
  await res.body?.cancel();
  if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
}

/** What may be logged of a webhook URL: its host, never its path, query or user info. */
export function safeUrl(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(not a URL)';
  }
}

export class AlertEvaluator {
  readonly states: RuleState[];
  readonly intervalSec: number;
  private readonly notifiers: GroupNotifier[];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly o: AlertEvaluatorOptions) {
    this.states = o.groups.flatMap((g) => g.rules.map((r) => new RuleState(r)));
    this.intervalSec = Math.min(o.intervalSec, ...o.groups.map((g) => g.intervalSec ?? Infinity));
    const groupBy = o.groupBy ?? ['alertname'];
    this.notifiers = o.receiver.urls.map(() => new GroupNotifier(groupBy, o.repeatSec ?? 4 * 3600));
  }

  start(): void {
    const loop = () => {
      this.running = this.tick()
        .catch((err: Error) => this.o.log.error({ err: err.message }, 'alert evaluation failed'))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(loop, this.intervalSec * 1000);
            this.timer.unref();
          }
        });
    };
    loop();
    this.o.log.info({ rules: this.states.length, intervalSec: this.intervalSec, receiver: this.o.receiver.name, webhooks: this.o.receiver.urls.map(safeUrl) }, 'alert evaluator running');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One evaluation and the posts it calls for. */
  async tick(): Promise<void> {
    const samples = await this.o.source();
    const now = (this.o.now ?? (() => Date.now() / 1000))();
    const alerts: ActiveAlert[] = [];
    for (const s of this.states) {
      const before = new Map(s.alerts().map((a) => [a.fingerprint, a.state]));
      s.evaluate(samples, now);
      for (const a of s.alerts()) {
        if (before.get(a.fingerprint) !== a.state && a.state !== 'pending') this.o.log.warn({ alert: a.rule, labels: a.labels, state: a.state }, `alert ${a.state}`);
        alerts.push(a);
      }
    }
    const ctx = { receiver: this.o.receiver.name, externalURL: this.o.externalURL, groupBy: this.o.groupBy ?? ['alertname'] };
    const generatorURL = (a: { rule: string }) => `${this.o.externalURL}/alerts#${encodeURIComponent(a.rule)}`;
    const post = this.o.post ?? postWebhook;
    await Promise.all(
      this.o.receiver.urls.map(async (url, i) => {
        const n = this.notifiers[i]!;
        for (const due of n.due(alerts, now)) {
          try {
            await post(url, webhookMessage(ctx, due.alerts, generatorURL));
            n.sent(due, now);
          } catch (err) {
            // Not marked sent: the next evaluation tries again.
            this.o.log.warn({ receiver: this.o.receiver.name, webhook: i + 1, host: safeUrl(url), group: due.groupKey, err: (err as Error).message }, 'alert webhook post failed');
          }
        }
      }),
    );
  }
}
