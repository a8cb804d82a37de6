// The Debian server image as its consumers see it, without booting it:
// sfdisk reads its partition table, mtools its EFI system partition, debugfs
// its root file system, and the image's own cloud-init (run in a chroot of
// the cached root file system) checks a seed the pod renders. Then the layout
// step runs again from the same tarball and must give the same bytes.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_CMDLINE } from '../../../src/images/debian.js';
import { ESP_PARTUUID, ROOT_FIRST, ROOT_PARTUUID, SEED_FIRST, SEED_PARTITION, SEED_SECTORS } from '../../../src/images/debian-layout.js';
import { DEFAULT_IMAGE_CACHE } from '../../../src/images/image-cache.js';
import { renderSeed } from '../../../src/install/seed.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const execFileAsync = promisify(execFile);
const CACHE = join(process.cwd(), '.cache');
const IMAGE = join(CACHE, 'debian-12.img.zst');
const work = mkdtempSync(join(tmpdir(), 'debian-image-test-'));
const raw = join(work, 'disk.raw');
let report: { size: number; sha256: string; rawSize: number; rootfsKey: string; packageSet: string[]; kernelVersion: string };

/**
 * Asynchronous on purpose: a build runs for minutes, and a worker blocked
 * that long in a synchronous spawn misses vitest's RPC deadline (an unhandled
 * "Timeout calling onTaskUpdate" fails the run even when every test passed).
 */
async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    const e = err as { code?: number; stderr?: string; stdout?: string };
    throw new Error(`${cmd} ${args.join(' ')} exited ${e.code}: ${e.stderr}${e.stdout}`);
  }
}
const podboot = (...args: string[]) => run(process.execPath, [PODBOOT, ...args]);
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(async () => {
  requireBuild();
  await podboot('images', 'build-debian', '--out', IMAGE);
  report = JSON.parse(readFileSync(join(CACHE, 'debian-12.json'), 'utf8'));
  await run('zstd', ['-q', '-d', '-f', IMAGE, '-o', raw]);
}, 900_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the Debian image', () => {
  it('is a GPT disk: ESP (BIOS-bootable attribute), the seed partition, the root last', async () => {
    expect(report.sha256).toBe(sha256(IMAGE));
    expect(report.packageSet.some((p) => p.startsWith('cloud-init='))).toBe(true);
    const table = JSON.parse(await run('sfdisk', ['--json', raw])).partitiontable as {
      label: string;
      partitions: { start: number; size: number; type: string; uuid: string; name: string; attrs?: string }[];
    };
    expect(table.label).toBe('gpt');
    const [esp, seed, root] = table.partitions;
    expect(esp).toMatchObject({ type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', uuid: ESP_PARTUUID });
    expect(esp!.attrs).toMatch(/LegacyBIOSBootable/);
    expect(seed).toMatchObject({ start: SEED_FIRST, size: SEED_SECTORS, name: 'cidata' });
    expect(table.partitions.indexOf(seed!) + 1).toBe(SEED_PARTITION);
    expect(root).toMatchObject({ start: ROOT_FIRST, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', uuid: ROOT_PARTUUID });
    // growpart can only grow the last partition
    expect(root!.start + root!.size).toBeGreaterThan(seed!.start + seed!.size);
    // syslinux's GPT loader in the protective MBR for BIOS
    expect(
      readFileSync(raw)
        .subarray(0, 440)
        .some((b) => b !== 0),
    ).toBe(true);
  });

  it('boots the root by its partition UUID from the ESP, under UEFI (systemd-boot) and BIOS (syslinux)', () => {
    const at = `${raw}@@${2048 * 512}`;
    const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    const mtype = (f: string) => spawnSync('mtype', ['-i', at, f], { encoding: 'utf8', env }).stdout;
    const files = spawnSync('mdir', ['-a', '-/', '-b', '-i', at, '::'], { encoding: 'utf8', env }).stdout;
    for (const f of ['::/vmlinuz', '::/initrd.img', '::/EFI/BOOT/BOOTX64.EFI', '::/ldlinux.sys', '::/syslinux.cfg', '::/loader/entries/debian.conf'])
      expect(files.toLowerCase()).toContain(f.toLowerCase());
    expect(DEBIAN_CMDLINE).toContain(`root=PARTUUID=${ROOT_PARTUUID.toLowerCase()}`);
    expect(mtype('::/syslinux.cfg')).toContain(DEBIAN_CMDLINE);
    expect(mtype('::/loader/entries/debian.conf')).toContain(`options ${DEBIAN_CMDLINE}`);
  });

  it('carries no identity of its own, and the node agent is enabled', async () => {
    const rootfs = join(work, 'root.ext4');
    await run('dd', [`if=${raw}`, `of=${rootfs}`, 'bs=1M', `skip=${(ROOT_FIRST * 512) / (1 << 20)}`, 'status=none']);
    const debugfs = (cmd: string) => run('debugfs', ['-R', cmd, rootfs]);
    expect(await debugfs('ls -l /etc/ssh')).not.toMatch(/ssh_host_/);
    expect(await debugfs('stat /etc/machine-id')).toMatch(/Size: 0\b/);
    expect(await debugfs('cat /etc/fstab')).toContain(`PARTUUID=${ROOT_PARTUUID.toLowerCase()} / ext4`);
    expect(await debugfs('stat /etc/systemd/system/multi-user.target.wants/podboot-node-agent.service')).toContain('Type: symlink');
    const cfg = await debugfs('cat /etc/cloud/cloud.cfg.d/90-podboot.cfg');
    expect(cfg).toMatch(/datasource_list: \[NoCloud, None\]/);
    expect(cfg).toMatch(/ssh_genkeytypes: \[ed25519, ecdsa\]/);
    // masked: a link to /dev/null (debugfs prints a short link's target as "Fast link dest")
    expect(await debugfs('stat /etc/systemd/system/e2scrub_reap.service')).toMatch(/Fast link dest: "\/dev\/null"/);
    // Every time in the file system is the build epoch, not the day it was built.
    const stat = await debugfs('stat /etc/passwd');
    for (const t of ['ctime', 'atime', 'mtime']) expect(stat).toMatch(new RegExp(`${t}: 0x6483bd00`));
  });

  it("a seed the pod renders passes the image's own cloud-init, and its network config renders for netplan", async () => {
    const root = join(work, 'rootfs');
    mkdirSync(root);
    const tarball = readdirSync(DEFAULT_IMAGE_CACHE).find((f) => f === `rootfs-${report.rootfsKey}.tar`);
    expect(tarball).toBeDefined();
    await run('tar', ['--numeric-owner', '-xpf', join(DEFAULT_IMAGE_CACHE, tarball!), '-C', root]);
    const pod = testPod({
      name: 'rack-img',
      subnets: [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.199'], { domain: 'rack.example' })],
      managementNetwork: { cidr: '10.30.0.0/24', network: ip('10.30.0.0'), prefix: 24, gateway: ip('10.30.0.1'), dns: [ip('10.30.0.1')], vlan: 30 },
      users: [{ name: 'ops', sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test'], sudo: true }],
      nodes: [{ mac: '52:54:00:20:00:40', hostname: 'web-1', management: { interface: { mac: '52:54:00:30:00:40' }, address: ip('10.30.0.40') } }],
    });
    const seed = renderSeed({ pod, mac: '52:54:00:20:00:40', attempt: 1, nodeToken: 'node.tok-en_1', rootCa: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' });
    writeFileSync(join(root, 'tmp/user-data'), seed['user-data']);
    writeFileSync(join(root, 'tmp/network-config'), seed['network-config']!);
    expect(await run('chroot', [root, 'cloud-init', 'schema', '--config-file', '/tmp/user-data'])).toMatch(/Valid cloud-config/);
    await run('chroot', [
      root,
      'cloud-init',
      'devel',
      'net-convert',
      '--network-data',
      '/tmp/network-config',
      '--kind',
      'yaml',
      '--output-kind',
      'netplan',
      '--directory',
      '/tmp/out',
      '--distro',
      'debian',
    ]);
    const netplan = readFileSync(join(root, 'tmp/out/etc/netplan/50-cloud-init.yaml'), 'utf8');
    expect(netplan).toMatch(/macaddress: ['"]?52:54:00:30:00:40/);
    expect(netplan).toMatch(/id: 30/);
    expect(netplan).toContain('10.30.0.40/24');
    // netplan itself turns it into systemd-networkd units
    mkdirSync(join(root, 'etc/netplan'), { recursive: true });
    writeFileSync(join(root, 'etc/netplan/50-cloud-init.yaml'), netplan, { mode: 0o600 });
    await run('chroot', [root, 'netplan', 'generate']);
    const units = readdirSync(join(root, 'run/systemd/network'));
    expect(units.some((u) => u.endsWith('.netdev'))).toBe(true);
    expect(
      units
        .filter((u) => u.endsWith('.network'))
        .map((u) => readFileSync(join(root, 'run/systemd/network', u), 'utf8'))
        .join('\n'),
    ).toContain('Address=10.30.0.40/24');
  }, 300_000);

  it('laid out again from the same packages, it is the same bytes', async () => {
    const again = join(work, 'again.img.zst');
    await podboot('images', 'build-debian', '--out', again, '--force-disk');
    expect(sha256(again)).toBe(report.sha256);
  }, 600_000);
});
