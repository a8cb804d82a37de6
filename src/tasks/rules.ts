// Log rules: a pattern on one stream of a task's output and what a matching
// line does (mark the task failed, call a webhook, capture a value). Patterns
// are compiled with V8's linear-time engine (the `l` flag), so no pattern an
// operator submits can make the pod backtrack for ever on a hostile line; one
// the engine cannot run in linear time (backreferences, lookaround) is
// refused when the task is submitted, not when its output arrives.
import { setFlagsFromString } from 'node:v8';

export const STREAMS = ['stdout', 'stderr'] as const;
export type Stream = (typeof STREAMS)[number];

export type RuleAction = { kind: 'fail' } | { kind: 'webhook'; url: string } | { kind: 'capture'; name: string };

export interface Rule {
  stream: Stream;
  pattern: string;
  action: RuleAction;
}

export class RuleError extends Error {}

const MAX_PATTERN = 512;
const MAX_RULES = 16;
const CAPTURE_NAME = /^[a-z][a-z0-9_-]{0,31}$/i;

/** the linear-time engine's flag (a variable: a literal /…/l does not parse for TypeScript or Biome) */
const LINEAR = 'l';

let linear: boolean | undefined;

/**
 * Turns the linear engine on in this process. The pod is started with
 * --enable-experimental-regexp-engine; this covers the CLI, the central node
 * and tests. V8 reads the flag when a RegExp with `l` is parsed, so setting it
 * at run time works (checked on Node 20 and 22 by test/unit/tasks/rules.test.ts).
 */
export function ensureLinearEngine(): void {
  if (linear) return;
  if (!supportsL()) setFlagsFromString('--enable-experimental-regexp-engine');
  linear = supportsL();
  if (!linear) throw new Error("this Node.js has no linear-time RegExp engine (--enable-experimental-regexp-engine, the 'l' flag)");
}

function supportsL(): boolean {
  try {
    new RegExp('a', LINEAR);
    return true;
  } catch {
    return false;
  }
}

/** The pattern compiled by the linear engine; RuleError naming why when it cannot be. */
export function compilePattern(pattern: string): RegExp {
  ensureLinearEngine();
  if (pattern.length === 0) throw new RuleError('empty pattern');
  if (pattern.length > MAX_PATTERN) throw new RuleError(`pattern over ${MAX_PATTERN} characters`);
  try {
    return new RegExp(pattern, LINEAR);
  } catch (err) {
    const msg = (err as Error).message;
    if (/linear time/i.test(msg)) {
      throw new RuleError(
        `pattern ${JSON.stringify(pattern)} cannot be matched in linear time (no backreferences, lookahead or lookbehind): log rules use V8's linear-time engine so that no line can stall the pod`,
      );
    }
    throw new RuleError(`pattern ${JSON.stringify(pattern)}: ${msg.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** A webhook target: http(s) only, no credentials in it (they would end up in task listings). */
export function checkWebhookUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new RuleError(`webhook ${JSON.stringify(text)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RuleError(`webhook ${text}: http or https only`);
  if (u.username || u.password) throw new RuleError(`webhook ${u.host}: no user or password in the URL`);
  return u.toString();
}

/** A rule as the API takes it: {stream, pattern, action: "fail"|"webhook"|"capture", url?, name?}. */
export function parseRule(raw: unknown): Rule {
  if (typeof raw !== 'object' || raw === null) throw new RuleError('a rule is an object {stream, pattern, action}');
  const r = raw as Record<string, unknown>;
  if (typeof r.stream !== 'string' || !(STREAMS as readonly string[]).includes(r.stream)) throw new RuleError('rule stream must be stdout or stderr');
  if (typeof r.pattern !== 'string') throw new RuleError('rule pattern must be a string');
  compilePattern(r.pattern);
  const stream = r.stream as Stream;
  switch (r.action) {
    case 'fail':
      return { stream, pattern: r.pattern, action: { kind: 'fail' } };
    case 'webhook':
      if (typeof r.url !== 'string') throw new RuleError('a webhook rule needs url');
      return { stream, pattern: r.pattern, action: { kind: 'webhook', url: checkWebhookUrl(r.url) } };
    case 'capture':
      if (typeof r.name !== 'string' || !CAPTURE_NAME.test(r.name)) throw new RuleError('a capture rule needs a name (letters, digits, _ and -, up to 32)');
      return { stream, pattern: r.pattern, action: { kind: 'capture', name: r.name } };
    default:
      throw new RuleError('rule action must be fail, webhook or capture');
  }
}

export function parseRules(raw: unknown): Rule[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new RuleError('rules must be a list');
  if (raw.length > MAX_RULES) throw new RuleError(`at most ${MAX_RULES} rules`);
  return raw.map(parseRule);
}

/**
 * The text form of the CLI (`--rule`) and of templates (`#% rule`):
 * `STREAM fail PATTERN`, `STREAM webhook=URL PATTERN`, `STREAM capture=NAME PATTERN`;
 * the pattern is the rest of the text, spaces included.
 */
export function parseRuleText(text: string): Rule {
  const m = /^\s*(\S+)\s+(\S+)\s+(.+)$/.exec(text);
  if (!m) throw new RuleError(`rule ${JSON.stringify(text)}: expected STREAM ACTION PATTERN (e.g. "stdout fail ERROR")`);
  const [, stream, action, pattern] = m as unknown as [string, string, string, string];
  const eq = action.indexOf('=');
  const kind = eq === -1 ? action : action.slice(0, eq);
  const arg = eq === -1 ? undefined : action.slice(eq + 1);
  return parseRule({ stream, pattern, action: kind, ...(kind === 'webhook' ? { url: arg } : kind === 'capture' ? { name: arg } : {}) });
}

/** What the API shows of a rule (and what parseRule reads back). */
export function ruleJson(r: Rule): Record<string, string> {
  const a = r.action;
  return { stream: r.stream, pattern: r.pattern, action: a.kind, ...(a.kind === 'webhook' ? { url: a.url } : a.kind === 'capture' ? { name: a.name } : {}) };
}

export interface CompiledRule extends Rule {
  re: RegExp;
}

export function compileRules(rules: readonly Rule[]): CompiledRule[] {
  return rules.map((r) => ({ ...r, re: compilePattern(r.pattern) }));
}

export interface RuleHit {
  rule: CompiledRule;
  /** for capture: the first group, or the whole match when the pattern has none */
  value?: string;
}

/** The rules one line of one stream matches, in rule order. */
export function matchLine(rules: readonly CompiledRule[], stream: Stream, line: string): RuleHit[] {
  const hits: RuleHit[] = [];
  for (const rule of rules) {
    if (rule.stream !== stream) continue;
    const m = rule.re.exec(line);
    if (!m) continue;
    hits.push(rule.action.kind === 'capture' ? { rule, value: (m[1] ?? m[0]).slice(0, 256) } : { rule });
  }
  return hits;
}
