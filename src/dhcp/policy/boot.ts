// Which boot file (if any) a client gets. Pure: the request, the pod's boot
// settings, the node entry and its install state go in; a decision comes out.
import { BOOT_FILE_PLACEHOLDERS, type BootFiles, type NodeConfig, type PodConfig } from '../../config/types.js';
import { INSTALL_IN_PROGRESS, INSTALLED_STATES } from '../../install/state.js';
import { Arch } from '../codec/constants.js';
import type { ClientRequest } from '../request.js';

export type InstallState = string;

export type BootDecision =
  | {
      kind: 'boot';
      /** file name (TFTP) or URL (HTTP boot, iPXE script) */
      file: string;
      /** which entry of the pod's boot files was chosen */
      via: keyof BootFiles;
      /** option 60 to echo: PXE ROMs ignore offers without PXEClient, HTTP boot needs HTTPClient */
      vendorClass?: 'PXEClient' | 'HTTPClient';
    }
  | { kind: 'none'; reason: 'not-network-boot' | 'installed' | 'degraded' | 'unknown-arch'; detail?: string };

export interface BootContext {
  pod: PodConfig;
  node?: NodeConfig;
  installState?: InstallState;
  /** the pod takes no new installs (operator's degrade): only installs already under way get a boot file */
  degraded?: boolean;
}

function pick(ctx: BootContext, key: keyof BootFiles): string {
  return ctx.node?.boot?.[key] ?? ctx.pod.boot.files[key];
}

/** Substitutes {server}, {httpPort}, {httpsPort}, {mac} (dash form, as pxelinux names files) and {pod}. */
const PLACEHOLDER = new RegExp(`\\{(${BOOT_FILE_PLACEHOLDERS.join('|')})\\}`, 'g');

export function renderBootTemplate(template: string, pod: PodConfig, mac: string): string {
  return template.replace(PLACEHOLDER, (_, key: string) => {
    switch (key) {
      case 'server':
        return pod.boot.nextServer;
      case 'httpPort':
        return String(pod.listen.httpPort);
      case 'httpsPort':
        return String(pod.listen.httpsPort);
      case 'mac':
        return mac.replace(/:/g, '-');
      default:
        return pod.name;
    }
  });
}

const HTTP_BOOT_ARCHES: ReadonlySet<number> = new Set([Arch.EFI_X86_HTTP, Arch.EFI_X64_HTTP, Arch.EFI_ARM32_HTTP, Arch.EFI_ARM64_HTTP]);
const UEFI_X86_ARCHES: ReadonlySet<number> = new Set([Arch.EFI_IA32, Arch.EFI_BC, Arch.EFI_X64]);

export function decideBoot(req: ClientRequest, ctx: BootContext): BootDecision {
  const arch = req.arch?.[0];
  const networkBoot = req.isPxe || req.isHttpBoot || req.isIpxe || arch !== undefined;
  if (!networkBoot) return { kind: 'none', reason: 'not-network-boot' };
  // Once installed, a server boots from its disk until an operator asks for a reinstall.
  if (ctx.installState !== undefined && INSTALLED_STATES.has(ctx.installState)) {
    return { kind: 'none', reason: 'installed', detail: ctx.installState };
  }
  if (ctx.degraded && !INSTALL_IN_PROGRESS.has(ctx.installState ?? '')) return { kind: 'none', reason: 'degraded' };
  const render = (key: keyof BootFiles) => renderBootTemplate(pick(ctx, key), ctx.pod, req.mac);

  // iPXE already runs (QEMU's ROM or our chainloaded undionly/snponly): hand it a script.
  if (req.isIpxe) return { kind: 'boot', file: render('ipxeScript'), via: 'ipxeScript', vendorClass: req.isPxe ? 'PXEClient' : undefined };
  if (arch !== undefined && HTTP_BOOT_ARCHES.has(arch)) {
    return { kind: 'boot', file: render('httpBoot'), via: 'httpBoot', vendorClass: 'HTTPClient' };
  }
  if (req.isHttpBoot) return { kind: 'boot', file: render('httpBoot'), via: 'httpBoot', vendorClass: 'HTTPClient' };
  // PXE ROMs that predate RFC 4578 send no option 93; they are BIOS.
  if (arch === undefined || arch === Arch.BIOS) return { kind: 'boot', file: render('bios'), via: 'bios', vendorClass: 'PXEClient' };
  if (UEFI_X86_ARCHES.has(arch)) return { kind: 'boot', file: render('uefi'), via: 'uefi', vendorClass: 'PXEClient' };
  if (arch === Arch.EFI_ARM64) return { kind: 'boot', file: render('arm64'), via: 'arm64', vendorClass: 'PXEClient' };
  return { kind: 'none', reason: 'unknown-arch', detail: `option 93 = ${arch}` };
}
