// The pod's HTTP(S) boot server as a booting server and curl see it: a real
// `podboot pod run` on loopback with a CA-issued certificate, clients
// speaking from the pod's subnet (127.77.0.0/24 is all local on lo). Tokens
// are obtained the way stage1 gets them: a relayed DHCP lease, the server's
// iPXE script fetched from that leased address, then the install token
// exchanged for a session (POST /v1/session) from the same address.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../../src/install/token.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';
import { placeStage2 } from '../../helpers/stage2.js';
import { tftpFetch } from '../../helpers/tftp-client.js';

const NODE_A = '52:54:00:77:00:10';
const NODE_B = '52:54:00:77:00:11';
const UNKNOWN = '52:54:00:77:00:99';
const FROM = '127.77.0.5';
const IMAGE_SIZE = 3 * 1024 * 1024 + 17;
const base = 20000 + Math.floor(Math.random() * 4000) * 2;
const PORTS = { dhcp: base, tftp: base + 1, http: base + 2, https: base + 3, relay: base + 4 };

const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-h }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${PORTS.dhcp}, tftpPort: ${PORTS.tftp}, httpPort: ${PORTS.http}, httpsPort: ${PORTS.https} }
  relays: [127.77.0.1]
  subnets:
    - { cidr: 127.77.0.0/24, gateway: 127.77.0.1, pool: 127.77.0.100-127.77.0.199 }
  nodes:
    - { mac: "${NODE_A}", hostname: alpha, address: 127.77.0.10 }
    - { mac: "${NODE_B}", hostname: bravo, address: 127.77.0.11 }
  unknownNodes: ignore
  stage2: { image: stage2-lab, version: "1.0" }
`;

let dir: string;
let state: string;
let image: Buffer;
let pod: Daemon;
const lab = new Lab('pbh');

function podboot(...args: string[]) {
  const r = spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: dir });
  expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
  return r.stdout;
}

interface Curl {
  status: number;
  body: Buffer;
  headers: string;
  code: number;
  stderr: string;
}

/** curl from the pod's subnet (or `from`), trusting only the pod's root CA. */
function curl(url: string, opts: { token?: string; from?: string; args?: string[] } = {}): Curl {
  const out = join(dir, `curl-${randomBytes(4).toString('hex')}`);
  const args = ['-sS', '--interface', opts.from ?? FROM, '--cacert', join(state, 'rack-h', 'tls', 'root.pem'), '-o', out, '-D', `${out}.h`, '-w', '%{http_code}', ...(opts.args ?? [])];
  if (opts.token) args.push('-H', `Authorization: Bearer ${opts.token}`);
  const r = spawnSync('curl', [...args, url], { encoding: 'utf8' });
  const read = (p: string) => {
    try {
      return readFileSync(p);
    } catch {
      return Buffer.alloc(0);
    }
  };
  const res = { status: Number(r.stdout), body: read(out), headers: read(`${out}.h`).toString(), code: r.status ?? -1, stderr: r.stderr };
  rmSync(out, { force: true });
  rmSync(`${out}.h`, { force: true });
  return res;
}

const https = (path: string) => `https://127.0.0.1:${PORTS.https}${path}`;
const http = (path: string) => `http://127.0.0.1:${PORTS.http}${path}`;
const post = (path: string, token: string, body: unknown, from?: string) =>
  curl(https(path), { token, from, args: ['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body)] });

/** A relayed DHCP exchange for `mac` (as its rack's relay would forward it): the address the pod leased it. */
function lease(mac: string): string {
  const out = podboot('dhcp', 'probe', '--server', `127.0.0.1:${PORTS.dhcp}`, '--relay', `127.77.0.1:${PORTS.relay}`, '--mac', mac, '--arch', '0', '--timeout', '5000');
  const ack = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; yiaddr: string })
    .find((p) => p.type === 'ACK');
  expect(ack?.yiaddr, out).toMatch(/^127\.77\.0\.\d+$/);
  return ack!.yiaddr;
}

/** What stage1 is handed: the token on the kernel command line of its iPXE script, fetched by the server itself. */
function tokenFromScript(mac: string): string {
  const r = curl(http(`/ipxe/${mac.replace(/:/g, '-')}.ipxe`), { from: lease(mac) });
  expect(r.status).toBe(200);
  const m = / podboot\.token=(\S+)/.exec(r.body.toString());
  expect(m, r.body.toString()).not.toBeNull();
  return m![1]!;
}

/** POST /v1/session with an install token, from `from` (default: the server's leased address). */
function exchange(mac: string, token: string, from?: string): Curl {
  return curl(https('/v1/session'), { token, from: from ?? lease(mac), args: ['-X', 'POST'] });
}

/** What the agent works with: the session its install token bought. */
function sessionFor(mac: string): string {
  const r = exchange(mac, tokenFromScript(mac));
  expect(r.status, r.body.toString()).toBe(200);
  return r.body.toString().trim();
}

function eventsOf(mac: string): { kind: string; detail?: string }[] {
  const db = openPodDatabase(join(state, 'rack-h'));
  try {
    return new SqliteNodeStateStore(db).events(mac, 1000);
  } finally {
    db.close();
  }
}

const podArgs = () => [PODBOOT, 'pod', 'run', join(dir, 'rack-h.yaml'), '--state', state, '--ca', join(dir, 'ca')];

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'podboot-https-'));
  state = join(dir, 'state');
  const ca = join(dir, 'ca');
  podboot('ca', 'init', '--out', ca, '--org', 'HTTPS Test');
  podboot('ca', 'issue-signer', 'ci', '--ca', ca);
  image = randomBytes(IMAGE_SIZE);
  writeFileSync(join(dir, 'stage2.img'), image);
  podboot('sign', 'stage2.img', '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'stage2-lab', '--version', '1.0', '--pods', 'rack-h');
  placeStage2(join(dir, 'stage2.img'), join(state, 'rack-h'), 'stage2-lab@1.0');
  // The same bytes signed as an older version, held side by side: a server assigned 1.0 that installs them is on 1.0.
  writeFileSync(join(dir, 'stage2-0.9.img'), image);
  podboot('sign', 'stage2-0.9.img', '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'stage2-lab', '--version', '0.9', '--pods', 'rack-h');
  placeStage2(join(dir, 'stage2-0.9.img'), join(state, 'rack-h'), 'stage2-lab@0.9');
  writeFileSync(join(dir, 'rack-h.yaml'), POD);
  pod = lab.spawn(undefined, process.execPath, podArgs(), 'pod');
  await pod.waitFor(/http boot listening/);
});

afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTP(S) boot server', () => {
  it('serves a provisioned server its iPXE script with HTTP kernel and initrd URLs and an install token; others boot locally', () => {
    const r = curl(http(`/ipxe/${NODE_A.replace(/:/g, '-')}.ipxe`), { from: lease(NODE_A) });
    expect(r.status).toBe(200);
    const script = r.body.toString();
    expect(script).toMatch(/^#!ipxe\n/);
    expect(script).toContain(`kernel http://127.0.0.1:${PORTS.http}/boot/stage1/vmlinuz initrd=initrd`);
    expect(script).toContain(`initrd --name initrd http://127.0.0.1:${PORTS.http}/boot/stage1/initrd.img`);
    expect(script).toMatch(/podboot\.mac=52-54-00-77-00-10 podboot\.token=pb1\.install\.525400770010\.1\.\d+\.[\w-]{43}\n/);
    // unknownNodes: ignore → the unknown server gets no stage1 and no token.
    const u = curl(http(`/ipxe/${UNKNOWN}.ipxe`)).body.toString();
    expect(u).toContain('sanboot --no-describe --drive 0x80');
    expect(u).not.toContain('token');
  });

  it('refuses clients outside the pod, the API over plain HTTP, and traversal in the boot tree', async () => {
    expect(curl(http(`/ipxe/${NODE_A}.ipxe`), { from: '127.9.9.9' }).status).toBe(403);
    const token = tokenFromScript(NODE_A);
    expect(curl(http('/v1/kickstart'), { token }).status).toBe(403);
    expect(curl(http('/boot/../pod.db'), { args: ['--path-as-is'] }).status).toBe(400);
    expect(curl(http('/boot/%2e%2E/pod.db'), { args: ['--path-as-is'] }).status).toBe(400);
    expect(curl(http('/boot/stage1/../../token.key'), { args: ['--path-as-is'] }).status).toBe(400);
    await pod.waitFor(/"path":"\/boot\/%2e%2E\/pod\.db","status":400/, 5000);
    expect(curl(http('/boot/stage1/%E0%A4%A'), { args: ['--path-as-is'] }).status).toBe(400);
    // The boot tree's own checks still stand behind it (absolute names).
    expect(curl(http('/boot///etc/passwd'), { args: ['--path-as-is'] }).status).toBe(403);
  });

  it('speaks TLS 1.2 and 1.3 only, with a certificate that chains to the root CA', () => {
    expect(curl(https('/v1/health')).code).toBe(0);
    const old = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${PORTS.https}`, '-tls1_1'], { input: '', encoding: 'utf8' });
    expect(old.status).not.toBe(0);
    const t12 = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${PORTS.https}`, '-tls1_2', '-CAfile', join(state, 'rack-h', 'tls', 'root.pem'), '-verify_return_error'], {
      input: '',
      encoding: 'utf8',
    });
    expect(t12.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(t12.stdout).toMatch(/Protocol\s*: TLSv1\.2/);
  });

  it('streams the stage2 files byte-identical with the token; resumes with Range and If-Range', () => {
    const token = sessionFor(NODE_A);
    const full = curl(https('/v1/stage2/image'), { token });
    expect(full.status).toBe(200);
    expect(full.body.equals(image)).toBe(true);
    const etag = /etag: (".*")/i.exec(full.headers)![1]!;
    expect(etag).toBe(`"${createHash('sha256').update(image).digest('hex')}"`);
    expect(full.headers).toMatch(/accept-ranges: bytes/i);
    const manifest = JSON.parse(curl(https('/v1/stage2/manifest.json'), { token }).body.toString()) as { name: string; size: number };
    expect(manifest).toMatchObject({ name: 'stage2-lab', size: IMAGE_SIZE });
    for (const f of ['image.p7s', 'manifest.json.p7s']) expect(curl(https(`/v1/stage2/${f}`), { token }).body.length).toBeGreaterThan(500);

    const part = curl(https('/v1/stage2/image'), { token, args: ['-H', 'Range: bytes=1000000-', '-H', `If-Range: ${etag}`] });
    expect(part.status).toBe(206);
    expect(part.headers).toMatch(new RegExp(`content-range: bytes 1000000-${IMAGE_SIZE - 1}/${IMAGE_SIZE}`, 'i'));
    expect(part.body.equals(image.subarray(1000000))).toBe(true);
    // A validator of another version: the whole file, never a splice.
    const other = curl(https('/v1/stage2/image'), { token, args: ['-H', 'Range: bytes=1000000-', '-H', 'If-Range: "0000"'] });
    expect(other.status).toBe(200);
    expect(other.body.length).toBe(IMAGE_SIZE);
    expect(curl(https('/v1/stage2/image'), { token, args: ['-H', `Range: bytes=${IMAGE_SIZE}-`] }).status).toBe(416);
    expect(curl(https('/v1/stage2/image'), { token, args: ['-I'] }).headers).toMatch(new RegExp(`content-length: ${IMAGE_SIZE}`, 'i'));
    expect(curl(https('/v1/stage2/image'), { token, args: ['-H', `If-None-Match: ${etag}`] }).status).toBe(304);
    // Whole, partial and aborted downloads leave no error behind (a descriptor closed twice once logged EBADF here).
    expect(curl(https('/v1/stage2/image'), { token, args: ['--max-filesize', '1', '--limit-rate', '1M'] }).code).not.toBe(0);
    expect(pod.log()).not.toMatch(/"level":"error"/);
  });

  it('refuses a missing, malformed, tampered, expired or stale token, and logs none of them', () => {
    const good = sessionFor(NODE_A);
    expect(curl(https('/v1/stage2/image')).status).toBe(401);
    expect(curl(https('/v1/kickstart'), { token: 'not-a-token' }).status).toBe(401);
    const last = good.at(-1) === 'A' ? 'B' : 'A';
    expect(curl(https('/v1/kickstart'), { token: good.slice(0, -1) + last }).status).toBe(401);
    // Genuinely signed with the pod's secret, but expired a second ago.
    const secret = readFileSync(join(state, 'rack-h', 'token.key'));
    const expired = issueToken(secret, { scope: 'install', mac: NODE_A, attempt: 1, expires: Math.floor(Date.now() / 1000) - 1 });
    const r = curl(https('/v1/kickstart'), { token: expired });
    expect(r.status).toBe(401);
    expect(r.body.toString()).toContain('token expired');
    // Another server's scope: a node token cannot download.
    const nodeToken = issueToken(secret, { scope: 'node', mac: NODE_A, attempt: 1, expires: Math.floor(Date.now() / 1000) + 60 });
    expect(curl(https('/v1/stage2/image'), { token: nodeToken }).status).toBe(403);
    // The query-string form works and never reaches the log.
    expect(curl(https(`/v1/kickstart?token=${good}`)).status).toBe(200);
    expect(pod.log()).not.toContain(good.split('.').at(-1)!);
    expect(pod.log()).not.toContain(expired.split('.').at(-1)!);
  });

  it('renders the kickstart only for the token owner, whatever the URL asks', () => {
    const a = curl(https(`/v1/kickstart?mac=${NODE_B}`), { token: sessionFor(NODE_A) }).body.toString();
    expect(a).toContain("hostname='alpha'");
    expect(a).not.toContain('bravo');
    expect(a).toMatch(/PODBOOT_NODE_TOKEN=pb1\.node\.525400770010\./);
    expect(a).toContain('-----BEGIN CERTIFICATE-----');
    const b = curl(https('/v1/kickstart'), { token: sessionFor(NODE_B) }).body.toString();
    expect(b).toContain("hostname='bravo'");
    expect(b).toMatch(/PODBOOT_NODE_TOKEN=pb1\.node\.525400770011\./);
  });

  it('follows the install states, refuses steps out of order, and stops serving an installed server until a reinstall', () => {
    const token = sessionFor(NODE_B);
    expect(post('/v1/events', token, { state: 'installed' }).status).toBe(409);
    for (const s of ['stage1', 'stage2-fetched', 'verified', 'installing']) expect(post('/v1/events', token, { state: s }).status).toBe(200);
    // stage1 says which image it verified and wrote, by its digest; the pod names it
    const done = post('/v1/events', token, { state: 'installed', sha256: createHash('sha256').update(image).digest('hex') });
    expect(done.status).toBe(200);
    const { nodeToken } = JSON.parse(done.body.toString()) as { nodeToken: string };
    expect(nodeToken).toMatch(/^pb1\.node\.525400770011\./);

    // Installed: nothing to install for whoever holds the MAC; the boot config says local disk.
    expect(curl(https('/v1/stage2/image'), { token }).status).toBe(403);
    expect(post('/v1/events', token, { state: 'stage1' }).status).toBe(409);
    expect(curl(http(`/ipxe/${NODE_B}.ipxe`)).body.toString()).toContain('sanboot');
    expect(post('/v1/events', nodeToken, { state: 'booted-from-disk' }).status).toBe(200);
    expect(post('/v1/events', nodeToken, { state: 'heartbeat' }).status).toBe(200);

    const shown = JSON.parse(podboot('nodes', 'show', NODE_B, '--pod', 'rack-h', '--state', state, '--json')) as { node: { state: string; attempt: number }; events: { kind: string }[] };
    expect(shown.node).toMatchObject({ state: 'booted-from-disk', attempt: 1, image: 'stage2-lab@1.0' });
    expect(shown.events.map((e) => e.kind)).toEqual(
      expect.arrayContaining(['stage1', 'stage2-fetched', 'verified', 'installing', 'installed', 'booted-from-disk', 'install-request-after-install', 'report-refused']),
    );

    podboot('nodes', 'reinstall', NODE_B, '--pod', 'rack-h', '--state', state);
    // Tokens of the old attempt are dead; the new boot config carries a fresh one.
    expect(curl(https('/v1/kickstart'), { token }).status).toBe(403);
    expect(post('/v1/events', nodeToken, { state: 'heartbeat' }).status).toBe(403);
    const fresh = tokenFromScript(NODE_B);
    expect(fresh).toMatch(/^pb1\.install\.525400770011\.2\./);
    const session = exchange(NODE_B, fresh).body.toString().trim();
    expect(session).toMatch(/^pb1s\.525400770011\.2\./);
    expect(curl(https('/v1/stage2/manifest.json'), { token: session }).status).toBe(200);
    const list = podboot('nodes', 'list', '--pod', 'rack-h', '--state', state);
    // discovered by the reinstall, then handed its boot file again by DHCP (the lease before the fresh script)
    expect(list).toMatch(/52:54:00:77:00:11\s+pxe\s+2\s/);
    // the new install starts writing the disk: the old image is gone from it; an image the pod does not assign is named by its digest alone
    for (const s of ['stage1', 'stage2-fetched', 'verified', 'installing']) expect(post('/v1/events', session, { state: s }).status).toBe(200);
    expect(JSON.parse(podboot('nodes', 'show', NODE_B, '--pod', 'rack-h', '--state', state, '--json')).node).not.toHaveProperty('image');
    expect(post('/v1/events', session, { state: 'installed', sha256: 'ab'.repeat(32) }).status).toBe(200);
    expect(JSON.parse(podboot('nodes', 'show', NODE_B, '--pod', 'rack-h', '--state', state, '--json')).node).toMatchObject({ state: 'installed', image: `sha256:${'ab'.repeat(32)}` });
  });

  it("counts every answer in the pod's metrics: status codes, bytes, callbacks and a request-time histogram", () => {
    const r = spawnSync('curl', ['-sS', '--unix-socket', join(state, 'rack-h', 'metrics.sock'), 'http://pod/metrics'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const m = r.stdout;
    const value = (re: RegExp) => Number(re.exec(m)?.[1]);
    expect(value(/^podboot_http_requests_total\{code="200"\} (\d+)$/m)).toBeGreaterThan(10);
    expect(value(/^podboot_http_requests_total\{code="401"\} (\d+)$/m)).toBeGreaterThanOrEqual(4);
    expect(value(/^podboot_http_sent_bytes_total (\d+)$/m)).toBeGreaterThan(2 * IMAGE_SIZE);
    // NODE_B's two installs (the second after its reinstall)
    expect(value(/^podboot_http_callbacks_total\{kind="installed"\} (\d+)$/m)).toBe(2);
    const count = value(/^podboot_http_request_seconds_count (\d+)$/m);
    expect(count).toBeGreaterThan(20);
    expect(value(/^podboot_http_request_seconds_bucket\{le="\+Inf"\} (\d+)$/m)).toBe(count);
  });

  it('records a failure with its reason', () => {
    const token = sessionFor(NODE_A);
    expect(post('/v1/events', token, { state: 'stage1' }).status).toBe(200);
    expect(post('/v1/events', token, { state: 'failed', reason: 'signature', detail: 'cms verify: bad signature' }).status).toBe(200);
    expect(podboot('nodes', 'list', '--pod', 'rack-h', '--state', state)).toMatch(/52:54:00:77:00:10\s+failed\(signature\)/);
    expect(post('/v1/events', token, 'not json').status).toBe(400);
    expect(post('/v1/events', token, { state: 'pwned' }).status).toBe(400);
  });
});

describe('install credentials stay with their server', () => {
  const cfgName = (mac: string) => `pxelinux.cfg/01-${mac.replace(/:/g, '-')}`;
  const secret = () => readFileSync(join(state, 'rack-h', 'token.key'));

  it('a boot config with a token goes only to its server: TFTP error packet (code 2) and 403 for anyone else, with a log line and no token', async () => {
    const a = lease(NODE_A);
    const b = lease(NODE_B);
    // Another server of the same rack (its own leased address), and the pod's own address.
    for (const from of [b, '127.0.0.1', FROM]) {
      const r = await tftpFetch({ port: PORTS.tftp, file: cfgName(NODE_A), localAddress: from, timeoutMs: 1000, maxRetries: 3 });
      expect(r.ok, from).toBe(false);
      expect(r.error, from).toMatchObject({ code: 2, message: expect.stringMatching(/Access violation/) });
      expect(r.data.toString()).not.toContain('podboot.token');
    }
    // The real tftp-hpa client (it asks from 127.0.0.1): an error, no file.
    const out = join(dir, 'hpa-cfg');
    const hpa = spawnSync('tftp', ['127.0.0.1', String(PORTS.tftp), '-m', 'binary', '-c', 'get', cfgName(NODE_A), out], { encoding: 'utf8', timeout: 15_000 });
    expect(`${hpa.stdout}${hpa.stderr}`).toMatch(/Error code 2: Access violation/);
    expect(curl(http(`/ipxe/${NODE_A.replace(/:/g, '-')}.ipxe`), { from: b }).status).toBe(403);
    await pod.waitFor(/boot config with an install token refused/, 5000);
    const line = pod
      .log()
      .split('\n')
      .find((l) => l.includes('boot config with an install token refused'))!;
    expect(line).toContain('"pod":"rack-h"');
    expect(pod.log()).toMatch(new RegExp(`"node":"${NODE_A}","file":"pxelinux\\.cfg/01-52-54-00-77-00-10","source":"${b.replace(/\./g, '\\.')}"`));
    // The server itself, from its leased address: its config, token included, over TFTP and HTTP.
    const own = await tftpFetch({ port: PORTS.tftp, file: cfgName(NODE_A), localAddress: a, timeoutMs: 1000 });
    expect(own.ok).toBe(true);
    expect(own.data.toString()).toMatch(/podboot\.token=pb1\.install\.525400770010\./);
    const token = / podboot\.token=(\S+)/.exec(own.data.toString())![1]!;
    expect(pod.log()).not.toContain(token.split('.').at(-1)!);
  });

  it('the install token buys one session, from its server; the token again is refused with 401 and an "install token replayed" event, also after a restart', async () => {
    const a = lease(NODE_A);
    // Tokens are minted per second: make sure this one is not one an earlier test exchanged.
    await new Promise((r) => setTimeout(r, 1100));
    const token = tokenFromScript(NODE_A);
    // Not a download credential, and not something a stranger can exchange (nor burn).
    expect(curl(https('/v1/stage2/manifest.json'), { token }).status).toBe(401);
    expect(exchange(NODE_A, token, FROM).status).toBe(403);
    const first = exchange(NODE_A, token, a);
    expect(first.status).toBe(200);
    expect(first.headers).toMatch(/cache-control: no-store/i);
    const session = first.body.toString().trim();
    expect(session).toMatch(/^pb1s\.525400770010\.1\.\d+\.[\w-]{43}$/);
    expect(curl(https('/v1/stage2/manifest.json'), { token: session }).status).toBe(200);
    // A retry from the same address right away (the answer was lost): the same session, no event.
    const retry = exchange(NODE_A, token, a);
    expect(retry.status).toBe(200);
    expect(retry.body.toString().trim()).toBe(session);

    // The token sniffed off the wire and replayed from elsewhere in the rack.
    const replay = exchange(NODE_A, token, FROM);
    expect(replay.status).toBe(401);
    expect(replay.body.toString()).toContain('install token already used');
    // ... or presented where a session is wanted.
    expect(curl(https('/v1/kickstart'), { token, from: FROM }).status).toBe(401);
    const replayed = eventsOf(NODE_A).filter((e) => e.kind === 'install-token-replayed');
    expect(replayed.length).toBeGreaterThanOrEqual(2);
    expect(replayed[0]!.detail).toContain(`from ${FROM}`);
    expect(replayed[0]!.detail).toContain(`exchanged from ${a}`);
    expect(eventsOf(NODE_A).some((e) => e.kind === 'install-token-exchanged' && e.detail === `from ${a}`)).toBe(true);
    await pod.waitFor(/install token replayed/, 5000);
    expect(pod.log()).toMatch(new RegExp(`"node":"${NODE_A}","source":"${FROM.replace(/\./g, '\\.')}"[^\n]*install token replayed`));
    expect(pod.log()).not.toContain(token.split('.').at(-1)!);
    expect(pod.log()).not.toContain(session.split('.').at(-1)!);

    // A restarted instance remembers: the used token is still refused.
    await pod.stop();
    // (a log file of its own: the first one's already says "listening")
    pod = lab.spawn(undefined, process.execPath, podArgs(), 'pod-restarted');
    await pod.waitFor(/http boot listening/);
    const before = eventsOf(NODE_A).filter((e) => e.kind === 'install-token-replayed').length;
    const again = exchange(NODE_A, token, FROM);
    expect(again.status, `${again.stderr}\n${pod.log()}`).toBe(401);
    expect(eventsOf(NODE_A).filter((e) => e.kind === 'install-token-replayed').length).toBe(before + 1);
    // The session it bought still works (it is bound to the MAC and attempt, not to the process).
    expect(curl(https('/v1/stage2/manifest.json'), { token: session }).status).toBe(200);
  });

  it('a session is not an install token, and neither can be forged from the other', () => {
    const session = sessionFor(NODE_A);
    expect(exchange(NODE_A, session).status).toBe(401);
    // A token signed with the pod's secret in the session's shape is not a session (separate key).
    const now = Math.floor(Date.now() / 1000);
    const install = issueToken(secret(), { scope: 'install', mac: NODE_A, attempt: 1, expires: now + 60 });
    const forged = `pb1s.525400770010.1.${now + 60}.${install.split('.').at(-1)}`;
    expect(curl(https('/v1/stage2/manifest.json'), { token: forged }).status).toBe(401);
  });
});
