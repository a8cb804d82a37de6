// The YAML parser's error messages, made safe to log: a few of them quote the
// source (a tag, an escape sequence, a stray token), and the source may be a
// file a symlink in the pods directory points at. Messages built only from
// the parser's own words are kept; the others are replaced by a fixed text
// per error code. The line and column still locate the problem.
import type { YAMLError } from 'yaml';

/** Codes whose messages may carry source text, and what is said instead. */
const FIXED: Readonly<Record<string, string>> = {
  BAD_DQ_ESCAPE: 'invalid escape sequence in a double-quoted string',
  BAD_SCALAR_START: 'a plain value cannot start with this character (quote the value)',
  BAD_PROP_ORDER: 'anchors and tags must come after the indicator',
  TAG_RESOLVE_FAILED: 'unsupported YAML tag',
  BAD_COLLECTION_TYPE: 'YAML tag does not fit this collection',
  BAD_DIRECTIVE: 'unsupported YAML directive',
  BAD_ALIAS: 'alias to an anchor that is not defined before it',
  UNEXPECTED_TOKEN: 'unexpected text here',
};

/** UNEXPECTED_TOKEN messages that name token types only (scalar, flow-map-end, …), never their text. */
const SAFE_UNEXPECTED = [/^Unexpected [a-z-]+ (token|at node end)$/, /^Unexpected (,|empty item) in flow (map|sequence|collection)$/, /^Expected a flow scalar value, but found: [a-z-]+$/];

export function yamlErrorMessage(e: Pick<YAMLError, 'code' | 'message'>): string {
  const first = e.message.split('\n')[0]!;
  const fixed = FIXED[e.code];
  if (fixed === undefined) return first;
  if (e.code === 'UNEXPECTED_TOKEN' && SAFE_UNEXPECTED.some((re) => re.test(first))) return first;
  return fixed;
}
