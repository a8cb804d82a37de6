// The alert rules file (Prometheus' rule_files format) as podboot reads it:
// the same file Prometheus loads, refused with the file and rule named when
// it asks for more than podboot's subset (expr.ts, templates below).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { packageRoot } from '../package-root.js';
import { type AlertExpr, parseDuration, parseExpr } from './expr.js';

export interface AlertRule {
  /** the group it belongs to */
  group: string;
  alert: string;
  /** as written, for the generator URL and messages */
  exprText: string;
  expr: AlertExpr;
  /** seconds the condition must hold before firing */
  forSec: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  /** seconds; undefined: the evaluator's own interval */
  intervalSec?: number;
  rules: AlertRule[];
}

export class RulesError extends Error {}

/** The rules shipped with podboot (deploy/prometheus/podboot-alerts.yml). */
export function defaultRulesFile(): string {
  return join(packageRoot(), 'deploy', 'prometheus', 'podboot-alerts.yml');
}

export function loadRulesFile(file: string): RuleGroup[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RulesError(`${file}: ${(err as Error).message}`);
  }
  return parseRules(text, file);
}

const TEMPLATE = /\{\{\s*(.*?)\s*\}\}/g;

/** The rules of one file's text; `file` names it in every error. */
export function parseRules(text: string, file: string): RuleGroup[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new RulesError(`${file}: not YAML: ${(err as Error).message}`);
  }
  const groups = (doc as { groups?: unknown } | null)?.groups;
  if (!Array.isArray(groups)) throw new RulesError(`${file}: no groups: list`);
  return groups.map((g: unknown, gi) => {
    const grp = g as { name?: unknown; interval?: unknown; rules?: unknown };
    const gname = typeof grp?.name === 'string' ? grp.name : '';
    const where = `${file}: group ${gname || `#${gi + 1}`}`;
    if (!gname) throw new RulesError(`${where}: no name`);
    if (!Array.isArray(grp.rules)) throw new RulesError(`${where}: no rules: list`);
    const intervalSec = grp.interval === undefined ? undefined : duration(grp.interval, `${where}: interval`);
    const rules = grp.rules.map((r: unknown, ri): AlertRule => {
      const rule = r as Record<string, unknown>;
      const name = typeof rule?.alert === 'string' ? rule.alert : undefined;
      const at = `${where}: rule ${name ?? (typeof rule?.record === 'string' ? rule.record : `#${ri + 1}`)}`;
      if (!name) throw new RulesError(`${at}: only alerting rules (alert:) are evaluated by podboot, not recording rules`);
      for (const k of Object.keys(rule)) {
        if (!['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)) throw new RulesError(`${at}: ${k}: is not supported by podboot's evaluator`);
      }
      if (typeof rule.expr !== 'string') throw new RulesError(`${at}: expr: must be a string`);
      let expr: AlertExpr;
      try {
        expr = parseExpr(rule.expr);
      } catch (err) {
        throw new RulesError(`${at}: expr: ${(err as Error).message}`);
      }
      const labels = stringMap(rule.labels, `${at}: labels`);
      const annotations = stringMap(rule.annotations, `${at}: annotations`);
      for (const [k, v] of [...Object.entries(labels), ...Object.entries(annotations)]) checkTemplate(v, `${at}: ${k}`);
      return { group: gname, alert: name, exprText: rule.expr, expr, forSec: rule.for === undefined ? 0 : duration(rule.for, `${at}: for`), labels, annotations };
    });
    return { name: gname, intervalSec, rules };
  });
}

function duration(v: unknown, at: string): number {
  try {
    return parseDuration(String(v));
  } catch (err) {
    throw new RulesError(`${at}: ${(err as Error).message}`);
  }
}

function stringMap(v: unknown, at: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new RulesError(`${at}: must be a map`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') throw new RulesError(`${at}: ${k} must be a string`);
    out[k] = String(x);
  }
  return out;
}

/** Only `{{ $labels.NAME }}` and `{{ $value }}`: Go's template language is not reimplemented. */
function checkTemplate(text: string, at: string): void {
  for (const m of text.matchAll(TEMPLATE)) {
    if (!/^\$value$|^\$labels\.[a-zA-Z_][a-zA-Z0-9_]*$/.test(m[1]!)) throw new RulesError(`${at}: template {{ ${m[1]} }} is not supported (only {{ $labels.NAME }} and {{ $value }})`);
  }
}

export function expandTemplate(text: string, labels: Record<string, string>, value: number): string {
  return text.replace(TEMPLATE, (_all, inner: string) => (inner === '$value' ? goFloat(value) : (labels[inner.slice('$labels.'.length)] ?? '')));
}

/** A float64 as Go's %v prints it (strconv 'g', shortest), so annotations read as Prometheus writes them. */
export function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mant, expText] = v.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  // Go's shortest 'g': exponent form below 1e-4 and from 1e6 up (checked against promtool).
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(v);
}
