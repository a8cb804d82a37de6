import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/types.js';
import { smallPod } from './fixtures.js';

const pod = smallPod;

describe('spec.install and spec.boot.stage1', () => {
  it('defaults: lab kickstart on /dev/vda, stage1 over HTTP with the iPXE script by HTTP', () => {
    const p = loadPodText(pod(''), 'p.yaml').pod!;
    expect(p.install).toEqual({ kickstart: 'lab-image.sh', disk: '/dev/vda' });
    expect(p.boot.stage1).toBe('http');
    expect(p.boot.files.ipxeScript).toBe('http://{server}:{httpPort}/ipxe/{mac}.ipxe');
  });

  it('stage1 over TFTP: iPXE fetches its script by TFTP unless the pod names one', () => {
    expect(loadPodText(pod('  boot: { stage1: tftp }\n'), 'p.yaml').pod!.boot.files.ipxeScript).toBe('ipxe/{mac}.ipxe');
    const own = loadPodText(pod('  boot: { stage1: tftp, files: { ipxeScript: "boot.ipxe" } }\n'), 'p.yaml').pod!;
    expect(own.boot.files.ipxeScript).toBe('boot.ipxe');
  });

  it('takes a template name or an absolute path, a device and a crypt hash', () => {
    const p = loadPodText(pod('  install: { kickstart: rhel9.ks, disk: /dev/sda, rootPasswordHash: "$6$abcdefgh$0123456789abcdef", repoUrl: "https://mirror.example/os/" }\n'), 'p.yaml').pod!;
    expect(p.install).toEqual({ kickstart: 'rhel9.ks', disk: '/dev/sda', rootPasswordHash: '$6$abcdefgh$0123456789abcdef', repoUrl: 'https://mirror.example/os/' });
    expect(loadPodText(pod('  install: { kickstart: /etc/podboot/ks.sh }\n'), 'p.yaml').pod!.install.kickstart).toBe('/etc/podboot/ks.sh');
  });

  it('names each bad value with file:line:col, and never echoes a password', () => {
    const r = loadPodText(pod('  boot: { stage1: ftp }\n  install: { kickstart: ../../etc/shadow, disk: vda, rootPasswordHash: hunter2 }\n'), 'p.yaml');
    const lines = r.problems.map(formatProblem);
    expect(lines).toEqual([
      'p.yaml:8:19: spec.boot.stage1: expected http or tftp, found "ftp"',
      'p.yaml:9:25: spec.install.kickstart: "../../etc/shadow": give a template name from kickstart/ (e.g. lab-image.sh) or an absolute path',
      'p.yaml:9:49: spec.install.disk: "vda" is not a device path such as /dev/vda',
      'p.yaml:9:72: spec.install.rootPasswordHash: expected a crypt(3) hash such as $6$salt$... (openssl passwd -6), never a plain password',
    ]);
    expect(lines.join('\n')).not.toContain('hunter2');
  });
});
