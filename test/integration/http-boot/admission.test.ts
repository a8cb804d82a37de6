// Boot-storm admission on a real pod (`podboot pod run` on loopback, its
// CA-issued certificate, two racks: 127.82.1.0/24 and 127.82.2.0/24) with
// `imageStreams: { perPod: 3, perRack: 2 }`. Two servers of rack 1 hold
// their image streams open (their clients stop reading), so the third of
// that rack is sent away with 503 and Retry-After while rack 2 streams;
// HEAD and the manifest are never held back; once a stream ends, curl's own
// --retry (which honours Retry-After) gets the image; a cut stream keeps its
// slot for its resume. Outcomes only, never times.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';
import { placeStage2 } from '../../helpers/stage2.js';

const POD = 'rack-adm';
const RACK1 = '127.82.1.0/24';
const RACK2 = '127.82.2.0/24';
const SERVERS = {
  a1: { mac: '52:54:00:82:01:11', address: '127.82.1.11' },
  a2: { mac: '52:54:00:82:01:12', address: '127.82.1.12' },
  a3: { mac: '52:54:00:82:01:13', address: '127.82.1.13' },
  b1: { mac: '52:54:00:82:02:11', address: '127.82.2.11' },
} as const;
type Name = keyof typeof SERVERS;
// Far more than loopback's socket buffers hold: a client that stops reading holds its stream open.
const IMAGE_SIZE = 32 * 1024 * 1024 + 5;
const base = 24000 + Math.floor(Math.random() * 4000) * 2;
const PORTS = { dhcp: base, tftp: base + 1, http: base + 2, https: base + 3, relay: base + 4 };

const POD_YAML = `apiVersion: podboot/v1
kind: Pod
metadata: { name: ${POD} }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${PORTS.dhcp}, tftpPort: ${PORTS.tftp}, httpPort: ${PORTS.http}, httpsPort: ${PORTS.https} }
  relays: [127.82.1.1, 127.82.2.1]
  subnets:
    - { cidr: ${RACK1}, gateway: 127.82.1.1 }
    - { cidr: ${RACK2}, gateway: 127.82.2.1 }
  nodes:
${Object.values(SERVERS)
  .map((s) => `    - { mac: "${s.mac}", address: ${s.address} }`)
  .join('\n')}
  unknownNodes: ignore
  stage2: { image: stage2-lab, version: "1.0" }
  imageStreams: { perPod: 3, perRack: 2 }
`;

let dir: string;
let state: string;
let image: Buffer;
let pod: Daemon;
const sessions = {} as Record<Name, string>;
const lab = new Lab('pbad');

function podboot(...args: string[]): string {
  const r = spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: dir });
  expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
  return r.stdout;
}

const rootCa = () => join(state, POD, 'tls', 'root.pem');
const https = (path: string) => `https://127.0.0.1:${PORTS.https}${path}`;

interface Curl {
  status: number;
  body: Buffer;
  headers: string;
  stderr: string;
}

/** curl from one server's address, trusting only the pod's root CA. */
function curl(url: string, from: string, args: string[] = []): Curl {
  const out = join(dir, `curl-${randomBytes(4).toString('hex')}`);
  const r = spawnSync('curl', ['-sS', '--interface', from, '--cacert', rootCa(), '-o', out, '-D', `${out}.h`, '-w', '%{http_code}', ...args, url], { encoding: 'utf8' });
  const read = (p: string) => {
    try {
      return readFileSync(p);
    } catch {
      return Buffer.alloc(0);
    }
  };
  const res = { status: Number(r.stdout), body: read(out), headers: read(`${out}.h`).toString(), stderr: r.stderr };
  rmSync(out, { force: true });
  rmSync(`${out}.h`, { force: true });
  return res;
}

/** What stage1 holds: a relayed lease, the iPXE script's install token from that address, exchanged for a session. */
function session(name: Name): string {
  const s = SERVERS[name];
  const relay = `${s.address.replace(/\.\d+$/, '.1')}:${PORTS.relay}`;
  const out = podboot('dhcp', 'probe', '--server', `127.0.0.1:${PORTS.dhcp}`, '--relay', relay, '--mac', s.mac, '--arch', '0', '--timeout', '5000');
  expect(out).toContain(`"yiaddr":"${s.address}"`);
  const script = curl(`http://127.0.0.1:${PORTS.http}/ipxe/${s.mac.replace(/:/g, '-')}.ipxe`, s.address).body.toString();
  const token = / podboot\.token=(\S+)/.exec(script)?.[1];
  expect(token, script).toBeDefined();
  const r = curl(https('/v1/session'), s.address, ['-X', 'POST', '-H', `Authorization: Bearer ${token}`]);
  expect(r.status, r.body.toString()).toBe(200);
  return r.body.toString().trim();
}

const auth = (name: Name) => ['-H', `Authorization: Bearer ${sessions[name]}`];

/** A GET of the image that reads nothing of the body until told to: it holds its stream open. */
function held(name: Name): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(https('/v1/stage2/image'), { localAddress: SERVERS[name].address, ca: readFileSync(rootCa()), headers: { authorization: `Bearer ${sessions[name]}` }, agent: false }, (res) =>
      resolve({ req, res }),
    );
    req.on('error', reject);
    req.end();
  });
}

function drain(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const sha = createHash('sha256');
    res.on('data', (d: Buffer) => sha.update(d));
    res.on('end', () => resolve(sha.digest('hex')));
    res.on('error', reject);
    res.resume();
  });
}

/** The pod's own metrics, from its socket in the state directory. */
function metrics(): string {
  const r = spawnSync('curl', ['-sS', '--unix-socket', join(state, POD, 'metrics.sock'), 'http://pod/metrics'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'pbad-admission-'));
  state = join(dir, 'state');
  const ca = join(dir, 'ca');
  podboot('ca', 'init', '--out', ca, '--org', 'Admission Test');
  podboot('ca', 'issue-signer', 'ci', '--ca', ca);
  image = randomBytes(IMAGE_SIZE);
  writeFileSync(join(dir, 'stage2.img'), image);
  podboot('sign', 'stage2.img', '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'stage2-lab', '--version', '1.0', '--pods', POD);
  placeStage2(join(dir, 'stage2.img'), join(state, POD), 'stage2-lab@1.0');
  writeFileSync(join(dir, `${POD}.yaml`), POD_YAML);
  pod = lab.spawn(undefined, process.execPath, [PODBOOT, 'pod', 'run', join(dir, `${POD}.yaml`), '--state', state, '--ca', ca], 'pod');
  await pod.waitFor(/http boot listening/, 30_000);
  for (const name of Object.keys(SERVERS) as Name[]) sessions[name] = session(name);
}, 120_000);

afterAll(async () => {
  await lab.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('boot-storm admission of image streams', () => {
  it('admits two streams per rack and three per pod; the third of a rack is told when to come back; HEAD and the manifest are never held back', async () => {
    const want = createHash('sha256').update(image).digest('hex');
    const a1 = await held('a1');
    const a2 = await held('a2');
    expect([a1.res.statusCode, a2.res.statusCode]).toEqual([200, 200]);

    // Rack 1 is full: a3 is sent away, with when to come back and one line of why.
    const refused = curl(https('/v1/stage2/image'), SERVERS.a3.address, auth('a3'));
    expect(refused.status).toBe(503);
    const retryAfter = /^retry-after: (\d+)\r?$/im.exec(refused.headers)?.[1];
    expect(retryAfter, refused.headers).toBeDefined();
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(30);
    const body = refused.body.toString();
    expect(body.split('\n')).toEqual([expect.any(String), '']);
    expect(JSON.parse(body).error).toMatch(new RegExp(`^busy: 2 image streams already running for rack ${RACK1.replace(/[./]/g, '\\$&')}; retry in ${retryAfter} s$`));

    // Never refused, however full the rack: a HEAD (no stream), the manifest and the signatures.
    const head = curl(https('/v1/stage2/image'), SERVERS.a3.address, ['-I', ...auth('a3')]);
    expect(head.status).toBe(200);
    expect(head.headers).toMatch(new RegExp(`content-length: ${IMAGE_SIZE}\\r?\\n`, 'i'));
    for (const f of ['manifest.json', 'manifest.json.p7s', 'image.p7s']) expect(curl(https(`/v1/stage2/${f}`), SERVERS.a3.address, auth('a3')).status, f).toBe(200);

    // Rack 2 has its own limit: b1 streams while rack 1 is full (the pod's third stream).
    const b1 = curl(https('/v1/stage2/image'), SERVERS.b1.address, auth('b1'));
    expect(b1.status).toBe(200);
    expect(b1.body.equals(image)).toBe(true);

    // a1 finishes: curl --retry waits out the 503 (Retry-After) if it comes before the slot is free, and gets the image.
    expect(await drain(a1.res)).toBe(want);
    const retried = curl(https('/v1/stage2/image'), SERVERS.a3.address, ['--retry', '5', '--retry-max-time', '100', ...auth('a3')]);
    expect(retried.status, retried.stderr).toBe(200);
    expect(retried.body.equals(image)).toBe(true);

    // A stream cut by its client keeps its slot for the resume (curl -C - asks for the rest with a Range)...
    a2.req.destroy();
    const a1again = await held('a1');
    expect(a1again.res.statusCode).toBe(200);
    expect(curl(https('/v1/stage2/image'), SERVERS.a3.address, auth('a3')).status).toBe(503);
    // ...which is admitted although the rack is full, and ends the server's stream with the last byte.
    const resumed = curl(https('/v1/stage2/image'), SERVERS.a2.address, ['-r', '1000-', ...auth('a2')]);
    expect(resumed.status).toBe(206);
    expect(resumed.body.equals(image.subarray(1000))).toBe(true);
    expect(await drain(a1again.res)).toBe(want);

    // The pod's metrics: nothing running at the end, the peaks at the limits, the refusals by limit and as 503 busy.
    await vi.waitFor(() => expect(metric(metrics(), 'podboot_http_image_streams')).toBe(0), { timeout: 10_000, interval: 100 });
    const m = metrics();
    expect(metric(m, 'podboot_http_image_streams_peak')).toBe(3);
    expect(metric(m, `podboot_http_image_streams_rack_peak{rack="${RACK1}"}`)).toBe(2);
    expect(metric(m, `podboot_http_image_streams_rack_peak{rack="${RACK2}"}`)).toBe(1);
    expect(metric(m, 'podboot_http_image_streams_refused_total{limit="rack"}')).toBeGreaterThanOrEqual(2);
    expect(metric(m, 'podboot_http_image_streams_refused_total{limit="pod"}')).toBe(0);
    expect(metric(m, 'podboot_http_refused_total{code="503",reason="busy"}')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'podboot_http_image_streams_admitted_total')).toBe(5);
    await pod.waitFor(/"reason":"busy"/, 5000);
  }, 120_000);
});
