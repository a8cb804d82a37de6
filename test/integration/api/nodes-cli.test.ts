// `podboot nodes list|show` through a running central node (issue 20): a
// real `podboot serve` on loopback with one pod whose database already holds
// servers (an installed one with a heartbeat, a failed one), a real relayed
// DHCP exchange for a third (decoded by name by `dhcp probe --json`); the
// CLI finds the node by its api.json and reads them through the API, with
// hostname, IP, state, image, last seen and pod. With no node answering it
// fails, naming where it looked.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const BASE = 40_000 + (process.pid % 5_000) * 4;
const RELAY = '127.88.0.1';
const RELAY_PORT = BASE + 4;
const T = Math.floor(Date.now() / 1000);
const INSTALLED = '52:54:00:88:00:01';
const FAILED = '52:54:00:88:00:02';
const PROBED = '52:54:00:88:00:03';

const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-n }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${BASE}, tftpPort: ${BASE + 1}, httpPort: ${BASE + 2}, httpsPort: ${BASE + 3} }
  relays: [${RELAY}]
  subnets:
    - { cidr: 127.88.0.0/24, gateway: ${RELAY}, dns: [127.88.0.2], pool: 127.88.0.100-127.88.0.199, leaseTime: 10m }
  stage2: { image: lab-os, version: 2.0.1 }
  nodes:
    - { mac: "${INSTALLED}", hostname: n-installed }
    - { mac: "${PROBED}", hostname: n-probed }
`;

interface Row {
  pod: string;
  mac: string;
  hostname?: string;
  ip?: string;
  state: string;
  image?: string;
  assigned?: string;
  lastSeen?: number;
  liveness?: string;
  heartbeat?: { time: number };
}

describe('nodes list|show through the central API', () => {
  const lab = new Lab('pbn');
  const state = join(lab.dir, 'state');
  let central: Daemon;
  let api: { url: string; ca: string; tokenFile: string };

  /** The CLI from a directory of its own, finding the node as an operator's shell would: PODBOOT_STATE. */
  const podboot = (args: string[], env: NodeJS.ProcessEnv = { PODBOOT_STATE: state }) => {
    const r = spawnSync(process.execPath, [PODBOOT, ...args], { cwd: lab.dir, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    requireBuild();
    const pods = join(lab.dir, 'pods');
    mkdirSync(pods);
    writeFileSync(join(pods, 'rack-n.yaml'), POD);
    // What the pod recorded before this start: a server installed and reporting, one failed.
    const db = openPodDatabase(join(state, 'rack-n'));
    const nodes = new SqliteNodeStateStore(db);
    // installed from the version before the one the pod file assigns now
    nodes.changeInstallState({ mac: INSTALLED, state: 'installed', time: T - 90, image: 'lab-os@2.0.0' });
    nodes.changeInstallState({ mac: INSTALLED, state: 'booted-from-disk', time: T - 60 });
    nodes.recordHeartbeat(INSTALLED, { time: T - 5, metrics: { uptime: 7200, load1: 0.1 } });
    nodes.setLiveness(INSTALLED, 'active');
    nodes.changeInstallState({ mac: FAILED, state: 'failed', reason: 'signature', time: T - 30 });
    db.close();
    central = lab.spawn(undefined, process.execPath, [PODBOOT, 'serve', '--pods', pods, '--state', state, '--api', '127.0.0.1:0', '--pod-user', 'root', '--no-limits'], 'central');
    await central.waitFor(/pod instance ready/, 60_000);
    api = JSON.parse(readFileSync(join(state, 'central', 'api.json'), 'utf8'));
  }, 90_000);

  afterAll(() => lab.cleanup());

  it('a relayed exchange as `dhcp probe --json` prints it: every option by code, name, value and hex', () => {
    const r = podboot(['dhcp', 'probe', '--server', `127.0.0.1:${BASE}`, '--relay', `${RELAY}:${RELAY_PORT}`, '--mac', PROBED, '--arch', '0', '--timeout', '5000', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const [offer, ack] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; yiaddr: string; options: { code: number; name: string | null; value: unknown; hex: string }[] });
    expect(offer!.type).toBe('OFFER');
    expect(ack!.type).toBe('ACK');
    const opt = (code: number) => ack!.options.find((o) => o.code === code);
    expect(opt(53)).toEqual({ code: 53, name: 'message-type', value: 'ACK', hex: '05' });
    expect(opt(54)).toEqual({ code: 54, name: 'server-identifier', value: '127.0.0.1', hex: '7f000001' });
    expect(opt(1)).toMatchObject({ name: 'subnet-mask', value: '255.255.255.0' });
    expect(opt(3)).toMatchObject({ name: 'routers', value: [RELAY] });
    expect(opt(6)).toMatchObject({ name: 'domain-name-servers', value: ['127.88.0.2'] });
    expect(opt(51)).toEqual({ code: 51, name: 'lease-time', value: 600, hex: '00000258' });
    expect(opt(12)).toMatchObject({ name: 'host-name', value: 'n-probed' });
    expect(opt(67)).toMatchObject({ name: 'bootfile-name', value: 'undionly.kpxe' });
    expect(opt(60)).toMatchObject({ name: 'vendor-class', value: 'PXEClient' });
    expect(opt(43)).toMatchObject({ name: 'vendor-encapsulated-options', value: [{ code: 6, name: 'discovery-control', value: 8, hex: '08' }] });
    // The relay's option 82 comes back: RFC 8357's source port, as the probe sent it.
    expect(opt(82)).toMatchObject({ name: 'relay-agent-info', value: [{ code: 19, name: 'relay-source-port', value: null, hex: '' }] });
    expect(ack!.yiaddr).toMatch(/^127\.88\.0\.1\d\d$/);
  });

  it('nodes list --json: every server of every pod with hostname, IP, state, the image on its disk and the one assigned, last seen and pod', () => {
    const r = podboot(['nodes', 'list', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Row[];
    const by = new Map(rows.map((n) => [n.mac, n]));
    expect([...by.keys()].sort()).toEqual([INSTALLED, FAILED, PROBED]);
    expect(by.get(INSTALLED)).toMatchObject({
      pod: 'rack-n',
      hostname: 'n-installed',
      state: 'booted-from-disk',
      image: 'lab-os@2.0.0',
      assigned: 'lab-os@2.0.1',
      lastSeen: T - 5,
      liveness: 'active',
      heartbeat: { time: T - 5 },
    });
    expect(by.get(INSTALLED)).not.toHaveProperty('ip');
    expect(by.get(FAILED)).toMatchObject({ pod: 'rack-n', state: 'failed', reason: 'signature', assigned: 'lab-os@2.0.1', lastSeen: T - 30 });
    // nothing installed: no image on the disk to name
    expect(by.get(FAILED)).not.toHaveProperty('image');
    expect(by.get(FAILED)).not.toHaveProperty('hostname');
    // The probed server: its lease's address and the state DHCP gave it.
    expect(by.get(PROBED)).toMatchObject({ pod: 'rack-n', hostname: 'n-probed', ip: expect.stringMatching(/^127\.88\.0\.1\d\d$/), state: 'pxe', assigned: 'lab-os@2.0.1' });
    expect(by.get(PROBED)!.lastSeen).toBeGreaterThanOrEqual(T);
  });

  it('nodes list: the same rows as a table under its header; --pod narrows, an unknown pod is exit 1', () => {
    const r = podboot(['nodes', 'list', '--pod', 'rack-n']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^MAC\s+STATE\s+ATTEMPT\s+HOSTNAME\s+IP\s+IMAGE\s+LAST SEEN\s+LIVENESS\s+POD$/);
    expect(lines.find((l) => l.startsWith(INSTALLED))).toMatch(/^\S+\s+booted-from-disk\s+1\s+n-installed\s+-\s+lab-os@2\.0\.0\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+active\s+rack-n$/);
    expect(lines.find((l) => l.startsWith(PROBED))).toMatch(/^\S+\s+pxe\s+1\s+n-probed\s+127\.88\.0\.1\d\d\s+-\s+\S+\s+-\s+rack-n$/);
    const none = podboot(['nodes', 'list', '--pod', 'rack-z']);
    expect(none.status).toBe(1);
    expect(none.stderr).toBe(`podboot nodes list: the central node at ${api.url}: no pod rack-z\n`);
  });

  it('nodes show MAC --json: the server with the same fields, its events oldest first; --url, --ca and --token-file name the node', () => {
    const r = podboot(['nodes', 'show', PROBED, '--json', '--url', api.url, '--ca', api.ca, '--token-file', api.tokenFile], { PODBOOT_STATE: join(lab.dir, 'elsewhere') });
    expect(r.status, r.stderr).toBe(0);
    const shown = JSON.parse(r.stdout) as { node: Row; events: { kind: string; time: number }[] };
    expect(shown.node).toMatchObject({ pod: 'rack-n', mac: PROBED, hostname: 'n-probed', ip: expect.stringMatching(/^127\.88\.0\.1\d\d$/), state: 'pxe', assigned: 'lab-os@2.0.1' });
    expect(shown.node).not.toHaveProperty('image');
    expect(shown.events.map((e) => e.kind)).toEqual(['discovered', 'pxe']);
    const installed = JSON.parse(podboot(['nodes', 'show', INSTALLED, '--json']).stdout) as { node: Row };
    expect(installed.node).toMatchObject({ pod: 'rack-n', hostname: 'n-installed', liveness: 'active', lastSeen: T - 5 });
    const text = podboot(['nodes', 'show', INSTALLED]);
    expect(text.stdout).toMatch(/^52:54:00:88:00:01\n {2}pod {8}rack-n\n {2}hostname {3}n-installed\n/);
    expect(text.stdout).toMatch(/\n {2}image {6}lab-os@2\.0\.0\n {2}assigned {3}lab-os@2\.0\.1\n/);
    const unseen = podboot(['nodes', 'show', '52:54:00:88:00:99', '--pod', 'rack-n']);
    expect(unseen.status).toBe(1);
    expect(unseen.stderr).toBe(`podboot nodes show: the central node at ${api.url}: pod rack-n has never seen 52:54:00:88:00:99\n`);
  });

  it('without a central node answering: exit 1, naming the URL and the api.json it came from, or the api.json it looked for', async () => {
    expect(await central.stop()).toBe(0);
    const apiJson = join(state, 'central', 'api.json');
    for (const args of [
      ['nodes', 'list'],
      ['nodes', 'show', INSTALLED, '--json'],
    ]) {
      const r = podboot(args);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`: no central node answers at ${api.url} (from ${apiJson}): connect ECONNREFUSED`);
      expect(r.stderr).toContain('--state DIR reads a state directory without a central node');
    }
    const nowhere = join(lab.dir, 'no-node');
    const r = podboot(['nodes', 'list'], { PODBOOT_STATE: nowhere });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`podboot nodes list: no central node found: cannot read ${join(nowhere, 'central', 'api.json')} (no such file)`);
    // The offline way still reads what the pod recorded.
    const offline = podboot(['nodes', 'list', '--state', state, '--json']);
    expect(offline.status, offline.stderr).toBe(0);
    expect((JSON.parse(offline.stdout) as Row[]).map((n) => n.mac).sort()).toEqual([INSTALLED, FAILED, PROBED]);
  });
});
