// Server labels (spec.nodes[].labels) and the selectors that pick servers by
// them (`--select role=web,rack!=b`). Names and values follow Kubernetes'
// label syntax so operators can write what they already know: a name is an
// optional DNS-subdomain prefix and `/`, then 1-63 of letters, digits, `-`,
// `_`, `.` starting and ending alphanumeric; a value is empty or the same.

export type Labels = Readonly<Record<string, string>>;

const NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const PREFIX = '[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*/';
/** As JSON Schema `pattern`s (ECMAScript, u flag) and for the readers alike. */
export const LABEL_KEY_PATTERN = `^(?:${PREFIX})?${NAME}$`;
export const LABEL_VALUE_PATTERN = `^(?:${NAME})?$`;
const KEY_RE = new RegExp(LABEL_KEY_PATTERN, 'u');
const VALUE_RE = new RegExp(LABEL_VALUE_PATTERN, 'u');

export function labelKeyProblem(key: string): string | undefined {
  if (!KEY_RE.test(key) || key.length > 317)
    return `label name ${JSON.stringify(key)} is not valid (1-63 of letters, digits, - _ . starting and ending with a letter or digit, after an optional dns.prefix/)`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (!VALUE_RE.test(value)) return `label value ${JSON.stringify(value)} is not valid (empty, or 1-63 of letters, digits, - _ . starting and ending with a letter or digit)`;
  return undefined;
}

/** One term of a selector: `k=v` (also `k==v`), `k!=v`, `k` (has the label), `!k` (has not). */
export type Requirement = { key: string; op: '=' | '!='; value: string } | { key: string; op: 'exists' | '!exists' };

export interface Selector {
  /** the text it was read from, for logs and records */
  text: string;
  /** all must hold (comma = and) */
  all: Requirement[];
}

export class SelectorError extends Error {}

/** `role=web,rack!=b,gpu,!drain`; an empty text selects every server. */
export function parseSelector(text: string): Selector {
  const all: Requirement[] = [];
  for (const raw of text.split(',')) {
    const term = raw.trim();
    if (!term) {
      if (text.trim()) throw new SelectorError(`selector ${JSON.stringify(text)}: an empty term (two commas, or a comma at an end)`);
      continue;
    }
    const m = /^(!?)\s*([^=!\s]+)\s*(?:(==|=|!=)\s*(.*))?$/.exec(term);
    if (!m) throw new SelectorError(`selector term ${JSON.stringify(term)}: write key=value, key!=value, key or !key`);
    const [, not, key, op, value] = m;
    const keyProblem = labelKeyProblem(key!);
    if (keyProblem) throw new SelectorError(`selector term ${JSON.stringify(term)}: ${keyProblem}`);
    if (op === undefined) {
      all.push({ key: key!, op: not ? '!exists' : 'exists' });
      continue;
    }
    if (not) throw new SelectorError(`selector term ${JSON.stringify(term)}: ! goes only before a bare key (!key)`);
    const v = value!.trim();
    const valueProblem = labelValueProblem(v);
    if (valueProblem) throw new SelectorError(`selector term ${JSON.stringify(term)}: ${valueProblem}`);
    all.push({ key: key!, op: op === '!=' ? '!=' : '=', value: v });
  }
  return { text: text.trim(), all };
}

export function selects(selector: Selector, labels: Labels | undefined): boolean {
  const has = (k: string) => labels !== undefined && Object.hasOwn(labels, k);
  return selector.all.every((r) => {
    switch (r.op) {
      case 'exists':
        return has(r.key);
      case '!exists':
        return !has(r.key);
      case '=':
        return has(r.key) && labels![r.key] === r.value;
      default:
        return !has(r.key) || labels![r.key] !== r.value;
    }
  });
}
