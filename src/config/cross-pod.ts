// Checks between the pods of one central node: each pod must be able to run
// next to the others (own name, own sockets), own its rack networks and its
// servers alone, and hand out management addresses no other pod hands out.
//
// They read PodFacts, not PodConfig: `podboot validate` runs them on files
// that also have problems of their own, with every field whose value could
// be read, so that both kinds of problem show in one run. A field whose
// value is unreadable (not an address, not a CIDR) is left out of them.
import { cidrsOverlap, prefixMask, type Cidr } from '../net/ipv4.js';
import { LISTEN_PORTS, type PortKey } from './listen.js';
import type { ConfigProblem, PodConfig } from './types.js';
import type { Position } from './yaml-reader.js';

/** What the checks between pods read of one pod file: each field only when its value could be read. */
export interface PodFacts {
  name?: string;
  /** the listen address, and each port that could be read (a default counts) */
  listen?: { address: string; ports: Partial<Record<PortKey, number>> };
  /** the provisioning subnets, each with where it was written (spec.subnets[i]) */
  subnets: { cidr: Cidr; text: string; path: string }[];
  /** the servers' MACs, each with where it was written (spec.nodes[i].mac) */
  macs: { mac: string; path: string }[];
  /** spec.managementNetwork's network */
  managementNetwork?: { cidr: Cidr; text: string };
}

export const NO_FACTS: PodFacts = { subnets: [], macs: [] };

export type Locate = (path: string) => Position & { written: boolean };

/** A valid pod, where it came from and how to find its fields (the supervisor's view). */
export interface LocatedPod {
  pod: PodConfig;
  file: string;
  locate: Locate;
}

/** One file's facts, where it came from and how to find its fields (validate's view). */
export interface FileFacts {
  facts: PodFacts;
  file: string;
  locate: Locate;
}

/** The facts of a pod that is valid: all of it. */
export function factsOfPod(pod: PodConfig): PodFacts {
  const m = pod.managementNetwork;
  return {
    name: pod.name,
    listen: { address: pod.listen.address, ports: { dhcpPort: pod.listen.dhcpPort, tftpPort: pod.listen.tftpPort, httpPort: pod.listen.httpPort, httpsPort: pod.listen.httpsPort } },
    subnets: pod.subnets.map((s, i) => ({ cidr: s, text: s.cidr, path: `spec.subnets[${i}]` })),
    // A valid pod has read every node, so the i-th server is spec.nodes[i].
    macs: pod.nodes.map((n, i) => ({ mac: n.mac, path: `spec.nodes[${i}].mac` })),
    ...(m ? { managementNetwork: { cidr: { network: m.network, prefix: m.prefix, mask: prefixMask(m.prefix) }, text: m.cidr } } : {}),
  };
}

/** Between valid pods (what the supervisor refuses a new or changed file for). */
export function crossPodProblems(pods: readonly LocatedPod[]): ConfigProblem[] {
  return crossFileProblems(pods.map((p) => ({ facts: factsOfPod(p.pod), file: p.file, locate: p.locate })));
}

/** Each conflict is reported once, on the later file, naming where the earlier one wrote it. */
export function crossFileProblems(files: readonly FileFacts[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (p: FileFacts, path: string, message: string) => problems.push({ file: p.file, ...p.locate(path), path, message });
  const where = (p: FileFacts, path: string) => {
    const pos = p.locate(path);
    return `${p.file}:${pos.line}:${pos.col}`;
  };
  // A file whose name could not be read is still the other side of a conflict.
  const pod = (p: FileFacts) => (p.facts.name === undefined ? 'another pod' : `pod ${p.facts.name}`);
  files.forEach((b, j) => {
    const fb = b.facts;
    for (const a of files.slice(0, j)) {
      const fa = a.facts;
      if (fa.name !== undefined && fa.name === fb.name) at(b, 'metadata.name', `pod name ${fb.name} is also used by ${where(a, 'metadata.name')}`);
      if (fa.listen && fb.listen && fa.listen.address === fb.listen.address) {
        for (const pb of LISTEN_PORTS) {
          for (const pa of LISTEN_PORTS) {
            const port = fb.listen.ports[pb.key];
            if (pa.protocol !== pb.protocol || port === undefined || fa.listen.ports[pa.key] !== port) continue;
            const isDefault = b.locate(`spec.listen.${pb.key}`).written ? '' : ' (the default)';
            const socket = `${pb.protocol} ${fb.listen.address}:${port}${isDefault}`;
            at(b, `spec.listen.${pb.key}`, `${socket} is also used by ${pod(a)} (${where(a, `spec.listen.${pa.key}`)})`);
          }
        }
      }
      for (const sb of fb.subnets) {
        for (const sa of fa.subnets) {
          if (cidrsOverlap(sa.cidr, sb.cidr)) at(b, `${sb.path}.cidr`, `${sb.text} overlaps ${sa.text} of ${pod(a)} (${where(a, `${sa.path}.cidr`)})`);
        }
      }
      // One server answered by two pods would be installed by whichever answers first.
      for (const mb of fb.macs) {
        const ma = fa.macs.find((m) => m.mac === mb.mac);
        if (ma) at(b, mb.path, `server ${mb.mac} is also a server of ${pod(a)} (${where(a, ma.path)})`);
      }
      // Two pods handing out (or fixing) addresses on one management network would give one address twice.
      const na = fa.managementNetwork;
      const nb = fb.managementNetwork;
      if (na && nb && cidrsOverlap(na.cidr, nb.cidr)) {
        const path = 'spec.managementNetwork.cidr';
        at(b, path, `management network ${nb.text} overlaps ${na.text}, the management network of ${pod(a)} (${where(a, path)})`);
      }
    }
  });
  return problems;
}
