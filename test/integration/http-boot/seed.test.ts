// GET /v1/seed over real HTTPS, in process: the pod's credentials, node store,
// management address pool (SQLite) and seed images as the pod wires them,
// a certificate the client verifies. The agent's way in: an install token
// exchanged for a session (POST /v1/session), then the seed with that
// session. The image is read back with mtools; what it says is checked
// against the pod file and the pod's own token check.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadPodText } from '../../../src/config/load.js';
import type { PodConfig } from '../../../src/config/types.js';
import { HttpBootServer } from '../../../src/http-boot/server.js';
import { InstallCredentials } from '../../../src/install/credentials.js';
import { TokenAuthority } from '../../../src/install/tokens.js';
import { podSources } from '../../../src/pod/boot-services.js';
import { SeedSource } from '../../../src/pod/seed-source.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteManagementAddressStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { SqliteTokenUseStore } from '../../../src/store/token-uses.js';
import type { FileResolver } from '../../../src/tftp/resolver.js';
import { captureLogger } from '../../helpers/logs.js';
import { ed25519Key } from '../../helpers/ssh-keys.js';

const FIXED = '52:54:00:5e:00:01';
const POOLED = ['52:54:00:5e:00:02', '52:54:00:5e:00:03', '52:54:00:5e:00:04'];
const STRANGER = '52:54:00:5e:00:05';
const KEY = ed25519Key('ops@seed-test');
const mtools = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

/** A certificate for 127.0.0.1 the client checks (not the pod's PKI: this test is about the route). */
function certificate(dir: string): { cert: Buffer; key: Buffer } {
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

describe('GET /v1/seed', () => {
  let dir: string;
  let db: Database.Database;
  let pod: PodConfig;
  let nodes: SqliteNodeStateStore;
  let tokens: TokenAuthority;
  let server: HttpBootServer;
  let tls: { cert: Buffer; key: Buffer };
  let lines: Record<string, unknown>[];
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podboot-seed-route-'));
    const r = loadPodText(
      `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-s }
spec:
  listen: { address: 127.0.0.1, httpsPort: 8443 }
  relays: [127.0.0.1]
  subnets: [ { cidr: 127.0.0.0/24, domain: rack-s.example } ]
  managementNetwork:
    cidr: 10.30.0.0/24
    gateway: 10.30.0.1
    dns: [10.30.0.1]
    pool: 10.30.0.100-10.30.0.101
    interface: { name: ens4 }
  users: [ { name: ops, sshAuthorizedKeys: ["${KEY}"], sudo: true } ]
  heartbeat: { interval: 20s }
  nodes:
    - { mac: "${FIXED}", hostname: s-fixed, management: { address: 10.30.0.10, vlan: 30 } }
`,
      'rack-s.yaml',
    );
    expect(r.problems).toEqual([]);
    pod = r.pod!;
    const captured = captureLogger({ pod: pod.name });
    lines = captured.lines;
    db = openPodDatabase(join(dir, 'state'));
    nodes = new SqliteNodeStateStore(db);
    const secret = randomBytes(32);
    tokens = new TokenAuthority(secret, nodes);
    const credentials = new InstallCredentials({
      pod: pod.name,
      log: captured.log,
      secret,
      tokens,
      nodes,
      uses: new SqliteTokenUseStore(db),
      mayProvision: () => true,
      fromServer: (_mac, source) => source === '127.0.0.1',
    });
    tls = certificate(dir);
    const seeds = new SeedSource(pod, {
      rootCa: tls.cert.toString('utf8'),
      nodeToken: (mac) => tokens.issue(mac, 'node', now()),
      attempt: (mac) => nodes.node(mac)?.attempt ?? 1,
      addresses: new SqliteManagementAddressStore(db),
      log: captured.log,
    });
    server = new HttpBootServer(
      { address: '127.0.0.1', httpsPort: 0, tls, allowSource: podSources(pod) },
      {
        pod: pod.name,
        log: captured.log,
        nodes,
        tokens,
        credentials,
        bootFiles: { resolve: async () => ({ ok: false, reason: 'not-found' }) } as unknown as FileResolver,
        stage2: () => undefined,
        kickstart: () => '',
        seed: (mac) => seeds.image(mac),
      },
    );
    await server.start();
  });

  afterAll(async () => {
    await server?.stop();
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function send(method: string, path: string, token?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const req = request({ host: '127.0.0.1', port: server.httpsPort, method, path, headers, ca: tls.cert }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** What the stage1 agent holds: the session its install token bought. */
  async function session(mac: string): Promise<string> {
    const r = await send('POST', '/v1/session', tokens.issue(mac, 'install', now()));
    expect(r.status, r.body.toString()).toBe(200);
    return r.body.toString().trim();
  }

  /** The seed image's files, read with mtools. */
  function files(image: Buffer): Record<string, string> {
    const path = join(dir, `seed-${randomBytes(4).toString('hex')}.img`);
    writeFileSync(path, image);
    const names = execFileSync('mdir', ['-b', '-i', path, '::'], { env: mtools, encoding: 'utf8' }).trim().split('\n');
    return Object.fromEntries(names.map((n) => [n.replace('::/', ''), execFileSync('mtype', ['-i', path, n], { env: mtools, encoding: 'utf8' })]));
  }

  it('answers the session holder its seed image: its management address, users, node token, and an event', async () => {
    const r = await send('GET', '/v1/seed', await session(FIXED));
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.body.length).toBe(1024 * 1024);
    const f = files(r.body);
    expect(Object.keys(f).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    expect(parse(f['meta-data']!)).toEqual({ 'instance-id': 'podboot-rack-s-5254005e0001-1', 'local-hostname': 's-fixed' });
    expect(parse(f['network-config']!)).toEqual({
      version: 2,
      ethernets: { mgmt0: { match: { name: 'ens4' } } },
      vlans: { 'mgmt0.30': { id: 30, link: 'mgmt0', addresses: ['10.30.0.10/24'], routes: [{ to: '0.0.0.0/0', via: '10.30.0.1' }], nameservers: { addresses: ['10.30.0.1'] } } },
    });
    const ud = parse(f['user-data']!) as { fqdn: string; users: { name: string; ssh_authorized_keys: string[] }[]; write_files: { path: string; content: string }[] };
    expect(ud.fqdn).toBe('s-fixed.rack-s.example');
    expect(ud.users).toEqual([expect.objectContaining({ name: 'ops', ssh_authorized_keys: [KEY] })]);
    const env = Object.fromEntries(
      ud.write_files[0]!.content.trim()
        .split('\n')
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
    expect(env).toMatchObject({ PODBOOT_SERVER: '127.0.0.1', PODBOOT_HTTPS: '8443', PODBOOT_POD: 'rack-s', PODBOOT_MAC: FIXED, PODBOOT_HEARTBEAT_SECONDS: '20' });
    // The node token is one the pod itself accepts, for this server, as a node.
    const auth = tokens.authorize(env.PODBOOT_NODE_TOKEN, now());
    expect(auth).toMatchObject({ ok: true, claims: { scope: 'node', mac: FIXED } });
    expect(ud.write_files[1]).toMatchObject({ path: '/etc/podboot/root.pem', content: tls.cert.toString('utf8') });
    expect(nodes.events(FIXED).map((e) => e.kind)).toContain('seed-served');
    expect(lines.find((l) => l.msg === 'cloud-init seed rendered' && l.node === FIXED)).toMatchObject({ pod: 'rack-s', networkConfig: true });
  });

  it('hands pool addresses out once per server and keeps them; an exhausted pool is a 500 naming it, logged', async () => {
    const addressOf = async (mac: string) => {
      const r = await send('GET', '/v1/seed', await session(mac));
      expect(r.status, r.body.toString()).toBe(200);
      // Servers the pod file does not list take the pod-wide values: untagged, on ens4.
      return (parse(files(r.body)['network-config']!) as { ethernets: Record<string, { addresses: string[] }> }).ethernets.mgmt0!.addresses[0];
    };
    expect(await addressOf(POOLED[0]!)).toBe('10.30.0.100/24');
    expect(await addressOf(POOLED[1]!)).toBe('10.30.0.101/24');
    expect(await addressOf(POOLED[0]!)).toBe('10.30.0.100/24');
    const r = await send('GET', '/v1/seed', await session(POOLED[2]!));
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body.toString())).toEqual({
      error: 'seed: management pool 10.30.0.100-10.30.0.101 (spec.managementNetwork.pool) is exhausted: all 2 addresses are held or fixed',
    });
    expect(lines.find((l) => l.status === 500)).toMatchObject({
      level: 'warn',
      pod: 'rack-s',
      mac: POOLED[2],
      path: '/v1/seed',
      reason: 'seed-failed',
      detail: expect.stringContaining('is exhausted'),
    });
    expect(nodes.events(POOLED[2]!).map((e) => e.kind)).not.toContain('seed-served');
  });

  it('is for the install session only: no token, an unexchanged install token and a node token are refused', async () => {
    expect((await send('GET', '/v1/seed')).status).toBe(401);
    const install = tokens.issue(STRANGER, 'install', now());
    const unexchanged = await send('GET', '/v1/seed', install);
    expect(unexchanged.status).toBe(401);
    expect(JSON.parse(unexchanged.body.toString()).error).toBe('an install token is only good for POST /v1/session');
    const node = await send('GET', '/v1/seed', tokens.issue(FIXED, 'node', now()));
    expect(node.status).toBe(403);
    expect(JSON.parse(node.body.toString()).error).toBe('a node token cannot GET /v1/seed');
  });

  it('is refused once the server is installed, and a reinstall is a new cloud-init instance', async () => {
    const mac = POOLED[0]!;
    const held = await session(mac);
    nodes.changeInstallState({ mac, state: 'installed', time: now() });
    const after = await send('GET', '/v1/seed', held);
    expect(after.status).toBe(403);
    expect(nodes.events(mac, 1)[0]).toMatchObject({ kind: 'install-request-after-install', detail: 'GET /v1/seed refused: server is installed' });
    nodes.reinstall(mac, now(), 'test');
    // The old session belongs to the old attempt.
    expect((await send('GET', '/v1/seed', held)).status).toBe(403);
    const r = await send('GET', '/v1/seed', await session(mac));
    expect(r.status).toBe(200);
    expect(parse(files(r.body)['meta-data']!)['instance-id']).toBe('podboot-rack-s-5254005e0002-2');
  });
});
