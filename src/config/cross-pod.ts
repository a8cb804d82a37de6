// Checks between the pods of one central node: each pod must be able to run
// next to the others (own name, own sockets) and own its rack networks alone.
import { cidrsOverlap } from '../net/ipv4.js';
import { LISTEN_PORTS } from './listen.js';
import type { ConfigProblem, PodConfig } from './types.js';
import type { Position } from './yaml-reader.js';

export interface LocatedPod {
  pod: PodConfig;
  file: string;
  locate(path: string): Position & { written: boolean };
}

/** Each conflict is reported once, on the later pod, naming where the earlier one wrote it. */
export function crossPodProblems(pods: readonly LocatedPod[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (p: LocatedPod, path: string, message: string) => problems.push({ file: p.file, ...p.locate(path), path, message });
  const where = (p: LocatedPod, path: string) => {
    const pos = p.locate(path);
    return `${p.file}:${pos.line}:${pos.col}`;
  };
  pods.forEach((b, j) => {
    for (const a of pods.slice(0, j)) {
      if (a.pod.name === b.pod.name) at(b, 'metadata.name', `pod name ${b.pod.name} is also used by ${where(a, 'metadata.name')}`);
      if (a.pod.listen.address === b.pod.listen.address) {
        for (const pb of LISTEN_PORTS) {
          for (const pa of LISTEN_PORTS) {
            if (pa.protocol !== pb.protocol || a.pod.listen[pa.key] !== b.pod.listen[pb.key]) continue;
            const isDefault = b.locate(`spec.listen.${pb.key}`).written ? '' : ' (the default)';
            const socket = `${pb.protocol} ${b.pod.listen.address}:${b.pod.listen[pb.key]}${isDefault}`;
            at(b, `spec.listen.${pb.key}`, `${socket} is also used by pod ${a.pod.name} (${where(a, `spec.listen.${pa.key}`)})`);
          }
        }
      }
      b.pod.subnets.forEach((sb, k) => {
        a.pod.subnets.forEach((sa, i) => {
          if (cidrsOverlap(sa, sb)) at(b, `spec.subnets[${k}].cidr`, `${sb.cidr} overlaps ${sa.cidr} of pod ${a.pod.name} (${where(a, `spec.subnets[${i}].cidr`)})`);
        });
      });
    }
  });
  return problems;
}
