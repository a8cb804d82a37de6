// UEFI HTTP boot (option 93 = 16): the URL the pod's DHCP policy hands an
// HTTP boot client must answer with iPXE's EFI binary. The default once
// pointed at /ipxe.efi while the pod serves its boot tree under /boot/ only
// (a 404 no unit test saw), so this test takes the URL from a running pod's
// own OFFER, fetches it as a rack client would, and then lets OVMF's own HTTP
// boot client (HttpBootDxe, with its PXE clients switched off over fw_cfg)
// follow it on a QEMU VM without an option ROM, through to stage1.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { POD_ADDRESS, QemuRig } from '../../helpers/qemu-rig.js';

const VM = '52:54:00:20:00:16';
const CACHE = join(process.cwd(), '.cache');
const HTTP_CLIENT_CLASS = 'HTTPClient:Arch:00016:UNDI:003001';

const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-h }
spec:
  listen: { address: ${POD_ADDRESS} }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199, leaseTime: 10m }
  nodes:
    - { mac: "${VM}", hostname: vm-http, address: 10.20.0.16 }
  unknownNodes: ignore
`;

const rig = new QemuRig({ prefix: 'vm-hb' });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function podboot(...args: string[]): string {
  const r = spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: rig.dir, maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`podboot ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  requireBuild();
  podboot('images', 'build-stage1', '--out', join(CACHE, 'stage1'), '--cache', join(CACHE, 'debs'));
  await rig.setup();
  const ca = join(rig.dir, 'ca');
  podboot('ca', 'init', '--out', ca, '--org', 'HTTP Boot Test');
  await rig.startPod(POD, join(rig.dir, 'state'), ['--ca', ca, '--stage1', join(CACHE, 'stage1')], [/dhcp listening/, /http boot listening/]);
}, 300_000);

afterAll(async () => {
  await rig.cleanup();
});

describe('UEFI HTTP boot', () => {
  let url: string;

  it('the URL offered to an arch-16 HTTPClient answers 200 with iPXE’s EFI binary', () => {
    // As the rack's relay would forward it (giaddr 10.20.0.1, answered on a port of our own).
    const out = rig.lab.exec('tor', process.execPath, [
      PODBOOT,
      'dhcp',
      'probe',
      '--relay',
      '10.20.0.1:10068',
      '--server',
      POD_ADDRESS,
      '--mac',
      VM,
      '--arch',
      '16',
      '--vendor-class',
      HTTP_CLIENT_CLASS,
      '--discover-only',
      '--timeout',
      '5000',
    ]);
    const offer = JSON.parse(out.trim().split('\n')[0]!) as { type: string; bootfile: string; vendorClass: string };
    expect(offer.type).toBe('OFFER');
    expect(offer.vendorClass).toBe('HTTPClient');
    url = offer.bootfile;
    expect(url).toMatch(/^http:\/\//);
    const file = join(rig.dir, 'fetched.efi');
    // From the rack bridge's address: the pod's HTTP listener answers only its own subnets.
    const status = rig.lab.exec('tor', 'curl', ['-s', '--interface', '10.20.0.1', '-o', file, '-w', '%{http_code}', url]);
    expect(status).toBe('200');
    expect(sha256(readFileSync(file))).toBe(sha256(readFileSync(join(CACHE, 'stage1', 'ipxe.efi'))));
  });

  it('OVMF’s own HTTP boot client fetches it and iPXE goes on to stage1', async () => {
    const vm = rig.startVm({
      name: 'vm-http',
      mac: VM,
      firmware: 'uefi',
      noReboot: true,
      // Only the HTTP boot entries are left (OVMF reads these knobs from fw_cfg): no PXE attempt and its timeouts first.
      extraArgs: ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n'],
    });
    try {
      await vm.waitFor(/podboot-stage1: running mac=52:54:00:20:00:16 ip=10\.20\.0\.16/, 170_000);
      const podLog = readFileSync(join(rig.dir, 'pod.log'), 'utf8');
      const esc = (s: string) => s.replace(/[.]/g, '\\.');
      // The firmware was handed the very URL probed above, and fetched it from the VM's own address.
      expect(podLog).toMatch(new RegExp(`"mac":"${VM}".*"boot":"${esc(url)}","msg":"DHCPACK"`));
      expect(podLog).toMatch(new RegExp(`"method":"GET","path":"${esc(new URL(url).pathname)}","status":200,"remote":"10\\.20\\.0\\.16"`));
    } finally {
      await vm.stop();
    }
  }, 200_000);
});
