// Inputs of the per-server boot configs. The inventory is reached through
// NodeDirectory only, so the DHCP/inventory code can plug its own lookup in.

export type InstallState = 'provision' | 'installed' | 'unknown';
export type FirmwareArch = 'bios' | 'uefi' | 'arm64';

export interface NodeInfo {
  hostname?: string;
  installState: InstallState;
  /** firmware seen at the last DHCP exchange, when known */
  arch?: FirmwareArch;
}

export interface NodeDirectory {
  /** `mac` in canonical lower-case colon form */
  lookupByMac(mac: string): NodeInfo | undefined;
  /** SMBIOS UUID, lower case with dashes; optional: pxelinux asks for it before the MAC file */
  lookupByUuid?(uuid: string): (NodeInfo & { mac: string }) | undefined;
}

/** The node a config is rendered for. */
export interface BootNode extends NodeInfo {
  mac: string;
  arch: FirmwareArch;
}

/** How stage1 is started. Values may use {server} {tftpPort} {httpPort} {httpsPort} {mac} {pod} {hostname}; the install token is appended by the renderers. */
export interface Stage1Boot {
  /** kernel path inside the boot tree */
  kernel: string;
  /** initrd path inside the boot tree */
  initrd: string;
  /** kernel command line */
  args: string;
  /** when set, iPXE fetches kernel and initrd from this base URL over HTTP instead of TFTP */
  httpBase?: string;
}

/** Where the pod answers, as the booting server must address it. */
export interface PodServer {
  pod: string;
  address: string;
  tftpPort: number;
  httpPort: number;
  httpsPort: number;
}

export interface BootConfigInput {
  node: BootNode;
  stage1: Stage1Boot;
  server: PodServer;
  /** the server's install token ({token}); only rendered for a server being provisioned */
  token?: string;
}

export const DEFAULT_STAGE1: Stage1Boot = {
  kernel: 'stage1/vmlinuz',
  initrd: 'stage1/initrd.img',
  args: 'console=ttyS0,115200 console=tty0 podboot.server={server} podboot.http={httpPort} podboot.https={httpsPort} podboot.pod={pod} podboot.mac={mac}',
};
