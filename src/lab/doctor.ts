// `podboot lab doctor`: what a machine needs for `podboot lab`, checked, with
// the exact apt-get line for what is missing. Pure decisions (which package
// provides what, the install line) apart from the probing.
import { existsSync } from 'node:fs';
import { PROGRAM_PACKAGES } from '../host/programs.js';
import { OVMF_CODE, OVMF_VARS } from './firmware.js';
import { run, which } from './sys.js';

/** what `podboot lab` runs on the host; their packages come from the one table in src/host/programs.ts */
export const LAB_PROGRAMS = ['qemu-system-x86_64', 'dhcrelay', 'dnsmasq', 'ip', 'tc', 'ethtool', 'python3', 'mkfs.vfat', 'mcopy', 'syslinux', 'sfdisk', 'curl', 'openssl', 'truncate'] as const;
/** what `lab up --os debian` adds: the image build (podboot images build-debian) and the operator's key and login */
export const DEBIAN_PROGRAMS = ['mmdebstrap', 'mkfs.ext4', 'debugfs', 'zstd', 'ssh-keygen', 'ssh'] as const;
export const IPXE_ROM_DIR = '/usr/lib/ipxe/qemu';
export const IPXE_ROMS = ['pxe-virtio.rom', 'efi-virtio.rom'];

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
  /** Debian package that fixes it */
  pkg?: string;
  /** informative only: never makes doctor fail */
  info?: boolean;
}

export function installLine(checks: Check[]): string | undefined {
  const pkgs = [...new Set(checks.filter((c) => !c.ok && !c.info && c.pkg).map((c) => c.pkg!))].sort();
  return pkgs.length ? `apt-get install -y --no-install-recommends ${pkgs.join(' ')}` : undefined;
}

export function formatChecks(checks: Check[]): string[] {
  return checks.map((c) => `${c.ok ? 'ok  ' : c.info ? 'note' : 'MISSING'.padEnd(4)}  ${c.what}: ${c.detail}`);
}

export function runChecks(): Check[] {
  const checks: Check[] = [];
  const root = process.getuid?.() === 0;
  checks.push({ what: 'root', ok: root, detail: root ? 'running as root' : 'podboot lab creates network namespaces and taps: run it as root' });
  const tun = existsSync('/dev/net/tun');
  checks.push({ what: '/dev/net/tun', ok: tun, detail: tun ? 'present' : 'missing: QEMU cannot open tap devices (container without --device /dev/net/tun?)' });
  for (const bin of LAB_PROGRAMS) {
    const pkg = PROGRAM_PACKAGES[bin]!;
    const path = which(bin);
    checks.push({ what: bin, ok: !!path, detail: path ?? `not found (Debian package ${pkg})`, pkg });
  }
  // only --os debian needs these: a note, never a failure of the default lab
  for (const bin of DEBIAN_PROGRAMS) {
    const pkg = PROGRAM_PACKAGES[bin]!;
    const path = which(bin);
    checks.push({ what: bin, ok: !!path, info: !path, detail: path ? `${path} (--os debian)` : `not found: needed by --os debian (Debian package ${pkg})`, pkg });
  }
  for (const rom of IPXE_ROMS) {
    const p = `${IPXE_ROM_DIR}/${rom}`;
    const ok = existsSync(p);
    checks.push({ what: rom, ok, detail: ok ? p : `${p} missing: QEMU's NIC has no PXE ROM`, pkg: 'ipxe-qemu' });
  }
  for (const f of [OVMF_CODE, OVMF_VARS]) {
    const ok = existsSync(f);
    checks.push({ what: f.slice(f.lastIndexOf('/') + 1), ok, detail: ok ? `${f} (--firmware uefi)` : `${f} missing: no UEFI firmware for --firmware uefi`, pkg: 'ovmf' });
  }
  // stage1 and the lab stage2 are built from packages fetched with apt-get download (nothing installed)
  const uri = which('apt-get') ? run('apt-get', ['download', '--print-uris', 'busybox-static'], { allowFail: true, timeoutMs: 60_000 }) : '';
  const apt = /\.deb'/.test(uri);
  checks.push({
    what: 'apt-get download',
    ok: apt,
    detail: apt ? 'resolves packages (stage1 is built from Debian packages)' : 'cannot resolve busybox-static: run apt-get update (and check the sources list)',
  });
  const kvm = existsSync('/dev/kvm');
  checks.push({ what: 'kvm', ok: kvm, info: true, detail: kvm ? '/dev/kvm present: podboot lab boot --accel kvm may work (TCG is the default)' : 'no /dev/kvm: VMs run under TCG (slower, works)' });
  return checks;
}
