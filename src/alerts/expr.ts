// The PromQL subset podboot evaluates itself (docs/alerts.md): one instant
// vector selector (a metric name and label matchers), optionally compared
// with a number. Anything else is refused at load time, so a rule that
// Prometheus would evaluate differently never runs half-understood.

export type MatchOp = '=' | '!=' | '=~' | '!~';
export type CompareOp = '==' | '!=' | '>' | '<' | '>=' | '<=';

export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
  /** anchored, as Prometheus anchors its regular expressions */
  re?: RegExp;
}

export interface AlertExpr {
  metric: string;
  matchers: Matcher[];
  compare?: { op: CompareOp; value: number };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class ExprError extends Error {}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const NUMBER = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|NaN)/i;
const COMPARE: readonly CompareOp[] = ['==', '!=', '>=', '<=', '>', '<'];
const MATCH: readonly MatchOp[] = ['=~', '!~', '!=', '='];

/** Parses `metric{label="v",…} [op number]`; throws ExprError saying what is outside the subset. */
export function parseExpr(text: string): AlertExpr {
  let rest = text.trim();
  const fail = (why: string): never => {
    throw new ExprError(`${why} at "${rest.slice(0, 30)}" (podboot evaluates only: metric{label matchers} [== != > < >= <= number])`);
  };
  const skip = () => {
    rest = rest.trimStart();
  };
  const metric = rest.match(NAME)?.[0];
  if (!metric) fail('expected a metric name');
  rest = rest.slice(metric!.length);
  skip();
  if (rest.startsWith('(') || rest.startsWith('[')) fail(`${metric}: functions and range vectors are not in the subset`);
  const matchers: Matcher[] = [];
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    for (;;) {
      skip();
      if (rest.startsWith('}')) break;
      const name = rest.match(LABEL)?.[0];
      if (!name) fail('expected a label name');
      rest = rest.slice(name!.length);
      skip();
      const op = MATCH.find((o) => rest.startsWith(o));
      if (!op) fail(`expected = != =~ !~ after ${name}`);
      rest = rest.slice(op!.length);
      skip();
      const value = readString();
      const m: Matcher = { name: name!, op: op!, value };
      if (op === '=~' || op === '!~') {
        try {
          m.re = new RegExp(`^(?:${value})$`, 's');
        } catch (err) {
          fail(`${name}${op}"${value}": ${(err as Error).message}`);
        }
      }
      matchers.push(m);
      skip();
      if (rest.startsWith(',')) rest = rest.slice(1);
      else if (!rest.startsWith('}')) fail('expected , or }');
    }
    rest = rest.slice(1);
    skip();
  }
  if (!rest) return { metric: metric!, matchers };
  const op = COMPARE.find((o) => rest.startsWith(o));
  if (!op) fail('expected a comparison');
  rest = rest.slice(op!.length);
  skip();
  if (rest.startsWith('bool')) fail('the bool modifier is not in the subset');
  const num = rest.match(NUMBER)?.[0];
  if (!num) fail('expected a number after the comparison');
  rest = rest.slice(num!.length);
  skip();
  if (rest) fail('unexpected text after the comparison');
  return { metric: metric!, matchers, compare: { op: op!, value: parseNumber(num!) } };

  function readString(): string {
    const q = rest[0];
    if (q !== '"' && q !== "'") fail('expected a quoted label value');
    let out = '';
    for (let i = 1; i < rest.length; i++) {
      const c = rest[i]!;
      if (c === q) {
        rest = rest.slice(i + 1);
        return out;
      }
      if (c === '\\') {
        const n = rest[++i];
        out += n === 'n' ? '\n' : n === 't' ? '\t' : (n ?? '');
      } else out += c;
    }
    return fail('unterminated string');
  }
}

function parseNumber(s: string): number {
  const l = s.toLowerCase().replace(/^\+/, '');
  if (l === 'inf') return Infinity;
  if (l === '-inf') return -Infinity;
  if (l === 'nan' || l === '-nan') return Number.NaN;
  return Number(s);
}

function matches(m: Matcher, value: string | undefined): boolean {
  // A missing label matches as the empty string, as in Prometheus.
  const v = value ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return m.re!.test(v);
    case '!~':
      return !m.re!.test(v);
  }
}

function compare(op: CompareOp, a: number, b: number): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '>':
      return a > b;
    case '<':
      return a < b;
    case '>=':
      return a >= b;
    case '<=':
      return a <= b;
  }
}

/** The samples the expression keeps (a filtering comparison keeps the left value, as Prometheus does). */
export function evaluate(e: AlertExpr, samples: readonly Sample[]): Sample[] {
  return samples.filter((s) => s.name === e.metric && e.matchers.every((m) => matches(m, s.labels[m.name])) && (!e.compare || compare(e.compare.op, s.value, e.compare.value)));
}

/** Prometheus durations: 1h30m, 5m, 10s, 250ms, 2d, 1w, 1y; a bare 0 too. */
export function parseDuration(text: string): number {
  if (text === '0') return 0;
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  const re = /(\d+)(ms|s|m|h|d|w|y)/gy;
  let sec = 0;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    sec += Number(m[1]) * units[m[2]!]!;
    at = re.lastIndex;
  }
  if (!text || at !== text.length) throw new ExprError(`"${text}" is not a duration (e.g. 5m, 1h30m)`);
  return sec;
}
