// Every program podboot, its tests, benches and image builders run, and the
// Debian package that provides it. One table, so a missing program is named
// with the package that brings it, `podboot lab doctor` checks from it, and a
// test holds it against `.ci/apt-packages.txt` (a program the CI list lacks
// would pass where someone installed it by hand and fail on a fresh machine).

import { execFileSync } from 'node:child_process';

/** program → Debian package */
export const PROGRAM_PACKAGES: Readonly<Record<string, string>> = {
  // network topologies and daemons the tests and the lab run
  ip: 'iproute2',
  tc: 'iproute2',
  bridge: 'iproute2',
  ss: 'iproute2',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  mount: 'mount',
  taskset: 'util-linux',
  sysctl: 'procps',
  ps: 'procps',
  ping: 'iputils-ping',
  ethtool: 'ethtool',
  tcpdump: 'tcpdump',
  dhcrelay: 'isc-dhcp-relay',
  dhclient: 'isc-dhcp-client',
  'kea-dhcp4': 'kea-dhcp4-server',
  perfdhcp: 'kea-admin',
  dnsmasq: 'dnsmasq-base',
  'in.tftpd': 'tftpd-hpa',
  tftp: 'tftp-hpa',
  atftp: 'atftp',
  nginx: 'nginx',
  curl: 'curl',
  openssl: 'openssl',
  prometheus: 'prometheus',
  // the alert rules' checks and their delivery test (deploy/prometheus, test/integration/alerts)
  promtool: 'prometheus',
  'prometheus-alertmanager': 'prometheus-alertmanager',
  python3: 'python3',
  'qemu-system-x86_64': 'qemu-system-x86',
  chromium: 'chromium',
  certutil: 'libnss3-tools',
  // image builders: stage1, the lab stage2 disk
  'apt-get': 'apt',
  'apt-cache': 'apt',
  dpkg: 'dpkg',
  'dpkg-deb': 'dpkg',
  'dpkg-query': 'dpkg',
  ldd: 'libc-bin',
  efibootmgr: 'efibootmgr',
  sfdisk: 'fdisk',
  fdisk: 'fdisk',
  'mkfs.vfat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  mdir: 'mtools',
  // the cloud-init seed image's test reads it back with mtools (src/install/seed-image.ts makes it with mkfs.vfat and mcopy)
  mtype: 'mtools',
  syslinux: 'syslinux',
  cpio: 'cpio',
  // the stage1 ISO for BMC virtual media (src/vmedia/iso-build.ts): GRUB's El Torito images come from grub-pc-bin and grub-efi-amd64-bin
  'grub-mkrescue': 'grub-common',
  xorriso: 'xorriso',
  // independent Redfish clients the mock BMC's test checks podboot's requests against
  redfishtool: 'redfishtool',
  // the Debian server image (podboot images build-debian) and stage1's stream install
  mmdebstrap: 'mmdebstrap',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  zstd: 'zstd',
  umount: 'mount',
  dd: 'coreutils',
  du: 'coreutils',
  touch: 'coreutils',
  chroot: 'coreutils',
  cp: 'coreutils',
  find: 'findutils',
  // the Debian image test logs in over the management network
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  // checks the node agent's unit (images/debian/podboot-node-agent.service)
  'systemd-analyze': 'systemd',
  // the shell and the basic tools every Debian has
  sh: 'dash',
  // Debian 12's /bin/sh by name: the node agent of the installed OS runs under it
  dash: 'dash',
  env: 'coreutils',
  mkdir: 'coreutils',
  mkfifo: 'coreutils',
  sync: 'coreutils',
  timeout: 'coreutils',
  truncate: 'coreutils',
  sha256sum: 'coreutils',
  readlink: 'coreutils',
  tar: 'tar',
  script: 'bsdutils',
};

/** "NAME: not found (Debian package P: apt-get install -y P)" for a program of the table, a plain line otherwise. */
export function programNotFound(program: string): string {
  const name = program.slice(program.lastIndexOf('/') + 1);
  const pkg = PROGRAM_PACKAGES[name];
  return pkg ? `${name}: not found (Debian package ${pkg}: apt-get install -y ${pkg})` : `${name}: not found`;
}

/** True when `err` is a spawn/exec failure because the program does not exist. */
export function isProgramMissing(err: unknown): boolean {
  const e = err as { code?: string; syscall?: string };
  return e?.code === 'ENOENT' && (e.syscall === undefined || e.syscall.startsWith('spawn'));
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/**
 * Runs a program to completion and returns its stdout. A failure is an Error
 * whose message is the command line and its stderr; a program that is not
 * installed is named with its Debian package instead of `spawn X ENOENT`.
 */
export function runProgram(cmd: string, args: string[], opts: RunOptions = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : undefined,
      input: opts.input,
      timeout: opts.timeoutMs,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    if (isProgramMissing(err)) throw new Error(programNotFound(cmd));
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().slice(-2000)}`);
  }
}
