// The validated, normalised form of a pod file. Everything downstream (DHCP,
// TFTP, HTTPS, supervisor) reads only this shape, never raw YAML.

export type UnknownNodePolicy = 'provision' | 'ignore';

/** Boot file names or URLs by client kind. URLs may use {server}, {httpPort}, {mac}, {pod}. */
export interface BootFiles {
  /** option 93 = 0 (legacy BIOS PXE) */
  bios: string;
  /** option 93 = 6, 7, 9 (UEFI IA32 / x64 / x64 alt) */
  uefi: string;
  /** option 93 = 11 (UEFI arm64) */
  arm64: string;
  /** user class "iPXE": the client already runs iPXE, hand it a script URL */
  ipxeScript: string;
  /** option 93 = 16 (UEFI HTTP boot x64), 19 (arm64): an http:// URL */
  httpBoot: string;
}

export interface PoolRange {
  start: number;
  end: number;
}

export interface SubnetConfig {
  cidr: string;
  network: number;
  prefix: number;
  mask: number;
  gateway?: number;
  pool?: PoolRange;
  dns: number[];
  domain?: string;
  leaseTimeSec: number;
}

export interface NodeConfig {
  /** canonical lower-case colon form */
  mac: string;
  hostname?: string;
  address?: number;
  /** SMBIOS UUID (option 97), lower case with dashes */
  uuid?: string;
  boot?: Partial<BootFiles>;
  /** the server's management interface in the installed OS (F8), over the pod-wide managementNetwork */
  management?: NodeManagement;
  /** SSH keys for this server only, added to every user's (spec.users) */
  sshAuthorizedKeys?: string[];
  /** free labels (`role: web`) that rollouts and tasks select servers by */
  labels?: Record<string, string>;
  /** pinned: the server installs this image, whatever the pod's release or a rollout says */
  stage2?: { image: string; version: string };
  /** the server's BMC: `podboot nodes vmedia-boot` boots the stage1 ISO through it (Redfish virtual media) */
  bmc?: BmcConfig;
}

/** A BMC reached over Redfish; the password stays in its file and is read only when used. */
export interface BmcConfig {
  /** base URL, `https://10.0.0.5` (or http:// for a BMC that has no TLS) */
  address: string;
  username: string;
  /** absolute path of a file holding the password (never in the pod file) */
  passwordFile: string;
  /** PEM of the CA that issued the BMC's certificate; absent: the system's CAs */
  caFile?: string;
  /** the BMC fetches the ISO over plain HTTP (it cannot be given the pod's CA); see docs/vmedia.md */
  plainHttpMedia: boolean;
}

/** Which NIC of the installed OS carries the management network: by MAC or by kernel name. */
export type InterfaceSelector = { mac: string } | { name: string };

/**
 * The management network as the installed OS sees it (F8), apart from the
 * provisioning network the pod boots servers on. Pod-wide defaults in
 * spec.managementNetwork; per server in nodes[].management.
 */
export interface ManagementNetworkConfig {
  cidr: string;
  network: number;
  prefix: number;
  gateway?: number;
  dns: number[];
  /** 802.1Q tag on the management interface; absent: untagged */
  vlan?: number;
  /** addresses for servers with none of their own, handed out by the pod and kept in its database */
  pool?: PoolRange;
  /** the default interface when a server names none */
  interface?: InterfaceSelector;
}

export interface NodeManagement {
  interface?: InterfaceSelector;
  address?: number;
  gateway?: number;
  dns?: number[];
  vlan?: number;
}

/** A login on the installed OS (cloud-init users), from spec.users. */
export interface UserConfig {
  name: string;
  sshAuthorizedKeys: string[];
  /** passwordless sudo */
  sudo: boolean;
}

export interface InstallConfig {
  /** a template in the package's kickstart/ directory, or an absolute path */
  kickstart: string;
  disk: string;
  /** crypt(3) hash for kickstarts that set a root password; only ever sent to the token's owner */
  rootPasswordHash?: string;
  /** the package repository a RHEL-family kickstart installs from (kickstart/rhel9.ks); the pod serves none */
  repoUrl?: string;
}

export const DEFAULT_HEARTBEAT_SECONDS = 30;

export const DEFAULT_INSTALL: InstallConfig = { kickstart: 'lab-image.sh', disk: '/dev/vda' };

export interface ListenConfig {
  address: string;
  dhcpPort: number;
  tftpPort: number;
  httpPort: number;
  httpsPort: number;
}

import type { IsolationConfig } from './isolation.js';
import type { SharingConfig } from '../share/service.js';

export interface PodConfig {
  name: string;
  /** file the pod came from (for messages); undefined for embedded configs */
  file?: string;
  listen: ListenConfig;
  /** accepted giaddr values (uint32) */
  relays: number[];
  subnets: SubnetConfig[];
  nodes: NodeConfig[];
  unknownNodes: UnknownNodePolicy;
  boot: {
    /** siaddr / option 66; defaults to listen.address */
    nextServer: string;
    files: BootFiles;
    /** how iPXE loads the stage1 kernel and initrd: over plain HTTP (fast over a WAN; default) or TFTP (no HTTP listener at all) */
    stage1: 'http' | 'tftp';
  };
  /** how the stage1 agent installs: the kickstart it is given and the disk it writes */
  install: InstallConfig;
  /** pod-wide management network of the installed servers (F8); absent: cloud-init's own default (DHCP on the first NIC) */
  managementNetwork?: ManagementNetworkConfig;
  /** logins the installed OS gets (cloud-init user-data) */
  users: UserConfig[];
  /** how often the installed OS's node agent reports in; a server silent for 3 intervals is `silent` */
  heartbeatSeconds: number;
  /** the signed stage2 image this pod's servers install (selective onboarding) */
  stage2?: { image: string; version: string };
  /** how the central node isolates the instance (spec.isolation); absent: its own process */
  isolation?: IsolationConfig;
  /** resource limits of the pod's instance (spec.limits, over DEFAULT_LIMITS); absent: the defaults */
  limits?: PodLimits;
  /** concurrent stage2 image downloads admitted (spec.imageStreams, over DEFAULT_IMAGE_STREAMS); absent: the defaults */
  imageStreams?: ImageStreamLimits;
  /** rack peers sharing image chunks (spec.imageSharing, src/share/); absent: DEFAULT_SHARING */
  imageSharing?: SharingConfig;
  tftp: {
    /** largest blksize this pod negotiates (RFC 2348 allows 65464) */
    maxBlockSize: number;
    maxWindowSize: number;
    maxTransfers: number;
  };
}

/** Boot-storm admission: image streams at once, for the whole pod and for each rack (pod subnet). */
export interface ImageStreamLimits {
  perPod: number;
  perRack: number;
}

/**
 * A 10G pod link carries ~1.1 GB/s: 64 streams still get ~17 MB/s each, about
 * what a server writes while it decompresses, and hold 64 MiB of read buffers.
 * A rack uplink is shared with that rack's production traffic: 16 streams can
 * fill a 10G one, and four such racks fill the pod (docs/pod-yaml.md).
 */
export const DEFAULT_IMAGE_STREAMS: ImageStreamLimits = { perPod: 64, perRack: 16 };

export interface PodLimits {
  /** memory the instance may use (RSS and page cache); past it the kernel kills it */
  memoryBytes: number;
  /** processes and threads */
  pids: number;
  /** CPU share relative to other pods (cgroup v2 cpu.weight: 1..10000, 100 = even) */
  cpuWeight: number;
}

/**
 * An idle pod uses about 60-90 MiB and one under a boot storm about twice
 * that; Node runs ~11 threads plus the worker and libuv pool.
 */
export const DEFAULT_LIMITS: PodLimits = { memoryBytes: 512 * 1024 * 1024, pids: 128, cpuWeight: 100 };

export const DEFAULT_BOOT_FILES: BootFiles = {
  bios: 'undionly.kpxe',
  uefi: 'snponly.efi',
  arm64: 'snponly-arm64.efi',
  ipxeScript: 'http://{server}:{httpPort}/ipxe/{mac}.ipxe',
  // the pod's HTTP listener serves its boot tree under /boot/ only (src/http-boot/server.ts)
  httpBoot: 'http://{server}:{httpPort}/boot/ipxe.efi',
};

/** The per-server iPXE script by TFTP name, for pods without a plain-HTTP listener. */
export const TFTP_IPXE_SCRIPT = 'ipxe/{mac}.ipxe';

/** Placeholders a boot file URL may use; the DHCP boot policy substitutes them. */
export const BOOT_FILE_PLACEHOLDERS = ['server', 'httpPort', 'httpsPort', 'mac', 'pod'] as const;

/** One problem in a pod file, located for an editor: `file:line:col: path: message`. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path}: ${p.message}`;
}
