// kickstart/rhel9.ks rendered for one server the way the pod renders it
// (KickstartSource over a pod file), and checked for what can be checked
// without a RHEL installer or pykickstart (not packaged in Debian 12): every
// line is a kickstart command or inside a section, sections are closed, the
// shell in them parses, nothing is left unreplaced, the repository and the
// host name are in place, and every call home trusts only the pod's CA.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { KickstartSource } from '../../../src/pod/boot-services.js';
import { testPod } from '../../helpers/pods.js';

const MAC = '52:54:00:00:00:01';
const REPO = 'https://mirror.example/rocky/9/BaseOS/x86_64/os/';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHB\nAbCd==\n-----END CERTIFICATE-----\n';
const HASH = '$6$saltsalt$0123456789abcdefABCDEF./';

/** The commands RHEL 9's kickstart reference documents (pykickstart's RHEL9 handler). */
const COMMANDS = new Set(
  (
    'authselect autopart autostep bootloader btrfs cdrom clearpart cmdline driverdisk eula fcoe firewall firstboot graphical group halt harddrive ' +
    'ignoredisk iscsi iscsiname keyboard lang liveimg logging logvol mediacheck module network nfs nvdimm ostreecontainer ostreesetup part partition ' +
    'poweroff raid realm reboot repo reqpart rescue rhsm rootpw selinux services shutdown skipx snapshot sshkey sshpw syspurpose text timesource ' +
    'timezone updates url user vnc volgroup xconfig zerombr zfcp zipl'
  ).split(' '),
);
const SECTIONS = new Set(['%pre', '%post', '%packages', '%onerror', '%pre-install']);

function render(): string {
  const r = loadPodText(
    `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-r }
spec:
  listen: { address: 10.99.0.1, httpsPort: 8443 }
  relays: [10.20.0.1]
  subnets: [ { cidr: 10.20.0.0/24, pool: 10.20.0.100-10.20.0.199 } ]
  install: { kickstart: rhel9.ks, disk: /dev/sda, rootPasswordHash: "${HASH}", repoUrl: "${REPO}" }
  nodes: [ { mac: "${MAC}", hostname: r-n1 } ]
`,
    'rack-r.yaml',
  );
  expect(r.problems).toEqual([]);
  const pod = r.pod!;
  const ks = new KickstartSource(pod, 'kickstart/rhel9.ks', {
    rootCa: PEM,
    disk: pod.install.disk,
    nodeToken: () => 'pb1.node.525400000001.1.1790000000.nodehmac',
    installToken: () => 'pb1s.525400000001.1.1790000000.sessionhmac',
    stage2: () => undefined,
  });
  return ks.render(MAC);
}

interface Section {
  name: string;
  body: string[];
}

/** Top-level command lines and the sections, as Anaconda splits a kickstart. */
function split(text: string): { commands: string[]; sections: Section[]; problems: string[] } {
  const commands: string[] = [];
  const sections: Section[] = [];
  const problems: string[] = [];
  let open: Section | undefined;
  for (const [i, line] of text.split('\n').entries()) {
    const word = line.trim().split(/\s+/)[0] ?? '';
    if (open) {
      if (word === '%end') open = undefined;
      else if (word.startsWith('%')) problems.push(`line ${i + 1}: ${word} inside ${open.name}`);
      else open.body.push(line);
      continue;
    }
    if (word === '' || word.startsWith('#')) continue;
    if (word === '%end') problems.push(`line ${i + 1}: %end with no section open`);
    else if (SECTIONS.has(word)) sections.push((open = { name: word, body: [] }));
    else if (COMMANDS.has(word)) commands.push(line.trim());
    else problems.push(`line ${i + 1}: ${word} is not a kickstart command`);
  }
  if (open) problems.push(`${open.name} is not closed by %end`);
  return { commands, sections, problems };
}

describe('kickstart/rhel9.ks rendered for a server', () => {
  const text = render();
  const { commands, sections, problems } = split(text);

  it('is made of kickstart commands and closed sections, with every placeholder replaced', () => {
    expect(problems).toEqual([]);
    expect(sections.map((s) => s.name)).toEqual(['%pre', '%packages', '%post']);
    expect(text).not.toMatch(/\{\{|\}\}/);
  });

  it('installs from the pod file’s repository, never from a path the pod does not serve', () => {
    expect(commands).toContain(`url --url=${REPO}`);
    expect(text).not.toContain('/v1/repo');
    // Every URL of the pod it names is one the pod serves.
    for (const m of text.matchAll(/https:\/\/10\.99\.0\.1:8443(\/[^\s?"']*)/g)) expect(['/v1/kickstart', '/v1/events']).toContain(m[1]);
  });

  it('names the server, its disk and its root password hash', () => {
    expect(commands).toContain('network --bootproto=dhcp --hostname=r-n1 --activate');
    expect(commands).toContain('clearpart --all --initlabel --drives=/dev/sda');
    expect(commands).toContain(`rootpw --iscrypted ${HASH}`);
  });

  it('the shell of %pre and %post parses, and every curl trusts only the pod’s CA', () => {
    for (const s of sections.filter((x) => x.name !== '%packages')) {
      const script = s.body.join('\n');
      const r = spawnSync('sh', ['-n'], { input: script, encoding: 'utf8' });
      expect(r.status, `${s.name}: ${r.stderr}`).toBe(0);
      const calls = script.replace(/\\\n/g, ' ').match(/(^|\n)\s*curl\b[^\n]*/g) ?? [];
      expect(calls.length, s.name).toBeGreaterThan(0);
      for (const c of calls) expect(c).toMatch(/--cacert \/(tmp|etc\/podboot)\/[\w.-]+\.pem/);
    }
    // The CA is written where curl reads it, as PEM lines.
    expect(text).toContain(PEM.trim());
  });

  it('a pod without a repository cannot start with it: the template is refused when it is loaded', () => {
    const pod = testPod({ install: { kickstart: 'rhel9.ks', disk: '/dev/sda', rootPasswordHash: HASH } });
    expect(() => new KickstartSource(pod, 'kickstart/rhel9.ks', { rootCa: PEM, disk: '/dev/sda', nodeToken: () => '', installToken: () => '', stage2: () => undefined })).toThrow(
      'kickstart/rhel9.ks installs from {{repoUrl}}: set spec.install.repoUrl in the pod file',
    );
  });
});
