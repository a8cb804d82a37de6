// The cloud-init NoCloud seed of one server, parsed back the way cloud-init
// reads it (YAML 1.1, as PyYAML does) and checked field by field.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadPodText } from '../../../src/config/load.js';
import type { PodConfig } from '../../../src/config/types.js';
import { instanceId, needsPoolAddress, renderSeed, type SeedInput } from '../../../src/install/seed.js';
import { ed25519Key, rsaKey } from '../../helpers/ssh-keys.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const OPS_KEY = ed25519Key('ops@laptop');
const AUDIT_KEY = rsaKey('audit@desk');
const NODE_KEY = ed25519Key('break-glass');
const CA = '-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHB\n-----END CERTIFICATE-----\n';
const TOKEN = 'pb1.node.525400000001.3.1790000000.abcDEF_-123';

function podFrom(spec: string): PodConfig {
  const r = loadPodText(
    `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-a }
spec:
  listen: { address: 10.99.0.1, httpsPort: 8443 }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199, domain: rack-a.example }
    - { cidr: 10.21.0.0/24, gateway: 10.21.0.1, domain: row2.example }
  users:
    - { name: ops, sshAuthorizedKeys: ["${OPS_KEY}"], sudo: true }
    - { name: audit, sshAuthorizedKeys: ["${AUDIT_KEY}"] }
  heartbeat: { interval: 15s }
${spec}`,
    'seed.yaml',
  );
  expect(r.problems).toEqual([]);
  return r.pod!;
}

const input = (pod: PodConfig, mac: string, over: Partial<SeedInput> = {}): SeedInput => ({ pod, mac, attempt: 3, nodeToken: TOKEN, rootCa: CA, ...over });
const yaml11 = (text: string) => parse(text, { version: '1.1' }) as Record<string, unknown>;

describe('cloud-init seed: meta-data and user-data', () => {
  const pod = podFrom(`  nodes:
    - mac: "52:54:00:00:00:01"
      hostname: n1
      address: 10.20.0.11
      sshAuthorizedKeys: ["${NODE_KEY}"]
    - { mac: "52:54:00:00:00:02", hostname: n2, address: 10.21.0.12 }
    - { mac: "52:54:00:00:00:03", hostname: n3.elsewhere.example }
`);

  it('meta-data: an instance id per pod, server and install attempt, and the host name', () => {
    const seed = renderSeed(input(pod, '52:54:00:00:00:01'));
    expect(yaml11(seed['meta-data'])).toEqual({ 'instance-id': 'podboot-rack-a-525400000001-3', 'local-hostname': 'n1' });
    // A reinstall is a new instance: cloud-init runs its per-instance modules again.
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:01', { attempt: 4 }))['meta-data'])['instance-id']).toBe('podboot-rack-a-525400000001-4');
    expect(instanceId('rack-b', '52:54:00:00:00:01', 1)).toBe('podboot-rack-b-525400000001-1');
  });

  it('user-data: host names, the pod’s users with the server’s own keys, no default user, no passwords, the node agent’s files', () => {
    const text = renderSeed(input(pod, '52:54:00:00:00:01'))['user-data'];
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    expect(yaml11(text)).toEqual({
      hostname: 'n1',
      fqdn: 'n1.rack-a.example',
      preserve_hostname: false,
      manage_etc_hosts: true,
      users: [
        { name: 'ops', shell: '/bin/bash', lock_passwd: true, sudo: 'ALL=(ALL) NOPASSWD:ALL', ssh_authorized_keys: [OPS_KEY, NODE_KEY] },
        { name: 'audit', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [AUDIT_KEY, NODE_KEY] },
      ],
      ssh_pwauth: false,
      disable_root: true,
      write_files: [
        {
          path: '/etc/podboot/node.env',
          owner: 'root:root',
          permissions: '0600',
          content: ['PODBOOT_SERVER=10.99.0.1', 'PODBOOT_HTTPS=8443', 'PODBOOT_POD=rack-a', 'PODBOOT_MAC=52:54:00:00:00:01', `PODBOOT_NODE_TOKEN=${TOKEN}`, 'PODBOOT_HEARTBEAT_SECONDS=15', ''].join(
            '\n',
          ),
        },
        { path: '/etc/podboot/root.pem', owner: 'root:root', permissions: '0644', content: CA },
      ],
    });
  });

  it('the FQDN takes the domain of the subnet the server’s address is in, or is the host name written with its domain', () => {
    const n2 = yaml11(renderSeed(input(pod, '52:54:00:00:00:02'))['user-data']);
    expect([n2.hostname, n2.fqdn]).toEqual(['n2', 'n2.row2.example']);
    const n3 = yaml11(renderSeed(input(pod, '52:54:00:00:00:03'))['user-data']);
    expect([n3.hostname, n3.fqdn]).toEqual(['n3', 'n3.elsewhere.example']);
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:03'))['meta-data'])['local-hostname']).toBe('n3');
    // A server the pod file does not list: named after its MAC, in the first subnet's domain.
    const unknown = yaml11(renderSeed(input(pod, '52:54:00:00:00:99'))['user-data']);
    expect([unknown.hostname, unknown.fqdn]).toEqual(['node-525400000099', 'node-525400000099.rack-a.example']);
    expect((unknown.users as { ssh_authorized_keys: string[] }[])[0]!.ssh_authorized_keys).toEqual([OPS_KEY]);
    // No domain anywhere: no fqdn key at all (cloud-init would otherwise set a bare name as one).
    const bare = testPod({ nodes: [{ mac: '52:54:00:00:00:01', hostname: 'solo' }] });
    expect(yaml11(renderSeed(input(bare, '52:54:00:00:00:01'))['user-data'])).not.toHaveProperty('fqdn');
  });

  it('without users the list is empty (so cloud-init makes no default user), never absent', () => {
    const text = renderSeed(input(testPod(), '52:54:00:00:00:01'))['user-data'];
    expect(yaml11(text).users).toEqual([]);
  });

  it('refuses to write a node.env value that sh and systemd would read differently', () => {
    expect(() => renderSeed(input(pod, '52:54:00:00:00:01', { nodeToken: 'pb1 x' }))).toThrow('PODBOOT_NODE_TOKEN for the node agent has characters it cannot carry unquoted');
  });
});

describe('cloud-init seed: network-config v2', () => {
  const net = (extra: string) => `  managementNetwork:
    cidr: 10.30.0.0/24
    gateway: 10.30.0.1
    dns: [10.30.0.1, 10.30.0.2]
${extra}`;

  it('no management network anywhere: no network-config (cloud-init keeps its own default)', () => {
    const seed = renderSeed(input(podFrom(''), '52:54:00:00:00:01'));
    expect(seed['network-config']).toBeUndefined();
    expect(Object.keys(seed)).toEqual(['meta-data', 'user-data']);
  });

  it('a NIC by MAC, renamed mgmt0, with a fixed address, default route and DNS', () => {
    const pod = podFrom(`${net('')}  nodes:
    - { mac: "52:54:00:00:00:01", management: { interface: { mac: "52:54:00:00:01:01" }, address: 10.30.0.10 } }
`);
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:01'))['network-config']!)).toEqual({
      version: 2,
      ethernets: {
        mgmt0: {
          match: { macaddress: '52:54:00:00:01:01' },
          'set-name': 'mgmt0',
          addresses: ['10.30.0.10/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.30.0.1' }],
          nameservers: { addresses: ['10.30.0.1', '10.30.0.2'] },
        },
      },
    });
  });

  it('a NIC by name keeps its name; the pool’s address when the server has none; its own values win over the pod’s', () => {
    const pod = podFrom(`${net('    pool: 10.30.0.100-10.30.0.199\n    vlan: 30\n    interface: { name: ens4 }\n')}  nodes:
    - { mac: "52:54:00:00:00:01" }
    - { mac: "52:54:00:00:00:02", management: { interface: { name: eno2 }, address: 10.30.0.20, gateway: 10.30.0.254, dns: [10.30.0.53], vlan: 31 } }
`);
    expect(needsPoolAddress(pod, '52:54:00:00:00:01')).toBe(true);
    expect(needsPoolAddress(pod, '52:54:00:00:00:02')).toBe(false);
    expect(needsPoolAddress(pod, '52:54:00:00:00:99')).toBe(true);
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:01', { poolAddress: ip('10.30.0.100') }))['network-config']!)).toEqual({
      version: 2,
      ethernets: { mgmt0: { match: { name: 'ens4' } } },
      vlans: {
        'mgmt0.30': {
          id: 30,
          link: 'mgmt0',
          addresses: ['10.30.0.100/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.30.0.1' }],
          nameservers: { addresses: ['10.30.0.1', '10.30.0.2'] },
        },
      },
    });
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:02'))['network-config']!)).toEqual({
      version: 2,
      ethernets: { mgmt0: { match: { name: 'eno2' } } },
      vlans: {
        'mgmt0.31': { id: 31, link: 'mgmt0', addresses: ['10.30.0.20/24'], routes: [{ to: '0.0.0.0/0', via: '10.30.0.254' }], nameservers: { addresses: ['10.30.0.53'] } },
      },
    });
    // A pool and no address handed over is a wiring mistake, not a server without a network.
    expect(() => renderSeed(input(pod, '52:54:00:00:00:01'))).toThrow("no management address for 52:54:00:00:00:01: the pool's address was not given");
  });

  it('no interface named anywhere: the PXE NIC carries the management network too; no address and no pool: DHCP; no gateway: no route', () => {
    const pod = podFrom('  managementNetwork: { cidr: 10.30.0.0/24 }\n  nodes:\n    - { mac: "52:54:00:00:00:02", management: { address: 10.30.0.12 } }\n');
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:01'))['network-config']!)).toEqual({
      version: 2,
      ethernets: { mgmt0: { match: { macaddress: '52:54:00:00:00:01' }, 'set-name': 'mgmt0', dhcp4: true } },
    });
    expect(yaml11(renderSeed(input(pod, '52:54:00:00:00:02'))['network-config']!)).toEqual({
      version: 2,
      ethernets: { mgmt0: { match: { macaddress: '52:54:00:00:00:02' }, 'set-name': 'mgmt0', addresses: ['10.30.0.12/24'] } },
    });
  });
});

describe('cloud-init seed: hostile values stay values', () => {
  // Built in code, past the validator that would refuse them: the renderer must hold on its own.
  const evilHost = 'x\nusers: [{name: evil, sudo: ALL}]\nruncmd: [reboot]';
  const evilKey = 'ssh-ed25519 AAAA "quoted"\n- ssh-rsa injected\nruncmd: [touch /pwned] #';
  const pod = testPod({
    name: 'rack-t',
    subnets: [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.199'], { domain: 'yes' })],
    users: [
      { name: 'on', sshAuthorizedKeys: [evilKey], sudo: false },
      { name: '1_000', sshAuthorizedKeys: [], sudo: true },
    ],
    nodes: [
      { mac: '52:54:00:00:00:01', hostname: evilHost },
      { mac: '52:54:00:00:00:02', hostname: 'no' },
    ],
  });

  it('a host name or key that tries to add keys of its own comes back as the same string, and adds nothing', () => {
    const seed = renderSeed(input(pod, '52:54:00:00:00:01'));
    const ud = yaml11(seed['user-data']);
    expect(Object.keys(ud).sort()).toEqual(['disable_root', 'fqdn', 'hostname', 'manage_etc_hosts', 'preserve_hostname', 'ssh_pwauth', 'users', 'write_files']);
    expect(ud.hostname).toBe(evilHost);
    expect(ud).not.toHaveProperty('runcmd');
    const users = ud.users as { name: unknown; ssh_authorized_keys: unknown }[];
    expect(users.map((u) => u.name)).toEqual(['on', '1_000']);
    expect(users[0]!.ssh_authorized_keys).toEqual([evilKey]);
    expect(yaml11(seed['meta-data'])).toEqual({ 'instance-id': 'podboot-rack-t-525400000001-3', 'local-hostname': evilHost });
  });

  it('words YAML 1.1 reads as booleans or numbers (on, no, yes, 1_000) stay strings for cloud-init’s parser', () => {
    const ud = yaml11(renderSeed(input(pod, '52:54:00:00:00:02'))['user-data']);
    expect(ud.hostname).toBe('no');
    expect(ud.fqdn).toBe('no.yes');
    expect((ud.users as { name: unknown }[]).map((u) => u.name)).toEqual(['on', '1_000']);
    // And the permission strings are not read as octal or decimal numbers.
    expect((ud.write_files as { permissions: unknown }[]).map((f) => f.permissions)).toEqual(['0600', '0644']);
  });
});
