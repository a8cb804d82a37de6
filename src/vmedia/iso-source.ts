// What the pod streams at GET /vmedia/<mac>.iso: the generic stage1 ISO with
// the server's config block filled in. Decides who gets it (the install token
// in the URL names this server, the server may still be installed, plain HTTP
// only where its BMC entry asks for it) and renders the block; the bytes
// themselves are streamed and patched by the HTTP server. No per-server file
// is written.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { NodeConfig, PodConfig } from '../config/types.js';
import { cidrContains, formatIPv4 } from '../net/ipv4.js';
import type { TokenAuthority } from '../install/tokens.js';
import { INSTALLED_STATES } from '../install/state.js';
import { renderContent, type BlockValues } from './block.js';
import { readLayout, VMEDIA_ISO, type IsoLayout } from './iso-build.js';

/** The static network a server takes from its block: its fixed address and the pod subnet holding it. */
export interface StaticNetwork {
  address: string;
  prefix: number;
  gateway?: string;
  dns: string[];
}

export function staticNetwork(pod: PodConfig, node: NodeConfig | undefined): StaticNetwork | undefined {
  if (node?.address === undefined) return undefined;
  const subnet = pod.subnets.find((s) => cidrContains(s, node.address!));
  if (!subnet) return undefined;
  return {
    address: formatIPv4(node.address),
    prefix: subnet.prefix,
    ...(subnet.gateway !== undefined ? { gateway: formatIPv4(subnet.gateway) } : {}),
    dns: subnet.dns.map(formatIPv4),
  };
}

/** A server booted from virtual media holds no lease: the address its block gives it is its own. */
export function vmediaAddress(pod: PodConfig, mac: string): string | undefined {
  const node = pod.nodes.find((n) => n.mac === mac);
  return node?.bmc ? staticNetwork(pod, node)?.address : undefined;
}

export type IsoAnswer = { ok: true; mac: string; path: string; layout: IsoLayout; content: Buffer; etag: string } | { ok: false; status: 401 | 403 | 404 | 503; reason: string; mac?: string };

export interface IsoSourceOptions {
  pod: PodConfig;
  /** a stage1 build directory holding vmedia/stage1.iso (podboot images build-vmedia-iso) */
  stage1Dir?: string;
  tokens: TokenAuthority;
  /** the server's install state, from the store */
  state: (mac: string) => string | undefined;
  rootCa: Buffer;
}

export class VmediaIsoSource {
  constructor(private readonly o: IsoSourceOptions) {}

  /** `mac12` from the path (12 hex digits), the token from the query string. */
  answer(mac12: string, token: string | undefined, secure: boolean, nowSec: number): IsoAnswer {
    const mac = mac12.match(/../g)!.join(':');
    if (token === undefined) return { ok: false, status: 401, reason: 'no token: the ISO URL carries one (podboot nodes vmedia-boot)', mac };
    const auth = this.o.tokens.authorize(token, nowSec);
    if (!auth.ok) return { ok: false, status: auth.status, reason: auth.reason, mac };
    if (auth.claims.scope !== 'install') return { ok: false, status: 403, reason: `a ${auth.claims.scope} token cannot fetch an ISO`, mac };
    // The block carries this very token: one server's token never goes into another's ISO.
    if (auth.claims.mac !== mac) return { ok: false, status: 403, reason: `the token is ${auth.claims.mac}'s, not ${mac}'s`, mac };
    const state = this.o.state(mac);
    if (state !== undefined && INSTALLED_STATES.has(state)) return { ok: false, status: 403, reason: `server is ${state}; an operator must ask for a reinstall`, mac };
    const node = this.o.pod.nodes.find((n) => n.mac === mac);
    if (!node?.bmc) return { ok: false, status: 404, reason: `${mac} has no bmc entry in the pod file`, mac };
    if (!secure && !node.bmc.plainHttpMedia) return { ok: false, status: 403, reason: `plain HTTP not allowed: ${mac}'s bmc entry does not set plainHttpMedia`, mac };
    const net = staticNetwork(this.o.pod, node);
    if (!net) return { ok: false, status: 404, reason: `${mac} has no fixed address in one of the pod's subnets`, mac };
    const layout = this.o.stage1Dir ? readLayout(this.o.stage1Dir) : undefined;
    if (!layout || !this.o.stage1Dir) return { ok: false, status: 503, reason: 'no stage1 ISO built (podboot images build-vmedia-iso)', mac };
    const values: BlockValues = {
      server: this.o.pod.boot.nextServer,
      https: this.o.pod.listen.httpsPort,
      ...(this.o.pod.boot.stage1 === 'http' ? { http: this.o.pod.listen.httpPort } : {}),
      pod: this.o.pod.name,
      mac,
      ...(node.hostname ? { hostname: node.hostname } : {}),
      token,
      ...net,
    };
    const content = renderContent(values, this.o.rootCa);
    // Strong and stable for one URL (same token, same ISO): a BMC resuming with If-Range gets the same bytes or all of them.
    const etag = `"${layout.sha256.slice(0, 16)}-${createHash('sha256').update(content).digest('hex').slice(0, 16)}"`;
    return { ok: true, mac, path: join(this.o.stage1Dir, VMEDIA_ISO), layout, content, etag };
  }
}
