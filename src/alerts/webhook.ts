// Alertmanager's webhook message (version 4), built the way Alertmanager
// builds it for a receiver: alerts grouped by `group_by` labels, common
// labels and annotations, a group key, Go time strings. A receiver written
// for Alertmanager reads podboot's posts unchanged. Pure.
import type { ActiveAlert } from './state.js';

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookMessage {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: WebhookAlert[];
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
}

/** Go's zero time, which Alertmanager sends as the end of a firing alert. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function goTime(sec: number): string {
  return new Date(sec * 1000).toISOString();
}

/** Alertmanager's label-set text: `{a="x", b="y"}`, names sorted, values quoted as Go does. */
export function labelSetText(labels: Record<string, string>): string {
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(', ')}}`;
}

export function groupLabelsOf(labels: Record<string, string>, groupBy: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of groupBy) if (labels[k] !== undefined) out[k] = labels[k];
  return out;
}

/** The root route's group key, as Alertmanager writes it (`{}:{alertname="…"}`). */
export function groupKeyOf(groupLabels: Record<string, string>): string {
  return `{}:${labelSetText(groupLabels)}`;
}

function common(maps: Record<string, string>[]): Record<string, string> {
  if (maps.length === 0) return {};
  const out = { ...maps[0]! };
  for (const m of maps.slice(1)) for (const k of Object.keys(out)) if (m[k] !== out[k]) delete out[k];
  return out;
}

export interface MessageContext {
  receiver: string;
  externalURL: string;
  groupBy: readonly string[];
}

/** One group's message; `alerts` are firing or resolved ones of that group. */
export function webhookMessage(ctx: MessageContext, alerts: readonly ActiveAlert[], generatorURL: (a: ActiveAlert) => string): WebhookMessage {
  const out: WebhookAlert[] = alerts.map((a) => ({
    status: a.state === 'resolved' ? 'resolved' : 'firing',
    labels: { ...a.labels },
    annotations: { ...a.annotations },
    startsAt: goTime(a.firedAt ?? a.activeAt),
    endsAt: a.state === 'resolved' && a.resolvedAt !== undefined ? goTime(a.resolvedAt) : ZERO_TIME,
    generatorURL: generatorURL(a),
    fingerprint: a.fingerprint,
  }));
  const groupLabels = groupLabelsOf(alerts[0]?.labels ?? {}, ctx.groupBy);
  return {
    receiver: ctx.receiver,
    status: out.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts: out,
    groupLabels,
    commonLabels: common(out.map((a) => a.labels)),
    commonAnnotations: common(out.map((a) => a.annotations)),
    externalURL: ctx.externalURL,
    version: '4',
    groupKey: groupKeyOf(groupLabels),
    truncatedAlerts: 0,
  };
}

interface GroupMemory {
  /** fingerprint:status of what the receiver last heard */
  signature: string;
  sentAt: number;
}

export interface Notification {
  groupKey: string;
  alerts: ActiveAlert[];
}

/**
 * What to send when, per group, as Alertmanager's dispatcher would for one
 * receiver: a group is sent when its alerts change (a new firing alert, a
 * resolution) and again every repeatSec while something fires; resolved
 * alerts are sent once. Pending alerts are never sent.
 */
export class GroupNotifier {
  private readonly memory = new Map<string, GroupMemory>();
  /** resolved alerts a receiver has heard of, by fingerprint and resolution time */
  private readonly toldResolved = new Set<string>();

  constructor(
    private readonly groupBy: readonly string[],
    private readonly repeatSec: number,
  ) {}

  due(alerts: readonly ActiveAlert[], now: number): Notification[] {
    // Resolutions whose alerts are gone (retention over) need not be remembered.
    const present = new Set(alerts.filter((a) => a.state === 'resolved').map(resolvedKey));
    for (const k of this.toldResolved) if (!present.has(k)) this.toldResolved.delete(k);
    const groups = new Map<string, ActiveAlert[]>();
    for (const a of alerts) {
      if (a.state === 'pending') continue;
      if (a.state === 'resolved' && this.toldResolved.has(resolvedKey(a))) continue;
      const key = groupKeyOf(groupLabelsOf(a.labels, this.groupBy));
      groups.set(key, [...(groups.get(key) ?? []), a]);
    }
    const out: Notification[] = [];
    for (const [groupKey, list] of groups) {
      list.sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
      const signature = list.map((a) => `${a.fingerprint}:${a.state}`).join(',');
      const m = this.memory.get(groupKey);
      const firing = list.some((a) => a.state === 'firing');
      if (!m || m.signature !== signature || (firing && now - m.sentAt >= this.repeatSec)) out.push({ groupKey, alerts: list });
    }
    return out;
  }

  /** After a successful post: the receiver knows this. */
  sent(n: Notification, now: number): void {
    const firing = n.alerts.filter((a) => a.state === 'firing');
    for (const a of n.alerts) if (a.state === 'resolved') this.toldResolved.add(resolvedKey(a));
    this.memory.set(n.groupKey, { signature: firing.map((a) => `${a.fingerprint}:firing`).join(','), sentAt: now });
  }
}

function resolvedKey(a: ActiveAlert): string {
  return `${a.fingerprint}@${a.resolvedAt}`;
}
