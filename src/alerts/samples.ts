// Prometheus text exposition → samples, for the evaluator (the central node's
// own aggregated /metrics text is what it evaluates).
import type { Sample } from './expr.js';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = parseSampleLine(line);
    if (s) out.push(s);
  }
  return out;
}

/** `name{a="b",…} value [timestamp]`; undefined for a line that is not one. */
export function parseSampleLine(line: string): Sample | undefined {
  const name = line.match(NAME)?.[0];
  if (!name) return undefined;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const key = line.slice(i).match(/^[a-zA-Z_][a-zA-Z0-9_]*/)?.[0];
      if (!key || line[i + key.length] !== '=' || line[i + key.length + 1] !== '"') return undefined;
      i += key.length + 2;
      let value = '';
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\') {
          const n = line[++i];
          value += n === 'n' ? '\n' : (n ?? '');
        } else value += line[i];
      }
      if (i >= line.length) return undefined;
      i++;
      labels[key] = value;
    }
  }
  const text = line.slice(i).trim().split(/\s+/)[0];
  if (!text) return undefined;
  const value = text === '+Inf' || text === 'Inf' ? Infinity : text === '-Inf' ? -Infinity : text === 'NaN' ? Number.NaN : Number(text);
  if (Number.isNaN(value) && text !== 'NaN') return undefined;
  return { name, labels, value };
}
