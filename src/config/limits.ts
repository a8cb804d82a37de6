// spec.limits: what the central node lets the pod's instance use (memory,
// processes and threads, CPU weight), enforced through cgroups
// (src/pod-vm/cgroup.ts). Every field defaults; a bad value is reported at
// its line like any other field.
import { isScalar } from 'yaml';
import { boundsOf, fieldsOf, LIMITS_SHAPE } from './pod-shape.js';
import { DEFAULT_LIMITS, type PodLimits } from './types.js';
import { found, type Section } from './yaml-reader.js';

const LIMITS_FIELDS = fieldsOf(LIMITS_SHAPE);
const UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
/** Below this a Node process cannot even start; the kernel would kill it at once. */
export const MIN_MEMORY_BYTES = 32 * 1024 * 1024;
const MAX_MEMORY_BYTES = 1024 ** 4;

/** `256Mi`, `1Gi`, `300M`, or a number of bytes. */
export function parseMemory(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = value.trim().match(/^(\d+)\s*(|K|M|G|Ki|Mi|Gi)$/);
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

export function readLimits(spec: Section): PodLimits | undefined {
  const s = spec.section('limits', LIMITS_FIELDS);
  if (!s) return undefined;
  const limits = { ...DEFAULT_LIMITS };
  const mem = s.node('memory');
  if (mem !== undefined) {
    const bytes = isScalar(mem) ? parseMemory(mem.value) : undefined;
    if (bytes === undefined) s.report('memory', `expected a size such as 256Mi, 1Gi or a number of bytes, found ${found(mem)}`);
    else if (bytes < MIN_MEMORY_BYTES || bytes > MAX_MEMORY_BYTES) s.report('memory', `${bytes} bytes is outside 32Mi..1024Gi`);
    else limits.memoryBytes = bytes;
  }
  const pids = s.node('pids') === undefined ? undefined : s.integer('pids', ...boundsOf(LIMITS_SHAPE, 'pids'));
  if (pids !== undefined) limits.pids = pids;
  const weight = s.node('cpuWeight') === undefined ? undefined : s.integer('cpuWeight', ...boundsOf(LIMITS_SHAPE, 'cpuWeight'));
  if (weight !== undefined) limits.cpuWeight = weight;
  return limits;
}
