// Prometheus text exposition format 0.0.4, written by hand: a handful of
// families per pod does not need a client library.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'untyped';
export type Labels = Record<string, string | number>;

export interface Sample {
  /** suffix added to the family name (e.g. _bucket); usually empty */
  suffix?: string;
  labels?: Labels;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function render(families: readonly Family[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${f.name}${s.suffix ?? ''}${formatLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

/** One family from a record of counts, e.g. dropped packets by reason. */
export function fromRecord(name: string, help: string, type: MetricType, label: string, rec: Record<string, number>): Family {
  return { name, help, type, samples: Object.entries(rec).map(([k, value]) => ({ labels: { [label]: k }, value })) };
}
