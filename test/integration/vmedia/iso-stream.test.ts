// The stage1 ISO as a BMC fetches it from a running pod (`podboot pod run` on
// loopback, curl as the BMC and as the servers): one generic ISO on disk, each
// server's config block filled in while it streams. Two servers' ISOs differ
// only inside the block; byte ranges straddling the block come out patched;
// the token in the URL must be that server's; and the token the block carries
// buys one session, only from that server's static address.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCpio } from '../../../src/images/cpio.js';
import { BLOCK_FILE, BLOCK_MAGIC, CONTENT_BYTES } from '../../../src/vmedia/block.js';
import { buildVmediaIso, type IsoReport } from '../../../src/vmedia/iso-build.js';
import { mintVmediaToken } from '../../../src/vmedia/iso-url.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const A = '52:54:00:78:00:10';
const B = '52:54:00:78:00:11';
const NO_BMC = '52:54:00:78:00:12';
const BMC_SOURCE = '127.78.0.5';
const STAGE1 = join(process.cwd(), '.cache', 'stage1');
const base = 24000 + Math.floor(Math.random() * 4000) * 2;
const PORTS = { dhcp: base, tftp: base + 1, http: base + 2, https: base + 3 };

const POD = (pw: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-v }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${PORTS.dhcp}, tftpPort: ${PORTS.tftp}, httpPort: ${PORTS.http}, httpsPort: ${PORTS.https} }
  relays: [127.78.0.1]
  subnets:
    - { cidr: 127.78.0.0/24, gateway: 127.78.0.1, dns: [127.78.0.2, 127.78.0.3], pool: 127.78.0.100-127.78.0.199 }
  nodes:
    - { mac: "${A}", hostname: alpha, address: 127.78.0.10, bmc: { address: "https://127.78.0.210", username: admin, passwordFile: ${pw} } }
    - { mac: "${B}", hostname: bravo, address: 127.78.0.11, bmc: { address: "http://127.78.0.211", username: admin, passwordFile: ${pw}, plainHttpMedia: true } }
    - { mac: "${NO_BMC}", hostname: charlie, address: 127.78.0.12 }
  unknownNodes: ignore
`;

let dir: string;
let state: string;
let pod: Daemon;
let iso: IsoReport;
let generic: Buffer;
const lab = new Lab('vm-iso');
const now = () => Math.floor(Date.now() / 1000);
const mac12 = (mac: string) => mac.replace(/:/g, '');

interface Got {
  status: number;
  body: Buffer;
  headers: string;
}

function curl(url: string, opts: { from?: string; args?: string[] } = {}): Got {
  const out = join(dir, `curl-${randomBytes(4).toString('hex')}`);
  const r = spawnSync(
    'curl',
    ['-sS', '--interface', opts.from ?? BMC_SOURCE, '--cacert', join(state, 'rack-v', 'tls', 'root.pem'), '-o', out, '-D', `${out}.h`, '-w', '%{http_code}', ...(opts.args ?? []), url],
    { encoding: 'utf8' },
  );
  const read = (p: string) => {
    try {
      return readFileSync(p);
    } catch {
      return Buffer.alloc(0);
    }
  };
  const got = { status: Number(r.stdout), body: read(out), headers: read(`${out}.h`).toString() };
  rmSync(out, { force: true });
  rmSync(`${out}.h`, { force: true });
  return got;
}

const isoPath = (mac: string, token?: string) => `/vmedia/${mac12(mac)}.iso${token === undefined ? '' : `?token=${token}`}`;
const https = (path: string) => `https://127.0.0.1:${PORTS.https}${path}`;
const http = (path: string) => `http://127.0.0.1:${PORTS.http}${path}`;

/** Every byte index where a and b differ, as [first, last] runs. */
function diffRuns(a: Buffer, b: Buffer): [number, number][] {
  expect(a.length).toBe(b.length);
  const runs: [number, number][] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else runs.push([i, i]);
  }
  return runs;
}

function blockSettings(isoBytes: Buffer): Record<string, string> {
  const text = isoBytes.subarray(iso.contentOffset, iso.contentOffset + CONTENT_BYTES).toString('latin1');
  const head = text.slice(0, text.indexOf('#end\n'));
  return Object.fromEntries(
    head
      .split('\n')
      .filter((l) => l.startsWith('PODBOOT_'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

beforeAll(async () => {
  requireBuild();
  // Cached: built by the suite's global setup already, unless its inputs changed since.
  iso = buildVmediaIso(STAGE1);
  generic = readFileSync(iso.path);
  dir = mkdtempSync(join(tmpdir(), 'vm-iso-'));
  state = join(dir, 'state');
  const pw = join(dir, 'bmc.password');
  writeFileSync(pw, 'not-used-here\n', { mode: 0o600 });
  const ca = join(dir, 'ca');
  const r = spawnSync(process.execPath, [PODBOOT, 'ca', 'init', '--out', ca, '--org', 'Vmedia Test'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  writeFileSync(join(dir, 'rack-v.yaml'), POD(pw));
  pod = lab.spawn(undefined, process.execPath, [PODBOOT, 'pod', 'run', join(dir, 'rack-v.yaml'), '--state', state, '--ca', ca, '--stage1', STAGE1], 'pod');
  await pod.waitFor(/http boot listening/);
}, 120_000);

afterAll(async () => {
  await lab.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the stage1 ISO streamed per server', () => {
  let tokenA: string;
  let tokenB: string;
  let isoA: Buffer;
  let isoB: Buffer;

  it('two servers’ ISOs differ only inside the config block; each differs from the generic ISO only there', () => {
    tokenA = mintVmediaToken(join(state, 'rack-v'), A, now());
    tokenB = mintVmediaToken(join(state, 'rack-v'), B, now());
    const a = curl(https(isoPath(A, tokenA)));
    const b = curl(https(isoPath(B, tokenB)));
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.headers).toMatch(/accept-ranges: bytes/i);
    isoA = a.body;
    isoB = b.body;
    expect(isoA.length).toBe(generic.length);
    const inBlock = ([first, last]: [number, number]) => first >= iso.contentOffset && last < iso.contentOffset + CONTENT_BYTES;
    for (const runs of [diffRuns(isoA, isoB), diffRuns(isoA, generic), diffRuns(isoB, generic)]) {
      expect(runs.length).toBeGreaterThan(0);
      expect(
        runs.filter((r) => !inBlock(r)),
        JSON.stringify(runs.slice(0, 5)),
      ).toEqual([]);
    }
    // Still a cpio the kernel unpacks: the file's header (right before its content) untouched, its size the same.
    const head = iso.contentOffset - 136;
    const entries = decodeCpio(isoA.subarray(head, iso.contentOffset + CONTENT_BYTES + 124));
    expect(entries.map((e) => [e.name, e.data.length]).at(-1)).toEqual([BLOCK_FILE, CONTENT_BYTES]);
    expect(isoA.subarray(iso.contentOffset, iso.contentOffset + BLOCK_MAGIC.length).toString()).toBe(BLOCK_MAGIC);
  });

  it('each block names its own server, static address, gateway, DNS, the pod’s URL and root CA, and its own token', () => {
    const a = blockSettings(isoA);
    expect(a).toMatchObject({
      PODBOOT_URL: `https://127.0.0.1:${PORTS.https}`,
      PODBOOT_SERVER: '127.0.0.1',
      PODBOOT_HTTPS: String(PORTS.https),
      PODBOOT_POD: 'rack-v',
      PODBOOT_MAC: '52-54-00-78-00-10',
      PODBOOT_HOSTNAME: 'alpha',
      PODBOOT_TOKEN: tokenA,
      PODBOOT_NET_ADDRESS: '127.78.0.10',
      PODBOOT_NET_PREFIX: '24',
      PODBOOT_NET_GATEWAY: '127.78.0.1',
      PODBOOT_NET_DNS: '127.78.0.2,127.78.0.3',
    });
    expect(blockSettings(isoB)).toMatchObject({ PODBOOT_MAC: '52-54-00-78-00-11', PODBOOT_TOKEN: tokenB, PODBOOT_NET_ADDRESS: '127.78.0.11' });
    const block = isoA.subarray(iso.contentOffset, iso.contentOffset + CONTENT_BYTES).toString('latin1');
    expect(block).toContain(readFileSync(join(state, 'rack-v', 'tls', 'root.pem'), 'utf8').trim());
  });

  it('answers byte ranges, patched where they cross the block, and If-Range with its ETag', () => {
    const url = https(isoPath(A, tokenA));
    const cases: [number, number][] = [
      [0, 2047],
      [iso.contentOffset - 100, iso.contentOffset + 99],
      [iso.contentOffset + 4000, iso.contentOffset + CONTENT_BYTES + 50],
      [iso.contentOffset + 10, iso.contentOffset + 20],
      [generic.length - 4096, generic.length - 1],
    ];
    for (const [from, to] of cases) {
      const r = curl(url, { args: ['-r', `${from}-${to}`] });
      expect(r.status).toBe(206);
      expect(r.headers).toMatch(new RegExp(`content-range: bytes ${from}-${to}/${generic.length}`, 'i'));
      expect(r.body.equals(isoA.subarray(from, to + 1)), `${from}-${to}`).toBe(true);
    }
    const full = curl(url);
    const etag = /etag: (".*")/i.exec(full.headers)![1]!;
    expect(curl(url, { args: ['-r', '100-199', '-H', `If-Range: ${etag}`] }).status).toBe(206);
    // Another server's ETag (another block): the whole ISO, never a splice of two.
    const etagB = /etag: (".*")/i.exec(curl(https(isoPath(B, tokenB))).headers)![1]!;
    expect(etagB).not.toBe(etag);
    expect(curl(url, { args: ['-r', '100-199', '-H', `If-Range: ${etagB}`] }).status).toBe(200);
    expect(curl(url, { args: ['-r', `${generic.length}-`] }).status).toBe(416);
  });

  it('refuses another server’s token, a tampered one, none, a server without a bmc entry, and plain HTTP unless asked for', () => {
    expect(curl(https(isoPath(A, tokenB))).status).toBe(403);
    expect(curl(https(isoPath(B, tokenA))).status).toBe(403);
    expect(curl(https(isoPath(A, `${tokenA.slice(0, -2)}xx`))).status).toBe(401);
    expect(curl(https(isoPath(A))).status).toBe(401);
    expect(curl(https(isoPath(NO_BMC, mintVmediaToken(join(state, 'rack-v'), NO_BMC, now())))).status).toBe(404);
    // A's BMC entry does not set plainHttpMedia; B's does, and gets the same bytes as over TLS.
    expect(curl(http(isoPath(A, tokenA))).status).toBe(403);
    const plainB = curl(http(isoPath(B, tokenB)));
    expect(plainB.status).toBe(200);
    expect(plainB.body.equals(isoB)).toBe(true);
    // A BMC outside the pod's networks is not served at all.
    expect(curl(https(isoPath(A, tokenA)), { from: '127.9.9.9' }).status).toBe(403);
    // The query string (the token) never reaches the log.
    expect(pod.log()).not.toContain(tokenA.slice(-43));
  });

  it('the token in A’s block buys one session, only from A’s static address; B’s token fails from A', () => {
    const session = (token: string, from: string) => curl(https('/v1/session'), { from, args: ['-X', 'POST', '-H', `Authorization: Bearer ${token}`] });
    // B's ISO booted on A's address (the wrong server's ISO): refused, and B's token is not used up by it.
    expect(session(tokenB, '127.78.0.10').status).toBe(403);
    expect(session(tokenA, '127.78.0.11').status).toBe(403);
    const first = session(tokenA, '127.78.0.10');
    expect(first.status, first.body.toString()).toBe(200);
    expect(first.body.toString()).toMatch(/^pb1s\./);
    // Later than the retry window or from elsewhere it is a replay: the token worked once.
    expect(session(tokenA, '127.78.0.99').status).toBe(401);
    expect(session(tokenB, '127.78.0.11').status).toBe(200);
  });
});
