// spec.managementNetwork, nodes[].management, spec.users, SSH keys,
// spec.heartbeat and install.repoUrl: the values that make the installed OS
// reachable, each problem located as `file:line:col: field: message`.
import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/types.js';
import { sshKeyProblem } from '../../../src/config/users.js';
import { parseIPv4 } from '../../../src/net/ipv4.js';
import { ecdsaKey, ed25519Key, mislabelledKey, rsaKey } from '../../helpers/ssh-keys.js';

const KEY = ed25519Key();
const KEY2 = rsaKey();

/** Lines 1-7 are the pod's head; `extra` starts at line 8. */
const pod = (extra: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-a }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets: [ { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199, domain: rack-a.example } ]
${extra}`;

const problems = (extra: string) => loadPodText(pod(extra), 'p.yaml').problems.map(formatProblem);
const ip = (text: string) => parseIPv4(text)!;

describe('spec.managementNetwork, spec.users, nodes[].management: the happy path', () => {
  it('reads every field into PodConfig, node values beside the pod-wide ones', () => {
    const r = loadPodText(
      pod(`  managementNetwork:
    cidr: 10.30.0.0/24
    gateway: 10.30.0.1
    dns: [10.30.0.1, 10.30.0.2]
    vlan: 30
    pool: 10.30.0.100-10.30.0.199
    interface: { name: ens4 }
  users:
    - { name: ops, sshAuthorizedKeys: ["${KEY}"], sudo: true }
    - name: audit
      sshAuthorizedKeys: ["${KEY2}"]
  heartbeat: { interval: 1m }
  install: { kickstart: rhel9.ks, rootPasswordHash: "$6$saltsalt$hash", repoUrl: "https://mirror.example/rocky/9/BaseOS/x86_64/os/" }
  nodes:
    - mac: "52:54:00:00:00:01"
      hostname: n1
      address: 10.20.0.11
      management: { interface: { mac: "52-54-00-00-01-01" }, address: 10.30.0.10, gateway: 10.30.0.254, dns: [10.30.0.53], vlan: 31 }
      sshAuthorizedKeys: ["${ecdsaKey()}"]
    - { mac: "52:54:00:00:00:02", management: { interface: { mac: "52:54:00:00:00:02" } } }
    - { mac: "52:54:00:00:00:03" }
`),
      'p.yaml',
    );
    expect(r.problems).toEqual([]);
    const p = r.pod!;
    expect(p.managementNetwork).toEqual({
      cidr: '10.30.0.0/24',
      network: ip('10.30.0.0'),
      prefix: 24,
      gateway: ip('10.30.0.1'),
      dns: [ip('10.30.0.1'), ip('10.30.0.2')],
      vlan: 30,
      pool: { start: ip('10.30.0.100'), end: ip('10.30.0.199') },
      interface: { name: 'ens4' },
    });
    expect(p.users).toEqual([
      { name: 'ops', sshAuthorizedKeys: [KEY], sudo: true },
      { name: 'audit', sshAuthorizedKeys: [KEY2], sudo: false },
    ]);
    expect(p.heartbeatSeconds).toBe(60);
    expect(p.install.repoUrl).toBe('https://mirror.example/rocky/9/BaseOS/x86_64/os/');
    const [n1, n2, n3] = p.nodes;
    // MACs are stored in the canonical form, as the provisioning MAC is.
    expect(n1!.management).toEqual({ interface: { mac: '52:54:00:00:01:01' }, address: ip('10.30.0.10'), gateway: ip('10.30.0.254'), dns: [ip('10.30.0.53')], vlan: 31 });
    expect(n1!.sshAuthorizedKeys).toEqual([expect.stringMatching(/^ecdsa-sha2-nistp256 /)]);
    // One NIC may carry both networks: its own PXE MAC as its management interface.
    expect(n2!.management).toEqual({ interface: { mac: '52:54:00:00:00:02' } });
    expect(n3!.management).toBeUndefined();
    expect(n3!.sshAuthorizedKeys).toBeUndefined();
  });

  it('defaults: no management network, no users, a heartbeat every 30 s', () => {
    const p = loadPodText(pod(''), 'p.yaml').pod!;
    expect(p.managementNetwork).toBeUndefined();
    expect(p.users).toEqual([]);
    expect(p.heartbeatSeconds).toBe(30);
    expect(p.install.repoUrl).toBeUndefined();
  });

  it('heartbeat interval: 5s and 1h are the bounds, a bare number is seconds', () => {
    for (const [text, sec] of [
      ['5s', 5],
      ['1h', 3600],
      ['45', 45],
    ] as const)
      expect(loadPodText(pod(`  heartbeat: { interval: ${text} }\n`), 'p.yaml').pod?.heartbeatSeconds, text).toBe(sec);
  });
});

describe('spec.managementNetwork problems', () => {
  it('overlapping a provisioning subnet, a gateway and pool outside the cidr, a bad vlan', () => {
    expect(problems('  managementNetwork: { cidr: 10.20.0.0/16, gateway: 10.21.0.1, vlan: 4095 }\n')).toEqual([
      'p.yaml:8:30: spec.managementNetwork.cidr: 10.20.0.0/16 overlaps the provisioning subnet 10.20.0.0/24 (spec.subnets[0])',
      'p.yaml:8:53: spec.managementNetwork.gateway: gateway 10.21.0.1 is outside 10.20.0.0/16 (spec.managementNetwork.cidr)',
      'p.yaml:8:70: spec.managementNetwork.vlan: 4095 is outside 1..4094',
    ]);
    expect(problems('  managementNetwork:\n    cidr: 10.30.0.0/24\n    gateway: 10.30.0.255\n    pool: 10.30.0.200-10.30.1.10\n')).toEqual([
      'p.yaml:10:14: spec.managementNetwork.gateway: gateway 10.30.0.255 is the broadcast address of 10.30.0.0/24',
      'p.yaml:11:11: spec.managementNetwork.pool: pool end 10.30.1.10 is outside 10.30.0.0/24',
    ]);
    expect(problems('  managementNetwork: { cidr: 10.30.0.0/24, gateway: 10.30.0.150, pool: 10.30.0.100-10.30.0.199 }\n')).toEqual([
      'p.yaml:8:72: spec.managementNetwork.pool: pool contains the gateway 10.30.0.150',
    ]);
  });

  it('a cidr with host bits set and a missing cidr', () => {
    expect(problems('  managementNetwork: { cidr: 10.30.0.5/24 }\n')).toEqual(['p.yaml:8:30: spec.managementNetwork.cidr: 10.30.0.5/24 has host bits set; the network is 10.30.0.0/24']);
    expect(problems('  managementNetwork: { gateway: 10.30.0.1 }\n')).toEqual(['p.yaml:8:22: spec.managementNetwork.cidr: required field is missing']);
  });

  it('interface: exactly one of mac or name, each well formed', () => {
    expect(problems('  managementNetwork: { cidr: 10.30.0.0/24, interface: { mac: "52:54:00:00:01:01", name: ens4 } }\n')).toEqual([
      'p.yaml:8:89: spec.managementNetwork.interface.name: give the interface by mac or by name, not both',
    ]);
    expect(problems('  managementNetwork: { cidr: 10.30.0.0/24, interface: {} }\n')).toEqual([
      'p.yaml:8:55: spec.managementNetwork.interface: give the interface by mac (its MAC address) or by name (e.g. ens4)',
    ]);
    expect(problems('  managementNetwork: { cidr: 10.30.0.0/24, interface: { name: "eth0; reboot" } }\n')).toEqual([
      'p.yaml:8:63: spec.managementNetwork.interface.name: "eth0; reboot" is not an interface name (1-15 of A-Z a-z 0-9 _ . -)',
    ]);
    expect(problems('  managementNetwork: { cidr: 10.30.0.0/24, interface: { mac: "01:00:5e:00:00:01" } }\n')).toEqual([
      "p.yaml:8:62: spec.managementNetwork.interface.mac: 01:00:5e:00:00:01 is a multicast MAC, not a network card's",
    ]);
  });
});

describe('nodes[].management problems', () => {
  const net = '  managementNetwork: { cidr: 10.30.0.0/24, gateway: 10.30.0.1, pool: 10.30.0.100-10.30.0.199 }\n  nodes:\n';

  it('management without spec.managementNetwork names the missing field', () => {
    expect(problems('  nodes:\n    - { mac: "52:54:00:00:00:01", management: { address: 10.30.0.10 } }\n')).toEqual([
      "p.yaml:9:47: spec.nodes[0].management: needs spec.managementNetwork (at least its cidr): the pod-wide management network this server's values belong to",
    ]);
  });

  it('an address outside the cidr, at its network or broadcast address, the gateway, inside the pool', () => {
    const lines = [
      '    - { mac: "52:54:00:00:00:01", management: { address: 10.31.0.10 } }',
      '    - { mac: "52:54:00:00:00:02", management: { address: 10.30.0.0 } }',
      '    - { mac: "52:54:00:00:00:03", management: { address: 10.30.0.255 } }',
      '    - { mac: "52:54:00:00:00:04", management: { address: 10.30.0.1 } }',
      '    - { mac: "52:54:00:00:00:05", management: { address: 10.30.0.150 } }',
      '    - { mac: "52:54:00:00:00:06", management: { address: 10.30.0.20, gateway: 10.30.0.20 } }',
      '    - { mac: "52:54:00:00:00:07", management: { gateway: 10.40.0.1 } }',
    ];
    expect(problems(net + lines.join('\n') + '\n')).toEqual([
      'p.yaml:10:58: spec.nodes[0].management.address: management address 10.31.0.10 is outside 10.30.0.0/24 (spec.managementNetwork.cidr)',
      'p.yaml:11:58: spec.nodes[1].management.address: management address 10.30.0.0 is the network address of 10.30.0.0/24',
      'p.yaml:12:58: spec.nodes[2].management.address: management address 10.30.0.255 is the broadcast address of 10.30.0.0/24',
      'p.yaml:13:58: spec.nodes[3].management.address: management address 10.30.0.1 is the gateway of spec.managementNetwork',
      'p.yaml:14:58: spec.nodes[4].management.address: management address 10.30.0.150 is inside spec.managementNetwork.pool (10.30.0.100-10.30.0.199), which the pod hands out',
      'p.yaml:15:58: spec.nodes[5].management.address: management address 10.30.0.20 is the gateway',
      'p.yaml:16:58: spec.nodes[6].management.gateway: gateway 10.40.0.1 is outside 10.30.0.0/24 (spec.managementNetwork.cidr)',
    ]);
  });

  it('duplicate addresses and interface MACs between servers, and a management MAC that is another server’s PXE MAC', () => {
    const lines = [
      '    - { mac: "52:54:00:00:00:01", management: { address: 10.30.0.10, interface: { mac: "52:54:00:00:01:01" } } }',
      '    - { mac: "52:54:00:00:00:02", management: { address: 10.30.0.10, interface: { mac: "52:54:00:00:01:01" } } }',
      '    - { mac: "52:54:00:00:00:03", management: { interface: { mac: "52:54:00:00:00:01" } } }',
    ];
    expect(problems(net + lines.join('\n') + '\n')).toEqual([
      'p.yaml:11:58: spec.nodes[1].management.address: duplicate management address 10.30.0.10 (also spec.nodes[0].management.address)',
      'p.yaml:11:88: spec.nodes[1].management.interface.mac: duplicate management interface MAC 52:54:00:00:01:01 (also spec.nodes[0].management.interface.mac)',
      'p.yaml:12:67: spec.nodes[2].management.interface.mac: management interface MAC 52:54:00:00:00:01 is the provisioning MAC of another server (52:54:00:00:00:01)',
    ]);
  });

  it('a vlan out of range and an interface with neither mac nor name', () => {
    expect(problems(net + '    - { mac: "52:54:00:00:00:01", management: { vlan: 0, interface: { } } }\n')).toEqual([
      'p.yaml:10:55: spec.nodes[0].management.vlan: 0 is outside 1..4094',
      'p.yaml:10:69: spec.nodes[0].management.interface: give the interface by mac (its MAC address) or by name (e.g. ens4)',
    ]);
  });
});

describe('spec.users and SSH keys', () => {
  it('user names: the useradd pattern, not root, unique', () => {
    expect(
      problems(`  users:
    - { name: Ops }
    - { name: root }
    - { name: ops }
    - { name: ops }
    - { name: "a-name-that-is-far-too-long-for-utmp" }
`),
    ).toEqual([
      'p.yaml:9:15: spec.users[0].name: "Ops" is not a user name (a-z or _ first, then a-z 0-9 _ -, at most 32)',
      'p.yaml:10:15: spec.users[1].name: root cannot be a user here: give a named user with sudo: true',
      'p.yaml:12:15: spec.users[3].name: duplicate user ops (also spec.users[2])',
      'p.yaml:13:15: spec.users[4].name: "a-name-that-is-far-too-long-for-utmp" is not a user name (a-z or _ first, then a-z 0-9 _ -, at most 32)',
    ]);
  });

  it('sudo must be a boolean (YAML 1.2: yes is a string)', () => {
    expect(problems('  users: [ { name: ops, sudo: yes } ]\n')).toEqual(['p.yaml:8:31: spec.users[0].sudo: expected a boolean, found "yes"']);
  });

  it('refuses keys that are not one well-formed public key, each at its list item', () => {
    const [type, body = ''] = KEY.split(' ');
    const bad = [
      `${type} ${body}\\nssh-ed25519 ${body}`, // two keys in one item
      `ssh-dss ${body}`, // unknown type
      `from=\\"10.0.0.0/8\\" ${KEY}`, // options
      `${type} not!base64`,
      mislabelledKey('ssh-ed25519', 'ssh-rsa'),
      `${type} ${body.slice(0, -8)}`, // cut short
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'ssh-ed25519',
    ];
    const text = `  users:\n    - name: ops\n      sshAuthorizedKeys:\n${bad.map((k) => `        - "${k}"`).join('\n')}\n`;
    const got = problems(text);
    expect(got).toEqual([
      'p.yaml:11:11: spec.users[0].sshAuthorizedKeys[0]: not an SSH public key: holds a line break: give one key per list item',
      `p.yaml:12:11: spec.users[0].sshAuthorizedKeys[1]: not an SSH public key: unknown key type "ssh-dss"; known: ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com`,
      expect.stringMatching(
        /^p\.yaml:13:11: spec\.users\[0\]\.sshAuthorizedKeys\[2\]: not an SSH public key: unknown key type "from=\\"10\.0\.0\.0\/8\\"" \(authorized_keys options such as from= or command= are not supported\)/,
      ),
      'p.yaml:14:11: spec.users[0].sshAuthorizedKeys[3]: not an SSH public key: key body is not base64',
      'p.yaml:15:11: spec.users[0].sshAuthorizedKeys[4]: not an SSH public key: key body is a "ssh-rsa" key, but the line says ssh-ed25519',
      'p.yaml:16:11: spec.users[0].sshAuthorizedKeys[5]: not an SSH public key: key body is truncated or has bytes after its last field',
      'p.yaml:17:11: spec.users[0].sshAuthorizedKeys[6]: not an SSH public key: is a PEM block (a private key?), not an SSH public key line such as "ssh-ed25519 AAAA... comment"',
      'p.yaml:18:11: spec.users[0].sshAuthorizedKeys[7]: not an SSH public key: has no key body after ssh-ed25519',
    ]);
  });

  it('accepts ed25519, RSA and ECDSA keys with and without comments, tabs between fields', () => {
    for (const k of [ed25519Key(), ed25519Key(''), rsaKey(), ecdsaKey(), ecdsaKey('with spaces in it'), KEY.replace(' ', '\t')]) expect(sshKeyProblem(k), k).toBeUndefined();
    expect(sshKeyProblem(`${KEY}\u0007`)).toBe('holds control characters');
  });

  it("a node's own keys need a user to go to", () => {
    expect(problems(`  nodes:\n    - { mac: "52:54:00:00:00:01", sshAuthorizedKeys: ["${KEY}"] }\n`)).toEqual([
      'p.yaml:9:54: spec.nodes[0].sshAuthorizedKeys: no user to add these keys to: list the logins in spec.users',
    ]);
    expect(problems(`  nodes:\n    - { mac: "52:54:00:00:00:01", sshAuthorizedKeys: ["ssh-rsa AAAA"] }\n  users: [ { name: ops } ]\n`)).toEqual([
      'p.yaml:9:55: spec.nodes[0].sshAuthorizedKeys[0]: not an SSH public key: key body is truncated or has bytes after its last field',
    ]);
  });
});

describe('spec.heartbeat and spec.install.repoUrl problems', () => {
  it('a heartbeat outside 5s..1h or not a duration', () => {
    expect(problems('  heartbeat: { interval: 2s }\n')).toEqual(['p.yaml:8:26: spec.heartbeat.interval: a heartbeat every 2 s is outside 5s..1h']);
    expect(problems('  heartbeat: { interval: 2h }\n')).toEqual(['p.yaml:8:26: spec.heartbeat.interval: a heartbeat every 7200 s is outside 5s..1h']);
    expect(problems('  heartbeat: { interval: often }\n')).toEqual(['p.yaml:8:26: spec.heartbeat.interval: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found "often"']);
  });

  it('rhel9.ks without a repository, and repository URLs a kickstart line cannot carry', () => {
    expect(problems('  install: { kickstart: rhel9.ks }\n')).toEqual([
      'p.yaml:8:12: spec.install.repoUrl: kickstart rhel9.ks needs install.repoUrl: the package repository Anaconda installs from (the pod serves none)',
      'p.yaml:8:12: spec.install.rootPasswordHash: kickstart rhel9.ks needs install.rootPasswordHash (openssl passwd -6): its rootpw line sets it',
    ]);
    expect(problems('  install: { kickstart: rhel9.ks, rootPasswordHash: "$6$saltsalt$hash", repoUrl: "ftp://mirror.example/os/" }\n')).toEqual([
      'p.yaml:8:82: spec.install.repoUrl: "ftp://mirror.example/os/": expected an http:// or https:// URL',
    ]);
    expect(problems('  install: { repoUrl: "https://mirror.example/os/?arch=x86_64 --noverifyssl" }\n')).toEqual([
      'p.yaml:8:23: spec.install.repoUrl: "https://mirror.example/os/?arch=x86_64 --noverifyssl" has characters a kickstart line does not carry (only A-Z a-z 0-9 . _ : / @ + = $ -)',
    ]);
    expect(problems('  install: { repoUrl: "https://u:secret@mirror.example/os/" }\n')).toEqual([
      'p.yaml:8:23: spec.install.repoUrl: a repository URL with a user name or password would be sent to every server: give one without',
    ]);
    expect(problems('  install: { repoUrl: "mirror.example/os" }\n')).toEqual(['p.yaml:8:23: spec.install.repoUrl: "mirror.example/os" is not a URL']);
  });
});
