// Rack sharing in the streamed install (images/stage1/stream.sh, "Rack
// sharing" in docs/stage1.md): the real stage1 agent and kickstart/debian.sh
// on the host, as in stream.test.ts (test/helpers/agent-rig.ts), against a
// fake pod that also answers the sharing calls (/v1/share/key with a real
// swarm certificate from makeSwarmTls, source, refuse, have), with rack peers
// that are real `openssl s_server -WWW` processes on 127.0.0.2 (127.0.0.3:
// nobody). The peers bind the swarm's port first, so the agent's own chunk
// server (on the wildcard address) cannot, and answers nobody. What must
// hold: a chunk the pod sends to a peer comes from that peer and never from
// the pod, each question says which chunks the agent holds, a bad or absent
// peer is refused and excluded and the chunk comes from the pod, `wait` is
// asked again, sharing `off` changes nothing, and a busy pod (503) costs no
// fetch round. The disk ends with the image every time.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BASIC_DATA_TYPE, LINUX_FS_TYPE, SEED_PARTITION } from '../../../src/images/debian-layout.js';
import { ESP_TYPE, type GptLayout, stableGuid, usableRange, writeGpt } from '../../../src/images/gpt.js';
import { KICKSTART_VALUES, type KickstartValues, renderKickstart } from '../../../src/http-boot/kickstart.js';
import { makeSwarmTls, type SwarmTls } from '../../../src/share/swarm-tls.js';
import { AgentRig, byteRange, POD, REFRESHED, REPO, type Shell, type Stage2 } from '../../helpers/agent-rig.js';

const MiB = 1024 * 1024;
const SECTOR = 512;
/** podboot sign --chunk-bytes: a handful of chunks */
const CHUNK = 65536;
const IMAGE_MIB = 4;
const DISK_MIB = 6;
/** the KEEP the pod's key answer names: chunks the agent serves at a time */
const KEEP = 3;
/** the swarm's port, for the peers and the agent's own server */
const PORT = 18070 + (process.pid % 200);
const PEER = '127.0.0.2';
const GONE = '127.0.0.3';
const SEED = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 13 + 5) & 0xff));

const rig = new AgentRig('share-stream-test-');
const { tmp } = rig;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const guid = (what: string) => stableGuid(createHash('sha256').update(`share test ${what}`).digest());

/** ESP, seed (entry SEED_PARTITION: the kickstart's `write_seed DISK 2`), root */
function layoutOf(mib: number): GptLayout {
  const m = MiB / SECTOR;
  const seed = { type: BASIC_DATA_TYPE, guid: guid('seed'), firstLba: 2 * m, lastLba: 3 * m - 1, name: 'cidata' };
  const partitions = [
    { type: ESP_TYPE, guid: guid('esp'), firstLba: m, lastLba: 2 * m - 1, name: 'ESP' },
    { type: LINUX_FS_TYPE, guid: guid('root'), firstLba: 3 * m, lastLba: usableRange((mib * MiB) / SECTOR).last, name: 'root' },
  ];
  partitions.splice(SEED_PARTITION - 1, 0, seed);
  return { diskGuid: guid('disk'), partitions };
}

let image: { raw: Buffer; want: Buffer; signed: Stage2; count: number };
let swarm: SwarmTls;
let swarmPem: string;

beforeAll(async () => {
  await rig.start('Share Stream Test');
  // a GPT disk whose root holds 448 KiB of incompressible bytes: about eight 64 KiB chunks of zstd
  const raw = Buffer.alloc(IMAGE_MIB * MiB);
  createCipheriv('aes-256-ctr', createHash('sha256').update('share test').digest(), Buffer.alloc(16))
    .update(Buffer.alloc(448 * 1024))
    .copy(raw, 3 * MiB);
  const layout = layoutOf(IMAGE_MIB);
  writeGpt(raw, layout);
  const file = join(tmp, 'share.raw');
  writeFileSync(file, raw);
  execFileSync('zstd', ['-q', '-f', file, '-o', `${file}.zst`]);
  const signed = rig.sign('share', readFileSync(`${file}.zst`), ['--chunk-bytes', String(CHUNK)]);
  const count = Math.ceil(signed.image.length / CHUNK);
  expect(JSON.parse(signed.manifest.toString())).toMatchObject({ encoding: 'zstd', chunkBytes: CHUNK, chunkSha256: Array.from({ length: count }, (_, i) => sha256(part(signed.image, i + 1))) });
  expect(count).toBeGreaterThanOrEqual(6);
  const want = Buffer.from(raw);
  SEED.copy(want, layout.partitions[SEED_PARTITION - 1]!.firstLba * SECTOR);
  image = { raw, want, signed, count };
  swarm = makeSwarmTls(POD, Date.now());
  swarmPem = join(tmp, 'swarm.pem');
  writeFileSync(swarmPem, swarm.pem);
}, 60_000);

/** chunk N (from 1) of the image */
const part = (img: Buffer, n: number) => img.subarray((n - 1) * CHUNK, n * CHUNK);
const rangeOf = (n: number) => `bytes=${(n - 1) * CHUNK}-${Math.min(n * CHUNK, image.signed.image.length) - 1}`;
const chunkList = () => Array.from({ length: image.count }, (_, i) => i + 1);

// ---- rack peers: openssl s_server -WWW over PATH/N, killed after each test

const servers: ChildProcess[] = [];
let peers = 0;

function listening(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(PORT, address, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** A rack peer on ADDRESS:PORT with the swarm's certificate, serving `chunks` (N → bytes) under the swarm's path. */
async function startPeer(address: string, chunks: Map<number, Buffer>): Promise<void> {
  const www = join(tmp, `peer-${peers++}`);
  mkdirSync(join(www, swarm.path), { recursive: true });
  for (const [n, b] of chunks) writeFileSync(join(www, swarm.path, String(n)), b);
  const p = spawn('openssl', ['s_server', '-quiet', '-WWW', '-accept', `${address}:${PORT}`, '-cert', swarmPem], { cwd: www, stdio: ['ignore', 'ignore', 'pipe'] });
  servers.push(p);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 100; i++) {
    if (p.exitCode !== null) break;
    if (await listening(address)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`openssl s_server on ${address}:${PORT} did not start: ${err}`);
}

const goodChunks = () => new Map(chunkList().map((n) => [n, part(image.signed.image, n)]));

/** The agent's own chunk servers (its work directories are under tmp): they outlive the agent when they did bind. */
function agentServers(): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('s_server') && readlinkSync(`/proc/${pid}/cwd`).startsWith(tmp)) pids.push(Number(pid));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids.filter((pid) => !servers.some((s) => s.pid === pid));
}

async function stopServers(): Promise<void> {
  for (const pid of agentServers()) process.kill(pid, 'SIGKILL');
  await Promise.all(
    servers.splice(0).map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.on('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
}

afterEach(stopServers);
afterAll(async () => {
  await stopServers();
  await rig.stop();
});

// ---- the fake pod's sharing routes

interface Pod {
  /** the body of GET /v1/share/key; undefined: 404 */
  key?: string;
  /** the answer to POST /v1/share/source for chunk N with the question's parameters */
  source?: (chunk: number, q: URLSearchParams) => string;
  /** answers (or cuts) a range of the image itself */
  image?: (range: [number, number], res: ServerResponse) => boolean;
}

const shareKey = () => `share ${PORT} ${swarm.path} ${KEEP}\n${swarm.pem}`;
/** the sharing calls the pod got, with their query */
const shareCalls = () => rig.requests.filter((q) => q.path.startsWith('/v1/share/')).map((q) => `${q.method} ${q.path}`);
const imageRanges = () => rig.requests.filter((q) => q.path === '/v1/stage2/image').map((q) => q.range);
/** what the question for chunk N carries, the agent having kept chunks 1..N-1 with nothing told yet */
const held = (n: number) => (n === 1 ? '' : `&from=${Math.max(1, n - KEEP)}&to=${n - 1}`);

function kickstartFor(disk: string): string {
  const values = Object.fromEntries(KICKSTART_VALUES.map((k) => [k, ''])) as KickstartValues;
  Object.assign(values, { disk, hostname: 'node-09', imageName: 'lab', imageVersion: '2.1', mac: '52:54:00:aa:bb:cc', pod: POD });
  return renderKickstart(readFileSync(join(REPO, 'kickstart/debian.sh'), 'utf8'), values);
}

interface Install {
  code: number;
  out: string;
  disk: string;
  /** the agent's stream directory */
  stream: string;
}

async function install(shell: Shell, name: string, pod: Pod, env: Record<string, string> = {}): Promise<Install> {
  const tag = `${shell.name.replace(/\W+/g, '-')}-${name}`;
  const disk = join(tmp, `${tag}.disk`);
  writeFileSync(disk, Buffer.alloc(DISK_MIB * MiB, 0x77));
  rig.reset(image.signed, kickstartFor(disk));
  rig.files['/v1/seed'] = SEED;
  rig.route = (req, res) => {
    const url = new URL(req.url ?? '/', 'https://pod');
    if (!url.pathname.startsWith('/v1/share/')) return false;
    const answer = (status: number, body: string) => void res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    const route = `${req.method} ${url.pathname}`;
    if (req.headers.authorization !== `Bearer ${REFRESHED}`) answer(401, 'no session');
    else if (route === 'GET /v1/share/key' && pod.key !== undefined) answer(200, pod.key);
    else if (route === 'POST /v1/share/source' && pod.source) answer(200, `${pod.source(Number(url.searchParams.get('chunk')), url.searchParams)}\n`);
    else if (route === 'POST /v1/share/refuse' || route === 'POST /v1/share/have') answer(200, 'ok\n');
    else answer(404, 'not found');
    return true;
  };
  rig.intercept = (req, res) => {
    const range = byteRange(req.headers.range, image.signed.image.length);
    return req.url === '/v1/stage2/image' && range !== undefined && (pod.image?.(range, res) ?? false);
  };
  const work = join(tmp, `w-${tag}`);
  const r = await rig.runAgent(shell, work, { PODBOOT_EXTRA_CONSOLES: '', ...env });
  return { ...r, disk, stream: join(work, 'stream') };
}

/** installed, the disk holding the image and the seed, the console saying where the chunks came from */
function installed(r: Install, fromPeers: number): void {
  expect(r.code, r.out).toBe(0);
  expect(rig.states()).toEqual(['stage1', 'installing', 'installed']);
  expect(readFileSync(r.disk).subarray(0, image.raw.length).equals(image.want), 'the disk holds the image').toBe(true);
  expect(r.out).toContain(`podboot-stage1: chunks from rack peers: ${fromPeers}, from the pod: ${image.count - fromPeers}\n`);
}

/** the agent's own chunk server found the swarm's port taken by the test's peers: it serves nobody */
function agentServerDidNotBind(r: Install): void {
  expect(readFileSync(join(r.stream, 'share-server.err'), 'utf8')).toMatch(/bind|in use/i);
}

const SHELLS = rig.shells(['curl', 'openssl', 'zstd']);

for (const shell of SHELLS)
  describe(`stage1 streamed install with rack sharing (${shell.name})`, () => {
    it('a good peer: the chunks the pod sends there come from the peer, never from the pod; each question says what the agent holds', async () => {
      await startPeer(PEER, goodChunks());
      const even = (n: number) => n % 2 === 0;
      const r = await install(shell, 'good', { key: shareKey(), source: (n) => (even(n) ? `peer ${PEER}` : 'pod') });
      const peerChunks = chunkList().filter(even);
      installed(r, peerChunks.length);
      expect(imageRanges()).toEqual(
        chunkList()
          .filter((n) => !even(n))
          .map(rangeOf),
      );
      // one question per chunk, carrying the window held since the last one; after the last chunk, `have`
      expect(shareCalls()).toEqual([
        'GET /v1/share/key',
        ...chunkList().map((n) => `POST /v1/share/source?chunk=${n}&exclude=${held(n)}`),
        `POST /v1/share/have?from=${image.count - KEEP + 1}&to=${image.count}`,
      ]);
      expect(r.out).toContain(`podboot-stage1: rack sharing: serving verified chunks to rack peers on port ${PORT} (up to ${KEEP} at a time)`);
      expect(r.out).not.toMatch(/refused|FAILED/);
      // the chunks it serves: the window, and the one before it (the pod never heard it is gone)
      const kept = readdirSync(join(r.stream, 'www', swarm.path)).map(Number);
      expect(kept.sort((a, b) => a - b)).toEqual(chunkList().slice(-KEEP - 1));
      for (const n of kept) expect(readFileSync(join(r.stream, 'www', swarm.path, String(n))).equals(part(image.signed.image, n))).toBe(true);
      agentServerDidNotBind(r);
    });

    it('a corrupt peer (wrong bytes, right size): refused for its digest, excluded, the chunk from the pod', async () => {
      const chunks = goodChunks();
      const bad = Buffer.from(part(image.signed.image, 1));
      bad[100]! ^= 0x01;
      chunks.set(1, bad);
      await startPeer(PEER, chunks);
      const r = await install(shell, 'corrupt', { key: shareKey(), source: (n, q) => (n === 1 && !q.get('exclude') ? `peer ${PEER}` : 'pod') });
      installed(r, 0);
      expect(shareCalls().slice(0, 5)).toEqual([
        'GET /v1/share/key',
        'POST /v1/share/source?chunk=1&exclude=',
        `POST /v1/share/refuse?chunk=1&peer=${PEER}&why=digest`,
        `POST /v1/share/source?chunk=1&exclude=${PEER}`,
        'POST /v1/share/source?chunk=2&exclude=&from=1&to=1',
      ]);
      expect(r.out).toContain(`podboot-stage1: chunk 1 from rack peer ${PEER} refused (digest): asking for another source`);
      expect(imageRanges()).toEqual(chunkList().map(rangeOf));
    });

    it('a peer that is gone: refused as a failed download, the chunk from the pod', async () => {
      // a good peer on PEER (never named) keeps the agent's own server off the port, so nothing answers at GONE
      await startPeer(PEER, goodChunks());
      const r = await install(shell, 'gone', { key: shareKey(), source: (n, q) => (n === 2 && !q.get('exclude') ? `peer ${GONE}` : 'pod') });
      installed(r, 0);
      expect(shareCalls().slice(2, 5)).toEqual([
        'POST /v1/share/source?chunk=2&exclude=&from=1&to=1',
        `POST /v1/share/refuse?chunk=2&peer=${GONE}&why=download`,
        `POST /v1/share/source?chunk=2&exclude=${GONE}`,
      ]);
      expect(r.out).toContain(`podboot-stage1: chunk 2 from rack peer ${GONE} refused (download): asking for another source`);
      expect(imageRanges()).toEqual(chunkList().map(rangeOf));
      agentServerDidNotBind(r);
    });

    it('wait, then peer: the question is asked again and the chunk comes from the peer', async () => {
      await startPeer(PEER, goodChunks());
      let waited = false;
      const source = (n: number) => {
        if (n !== 3) return 'pod';
        if (waited) return `peer ${PEER}`;
        waited = true;
        return 'wait';
      };
      const r = await install(shell, 'wait', { key: shareKey(), source });
      installed(r, 1);
      // the second question no longer says what the agent holds: the first told the pod
      expect(shareCalls().slice(3, 6)).toEqual(['POST /v1/share/source?chunk=3&exclude=&from=1&to=2', 'POST /v1/share/source?chunk=3&exclude=', 'POST /v1/share/source?chunk=4&exclude=&from=1&to=3']);
      expect(imageRanges()).toEqual(
        chunkList()
          .filter((n) => n !== 3)
          .map(rangeOf),
      );
    });

    it('sharing off (the key answers off, or 404): no other sharing call, every chunk from the pod, no chunk server', async () => {
      for (const [tag, key, says] of [
        ['off', 'off\n', 'rack sharing: off in this pod'],
        ['404', undefined, 'rack sharing: no key from the pod (curl: (22) The requested URL returned error: 404): every chunk from the pod'],
      ] as const) {
        const r = await install(shell, `off-${tag}`, { key, source: () => `peer ${PEER}` });
        installed(r, 0);
        expect(r.out).toContain(`podboot-stage1: ${says}\n`);
        expect(shareCalls()).toEqual(['GET /v1/share/key']);
        expect(imageRanges()).toEqual(chunkList().map(rangeOf));
        expect(readdirSync(r.stream)).not.toContain('share-server.err');
      }
    });

    it('a busy pod (503, Retry-After) is waited for without using up the fetch rounds; the wait is bounded', async () => {
      const busy = (times: number) => {
        let n = 0;
        return ([from]: [number, number], res: ServerResponse): boolean => {
          if (from !== CHUNK || n >= times) return false;
          n++;
          res.writeHead(503, { 'retry-after': '1' }).end('busy');
          return true;
        };
      };
      // PODBOOT_RETRIES=1: curl tries twice per round, waiting out the Retry-After; six 503s are three rounds, of two
      const env = { PODBOOT_RETRIES: '1', PODBOOT_FETCH_ROUNDS: '2' };
      const r = await install(shell, 'busy', { image: busy(6) }, env);
      installed(r, 0);
      expect(imageRanges().filter((q) => q === rangeOf(2))).toHaveLength(7);
      const tries = r.out.split('\n').filter((l) => l.startsWith(`podboot-stage1: fetch bytes ${CHUNK}-${2 * CHUNK - 1}: `));
      expect(tries).toHaveLength(3);
      for (const l of tries) expect(l).toMatch(/returned error: 503 \(round 1\)$/);
      // a pod that stays busy: PODBOOT_BUSY_ROUNDS waits, then the fetch rounds, then download
      const stuck = await install(shell, 'stuck', { image: busy(1000) }, { ...env, PODBOOT_BUSY_ROUNDS: '1', PODBOOT_FETCH_ROUNDS: '1' });
      expect(stuck.code, stuck.out).toBe(1);
      expect(imageRanges().filter((q) => q === rangeOf(2))).toHaveLength((1 + 1) * 2);
      expect(rig.events.at(-1)?.body).toMatchObject({ state: 'failed', reason: 'download', detail: expect.stringMatching(new RegExp(`^download bytes ${CHUNK}-${2 * CHUNK - 1}: .*503`)) });
    });
  });
