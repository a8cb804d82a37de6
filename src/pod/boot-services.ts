// What a pod's HTTPS boot server serves, as seen from the pod's config and
// state: which clients are its own, its stage2 copy, and kickstarts rendered
// per server.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { renderKickstart, unknownPlaceholders, type KickstartValues } from '../http-boot/kickstart.js';
import { loadStage2, type Stage2Set } from '../http-boot/stage2-files.js';
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

/** The pod's assigned stage2 under <state>/images/<name>@<version>, loaded once it is there. */
export class Stage2Slot {
  private loaded?: Stage2Set;
  private lastError?: string;

  constructor(
    private readonly pod: PodConfig,
    private readonly imagesDir: string,
    private readonly log: Logger,
  ) {}

  get(): Stage2Set | undefined {
    if (this.loaded || !this.pod.stage2) return this.loaded;
    const dir = join(this.imagesDir, `${this.pod.stage2.image}@${this.pod.stage2.version}`);
    if (!existsSync(join(dir, 'manifest.json'))) return undefined;
    try {
      this.loaded = loadStage2(dir);
      this.log.info({ image: this.loaded.name, version: this.loaded.version, sha256: this.loaded.sha256 }, 'stage2 ready to serve');
    } catch (err) {
      const msg = (err as Error).message;
      // Once per distinct problem: every agent of the pod would otherwise log it again.
      if (msg !== this.lastError) this.log.error({ dir, err: msg }, 'stage2 copy unusable; servers get 404');
      this.lastError = msg;
    }
    return this.loaded;
  }
}

export interface KickstartInputs {
  rootCa: string;
  disk: string;
  nodeToken: (mac: string) => string;
  installToken: (mac: string) => string;
  stage2: () => Stage2Set | undefined;
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
    const stage2 = this.inputs.stage2();
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
    };
    return renderKickstart(this.template, values);
  }
}
