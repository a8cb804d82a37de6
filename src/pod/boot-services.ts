// What a pod's HTTPS boot server serves, as seen from the pod's config and
// state: which clients are its own, and kickstarts rendered per server.
import { readFileSync } from 'node:fs';
import type { PodConfig } from '../config/types.js';
import { renderKickstart, unknownPlaceholders, type KickstartValues } from '../http-boot/kickstart.js';
import type { Stage2Set } from '../http-boot/stage2-files.js';
import { cidrContains, parseIPv4, prefixMask } from '../net/ipv4.js';

/**
 * A pod answers its own servers and itself (local probes), nobody else. Its
 * servers are in its rack subnets while they install, and in its management
 * network once installed: the node agent reports in from there.
 */
export function podSources(pod: PodConfig): (address: number) => boolean {
  const own = new Set([pod.listen.address, pod.boot.nextServer].map((a) => parseIPv4(a)).filter((a): a is number => a !== undefined));
  const mgmt = pod.managementNetwork && { network: pod.managementNetwork.network, prefix: pod.managementNetwork.prefix, mask: prefixMask(pod.managementNetwork.prefix) };
  return (address) => own.has(address) || pod.subnets.some((s) => cidrContains(s, address)) || (mgmt !== undefined && cidrContains(mgmt, address));
}

/**
 * The rack a server's address is on: the pod subnet that holds it (one rack
 * LAN behind one relay), by its CIDR. Rack peers share image chunks and the
 * pod admits image streams per rack by this key; undefined outside the subnets.
 */
export function rackOf(pod: PodConfig): (address: number) => string | undefined {
  return (address) => pod.subnets.find((s) => cidrContains(s, address))?.cidr;
}

export interface KickstartInputs {
  rootCa: string;
  disk: string;
  nodeToken: (mac: string) => string;
  installToken: (mac: string) => string;
  stage2: (mac: string) => Stage2Set | undefined;
}

export class KickstartSource {
  private readonly template: string;

  constructor(
    private readonly pod: PodConfig,
    readonly file: string,
    private readonly inputs: KickstartInputs,
  ) {
    this.template = readFileSync(file, 'utf8');
    const unknown = unknownPlaceholders(this.template);
    if (unknown.length) throw new Error(`${file}: unknown placeholders ${unknown.map((u) => `{{${u}}}`).join(', ')}`);
    // Rendered empty, `url --url=` would leave Anaconda asking for a source on the console of every server.
    if (/\{\{\s*repoUrl\b/.test(this.template) && !pod.install.repoUrl) throw new Error(`${file} installs from {{repoUrl}}: set spec.install.repoUrl in the pod file`);
  }

  render(mac: string): string {
    const node = this.pod.nodes.find((n) => n.mac === mac);
    const stage2 = this.inputs.stage2(mac);
    const server = this.pod.boot.nextServer;
    const values: KickstartValues = {
      hostname: node?.hostname ?? `node-${mac.replace(/:/g, '')}`,
      mac,
      pod: this.pod.name,
      server,
      httpsPort: String(this.pod.listen.httpsPort),
      baseUrl: `https://${server}:${this.pod.listen.httpsPort}`,
      token: this.inputs.installToken(mac),
      nodeToken: this.inputs.nodeToken(mac),
      imageName: stage2?.name ?? '',
      imageVersion: stage2?.version ?? '',
      imageSha256: stage2?.sha256 ?? '',
      disk: this.inputs.disk,
      rootCa: this.inputs.rootCa,
      rootPasswordHash: this.pod.install.rootPasswordHash ?? '',
      repoUrl: this.pod.install.repoUrl ?? '',
      heartbeatSeconds: String(this.pod.heartbeatSeconds),
    };
    return renderKickstart(this.template, values);
  }
}
