// Checksums at the last hop (issue 15, I3; must-show 4): a pod's cached
// image copy, placed by `podboot images onboard` from a real catalog and
// served by a real `podboot pod run` on loopback, corrupted on disk, found by
// `podboot images check`, moved aside, placed again from the catalog, with an
// event in the pod's database; and an install download from the running pod
// afterwards gets the signed bytes. Also a catalog blob that is bad itself,
// and a FIFO or symlink in place of the cached image.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  closeSync,
  readSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, type CatalogEntry } from '../../../src/catalog/catalog.js';
import { openPodState } from '../../../src/store/pod-state.js';
import { admitSigned } from '../../helpers/catalog.js';
import { captureLogger } from '../../helpers/logs.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const NODE = '52:54:00:79:00:10';
const FROM = '127.79.0.5';
const IMAGE_SIZE = 3 * 1024 * 1024 + 17;
const REF = 'stage2-lab@1.0';
const base = 24000 + Math.floor(Math.random() * 4000) * 2;
const PORTS = { dhcp: base, tftp: base + 1, http: base + 2, https: base + 3, relay: base + 4 };

const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-q }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${PORTS.dhcp}, tftpPort: ${PORTS.tftp}, httpPort: ${PORTS.http}, httpsPort: ${PORTS.https} }
  relays: [127.79.0.1]
  subnets:
    - { cidr: 127.79.0.0/24, gateway: 127.79.0.1, pool: 127.79.0.100-127.79.0.199 }
  nodes:
    - { mac: "${NODE}", hostname: quebec, address: 127.79.0.10 }
  unknownNodes: ignore
  stage2: { image: stage2-lab, version: "1.0" }
`;

let dir: string;
let state: string;
let catalogDir: string;
let image: Buffer;
let entry: CatalogEntry;
let pod: Daemon;
const lab = new Lab('pc-cache');

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const copyDir = () => join(state, 'rack-q', 'images', REF);
const quarantine = () => join(state, 'rack-q', 'images', '.quarantine');
const blob = (hex: string) => join(catalogDir, 'blobs', 'sha256', hex);

function podboot(...args: string[]) {
  const r = spawnSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: dir, timeout: 60_000 });
  expect(r.status, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
  return r.stdout;
}

/** `podboot images check` for the pod; never allowed to hang (a FIFO opened for reading would). */
function check(...extra: string[]) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [PODBOOT, 'images', 'check', '--pod', 'rack-q', '--state', state, '--catalog', catalogDir, '--ca', join(dir, 'ca', 'root.pem'), ...extra], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.signal, `images check killed after ${Date.now() - started} ms: ${r.stdout}${r.stderr}`).toBeNull();
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Flips one bit of one byte in place (root writes through the 0444 mode). */
function flipByte(file: string, at: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x10;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

interface Curl {
  status: number;
  body: Buffer;
}

function curl(url: string, opts: { token?: string; from?: string; args?: string[] } = {}): Curl {
  const out = join(dir, `curl-${randomBytes(4).toString('hex')}`);
  const args = ['-sS', '--interface', opts.from ?? FROM, '--cacert', join(state, 'rack-q', 'tls', 'root.pem'), '-o', out, '-w', '%{http_code}', ...(opts.args ?? [])];
  if (opts.token) args.push('-H', `Authorization: Bearer ${opts.token}`);
  const r = spawnSync('curl', [...args, url], { encoding: 'utf8' });
  const body = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
  rmSync(out, { force: true });
  return { status: Number(r.stdout), body };
}

/** What stage1 does: a relayed lease, its iPXE script's install token, exchanged for a session from the leased address. */
function session(): string {
  const probe = podboot('dhcp', 'probe', '--server', `127.0.0.1:${PORTS.dhcp}`, '--relay', `127.79.0.1:${PORTS.relay}`, '--mac', NODE, '--arch', '0', '--timeout', '5000');
  const ack = probe
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; yiaddr: string })
    .find((p) => p.type === 'ACK');
  expect(ack?.yiaddr, probe).toMatch(/^127\.79\.0\.\d+$/);
  const script = curl(`http://127.0.0.1:${PORTS.http}/ipxe/${NODE.replace(/:/g, '-')}.ipxe`, { from: ack!.yiaddr }).body.toString();
  const token = / podboot\.token=(\S+)/.exec(script)?.[1];
  expect(token, script).toBeDefined();
  const s = curl(`https://127.0.0.1:${PORTS.https}/v1/session`, { token, from: ack!.yiaddr, args: ['-X', 'POST'] });
  expect(s.status, s.body.toString()).toBe(200);
  return s.body.toString().trim();
}

/** An install's download of the stage2 from the running pod: the image and the sha256 its manifest names. */
function download(): { status: number; image: Buffer; manifestSha?: string } {
  const token = session();
  const img = curl(`https://127.0.0.1:${PORTS.https}/v1/stage2/image`, { token });
  const manifest = curl(`https://127.0.0.1:${PORTS.https}/v1/stage2/manifest.json`, { token });
  return { status: img.status, image: img.body, manifestSha: manifest.status === 200 ? (JSON.parse(manifest.body.toString()) as { sha256: string }).sha256 : undefined };
}

function podEvents(): { time: number; mac: string; kind: string; detail?: string }[] {
  const s = openPodState(join(state, 'rack-q'), { readonly: true });
  try {
    return s?.events(undefined, 200) ?? [];
  } finally {
    s?.close();
  }
}

const readyLines = () =>
  pod
    .log()
    .split('\n')
    .filter((l) => l.includes('"stage2 ready to serve"')).length;

/** The pod's log reaches its file a little after the request: how often it has loaded its copy, once that is at least `n`. */
async function loadedTimes(n: number): Promise<number> {
  const deadline = Date.now() + 5000;
  while (readyLines() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return readyLines();
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'podboot-pod-cache-'));
  state = join(dir, 'state');
  catalogDir = join(dir, 'catalog');
  const ca = join(dir, 'ca');
  podboot('ca', 'init', '--out', ca, '--org', 'Cache Test');
  podboot('ca', 'issue-signer', 'ci', '--ca', ca);
  image = randomBytes(IMAGE_SIZE);
  writeFileSync(join(dir, 'stage2.img'), image);
  podboot('sign', 'stage2.img', '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'stage2-lab', '--version', '1.0', '--pods', 'rack-q');
  const { log } = captureLogger({ component: 'catalog' });
  const catalog = await Catalog.open(catalogDir, log);
  try {
    entry = await admitSigned(catalog, join(dir, 'stage2.img'), readFileSync(join(ca, 'root.pem')));
  } finally {
    catalog.close();
  }
  mkdirSync(join(dir, 'pods'));
  writeFileSync(join(dir, 'pods', 'rack-q.yaml'), POD);
  podboot('images', 'onboard', '--pods', join(dir, 'pods'), '--ca', join(ca, 'root.pem'), '--catalog', catalogDir, '--state', state);
  pod = lab.spawn(undefined, process.execPath, [PODBOOT, 'pod', 'run', join(dir, 'pods', 'rack-q.yaml'), '--state', state, '--ca', ca], 'pod');
  await pod.waitFor(/http boot listening/);
});

afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('the pod image copy and its check', () => {
  it('onboarding places a copy of its own, not a link to the catalog blob, and the check finds it good', () => {
    for (const [file, hex] of [
      ['image', entry.image],
      ['manifest.json', entry.manifest],
    ] as const) {
      const copy = statSync(join(copyDir(), file));
      expect(copy.ino, file).not.toBe(statSync(blob(hex)).ino);
      expect(copy.nlink, file).toBe(1);
      expect(copy.mode & 0o777, file).toBe(0o444);
    }
    expect(sha256(readFileSync(join(copyDir(), 'image')))).toBe(entry.image);
    const r = check();
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toBe(`rack-q: ${REF} ok\n`);
    const d = download();
    expect(d.status).toBe(200);
    expect(sha256(d.image)).toBe(d.manifestSha);
  });

  it('one flipped byte: detected, moved aside, placed again from the catalog, an event in the pod, the next download right', async () => {
    // Loaded once, for the download above.
    expect(await loadedTimes(1)).toBe(1);
    flipByte(join(copyDir(), 'image'), 1_234_567);
    // The catalog's blob is a file of its own: the flip did not reach it.
    expect(sha256(readFileSync(blob(entry.image)))).toBe(entry.image);

    // Without --repair: reported, exit 1, nothing moved.
    const seen = check();
    expect(seen.code, seen.out + seen.err).toBe(1);
    expect(seen.out).toMatch(new RegExp(`^rack-q: ${REF} corrupt: image has sha256 [0-9a-f]{64}, the catalog says ${entry.image}$`, 'm'));
    expect(existsSync(quarantine())).toBe(false);

    const fixed = check('--repair');
    expect(fixed.code, fixed.out + fixed.err).toBe(0);
    expect(fixed.out).toMatch(
      new RegExp(
        `^rack-q: ${REF} repaired: image has sha256 [0-9a-f]{64}, the catalog says ${entry.image}; moved to \\.quarantine/${REF}\\.[0-9T-]+Z; placed again from the catalog \\(sha256 ${entry.image}\\)$`,
        'm',
      ),
    );
    // The log lines name the pod.
    const logged = fixed.err
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { pod?: string; msg: string });
    expect(logged.filter((l) => l.msg === 'cached image copy placed again from the catalog').map((l) => l.pod)).toEqual(['rack-q']);

    // The bad copy is aside, the new one is right and is its own file again.
    const aside = readdirSync(quarantine());
    expect(aside).toHaveLength(1);
    expect(sha256(readFileSync(join(quarantine(), aside[0]!, 'image')))).not.toBe(entry.image);
    expect(sha256(readFileSync(join(copyDir(), 'image')))).toBe(entry.image);
    expect(statSync(join(copyDir(), 'image')).ino).not.toBe(statSync(blob(entry.image)).ino);

    const ev = podEvents().find((e) => e.kind === 'image-repaired');
    expect(ev, JSON.stringify(podEvents())).toBeDefined();
    expect(ev!.mac).toBe('');
    expect(ev!.detail).toContain(`${REF}: image has sha256`);
    expect(ev!.detail).toContain(`placed again from the catalog (sha256 ${entry.image})`);

    // The running pod serves the new copy: it loaded it again (a new directory), and the bytes are the signed ones.
    const d = download();
    expect(d.status).toBe(200);
    expect(d.image.equals(image)).toBe(true);
    expect(sha256(d.image)).toBe(d.manifestSha);
    expect(await loadedTimes(2), pod.log().slice(-4000)).toBe(2);
    expect(check().code).toBe(0);
  });

  it('a FIFO in place of the cached image is refused at once, never read', () => {
    rmSync(join(copyDir(), 'image'));
    expect(spawnSync('mkfifo', [join(copyDir(), 'image')]).status).toBe(0);
    const seen = check();
    expect(seen.code).toBe(1);
    expect(seen.out).toMatch(new RegExp(`^rack-q: ${REF} corrupt: image is a FIFO, not a regular file \\(not followed, not read\\)`, 'm'));
    const fixed = check('--repair');
    expect(fixed.code, fixed.out + fixed.err).toBe(0);
    expect(fixed.out).toMatch(new RegExp(`^rack-q: ${REF} repaired: image is a FIFO`, 'm'));
    expect(lstatSync(join(copyDir(), 'image')).isFile()).toBe(true);
    expect(podEvents().filter((e) => e.kind === 'image-repaired')).toHaveLength(2);
  });

  it('a symlink in place of the cached image is refused even when it points at the right bytes, and not followed', () => {
    rmSync(join(copyDir(), 'image'));
    // Followed, this would hash right: the catalog's own blob.
    symlinkSync(blob(entry.image), join(copyDir(), 'image'));
    const fixed = check('--repair');
    expect(fixed.code, fixed.out + fixed.err).toBe(0);
    expect(fixed.out).toMatch(new RegExp(`^rack-q: ${REF} repaired: image is a symbolic link, not a regular file \\(not followed, not read\\)`, 'm'));
    // The link went aside as a link (its target untouched); the pod's copy is a file again.
    const link = readdirSync(quarantine())
      .map((q) => join(quarantine(), q, 'image'))
      .find((p) => lstatSync(p).isSymbolicLink());
    expect(link && readlinkSync(link)).toBe(blob(entry.image));
    expect(sha256(readFileSync(blob(entry.image)))).toBe(entry.image);
    expect(lstatSync(join(copyDir(), 'image')).isFile()).toBe(true);
    const d = download();
    expect(sha256(d.image)).toBe(entry.image);
  });

  it('a catalog blob that is bad itself: unrepairable, reported, and the pod serves nothing rather than bad bytes; repaired once the blob is good', () => {
    chmodSync(blob(entry.image), 0o644);
    flipByte(blob(entry.image), 99);
    flipByte(join(copyDir(), 'image'), 99);
    const r = check('--repair');
    expect(r.code, r.out + r.err).toBe(1);
    expect(r.out).toMatch(
      new RegExp(`^rack-q: ${REF} unrepairable: image has sha256 [0-9a-f]{64}, the catalog says ${entry.image}; moved to \\.quarantine/\\S+; the catalog's copy is refused too \\(\\[digest\\] `, 'm'),
    );
    expect(r.out).toContain(`the pod has no ${REF} until it is pulled again`);
    expect(existsSync(copyDir())).toBe(false);
    expect(podEvents().find((e) => e.kind === 'image-unrepairable')?.detail).toMatch(/the catalog's copy is refused too/);
    // The running pod has no copy to serve: 404, not the bad bytes.
    const d = download();
    expect(d.status).toBe(404);
    expect(d.image.includes(image.subarray(0, 64))).toBe(false);

    // Onboarding re-hashes what it copies: the bad blob is not placed either, and nothing half-placed stays.
    const onboard = spawnSync(process.execPath, [PODBOOT, 'images', 'onboard', '--pods', join(dir, 'pods'), '--ca', join(dir, 'ca', 'root.pem'), '--catalog', catalogDir, '--state', state], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(onboard.status, onboard.stdout + onboard.stderr).toBe(1);
    expect(onboard.stdout).toContain(`rack-q: ${REF} refused: copying ${REF}/image: the copy has sha256 `);
    expect(onboard.stdout).toContain(`the catalog says ${entry.image}; the catalog blob ${blob(entry.image)} may be corrupt`);
    expect(readdirSync(join(state, 'rack-q', 'images'))).toEqual(['.quarantine']);

    // The blob made good again (as a fresh pull would): the next check places the version it took away.
    flipByte(blob(entry.image), 99);
    const again = check('--repair');
    expect(again.code, again.out + again.err).toBe(0);
    expect(again.out).toMatch(new RegExp(`^rack-q: ${REF} repaired: the pod has no copy; placed again from the catalog`, 'm'));
    const after = download();
    expect(after.status).toBe(200);
    expect(after.image.equals(image)).toBe(true);
  });
});
