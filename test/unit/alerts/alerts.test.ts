// podboot's alert evaluator, piece by piece: the expression subset and its
// refusals, the rules file loader naming file and rule, pending → firing →
// resolved, Alertmanager's webhook message, and when a receiver is posted to.
import { describe, expect, it } from 'vitest';
import { AlertEvaluator, safeUrl } from '../../../src/alerts/evaluator.js';
import { evaluate, parseDuration, parseExpr, type Sample } from '../../../src/alerts/expr.js';
import { fingerprint } from '../../../src/alerts/fingerprint.js';
import { defaultRulesFile, goFloat, loadRulesFile, parseRules } from '../../../src/alerts/rules.js';
import { parseSamples } from '../../../src/alerts/samples.js';
import { RuleState } from '../../../src/alerts/state.js';
import { GroupNotifier, webhookMessage, type WebhookMessage } from '../../../src/alerts/webhook.js';
import { createLogger } from '../../../src/log.js';

const s = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });

const RULE = (extra = '') => `groups:
  - name: g
    rules:
      - alert: Silent
        expr: podboot_node_silent{pod=~"rack-.*", mac!="x"} == 1
        for: 2m
        labels: { severity: warning, where: "{{ $labels.pod }}" }
        annotations: { summary: "{{ $labels.mac }} silent ({{ $value }})" }
${extra}`;

describe('expression subset', () => {
  it('parses a selector with matchers and a comparison', () => {
    expect(parseExpr(`m{a="x", b!='y', c=~"r.+",d!~"z"} >= 0.9`)).toMatchObject({
      metric: 'm',
      matchers: [
        { name: 'a', op: '=', value: 'x' },
        { name: 'b', op: '!=', value: 'y' },
        { name: 'c', op: '=~', value: 'r.+' },
        { name: 'd', op: '!~', value: 'z' },
      ],
      compare: { op: '>=', value: 0.9 },
    });
    expect(parseExpr('up')).toEqual({ metric: 'up', matchers: [] });
    expect(parseExpr('x < 1.2e6').compare).toEqual({ op: '<', value: 1.2e6 });
  });

  it('refuses what it cannot evaluate, saying so', () => {
    for (const bad of ['rate(m[5m]) > 0', 'm[5m]', 'm > bool 1', 'm > n', 'm + 1 > 2', 'sum(m) > 1', 'm{a="x"', '1 < m', 'm > 1 and n']) {
      expect(() => parseExpr(bad), bad).toThrow(/podboot evaluates only/);
    }
  });

  it('filters like Prometheus: anchored regexes, a missing label is empty, the left value kept', () => {
    const samples = [s('m', { a: 'rack-1' }, 1), s('m', { a: 'xrack-1' }, 1), s('m', {}, 2), s('n', { a: 'rack-1' }, 1)];
    expect(evaluate(parseExpr('m{a=~"rack-.*"}'), samples)).toEqual([samples[0]]);
    expect(evaluate(parseExpr('m{a=""} > 1'), samples)).toEqual([samples[2]]);
    expect(evaluate(parseExpr('m != 1'), samples)).toEqual([samples[2]]);
    expect(evaluate(parseExpr('m < NaN'), [s('m', {}, Number.NaN)])).toEqual([]);
  });

  it('reads durations', () => {
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('250ms')).toBe(0.25);
    expect(() => parseDuration('5 minutes')).toThrow(/not a duration/);
  });

  it('prints $value as Go does', () => {
    expect([1, 0.92, 100000, 1209000, 123456789, 0.00001, 0.0001].map(goFloat)).toEqual(['1', '0.92', '100000', '1.209e+06', '1.23456789e+08', '1e-05', '0.0001']);
  });

  it('reads the exposition the central node serves', () => {
    expect(parseSamples('# HELP x y\n# TYPE x gauge\nx{pod="a",q="say \\"hi\\""} 3\ny 1.5 1700000000\nz +Inf\n')).toEqual([
      s('x', { pod: 'a', q: 'say "hi"' }, 3),
      s('y', {}, 1.5),
      s('z', {}, Infinity),
    ]);
  });
});

describe('rules file', () => {
  it('the shipped file loads', () => {
    const groups = loadRulesFile(defaultRulesFile());
    expect(groups[0]!.rules.map((r) => r.alert)).toContain('PodbootServerSilent');
  });

  it('refusals name the file and the rule', () => {
    expect(() => parseRules(RULE().replace('== 1', '> rate(x[1m])'), 'a.yml')).toThrow(/^a\.yml: group g: rule Silent: expr: .*podboot evaluates only/);
    expect(() => parseRules(`${RULE()}      - record: r\n        expr: m\n`, 'a.yml')).toThrow(/a\.yml: group g: rule r: only alerting rules/);
    expect(() => parseRules(RULE().replace('{{ $value }}', '{{ $value | humanize }}'), 'a.yml')).toThrow(/rule Silent: summary: template .* not supported/);
    expect(() => parseRules(RULE().replace('for: 2m', 'for: soon'), 'a.yml')).toThrow(/rule Silent: for: "soon" is not a duration/);
    expect(() => parseRules(RULE().replace('for: 2m', 'keep_firing_for: 2m'), 'a.yml')).toThrow(/rule Silent: keep_firing_for: is not supported/);
    expect(() => parseRules('groups: 3', 'a.yml')).toThrow(/a\.yml: no groups/);
  });
});

describe('pending → firing → resolved', () => {
  const rule = parseRules(RULE(), 'r.yml')[0]!.rules[0]!;
  const silent = (v: number) => [s('podboot_node_silent', { __name__: 'podboot_node_silent', pod: 'rack-1', mac: 'm1' }, v)];

  it('holds for `for:`, then fires; resolves when the series stops matching; labels and annotations expanded', () => {
    const st = new RuleState(rule);
    st.evaluate(silent(1), 100);
    expect(st.alerts()).toMatchObject([{ state: 'pending', activeAt: 100 }]);
    st.evaluate(silent(1), 219);
    expect(st.alerts()[0]!.state).toBe('pending');
    st.evaluate(silent(1), 220);
    const a = st.alerts()[0]!;
    expect(a).toMatchObject({ state: 'firing', firedAt: 220, activeAt: 100, annotations: { summary: 'm1 silent (1)' } });
    expect(a.labels).toEqual({ alertname: 'Silent', severity: 'warning', where: 'rack-1', pod: 'rack-1', mac: 'm1' });
    st.evaluate(silent(0), 280);
    expect(st.alerts()[0]).toMatchObject({ state: 'resolved', resolvedAt: 280 });
    // Matching again starts over from pending.
    st.evaluate(silent(1), 300);
    expect(st.alerts()[0]).toMatchObject({ state: 'pending', activeAt: 300 });
  });

  it('a pending alert that stops matching is forgotten; a resolved one after 15 minutes', () => {
    const st = new RuleState(rule);
    st.evaluate(silent(1), 0);
    st.evaluate([], 60);
    expect(st.alerts()).toEqual([]);
    st.evaluate(silent(1), 100);
    st.evaluate(silent(1), 300);
    st.evaluate([], 400);
    st.evaluate([], 400 + 900);
    expect(st.alerts()).toHaveLength(1);
    st.evaluate([], 400 + 901);
    expect(st.alerts()).toEqual([]);
  });
});

describe('webhook message and notifications', () => {
  it('fingerprints labels as Alertmanager does', () => {
    // FNV-1a 64 of nothing: the offset basis (prometheus/common emptyLabelSignature).
    expect(fingerprint({})).toBe('cbf29ce484222325');
    expect(fingerprint({ b: '2', a: '1' })).toBe(fingerprint({ a: '1', b: '2' }));
    expect(fingerprint({ a: '1' })).toMatch(/^[0-9a-f]{16}$/);
  });

  it('builds the version 4 message with group and common labels', () => {
    const st = new RuleState(parseRules(RULE().replace('for: 2m', 'for: 0s'), 'r.yml')[0]!.rules[0]!);
    st.evaluate([s('podboot_node_silent', { pod: 'rack-1', mac: 'm1' }, 1), s('podboot_node_silent', { pod: 'rack-1', mac: 'm2' }, 1)], 1_700_000_000);
    const m = webhookMessage({ receiver: 'podboot', externalURL: 'https://c:9443', groupBy: ['alertname'] }, st.alerts(), () => 'https://c:9443/alerts');
    expect(m).toMatchObject({
      version: '4',
      receiver: 'podboot',
      status: 'firing',
      groupKey: '{}:{alertname="Silent"}',
      groupLabels: { alertname: 'Silent' },
      commonLabels: { alertname: 'Silent', pod: 'rack-1', severity: 'warning', where: 'rack-1' },
      commonAnnotations: {},
      externalURL: 'https://c:9443',
      truncatedAlerts: 0,
    });
    expect(m.alerts[0]).toMatchObject({ status: 'firing', startsAt: '2023-11-14T22:13:20.000Z', endsAt: '0001-01-01T00:00:00Z', fingerprint: fingerprint(m.alerts[0]!.labels) });
  });

  it('sends a group when it changes, not again until the repeat interval; a resolution once', () => {
    const st = new RuleState(parseRules(RULE().replace('for: 2m', 'for: 0s'), 'r.yml')[0]!.rules[0]!);
    const n = new GroupNotifier(['alertname'], 3600);
    const step = (v: number, t: number) => {
      st.evaluate([s('podboot_node_silent', { pod: 'rack-1', mac: 'm1' }, v)], t);
      const due = n.due(st.alerts(), t);
      for (const d of due) n.sent(d, t);
      return due.map((d) => d.alerts.map((a) => a.state).join());
    };
    expect(step(1, 0)).toEqual(['firing']);
    expect(step(1, 60)).toEqual([]);
    expect(step(1, 3600)).toEqual(['firing']);
    expect(step(0, 3660)).toEqual(['resolved']);
    expect(step(0, 3720)).toEqual([]);
  });

  it('the evaluator posts to every URL, retries a failed post, and logs only the host', async () => {
    const posts: { url: string; m: WebhookMessage }[] = [];
    let fail = true;
    let now = 1000;
    const lines: string[] = [];
    const ev = new AlertEvaluator({
      groups: parseRules(RULE().replace('for: 2m', 'for: 0s'), 'r.yml'),
      receiver: { name: 'podboot', urls: ['https://user:secret@hooks.example/T0/B0/XXXX?token=abc', 'http://127.0.0.1:1/'] },
      externalURL: 'https://central:9443',
      intervalSec: 15,
      source: async () => [s('podboot_node_silent', { pod: 'rack-1', mac: 'm1' }, 1)],
      log: createLogger({}, { destination: { write: (l: string) => void lines.push(l) } }),
      now: () => now,
      post: async (url, m) => {
        if (fail && url.startsWith('http://')) throw new Error('connection refused');
        posts.push({ url, m });
      },
    });
    await ev.tick();
    expect(posts.map((p) => p.url)).toEqual(['https://user:secret@hooks.example/T0/B0/XXXX?token=abc']);
    fail = false;
    now += 15;
    await ev.tick();
    expect(posts.map((p) => p.url)).toEqual(['https://user:secret@hooks.example/T0/B0/XXXX?token=abc', 'http://127.0.0.1:1/']);
    const text = lines.join('');
    expect(text).toMatch(/alert webhook post failed/);
    expect(text).not.toMatch(/secret|XXXX|token=abc/);
    expect(safeUrl('https://user:pw@h.example:8443/p?q=1')).toBe('h.example:8443');
  });
});
