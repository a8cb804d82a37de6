// Pods for the central-node tests that put one rack per network namespace
// behind a relay and load it with perfdhcp.

export interface Rack {
  pod: string;
  /** the rack's namespace (perfdhcp and probes run there) */
  ns: string;
  /** the pod instance's address in the central namespace */
  server: string;
  /** the rack relay (perfdhcp / probe) address */
  relay: string;
  octet: number;
  /** spec.limits as YAML flow text */
  limits?: string;
}

/** Pools far larger than perfdhcp's clients: an exhausted pool would look like drops. */
export function rackPodYaml(r: Rack, poolEnd = `10.${r.octet}.200.250`): string {
  return `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${r.pod}
spec:
  listen: { address: ${r.server} }
  relays: [${r.relay}]
  subnets:
    - cidr: 10.${r.octet}.0.0/16
      gateway: ${r.relay}
      pool: 10.${r.octet}.1.0-${poolEnd}
      leaseTime: 1h
  unknownNodes: provision
${r.limits ? `  limits: ${r.limits}\n` : ''}`;
}

/** perfdhcp's drop and packet counts for one exchange section. */
export function perfStat(out: string, section: string, field: string): number {
  const at = out.indexOf(`Statistics for: ${section}`);
  const m = at >= 0 ? out.slice(at).match(new RegExp(`${field}: ([\\d.]+)`)) : null;
  return m ? Number(m[1]) : Number.NaN;
}
