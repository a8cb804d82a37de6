// Task templates: a shell script with `{{name}}` placeholders and a header of
// `#%` lines (description, parameters with defaults, a timeout, log rules).
// Rendering substitutes each placeholder with its value quoted as ONE shell
// word, so a value can never become code ("a; rm -rf /" stays a string).
import { createHash } from 'node:crypto';
import { parseRuleText, type Rule, type RuleError } from './rules.js';

export interface TemplateParam {
  name: string;
  default?: string;
}

export interface TaskTemplate {
  name: string;
  description: string;
  /** every placeholder, in order of first use, with its default when the header gives one */
  params: TemplateParam[];
  rules: Rule[];
  timeoutSeconds?: number;
  text: string;
}

export class TemplateError extends Error {}

export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const PARAM_NAME = /^[a-z_][a-z0-9_]{0,63}$/;
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const MAX_VALUE = 4096;
/**
 * Headers an author might write to ask for root. Tasks run as the node
 * agent's confined, unprivileged user and podboot has no way to raise them
 * (docs/decisions.md, "Remote tasks: no root"): said plainly, not as an
 * unknown header, so nobody guesses at another spelling.
 */
const ROOT_HEADERS = new Set(['privileged', 'root', 'sudo', 'user']);

/** One shell word whose value is exactly `value`, whatever it holds. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function parseTemplate(name: string, text: string): TaskTemplate {
  if (!TEMPLATE_NAME.test(name)) throw new TemplateError(`template name ${JSON.stringify(name)}: lower-case letters, digits, _ and -`);
  let description = '';
  let timeoutSeconds: number | undefined;
  const defaults = new Map<string, string | undefined>();
  const rules: Rule[] = [];
  text.split('\n').forEach((line, i) => {
    const m = /^#%\s*(\S+)\s*(.*)$/.exec(line);
    if (!m) return;
    const [, key, rest] = m as unknown as [string, string, string];
    const where = `${name}:${i + 1}`;
    if (key === 'description') description = rest.trim();
    else if (key === 'timeout') {
      const n = Number(rest.trim());
      if (!Number.isInteger(n) || n < 1 || n > 86400) throw new TemplateError(`${where}: timeout must be 1..86400 seconds`);
      timeoutSeconds = n;
    } else if (key === 'param') {
      const p = /^([^=\s]+)(?:=(.*))?$/.exec(rest.trim());
      if (!p || !PARAM_NAME.test(p[1]!)) throw new TemplateError(`${where}: expected "#% param NAME" or "#% param NAME=DEFAULT"`);
      defaults.set(p[1]!, p[2]);
    } else if (key === 'rule') {
      try {
        rules.push(parseRuleText(rest));
      } catch (err) {
        throw new TemplateError(`${where}: ${(err as RuleError).message}`);
      }
    } else if (ROOT_HEADERS.has(key)) {
      throw new TemplateError(`${where}: "#% ${key}": tasks run as the node agent's unprivileged user; podboot has no root tasks (docs/tasks.md, "Root tasks")`);
    } else throw new TemplateError(`${where}: unknown header "#% ${key}" (description, param, timeout, rule)`);
  });
  checkPlaceholderQuoting(name, text);
  const names: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const n = m[1]!;
    if (!PARAM_NAME.test(n)) throw new TemplateError(`${name}: placeholder {{${n}}}: parameter names are lower case`);
    if (!names.includes(n)) names.push(n);
  }
  for (const declared of defaults.keys()) if (!names.includes(declared)) throw new TemplateError(`${name}: parameter ${declared} is declared but no {{${declared}}} uses it`);
  const params = names.map((n) => {
    const d = defaults.get(n);
    return d === undefined ? { name: n } : { name: n, default: d };
  });
  return { name, description, params, rules, ...(timeoutSeconds ? { timeoutSeconds } : {}), text };
}

/**
 * A placeholder inside "…" would put its quoted value into a string the shell
 * still expands ($(…) in a value would run): refused, with where. Reads the
 * script as sh does for quotes, backslashes and comments (not here-documents,
 * which docs/tasks.md tells authors to keep placeholders out of).
 */
function checkPlaceholderQuoting(name: string, text: string): void {
  let quote: '' | "'" | '"' = '';
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (quote === "'") {
      if (c === "'") quote = '';
      continue;
    }
    if (c === '\\') {
      if (text[i + 1] === '\n') line++;
      i++;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = '';
      else if (c === '{' && text[i + 1] === '{' && /^\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}/.test(text.slice(i, i + 80))) {
        throw new TemplateError(`${name}:${line}: a {{placeholder}} inside "…" would be expanded by the shell; assign it to a variable first (x={{…}}) and use "$x"`);
      }
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      const nl = text.indexOf('\n', i);
      i = (nl === -1 ? text.length : nl) - 1;
    }
  }
}

export interface Rendered {
  script: string;
  sha256: string;
  /** every parameter's value, defaults included */
  values: Record<string, string>;
}

/** The script with every placeholder replaced; TemplateError for a missing, unknown or unusable value. */
export function renderTemplate(t: TaskTemplate, given: Record<string, string>): Rendered {
  const values: Record<string, string> = {};
  for (const k of Object.keys(given))
    if (!t.params.some((p) => p.name === k)) throw new TemplateError(`template ${t.name} has no parameter ${k} (it has: ${t.params.map((p) => p.name).join(', ') || 'none'})`);
  const missing: string[] = [];
  for (const p of t.params) {
    const v = Object.hasOwn(given, p.name) ? given[p.name] : p.default;
    if (v === undefined) missing.push(p.name);
    else {
      if (typeof v !== 'string') throw new TemplateError(`parameter ${p.name}: a string`);
      if (v.length > MAX_VALUE) throw new TemplateError(`parameter ${p.name}: over ${MAX_VALUE} characters`);
      if (v.includes('\0')) throw new TemplateError(`parameter ${p.name}: a NUL byte cannot be passed to a shell`);
      values[p.name] = v;
    }
  }
  if (missing.length) throw new TemplateError(`template ${t.name}: missing parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  const script = t.text.replace(PLACEHOLDER, (_m, n: string) => shellQuote(values[n]!));
  return { script, sha256: createHash('sha256').update(script).digest('hex'), values };
}
