import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPodPath, loadPodFile, loadPodText } from '../../../src/config/load.js';
import { DEFAULT_BOOT_FILES } from '../../../src/config/types.js';
import { ip } from '../../helpers/pods.js';
import { FIXTURES, lines } from './fixtures.js';

const load = (rel: string) => loadPodFile(join(FIXTURES, rel));
const _problemsOf = (rel: string) => lines(load(rel).problems);

describe('valid pod files', () => {
  it('loads every field: uint32 addresses, canonical MACs and UUIDs, durations in seconds', () => {
    const r = load('valid/full.yaml');
    expect(r.problems).toEqual([]);
    expect(r.pod).toEqual({
      name: 'rack-full',
      file: join(FIXTURES, 'valid/full.yaml'),
      listen: { address: '10.99.0.7', dhcpPort: 1067, tftpPort: 1069, httpPort: 8080, httpsPort: 8443 },
      relays: [ip('10.20.0.1'), ip('10.30.0.1')],
      subnets: [
        {
          cidr: '10.20.0.0/24',
          network: ip('10.20.0.0'),
          prefix: 24,
          mask: ip('255.255.255.0'),
          gateway: ip('10.20.0.1'),
          pool: { start: ip('10.20.0.100'), end: ip('10.20.0.199') },
          dns: [ip('10.20.0.1'), ip('10.99.0.53')],
          domain: 'rack-full.example',
          leaseTimeSec: 90,
        },
        {
          cidr: '10.30.0.0/16',
          network: ip('10.30.0.0'),
          prefix: 16,
          mask: ip('255.255.0.0'),
          gateway: ip('10.30.0.1'),
          pool: { start: ip('10.30.1.0'), end: ip('10.30.255.254') },
          dns: [],
          leaseTimeSec: 7200,
        },
      ],
      nodes: [
        { mac: '52:54:00:00:00:01', hostname: 'n1', address: ip('10.20.0.11'), uuid: '4c4c4544-0042-3010-8031-b4c04f334c31', boot: { bios: 'pxelinux.0' } },
        { mac: '52:54:00:00:00:02' },
        { mac: '52:54:00:00:00:03', hostname: 'n3.rack-full.example', address: ip('10.30.0.3') },
      ],
      unknownNodes: 'ignore',
      boot: {
        nextServer: '10.99.0.8',
        files: {
          bios: 'undionly.kpxe',
          uefi: 'ipxe.efi',
          arm64: 'ipxe-arm64.efi',
          ipxeScript: 'https://{server}:{httpsPort}/boot/{pod}/{mac}.ipxe',
          httpBoot: 'http://{server}:{httpPort}/ipxe.efi',
        },
        stage1: 'http',
      },
      install: { kickstart: 'lab-image.sh', disk: '/dev/vda' },
      users: [],
      heartbeatSeconds: 30,
      tftp: { maxBlockSize: 1428, maxWindowSize: 8, maxTransfers: 20 },
    });
  });

  it('fills in the defaults of a minimal pod', () => {
    const r = load('valid/minimal.yaml');
    expect(r.problems).toEqual([]);
    expect(r.pod).toMatchObject({
      listen: { address: '10.99.0.9', dhcpPort: 67, tftpPort: 69, httpPort: 80, httpsPort: 443 },
      nodes: [],
      unknownNodes: 'provision',
      boot: { nextServer: '10.99.0.9', files: DEFAULT_BOOT_FILES },
      tftp: { maxBlockSize: 65464, maxWindowSize: 64, maxTransfers: 200 },
    });
    expect(r.pod!.subnets).toEqual([{ cidr: '10.20.0.0/24', network: ip('10.20.0.0'), prefix: 24, mask: ip('255.255.255.0'), dns: [], leaseTimeSec: 3600 }]);
  });

  it('resolves YAML anchors and aliases', () => {
    const r = load('valid/anchors.yaml');
    expect(r.problems).toEqual([]);
    expect(r.pod!.subnets.map((s) => [s.dns, s.leaseTimeSec])).toEqual([
      [[ip('10.99.0.53'), ip('10.99.0.54')], 1800],
      [[ip('10.99.0.53'), ip('10.99.0.54')], 1800],
    ]);
  });

  it('ships an embedded default pod that is safe anywhere: loopback and high ports', () => {
    const r = loadPodFile(defaultPodPath());
    expect(r.problems).toEqual([]);
    expect(r.pod).toMatchObject({
      listen: { address: '127.0.0.1', dhcpPort: 10067, tftpPort: 10069, httpPort: 10080, httpsPort: 10443 },
      relays: [ip('127.77.0.1')],
      subnets: [{ cidr: '127.77.0.0/24', gateway: ip('127.77.0.1'), pool: { start: ip('127.77.0.100'), end: ip('127.77.0.199') }, dns: [ip('127.77.0.1')], leaseTimeSec: 3600 }],
      nodes: [{ mac: '52:54:00:77:00:10', hostname: 'lab-node-1', address: ip('127.77.0.10') }],
      unknownNodes: 'provision',
    });
  });
});

describe('mistakes in one pod file, each at its file:line:col and field', () => {
  it.each([
    [
      'header.yaml',
      [
        // A file that does not say it is a pod may be anything (a symlink to a secret):
        // nothing else in it is checked, and nothing of it is quoted.
        'bad/header.yaml:1:13: apiVersion: expected podboot/v1',
        'bad/header.yaml:2:7: kind: expected Pod',
      ],
    ],
    [
      'types.yaml',
      [
        'bad/types.yaml:3:11: metadata: expected a mapping, found a list',
        'bad/types.yaml:6:14: spec.listen.address: expected a string, found a list',
        'bad/types.yaml:7:15: spec.listen.dhcpPort: expected an integer, found "sixty-seven"',
        'bad/types.yaml:8:15: spec.listen.tftpPort: expected an integer, found 69.5',
        'bad/types.yaml:9:11: spec.relays: expected a list, found "10.20.0.1"',
        'bad/types.yaml:12:12: spec.subnets[0].dns: expected a list, found "10.20.0.1"',
        'bad/types.yaml:13:18: spec.subnets[0].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found a mapping',
        'bad/types.yaml:14:15: spec.subnets[0].domain: expected a string, found true',
        'bad/types.yaml:15:7: spec.subnets[1]: expected a mapping, found "just-a-string"',
        'bad/types.yaml:17:5: spec.nodes: expected a list, found a mapping',
        'bad/types.yaml:18:16: spec.unknownNodes: expected a string, found nothing',
        'bad/types.yaml:19:9: spec.tftp: expected a mapping, found 512',
      ],
    ],
    [
      'unknown-fields.yaml',
      [
        'bad/unknown-fields.yaml:3:1: metdata: unknown field (did you mean metadata?)',
        'bad/unknown-fields.yaml:7:3: metadata.labels: unknown field (expected one of: name)',
        'bad/unknown-fields.yaml:10:5: spec.listen.adress: unknown field (did you mean address?)',
        'bad/unknown-fields.yaml:12:5: spec.listen.dhcp_port: unknown field (did you mean dhcpPort?)',
        'bad/unknown-fields.yaml:14:3: spec.subnet: unknown field (did you mean subnets?)',
        'bad/unknown-fields.yaml:18:7: spec.subnets[0].gw: unknown field (expected one of: cidr, gateway, pool, dns, leaseTime, domain)',
        'bad/unknown-fields.yaml:19:7: spec.subnets[0].leasetime: unknown field (did you mean leaseTime?)',
        'bad/unknown-fields.yaml:21:35: spec.nodes[0].hostnme: unknown field (did you mean hostname?)',
        'bad/unknown-fields.yaml:21:56: spec.nodes[0].boot.efi: unknown field (did you mean uefi?)',
        'bad/unknown-fields.yaml:22:11: spec.boot.nextserver: unknown field (did you mean nextServer?)',
        'bad/unknown-fields.yaml:22:43: spec.boot.files.ipxe: unknown field (expected one of: bios, uefi, arm64, ipxeScript, httpBoot)',
        'bad/unknown-fields.yaml:23:11: spec.tftp.blksize: unknown field (expected one of: maxBlockSize, maxWindowSize, maxTransfers)',
        'bad/unknown-fields.yaml:24:3: spec.status: unknown field (expected one of: listen, relays, subnets, nodes, unknownNodes, boot, tftp, imageStreams, imageSharing, stage2, install, isolation, limits, managementNetwork, users, heartbeat)',
        'bad/unknown-fields.yaml:25:3: spec.<<: unknown field (YAML merge keys are not supported)',
      ],
    ],
    // A missing field is reported at the mapping that should hold it.
    [
      'missing.yaml',
      [
        'bad/missing.yaml:4:3: metadata.namespace: unknown field (expected one of: name)',
        'bad/missing.yaml:4:3: metadata.name: required field is missing',
        'bad/missing.yaml:6:3: spec.relays: required field is missing',
        'bad/missing.yaml:7:5: spec.listen.address: required field is missing',
        'bad/missing.yaml:9:7: spec.subnets[0].cidr: required field is missing',
        'bad/missing.yaml:11:7: spec.nodes[0].mac: required field is missing',
      ],
    ],
    ['no-spec.yaml', ['bad/no-spec.yaml:2:1: metadata: required field is missing', 'bad/no-spec.yaml:2:1: spec: required field is missing']],
    [
      'addresses.yaml',
      [
        'bad/addresses.yaml:7:14: spec.listen.address: 10.99.0.300 is not an IPv4 address',
        'bad/addresses.yaml:10:13: spec.subnets[0].cidr: 10.20.0.0/33 is not a CIDR (a.b.c.d/len, len 0..32)',
        'bad/addresses.yaml:12:13: spec.subnets[1].cidr: 10.21.0.5/24 has host bits set; the network is 10.21.0.0/24',
        'bad/addresses.yaml:14:16: spec.subnets[2].gateway: gateway 10.23.0.1 is outside 10.22.0.0/24',
        'bad/addresses.yaml:15:24: spec.subnets[2].dns[1]: 224.0.0.1 is a multicast address',
        'bad/addresses.yaml:15:35: spec.subnets[2].dns[2]: 010.22.0.2 is not an IPv4 address (no leading zeros)',
        'bad/addresses.yaml:17:16: spec.subnets[3].gateway: gateway 10.24.0.255 is the broadcast address of 10.24.0.0/24',
        'bad/addresses.yaml:19:17: spec.boot.nextServer: 0.0.0.0 is in 0.0.0.0/8 ("this network"), not a host address',
      ],
    ],
    [
      'pools.yaml',
      [
        'bad/pools.yaml:11:13: spec.subnets[0].pool: pool end 10.21.0.9 is outside 10.20.0.0/24',
        'bad/pools.yaml:13:13: spec.subnets[1].pool: pool start 10.21.0.199 is after its end 10.21.0.100',
        'bad/pools.yaml:15:13: spec.subnets[2].pool: 10.22.0.100 is not a range first-last, e.g. 10.20.0.100-10.20.0.199',
        'bad/pools.yaml:17:13: spec.subnets[3].pool: pool includes 10.23.0.0, the network address of 10.23.0.0/24',
        'bad/pools.yaml:17:13: spec.subnets[3].pool: pool includes 10.23.0.255, the broadcast address of 10.23.0.0/24',
        'bad/pools.yaml:20:13: spec.subnets[4].pool: pool contains the gateway 10.24.0.1',
        'bad/pools.yaml:22:13: spec.subnets[5].pool: pool end 10.25.0.x is not an IPv4 address',
      ],
    ],
    [
      'nodes.yaml',
      [
        'bad/nodes.yaml:12:14: spec.nodes[1].mac: duplicate MAC 52:54:00:00:00:01 (also spec.nodes[0])',
        'bad/nodes.yaml:12:45: spec.nodes[1].hostname: duplicate hostname N1 (also spec.nodes[0])',
        'bad/nodes.yaml:12:58: spec.nodes[1].address: duplicate address 10.20.0.11 (also spec.nodes[0])',
        'bad/nodes.yaml:12:76: spec.nodes[1].uuid: duplicate UUID 4c4c4544-0042-3010-8031-b4c04f334c31 (also spec.nodes[0])',
        'bad/nodes.yaml:13:14: spec.nodes[2].mac: 52:54:00:00:01 is not a MAC address (six hex bytes, e.g. 52:54:00:12:34:56)',
        "bad/nodes.yaml:13:42: spec.nodes[2].hostname: n_3 is not a host name (letters, digits, inner '-', dots)",
        'bad/nodes.yaml:13:56: spec.nodes[2].address: fixed address 10.20.0.150 is inside the pool of 10.20.0.0/24',
        "bad/nodes.yaml:14:14: spec.nodes[3].mac: 01:00:5e:00:00:01 is a multicast MAC, not a network card's",
        "bad/nodes.yaml:14:44: spec.nodes[3].address: fixed address 10.50.0.4 is in none of the pod's subnets",
        'bad/nodes.yaml:15:14: spec.nodes[4].mac: 00:00:00:00:00:00 is all zeros',
        'bad/nodes.yaml:15:44: spec.nodes[4].address: fixed address 10.20.0.0 is the network address of 10.20.0.0/24',
        'bad/nodes.yaml:15:61: spec.nodes[4].uuid: optional-smbios-uuid is not a UUID (8-4-4-4-12 hex digits)',
        'bad/nodes.yaml:16:44: spec.nodes[5].address: fixed address 10.20.0.1 is the gateway of 10.20.0.0/24',
      ],
    ],
    [
      'relays.yaml',
      [
        "bad/relays.yaml:7:23: spec.relays[1]: relay 10.40.0.1 is in none of the pod's subnets",
        'bad/relays.yaml:7:34: spec.relays[2]: duplicate relay 10.20.0.1 (also spec.relays[0])',
        'bad/relays.yaml:7:45: spec.relays[3]: relay 10.20.0.150 is inside the pool of 10.20.0.0/24',
      ],
    ],
    ['empty-lists.yaml', ['bad/empty-lists.yaml:7:11: spec.relays: at least one relay address is needed', 'bad/empty-lists.yaml:8:12: spec.subnets: at least one subnet is needed']],
    [
      'overlap.yaml',
      [
        'bad/overlap.yaml:11:13: spec.subnets[2].cidr: 10.20.0.128/25 overlaps 10.20.0.0/24 (spec.subnets[0])',
        'bad/overlap.yaml:12:13: spec.subnets[3].cidr: 10.0.0.0/8 overlaps 10.20.0.0/24 (spec.subnets[0])',
        'bad/overlap.yaml:12:13: spec.subnets[3].cidr: 10.0.0.0/8 overlaps 10.21.0.0/24 (spec.subnets[1])',
        'bad/overlap.yaml:12:13: spec.subnets[3].cidr: 10.0.0.0/8 overlaps 10.20.0.128/25 (spec.subnets[2])',
      ],
    ],
    [
      'limits.yaml',
      [
        'bad/limits.yaml:8:15: spec.listen.dhcpPort: 0 is outside 1..65535',
        'bad/limits.yaml:9:15: spec.listen.tftpPort: 70000 is outside 1..65535',
        'bad/limits.yaml:11:16: spec.listen.httpsPort: httpsPort and httpPort are both tcp port 8443',
        'bad/limits.yaml:14:40: spec.subnets[0].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found 0',
        'bad/limits.yaml:15:40: spec.subnets[1].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found "1 week"',
        'bad/limits.yaml:16:40: spec.subnets[2].leaseTime: 4320000000 s is longer than a DHCP lease can state (4294967294 s)',
        'bad/limits.yaml:17:40: spec.subnets[3].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found -5',
        'bad/limits.yaml:19:19: spec.tftp.maxBlockSize: 65465 is outside 8..65464',
        'bad/limits.yaml:20:20: spec.tftp.maxWindowSize: 0 is outside 1..65535',
        'bad/limits.yaml:21:19: spec.tftp.maxTransfers: 1000000 is outside 1..10000',
      ],
    ],
    [
      'boot.yaml',
      [
        'bad/boot.yaml:10:49: spec.nodes[0].boot.uefi: boot file is empty',
        'bad/boot.yaml:12:17: spec.boot.nextServer: tftp.example is not an IPv4 address',
        'bad/boot.yaml:14:13: spec.boot.files.bios: unknown placeholder {hostname} (known: {server}, {httpPort}, {httpsPort}, {mac}, {pod})',
        'bad/boot.yaml:15:19: spec.boot.files.ipxeScript: "http://{server}/{mac} .ipxe" contains white space',
        'bad/boot.yaml:16:17: spec.boot.files.httpBoot: ipxe.efi is not an http:// or https:// URL',
      ],
    ],
    // The missing ] of line 7 is noticed where the next key starts.
    ['syntax.yaml', ['bad/syntax.yaml:8:3: (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]']],
    ['duplicate-key.yaml', ['bad/duplicate-key.yaml:9:3: (yaml): Map keys must be unique']],
    ['empty.yaml', ['bad/empty.yaml:1:1: (document): expected a pod (a mapping with apiVersion, kind, metadata, spec), found an empty file']],
    [
      'many.yaml',
      [
        'bad/many.yaml:10:15: spec.listen.tftpPort: tftpPort and dhcpPort are both udp port 67',
        "bad/many.yaml:11:23: spec.relays[1]: relay 10.40.0.1 is in none of the pod's subnets",
        'bad/many.yaml:15:13: spec.subnets[0].pool: pool end 10.21.0.9 is outside 10.20.0.0/24',
        'bad/many.yaml:16:7: spec.subnets[0].dnss: unknown field (did you mean dns?)',
        'bad/many.yaml:17:18: spec.subnets[0].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found "forever"',
        'bad/many.yaml:18:13: spec.subnets[1].cidr: 10.20.0.128/25 overlaps 10.20.0.0/24 (spec.subnets[0])',
        'bad/many.yaml:21:14: spec.nodes[1].mac: duplicate MAC 52:54:00:00:00:01 (also spec.nodes[0])',
        'bad/many.yaml:22:17: spec.unknownNodes: expected provision or ignore, found "maybe"',
        'bad/many.yaml:23:25: spec.tftp.maxBlockSize: 4 is outside 8..65464',
      ],
    ],
  ])('bad/%s: exactly these problems, in line order', (file, expected) => {
    const r = load(`bad/${file}`);
    expect(r.pod).toBeUndefined();
    expect(lines(r.problems)).toEqual(expected);
  });

  it('does not blame relays or nodes on a subnet that is itself wrong', () => {
    const text = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-a }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets: [{ cidr: 10.20.0.0/42 }]
  nodes: [{ mac: "52:54:00:00:00:01", address: 10.20.0.5 }]
`;
    expect(lines(loadPodText(text, 'pod.yaml').problems)).toEqual(['pod.yaml:7:21: spec.subnets[0].cidr: 10.20.0.0/42 is not a CIDR (a.b.c.d/len, len 0..32)']);
  });

  it.each(['ca', 'central'])("refuses the reserved pod name %s (its state would be the central node's own directory)", (name) => {
    const text = `apiVersion: podboot/v1
kind: Pod
metadata: { name: ${name} }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets: [{ cidr: 10.20.0.0/24 }]
`;
    const r = loadPodText(text, 'pod.yaml');
    expect(r.pod).toBeUndefined();
    expect(lines(r.problems)).toEqual([`pod.yaml:3:19: metadata.name: ${name} is reserved: the central node keeps its own state in STATE/${name} (reserved: ca, central)`]);
  });
});

describe('broken YAML', () => {
  it('shows the first ten syntax errors of a file and says there are more', () => {
    const text = Array.from({ length: 30 }, (_, i) => `k${i}: "x" y`).join('\n');
    const p = lines(loadPodText(text, 'f.yaml').problems);
    expect(p).toHaveLength(11);
    expect(p[0]).toBe('f.yaml:1:9: (yaml): Unexpected scalar at node end');
    expect(p[9]).toBe('f.yaml:10:9: (yaml): Unexpected scalar at node end');
    expect(p[10]).toMatch(/^f\.yaml:\d+:\d+: \(yaml\): further syntax errors not shown$/);
  });

  it('survives nesting deep enough to exhaust the parser', () => {
    const r = loadPodText('['.repeat(20_000), 'f.yaml');
    expect(r.pod).toBeUndefined();
    expect(r.problems.length).toBeGreaterThan(0);
    expect(r.problems.length).toBeLessThanOrEqual(11);
    expect(r.problems.every((p) => p.path === '(yaml)')).toBe(true);
  });

  it('names an empty key', () => {
    expect(lines(loadPodText('apiVersion: podboot/v1\nkind: Pod\n: x\n', 'f.yaml').problems)).toContain('f.yaml:3:1: (empty key): unknown field (expected one of: apiVersion, kind, metadata, spec)');
  });
});

describe('pod files that cannot be read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podboot-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a missing file, a non-UTF-8 file and an oversized file as problems, never throws', () => {
    const latin1 = join(dir, 'latin1.yaml');
    writeFileSync(latin1, Buffer.from('apiVersion: podboot/v1\nkind: Pod\nmetadata: { name: caf\xe9 }\n', 'latin1'));
    const huge = join(dir, 'huge.yaml');
    writeFileSync(huge, Buffer.alloc(1024 * 1024 + 1, 0x20));
    const missing = join(dir, 'missing.yaml');
    expect(loadPodFile(missing).problems).toEqual([{ file: missing, line: 1, col: 1, path: '(file)', message: 'no such file (or a symlink to nothing)' }]);
    expect(loadPodFile(latin1).problems).toEqual([{ file: latin1, line: 1, col: 1, path: '(file)', message: 'not UTF-8 text' }]);
    expect(loadPodFile(huge).problems).toEqual([{ file: huge, line: 1, col: 1, path: '(file)', message: 'larger than 1 MiB; pod files are limited to 1 MiB' }]);
    expect(loadPodFile(dir).problems[0]).toMatchObject({ file: dir, path: '(file)', message: 'not a regular file: directory' });
  });
});
