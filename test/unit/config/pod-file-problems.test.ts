import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPodPath, loadPodDir, loadPodFile, loadPodText, parseDuration } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/types.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { ip } from '../../helpers/pods.js';

const GOOD = `apiVersion: podboot/v1
kind: Pod
metadata:
  name: rack-a
spec:
  listen:
    address: 10.99.0.1
    dhcpPort: 67
  relays: [10.20.0.1]
  subnets:
    - cidr: 10.20.0.0/24
      gateway: 10.20.0.1
      pool: 10.20.0.100-10.20.0.199
      dns: [10.20.0.1]
      leaseTime: 1h
  nodes:
    - { mac: "52:54:00:00:00:01", hostname: n1, address: 10.20.0.11 }
  unknownNodes: provision
`;

/** GOOD with one line replaced: the problem must point at that line. */
function variant(find: string, replace: string): string {
  if (!GOOD.includes(find)) throw new Error(`test bug: ${find} not in GOOD`);
  return GOOD.replace(find, replace);
}

function problems(text: string): string[] {
  return loadPodText(text, 'pod.yaml').problems.map(formatProblem);
}

describe('pod file loading', () => {
  it('loads a valid pod into typed values with defaults', () => {
    const r = loadPodText(GOOD, 'pod.yaml');
    expect(r.problems).toEqual([]);
    const pod = r.pod!;
    expect(pod.name).toBe('rack-a');
    expect(pod.listen).toEqual({ address: '10.99.0.1', dhcpPort: 67, tftpPort: 69, httpPort: 80, httpsPort: 443 });
    expect(pod.relays).toEqual([ip('10.20.0.1')]);
    expect(pod.subnets[0]).toMatchObject({ cidr: '10.20.0.0/24', prefix: 24, gateway: ip('10.20.0.1'), pool: { start: ip('10.20.0.100'), end: ip('10.20.0.199') }, leaseTimeSec: 3600 });
    expect(pod.nodes[0]).toMatchObject({ mac: '52:54:00:00:00:01', hostname: 'n1', address: ip('10.20.0.11') });
    expect(pod.boot.nextServer).toBe('10.99.0.1');
    expect(pod.boot.files.bios).toBe('undionly.kpxe');
  });

  it('parses durations', () => {
    expect([parseDuration('90s'), parseDuration('30m'), parseDuration('1h'), parseDuration('2d'), parseDuration(600), parseDuration('10')]).toEqual([90, 1800, 3600, 172800, 600, 10]);
    expect(parseDuration('1 week')).toBeUndefined();
    expect(parseDuration(-5)).toBeUndefined();
  });

  it.each([
    ['pool end outside the subnet', variant('pool: 10.20.0.100-10.20.0.199', 'pool: 10.20.0.100-10.21.0.9'), 'pod.yaml:13:13: spec.subnets[0].pool: pool end 10.21.0.9 is outside 10.20.0.0/24'],
    ['unknown field with a hint', variant('      dns: [10.20.0.1]', '      dnss: [10.20.0.1]'), 'pod.yaml:14:7: spec.subnets[0].dnss: unknown field (did you mean dns?)'],
    ['wrong type', variant('dhcpPort: 67', 'dhcpPort: sixty-seven'), 'pod.yaml:8:15: spec.listen.dhcpPort: expected an integer'],
    ['port out of range', variant('dhcpPort: 67', 'dhcpPort: 70000'), 'pod.yaml:8:15: spec.listen.dhcpPort: 70000 is outside 1..65535'],
    ['bad CIDR', variant('cidr: 10.20.0.0/24', 'cidr: 10.20.0.0/33'), 'pod.yaml:11:13: spec.subnets[0].cidr: 10.20.0.0/33 is not a CIDR (a.b.c.d/len)'],
    ['host bits in CIDR', variant('cidr: 10.20.0.0/24', 'cidr: 10.20.0.5/24'), 'pod.yaml:11:13: spec.subnets[0].cidr: 10.20.0.5/24 has host bits set; the network is 10.20.0.0/24'],
    ['bad address', variant('address: 10.99.0.1', 'address: 10.99.0.300'), 'pod.yaml:7:14: spec.listen.address: 10.99.0.300 is not an IPv4 address'],
    ['gateway outside', variant('gateway: 10.20.0.1', 'gateway: 10.21.0.1'), 'pod.yaml:12:16: spec.subnets[0].gateway: gateway 10.21.0.1 is outside 10.20.0.0/24'],
    ['fixed address in the pool', variant('address: 10.20.0.11 }', 'address: 10.20.0.150 }'), 'pod.yaml:17:58: spec.nodes[0].address: fixed address 10.20.0.150 is inside the pool of 10.20.0.0/24'],
    ['fixed address in no subnet', variant('address: 10.20.0.11 }', 'address: 10.50.0.11 }'), "pod.yaml:17:58: spec.nodes[0].address: fixed address 10.50.0.11 is in none of the pod's subnets"],
    ['relay in no subnet', variant('relays: [10.20.0.1]', 'relays: [10.20.0.1, 10.40.0.1]'), "pod.yaml:9:23: spec.relays[1]: relay 10.40.0.1 is in none of the pod's subnets"],
    ['bad MAC', variant('mac: "52:54:00:00:00:01"', 'mac: "52:54:00:00:01"'), 'pod.yaml:17:14: spec.nodes[0].mac: 52:54:00:00:01 is not a MAC address'],
    ['bad unknownNodes', variant('unknownNodes: provision', 'unknownNodes: maybe'), 'pod.yaml:18:17: spec.unknownNodes: expected provision or ignore, not maybe'],
    ['bad pod name', variant('name: rack-a', 'name: Rack_A'), "pod.yaml:4:9: metadata.name: Rack_A is not a DNS label (a-z, 0-9, '-', at most 63)"],
    ['bad lease time', variant('leaseTime: 1h', 'leaseTime: forever'), 'pod.yaml:15:18: spec.subnets[0].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or seconds'],
    ['missing required field', variant('  relays: [10.20.0.1]\n', ''), 'pod.yaml:6:3: spec.relays: required field is missing'],
    ['wrong apiVersion', variant('apiVersion: podboot/v1', 'apiVersion: podboot/v2'), 'pod.yaml:1:13: apiVersion: expected podboot/v1, not podboot/v2'],
  ])('reports %s with file:line:col', (_name, text, expected) => {
    expect(problems(text)).toContain(expected);
  });

  it('reports YAML syntax errors with their position', () => {
    const p = problems(variant('  relays: [10.20.0.1]', '  relays: [10.20.0.1'));
    expect(p.length).toBeGreaterThan(0);
    expect(p[0]).toMatch(/^pod\.yaml:\d+:\d+: \(yaml\): /);
  });

  it('reports duplicates and overlaps, and every problem in one file', () => {
    const text = variant(
      '    - { mac: "52:54:00:00:00:01", hostname: n1, address: 10.20.0.11 }',
      `    - { mac: "52:54:00:00:00:01", hostname: n1, address: 10.20.0.11 }
    - { mac: "52-54-00-00-00-01", hostname: n1, address: 10.20.0.11 }`,
    ).replace('  nodes:', `    - cidr: 10.20.0.128/25
      leaseTime: 1h
  nodes:`);
    const p = problems(text);
    expect(p).toContain('pod.yaml:16:13: spec.subnets[1].cidr: 10.20.0.128/25 overlaps 10.20.0.0/24');
    expect(p).toContain('pod.yaml:20:14: spec.nodes[1].mac: duplicate MAC 52:54:00:00:00:01 (also spec.nodes[0])');
    expect(p).toContain('pod.yaml:20:45: spec.nodes[1].hostname: duplicate hostname n1 (also spec.nodes[0])');
    expect(p).toContain('pod.yaml:20:58: spec.nodes[1].address: duplicate address 10.20.0.11 (also spec.nodes[0])');
  });

  describe('directories', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podboot-cfg-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reports overlapping subnets and shared listen sockets across pods, naming both files', () => {
      writeFileSync(join(dir, 'a.yaml'), GOOD);
      writeFileSync(join(dir, 'b.yaml'), variant('name: rack-a', 'name: rack-b'));
      writeFileSync(join(dir, 'notes.txt'), 'not a pod');
      const r = loadPodDir(dir);
      expect(r.pods.map((p) => p.name)).toEqual(['rack-a', 'rack-b']);
      const lines = r.problems.map(formatProblem);
      expect(lines.some((l) => l.includes('b.yaml') && l.includes('spec.listen.dhcpPort: 10.99.0.1:67 is also used by pod rack-a'))).toBe(true);
      expect(lines.some((l) => l.includes('b.yaml') && l.includes('10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-a'))).toBe(true);
    });
  });

  it('ships a valid embedded default pod on loopback', () => {
    const r = loadPodFile(defaultPodPath());
    expect(r.problems).toEqual([]);
    expect(r.pod!.listen.address).toMatch(/^127\./);
    expect(r.pod!.listen.dhcpPort).toBeGreaterThan(1024);
  });
});

describe('podboot validate (the CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podboot-validate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => spawnSync(process.execPath, [PODBOOT, 'validate', ...args], { encoding: 'utf8' });

  it('exits 0 for valid files, 1 with one line per problem, 2 for wrong usage', () => {
    requireBuild();
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(good, GOOD);
    writeFileSync(bad, variant('pool: 10.20.0.100-10.20.0.199', 'pool: 10.20.0.100-10.21.0.9').replace('dhcpPort: 67', 'dhcpPort: x'));
    const ok = cli(good);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('ok: 1 pod\n');
    const ko = cli(bad);
    expect(ko.status).toBe(1);
    expect(ko.stdout.trim().split('\n')).toEqual([
      `${bad}:8:15: spec.listen.dhcpPort: expected an integer`,
      `${bad}:13:13: spec.subnets[0].pool: pool end 10.21.0.9 is outside 10.20.0.0/24`,
    ]);
    expect(cli().status).toBe(2);
    expect(cli(join(dir, 'missing.yaml')).status).toBe(2);
  });
});
