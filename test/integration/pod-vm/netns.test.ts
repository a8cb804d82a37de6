// netns isolation (issue 5, must show 3): two pods, each instance in its own
// network namespace holding only a macvlan on its provisioning network, plus
// a management interface for rack A (F8). (802.1Q interfaces are built the
// same way, but this kernel has no VLAN support; test/unit/pod-vm/netns.test.ts
// checks the commands for them.) Neither instance sees or can bind the other's
// interface, and each still answers its rack's relay. The provisioning
// networks are veths the test creates, one end in the host namespace (the
// "parent" the supervisor builds on), the other in a rack namespace.
// Each instance registers as a scrape target with the central node through
// its unix socket: its namespace has no route to the API's address.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, PODBOOT, requireBuild, run, type Daemon } from '../../helpers/netns.js';

// Unique per run so parallel runs and leftovers never collide (host-side interface names ≤ 15 bytes).
const tag = (process.pid % 100_000).toString(36);
const PODS = { a: `pbn${tag}-a`, b: `pbn${tag}-b` };
const PARENT = { a: `pbn${tag}pa`, b: `pbn${tag}pb`, m: `pbn${tag}m` };

const podA = `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${PODS.a}
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.31.0.1]
  subnets:
    - { cidr: 10.31.0.0/16, gateway: 10.31.0.1, pool: 10.31.1.0-10.31.1.250 }
  isolation:
    mode: netns
    provisioning: { parent: ${PARENT.a}, prefix: 24, gateway: 10.99.0.254 }
    management: { parent: ${PARENT.m}, address: 192.168.77.10/24, gateway: 192.168.77.1 }
`;
const podB = `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${PODS.b}
spec:
  listen: { address: 10.98.0.1 }
  relays: [10.32.0.1]
  subnets:
    - { cidr: 10.32.0.0/16, gateway: 10.32.0.1, pool: 10.32.1.0-10.32.1.250 }
  isolation:
    mode: netns
    provisioning: { parent: ${PARENT.b}, prefix: 24, gateway: 10.98.0.254 }
`;

async function until(what: string, fn: () => boolean, timeoutMs: number, detail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('netns isolation', () => {
  const lab = new Lab('pbn');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;
  const pid = (pod: string) => Number([...central.log().matchAll(new RegExp(`"pod":"${pod}","pid":(\\d+),"listeners"`, 'g'))].at(-1)?.[1]);
  const links = (p: number) =>
    readFileSync(`/proc/${p}/net/dev`, 'utf8')
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]!.trim())
      .filter(Boolean)
      .sort();
  /** Runs node in the network namespace of a running process and tries to bind a UDP address. */
  const tryBind = (p: number, address: string) =>
    run('nsenter', [
      `--net=/proc/${p}/ns/net`,
      process.execPath,
      '-e',
      `const s=require('dgram').createSocket('udp4');s.on('error',e=>{console.log(e.code);process.exit(0)});s.bind(0,'${address}',()=>{console.log('bound');s.close()})`,
    ]).trim();

  beforeAll(async () => {
    requireBuild();
    for (const ns of ['racka', 'rackb', 'mgmt']) lab.addNs(ns);
    // Host-side parents; their peers live in the lab namespaces (deleting those removes the pairs).
    run('ip', ['link', 'add', PARENT.a, 'type', 'veth', 'peer', 'name', 'up0', 'netns', lab.ns('racka')]);
    run('ip', ['link', 'add', PARENT.b, 'type', 'veth', 'peer', 'name', 'up0', 'netns', lab.ns('rackb')]);
    run('ip', ['link', 'add', PARENT.m, 'type', 'veth', 'peer', 'name', 'up0', 'netns', lab.ns('mgmt')]);
    for (const p of Object.values(PARENT)) run('ip', ['link', 'set', p, 'up']);
    // Rack A: flat provisioning network; the ToR is 10.99.0.254 and relays from 10.31.0.1.
    lab.ip('racka', 'addr', 'add', '10.99.0.254/24', 'dev', 'up0');
    lab.ip('racka', 'addr', 'add', '10.31.0.1/16', 'dev', 'up0');
    lab.ip('racka', 'link', 'set', 'up0', 'up');
    lab.ip('rackb', 'addr', 'add', '10.98.0.254/24', 'dev', 'up0');
    lab.ip('rackb', 'addr', 'add', '10.32.0.1/16', 'dev', 'up0');
    lab.ip('rackb', 'link', 'set', 'up0', 'up');
    // Management network of rack A: its own link, subnet and gateway.
    lab.ip('mgmt', 'addr', 'add', '192.168.77.1/24', 'dev', 'up0');
    lab.ip('mgmt', 'link', 'set', 'up0', 'up');

    mkdirSync(podsDir);
    writeFileSync(join(podsDir, 'a.yaml'), podA);
    writeFileSync(join(podsDir, 'b.yaml'), podB);
    central = lab.spawn(undefined, process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0'], 'central', { PODBOOT_REGISTER_INTERVAL_MS: '500' });
    await until(
      'both instances ready',
      () => pid(PODS.a) > 0 && pid(PODS.b) > 0,
      30_000,
      () => central.log(),
    );
  }, 60_000);

  afterAll(async () => {
    await central?.stop();
    for (const p of Object.values(PARENT)) run('ip', ['link', 'del', p], { allowFail: true });
    for (const p of Object.values(PODS)) run('ip', ['netns', 'del', `podboot-${p}`], { allowFail: true });
    await lab.cleanup();
  });

  it("each instance sees only its own interfaces and cannot bind the other pod's address", () => {
    const [a, b] = [pid(PODS.a), pid(PODS.b)];
    expect(links(a)).toEqual(['lo', 'mgmt0', 'prov0']);
    expect(links(b)).toEqual(['lo', 'prov0']);
    // The host's interfaces (the parents included) are invisible to both.
    expect(links(a)).not.toContain(PARENT.b);
    expect(tryBind(a, '10.98.0.1')).toBe('EADDRNOTAVAIL');
    expect(tryBind(b, '10.99.0.1')).toBe('EADDRNOTAVAIL');
    expect(tryBind(a, '10.99.0.1')).toBe('bound');
    expect(readFileSync(`/proc/${a}/cmdline`, 'utf8')).toContain('pod\0run');
  });

  it('F8: provisioning routes go through the rack gateway, the rest through the management network', () => {
    const routes = run('ip', ['-n', `podboot-${PODS.a}`, 'route']);
    expect(routes).toMatch(/^default via 192\.168\.77\.1 dev mgmt0/m);
    expect(routes).toMatch(/^10\.31\.0\.0\/16 via 10\.99\.0\.254 dev prov0/m);
    // The management gateway answers from the pod's namespace; the rack's does over prov0.
    expect(run('ip', ['netns', 'exec', `podboot-${PODS.a}`, 'ping', '-c', '1', '-W', '2', '192.168.77.1'])).toMatch(/1 received/);
    expect(run('ip', ['-n', `podboot-${PODS.a}`, '-d', 'link', 'show', 'prov0'])).toMatch(/macvlan mode bridge/);
  });

  it("each pod answers its own rack's relay through its namespace interface", () => {
    const probe = (ns: string, server: string, relay: string) =>
      lab.exec(ns, process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', `${server}:67`, '--relay', `${relay}:67`, '--mac', '52:54:00:aa:00:01', '--timeout', '5000'], { allowFail: true });
    expect(probe('racka', '10.99.0.1', '10.31.0.1')).toMatch(/"type":"ACK","xid":"[^"]+","yiaddr":"10\.31\.1\.\d+"/);
    expect(probe('rackb', '10.98.0.1', '10.32.0.1')).toMatch(/"type":"ACK","xid":"[^"]+","yiaddr":"10\.32\.1\.\d+"/);
  });

  /** the pods the central node's /sd lists */
  const sdPods = (): string[] => {
    const api = JSON.parse(readFileSync(join(stateDir, 'central', 'api.json'), 'utf8')) as { url: string; ca: string; tokenFile: string };
    const out = run('curl', ['-s', '--max-time', '5', '--cacert', api.ca, '-H', `Authorization: Bearer ${readFileSync(api.tokenFile, 'utf8').trim()}`, `${api.url}/sd`], { allowFail: true });
    try {
      return (JSON.parse(out) as { labels: { pod: string } }[]).map((g) => g.labels.pod).sort();
    } catch {
      return [];
    }
  };

  it("each instance registers as a target through the central node's unix socket, from inside its namespace", async () => {
    await until(
      'both pods in /sd',
      () => sdPods().join() === [PODS.a, PODS.b].sort().join(),
      20_000,
      () => central.log(),
    );
    for (const p of Object.values(PODS)) {
      expect(readFileSync(join(stateDir, p, 'instance.log'), 'utf8')).toMatch(/"central":"[^"]*\/central\/api\.sock".*"msg":"registered as a scrape target with the central node"/);
    }
  });

  it('removing the pod file stops the instance and deletes its namespace', async () => {
    const { rmSync, existsSync } = await import('node:fs');
    rmSync(join(podsDir, 'b.yaml'));
    await until(
      'namespace gone',
      () => !existsSync(`/run/netns/podboot-${PODS.b}`),
      20_000,
      () => central.log(),
    );
    expect(existsSync(`/run/netns/podboot-${PODS.a}`)).toBe(true);
    // Stopped gracefully, it deregistered on its way out.
    expect(sdPods()).toEqual([PODS.a]);
  });
});
