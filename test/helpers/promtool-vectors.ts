// A promtool `test rules` file replayed through podboot's own evaluator:
// input_series in promtool's expanding notation (`1+0x10`, `_`, `_x3`,
// `stale`), evaluated every evaluation_interval from 0 like promtool does,
// each instant selector seeing a series' latest sample of the last 5 minutes
// (Prometheus' lookback). Returns, per alert_rule_test, the firing alerts
// podboot has at that eval_time next to the ones promtool expects.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { parseDuration, type Sample } from '../../src/alerts/expr.js';
import { loadRulesFile } from '../../src/alerts/rules.js';
import { parseSampleLine } from '../../src/alerts/samples.js';
import { RuleState } from '../../src/alerts/state.js';

const LOOKBACK_SEC = 300;
const NUM = String.raw`[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?`;
const EXPANDING = new RegExp(String.raw`^(${NUM})(?:([+-])(${NUM.slice(5)}))?x(\d+)$`);

/** One series' values: a number, `stale` (a stale marker) or undefined (no sample). */
export type Point = number | 'stale' | undefined;

export function expandValues(text: string): Point[] {
  const out: Point[] = [];
  for (const tok of text.trim().split(/\s+/).filter(Boolean)) {
    if (tok === '_') out.push(undefined);
    else if (tok === 'stale') out.push('stale');
    else if (/^_x\d+$/.test(tok)) for (let i = 0; i < Number(tok.slice(2)); i++) out.push(undefined);
    else {
      const m = tok.match(EXPANDING);
      if (m) {
        const step = m[3] === undefined ? 0 : Number(m[3]) * (m[2] === '-' ? -1 : 1);
        for (let i = 0; i <= Number(m[4]); i++) out.push(Number(m[1]) + i * step);
      } else if (new RegExp(`^${NUM}$`).test(tok)) out.push(Number(tok));
      else throw new Error(`value ${tok} is not in promtool's notation`);
    }
  }
  return out;
}

interface Series {
  name: string;
  labels: Record<string, string>;
  points: Point[];
}

/** The samples an instant query sees at `t` (seconds from the test's start). */
export function samplesAt(series: readonly Series[], intervalSec: number, t: number): Sample[] {
  const out: Sample[] = [];
  for (const s of series) {
    for (let i = Math.min(Math.floor(t / intervalSec), s.points.length - 1); i >= 0 && t - i * intervalSec <= LOOKBACK_SEC; i--) {
      const p = s.points[i];
      if (p === undefined) continue;
      if (p !== 'stale') out.push({ name: s.name, labels: s.labels, value: p });
      break;
    }
  }
  return out;
}

export interface AlertCheck {
  test: number;
  alertname: string;
  evalTime: string;
  /** labels and annotations, sorted JSON per alert, sorted */
  expected: string[];
  got: string[];
}

interface TestFile {
  rule_files: string[];
  evaluation_interval?: string;
  tests: {
    interval?: string;
    input_series: { series: string; values: string }[];
    alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[] }[];
  }[];
}

const canon = (labels: Record<string, string>, annotations: Record<string, string>) =>
  JSON.stringify({ labels: Object.fromEntries(Object.entries(labels).sort()), annotations: Object.fromEntries(Object.entries(annotations).sort()) });

export function replayTestFile(file: string): AlertCheck[] {
  const doc = parse(readFileSync(file, 'utf8')) as TestFile;
  const groups = doc.rule_files.flatMap((f) => loadRulesFile(resolve(dirname(file), f)));
  const evalSec = parseDuration(doc.evaluation_interval ?? '1m');
  const checks: AlertCheck[] = [];
  for (const [ti, test] of doc.tests.entries()) {
    const intervalSec = parseDuration(test.interval ?? doc.evaluation_interval ?? '1m');
    const series: Series[] = test.input_series.map((s) => {
      const parsed = parseSampleLine(`${s.series} 0`);
      if (!parsed) throw new Error(`series ${s.series} cannot be read`);
      return { name: parsed.name, labels: { __name__: parsed.name, ...parsed.labels }, points: expandValues(s.values) };
    });
    const states = groups.flatMap((g) => g.rules.map((r) => new RuleState(r)));
    const pending = (test.alert_rule_test ?? []).map((a) => ({ ...a, at: parseDuration(a.eval_time) })).sort((a, b) => a.at - b.at);
    const maxT = pending.at(-1)?.at ?? 0;
    for (let t = 0; t <= maxT; t += evalSec) {
      const samples = samplesAt(series, intervalSec, t);
      for (const s of states) s.evaluate(samples, t);
      // promtool checks an eval_time against the last evaluation at or before it.
      while (pending.length && pending[0]!.at < t + evalSec) {
        const a = pending.shift()!;
        const got = states
          .filter((s) => s.rule.alert === a.alertname)
          .flatMap((s) => s.alerts())
          .filter((x) => x.state === 'firing')
          .map((x) => canon(x.labels, x.annotations))
          .sort();
        const expected = (a.exp_alerts ?? []).map((e) => canon({ ...(e.exp_labels ?? {}), alertname: a.alertname }, e.exp_annotations ?? {})).sort();
        checks.push({ test: ti, alertname: a.alertname, evalTime: a.eval_time, expected, got });
      }
    }
  }
  return checks;
}
