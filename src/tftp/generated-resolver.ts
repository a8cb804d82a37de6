// Per-server boot configs answered from memory: pxelinux, GRUB and iPXE ask
// for names that carry the server's MAC (or UUID); the inventory says whether
// it gets stage1 or its local disk. tsize is the generated length.
import { renderGrub } from '../bootcfg/grub.js';
import { renderIpxe } from '../bootcfg/ipxe.js';
import { renderPxelinux } from '../bootcfg/pxelinux.js';
import type { BootConfigInput, BootNode, FirmwareArch, NodeDirectory, PodServer, Stage1Boot } from '../bootcfg/types.js';
import type { PodConfig } from '../config/types.js';
import { normalizeMac } from '../net/mac.js';
import { bufferSource } from './file-source.js';
import { accessViolation, notFound, type ClientInfo, type FileResolver, type ResolveResult } from './resolver.js';

type Render = (input: BootConfigInput) => string;

interface Route {
  pattern: RegExp;
  render: Render;
  /** firmware assumed when the inventory does not know it */
  arch: FirmwareArch;
  /** how the name identifies the node */
  key: 'mac' | 'uuid' | 'none';
}

const MAC_HYPHEN = '([0-9a-f]{2}(?:-[0-9a-f]{2}){5})';
const UUID = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})';

// pxelinux tries UUID, 01-<mac>, IP-hex names, then `default`: the MAC file is
// always answered (unknown servers get a local-boot config there), a UUID file
// only for known UUIDs so pxelinux falls through to the MAC.
const ROUTES: Route[] = [
  { pattern: new RegExp(`^pxelinux\\.cfg/01-${MAC_HYPHEN}$`, 'i'), render: renderPxelinux, arch: 'bios', key: 'mac' },
  { pattern: new RegExp(`^pxelinux\\.cfg/${UUID}$`, 'i'), render: renderPxelinux, arch: 'bios', key: 'uuid' },
  { pattern: /^pxelinux\.cfg\/default$/, render: renderPxelinux, arch: 'bios', key: 'none' },
  { pattern: new RegExp(`^grub/grub\\.cfg-01-${MAC_HYPHEN}$`, 'i'), render: renderGrub, arch: 'uefi', key: 'mac' },
  { pattern: /^grub\/grub\.cfg$/, render: renderGrub, arch: 'uefi', key: 'none' },
  { pattern: /^ipxe\/([0-9a-f:-]{12,17})\.ipxe$/i, render: renderIpxe, arch: 'bios', key: 'mac' },
];

export function podServer(pod: PodConfig): PodServer {
  const { listen } = pod;
  return { pod: pod.name, address: pod.boot.nextServer, tftpPort: listen.tftpPort, httpPort: listen.httpPort, httpsPort: listen.httpsPort };
}

export class GeneratedFilesResolver implements FileResolver {
  constructor(
    private readonly opts: {
      server: PodServer;
      stage1: Stage1Boot;
      directory: NodeDirectory;
      /**
       * a fresh install token for a server being provisioned (stage1 exchanges it
       * for its session); undefined when the pod may not provision that server
       */
      token?: (mac: string) => string | undefined;
      /**
       * may this client have the config of `mac` with its token in it? (the
       * requester must be the server itself: src/install/boot-config-access.ts).
       * Asked only for configs that would carry a token.
       */
      access?: (mac: string, client: ClientInfo, name: string) => boolean;
    },
  ) {}

  async resolve(name: string, client: ClientInfo = { address: '', port: 0 }): Promise<ResolveResult> {
    const rel = name.startsWith('/') ? name.slice(1) : name;
    for (const route of ROUTES) {
      const m = route.pattern.exec(rel);
      if (!m) continue;
      const node = this.node(route, m[1]);
      if (!node) return notFound();
      let token: string | undefined;
      if (node.installState === 'provision' && node.mac !== NO_MAC && this.opts.token) {
        // Checked before a token is minted: a stranger costs no token and no row.
        if (this.opts.access && !this.opts.access(node.mac, client, rel)) return accessViolation('not-the-server');
        token = this.opts.token(node.mac);
        // Not provisionable after all (policy, cap): a stage1 without a token could do nothing; boot locally.
        if (token === undefined) node.installState = 'unknown';
      }
      const text = route.render({ node, stage1: this.opts.stage1, server: this.opts.server, ...(token ? { token } : {}) });
      return { ok: true, source: bufferSource(Buffer.from(text, 'utf8')), mac: node.mac === NO_MAC ? undefined : node.mac };
    }
    return notFound();
  }

  private node(route: Route, id: string | undefined): BootNode | undefined {
    const { directory } = this.opts;
    if (route.key === 'uuid') {
      const found = directory.lookupByUuid?.(id!.toLowerCase());
      return found && { mac: found.mac, hostname: found.hostname, installState: found.installState, arch: found.arch ?? route.arch };
    }
    if (route.key === 'none') return { mac: NO_MAC, arch: route.arch, installState: 'unknown' };
    const mac = normalizeMac(id!);
    if (!mac) return undefined;
    const info = directory.lookupByMac(mac);
    return { mac, hostname: info?.hostname, installState: info?.installState ?? 'unknown', arch: info?.arch ?? route.arch };
  }
}

/** Shared configs (`default`, `grub.cfg`) are for no node in particular. */
const NO_MAC = '00:00:00:00:00:00';
