// Paths of the config fixtures and a way to read problems as operators see them.
import { fileURLToPath } from 'node:url';
import { formatProblem, type ConfigProblem } from '../../../src/config/types.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));

/** Problem lines with the fixture folder left out of file names: `bad/pools.yaml:11:13: …`. */
export function lines(problems: ConfigProblem[]): string[] {
  return problems.map((p) => formatProblem(p).split(FIXTURES).join(''));
}

/** The smallest valid pod file (rack-a, one relay, one subnet), with `extra` spec lines (two-space indented) appended. */
export const smallPod = (extra: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-a }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets: [ { cidr: 10.20.0.0/24, pool: 10.20.0.100-10.20.0.199 } ]
${extra}`;
