// The streamed install: the stage1 agent (images/stage1/podboot-agent.sh)
// and the real kickstart/debian.sh with images/stage1/stream.sh, run on the
// host (its sh, and busybox sh with only busybox's applets plus curl, openssl
// and zstd, as in stage1) against the pod API on 127.0.0.1
// (test/helpers/agent-rig.ts). The image is a small GPT disk made with the
// repo's GPT writer, compressed with zstd and signed by `podboot sign`; the
// "disk" is a regular file. What must hold: the image comes in byte ranges,
// a cut range is fetched again without doubling bytes, the disk gets the
// image with the server's seed in its seed partition and the partition table
// last (after the seed), and a failed check leaves no partition table and no
// boot code anywhere, the old disk's included, and never asks for the seed.
import { createCipheriv, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASIC_DATA_TYPE, LINUX_FS_TYPE, SEED_PARTITION } from '../../../src/images/debian-layout.js';
import { ESP_TYPE, type GptLayout, stableGuid, usableRange, writeGpt } from '../../../src/images/gpt.js';
import { KICKSTART_VALUES, type KickstartValues, renderKickstart } from '../../../src/http-boot/kickstart.js';
import { AgentRig, byteRange, REFRESHED, REPO, type Shell, type Stage2 } from '../../helpers/agent-rig.js';

const MiB = 1024 * 1024;
const SECTOR = 512;
/** the manifest's chunkBytes (podboot sign --chunk-bytes): several chunks per image */
const CHUNK = 256 * 1024;
const IMAGE_MIB = 8;
const DISK_MIB = 12;
const HOSTNAME = 'node-07';

const rig = new AgentRig('stream-test-');
const { tmp } = rig;
const guid = (what: string) => stableGuid(createHash('sha256').update(`stream test ${what}`).digest());

/** `n` bytes of a fixed pseudo-random stream (AES-CTR over zeros): the same in every run. */
function noise(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

/** ESP, seed (entry SEED_PARTITION, as the kickstart's `write_seed DISK 2` expects), root over the rest */
function layoutOf(mib: number, what: string): GptLayout {
  const sectors = (mib * MiB) / SECTOR;
  const mibLba = MiB / SECTOR;
  const seed = { type: BASIC_DATA_TYPE, guid: guid(`${what} seed`), firstLba: 2 * mibLba, lastLba: 3 * mibLba - 1, name: 'cidata' };
  const partitions = [
    { type: ESP_TYPE, guid: guid(`${what} esp`), firstLba: mibLba, lastLba: 2 * mibLba - 1, name: 'ESP' },
    { type: LINUX_FS_TYPE, guid: guid(`${what} root`), firstLba: 3 * mibLba, lastLba: usableRange(sectors).last, name: 'root' },
  ];
  partitions.splice(SEED_PARTITION - 1, 0, seed);
  return { diskGuid: guid(`${what} disk`), partitions };
}
const seedFirstLba = (layout: GptLayout) => layout.partitions[SEED_PARTITION - 1]!.firstLba;

/**
 * A raw disk image of `mib` MiB: boot code in the MBR and after the entry
 * array, the GPT (both copies), and pseudo-random data from 1 MiB on. `dense`
 * data is incompressible (zstd stores it); otherwise each byte is one of 16
 * values, so zstd writes compressed blocks that a flipped byte breaks.
 */
function diskImage(mib: number, what: string, dense = false): { raw: Buffer; layout: GptLayout } {
  const raw = Buffer.alloc(mib * MiB);
  const boot = noise(`${what} boot`, 64 * 1024);
  boot.copy(raw, 0, 0, 440);
  boot.copy(raw, 34 * SECTOR, 440);
  const data = noise(what, raw.length - MiB);
  if (!dense) for (let i = 0; i < data.length; i++) data[i]! &= 0x0f;
  data.copy(raw, MiB);
  const layout = layoutOf(mib, what);
  writeGpt(raw, layout);
  return { raw, layout };
}

/** zstd -q -T0 of the raw image, then podboot sign (chunks of `chunk` bytes; 0: its default): the manifest must say "encoding": "zstd" */
function signedImage(name: string, raw: Buffer, zstd: string[] = [], chunk = CHUNK): Stage2 {
  const file = join(tmp, `${name}.raw`);
  writeFileSync(file, raw);
  execFileSync('zstd', ['-q', '-T0', ...zstd, '-f', file, '-o', `${file}.zst`]);
  const s = rig.sign(name, readFileSync(`${file}.zst`), chunk ? ['--chunk-bytes', String(chunk)] : []);
  const bytes = chunk || 16 * MiB;
  const chunkSha256 = Array.from({ length: Math.ceil(s.image.length / bytes) }, (_, i) => sha256(s.image.subarray(i * bytes, (i + 1) * bytes)));
  expect(JSON.parse(s.manifest.toString())).toMatchObject({ encoding: 'zstd', size: s.image.length, sha256: sha256(s.image), chunkBytes: bytes, chunkSha256 });
  return s;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** kickstart/debian.sh as the pod renders it for this server, writing to `disk` */
function kickstartFor(disk: string): string {
  const values = Object.fromEntries(KICKSTART_VALUES.map((k) => [k, ''])) as KickstartValues;
  Object.assign(values, { disk, hostname: HOSTNAME, imageName: 'lab', imageVersion: '2.1', mac: '52:54:00:aa:bb:cc', pod: 'rack-t' });
  return renderKickstart(readFileSync(join(REPO, 'kickstart/debian.sh'), 'utf8'), values);
}

/** the disk a server had before: an old OS with its GPT at both ends of the disk */
function oldDisk(mib: number): Buffer {
  const old = Buffer.alloc(mib * MiB, 0x77);
  writeGpt(old, layoutOf(mib, 'old'));
  return old;
}

function readAt(file: string, at: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, b, 0, n, at);
  } finally {
    closeSync(fd);
  }
  return b;
}

const SEED = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31 + 7) & 0xff));
const EFI_PART = Buffer.from('EFI PART', 'latin1');

let good: { raw: Buffer; layout: GptLayout; signed: Stage2 };
/** incompressible, packed without zstd's content checksum: a flipped byte in it goes through zstd unnoticed */
let unchecked: typeof good;

beforeAll(async () => {
  await rig.start('Stream Test');
  const { raw, layout } = diskImage(IMAGE_MIB, 'image');
  good = { raw, layout, signed: signedImage('good', raw) };
  const dense = diskImage(IMAGE_MIB, 'dense', true);
  unchecked = { ...dense, signed: signedImage('unchecked', dense.raw, ['--no-check']) };
}, 60_000);
afterAll(() => rig.stop());

let lastDisk: string | undefined;

interface Install {
  disk: string;
  code: number;
  out: string;
  /** whether the disk's first sector was all zero when the server was asked for the seed (undefined: never asked) */
  headZeroAtSeed: boolean | undefined;
}

/**
 * The server serves `s`, the rendered kickstart for `disk` and the seed; the
 * disk file starts as `before` (unless it is not a file); the agent runs
 * with small chunks. `answer` may answer (or cut) an image request itself.
 */
async function install(
  shell: Shell,
  name: string,
  s: Stage2,
  opts: { before?: Buffer; disk?: string; env?: Record<string, string>; answer?: (range: [number, number], res: ServerResponse) => boolean } = {},
): Promise<Install> {
  const tag = `${shell.name.replace(/\W+/g, '-')}-${name}`;
  mkdirSync(join(tmp, 'disks'), { recursive: true });
  // one disk file at a time: the last test's goes
  if (lastDisk) rmSync(lastDisk, { force: true });
  const disk = opts.disk ?? join(tmp, 'disks', `${tag} disk.img`);
  if (!opts.disk) writeFileSync((lastDisk = disk), opts.before ?? oldDisk(DISK_MIB));
  rig.reset(s, kickstartFor(disk));
  rig.files['/v1/seed'] = SEED;
  let headZeroAtSeed: boolean | undefined;
  rig.intercept = (req, res) => {
    if (req.url === '/v1/seed') headZeroAtSeed = readAt(disk, 0, SECTOR).equals(Buffer.alloc(SECTOR));
    const range = byteRange(req.headers.range, s.image.length);
    return req.url === '/v1/stage2/image' && range !== undefined && (opts.answer?.(range, res) ?? false);
  };
  // init exports PODBOOT_EXTRA_CONSOLES (lib.sh setup_console); the kickstart runs with set -u and lib.sh's say reads it
  const env = { PODBOOT_EXTRA_CONSOLES: '', ...opts.env };
  const r = await rig.runAgent(shell, join(tmp, `w-${tag}`), env);
  return { disk, ...r, headZeroAtSeed };
}

/** what the disk must hold after an install of `raw`: the image, the seed at the start of its seed partition */
function expected(raw: Buffer, layout: GptLayout): Buffer {
  const want = Buffer.from(raw);
  SEED.copy(want, seedFirstLba(layout) * SECTOR);
  return want;
}

const imageRanges = () => rig.requests.filter((q) => q.path === '/v1/stage2/image').map((q) => q.range);
const failure = () => rig.events.find((e) => (e.body as { state: string }).state === 'failed')?.body as { reason: string; detail: string } | undefined;

/** Sends the first `part` bytes of the range asked for and cuts the connection, for the first `times` requests of the chunk at `chunkAt`. */
function cutter(chunkAt: number, part: number, times: number) {
  let cuts = 0;
  return ([from, to]: [number, number], res: ServerResponse): boolean => {
    if (from !== chunkAt || cuts >= times) return false;
    cuts++;
    res.writeHead(206, { 'content-range': `bytes ${from}-${to}/${good.signed.image.length}`, 'content-length': to - from + 1 });
    // written through TLS to the kernel before the socket goes: the client gets exactly `part` bytes
    res.write(good.signed.image.subarray(from, from + part), () => res.socket?.destroy());
    return true;
  };
}

// made once: links busybox's applets into one directory
const SHELLS = rig.shells(['curl', 'openssl', 'zstd']);

for (const shell of SHELLS)
  describe(`stage1 streamed install, kickstart/debian.sh (${shell.name})`, () => {
    it('streams the image in ranges onto the disk, writes the seed, then the partition table; reports stage1, installing, installed', async () => {
      const { raw, layout, signed } = good;
      const before = oldDisk(DISK_MIB);
      const r = await install(shell, 'ok', signed, { before });
      expect(r.code, r.out).toBe(0);
      expect(rig.states()).toEqual(['stage1', 'installing', 'installed']);
      // which image the disk holds, by the digest of the manifest stage1 verified
      expect(rig.events.at(-1)!.body).toEqual({ state: 'installed', sha256: sha256(good.signed.image) });
      const disk = readFileSync(r.disk);
      expect(disk.length).toBe(DISK_MIB * MiB);
      expect(disk.subarray(0, raw.length).equals(expected(raw, layout))).toBe(true);
      // past the image: untouched, but for the disk's last MiB (the old backup GPT), wiped
      expect(disk.subarray(raw.length, (DISK_MIB - 1) * MiB).equals(before.subarray(raw.length, (DISK_MIB - 1) * MiB))).toBe(true);
      expect(disk.subarray((DISK_MIB - 1) * MiB).equals(Buffer.alloc(MiB))).toBe(true);
      // the partition table and boot code came after the seed
      expect(r.headZeroAtSeed).toBe(true);
      expect(r.out).toContain(`podboot-stage1: verified lab 2.1 sha256=${sha256(signed.image)}`);
      expect(r.out).toContain(`podboot-stage1: seed written: ${SEED.length} bytes at sector ${seedFirstLba(layout)}`);
      expect(r.out).toContain(`podboot-stage1: partition table written: ${r.disk} is bootable`);
      expect(r.out).toContain(`kickstart: installed lab 2.1 on ${r.disk} for ${HOSTNAME}`);
      expect(r.out).toMatch(/podboot-stage1: installed\n$/);
      expect(r.out).not.toMatch(/FAILED|stage2-fetched/);
      // chunk by chunk, in order, with the refreshed session; the seed after the last one
      const size = signed.image.length;
      const want = Array.from({ length: Math.ceil(size / CHUNK) }, (_, i) => `bytes=${i * CHUNK}-${Math.min((i + 1) * CHUNK, size) - 1}`);
      expect(want.length).toBeGreaterThan(4);
      expect(imageRanges()).toEqual(want);
      expect(rig.requests.filter((q) => q.path === '/v1/stage2/image').every((q) => q.auth === `Bearer ${REFRESHED}`)).toBe(true);
      const paths = rig.requests.map((q) => q.path);
      expect(paths.indexOf('/v1/kickstart')).toBeLessThan(paths.indexOf('/v1/stage2/image'));
      expect(paths.lastIndexOf('/v1/stage2/image')).toBeLessThan(paths.indexOf('/v1/seed'));
      expect(paths).not.toContain('/v1/stage2/image.p7s');
    });

    it('a CPU without AES instructions gets the image over ChaCha20-Poly1305, one with them over AES-GCM', async () => {
      const cpu = (flags: string) => {
        const f = join(tmp, `cpuinfo-${flags.split(' ').length}`);
        writeFileSync(f, `processor\t: 0\nflags\t\t: ${flags}\n`);
        return f;
      };
      const slow = await install(shell, 'no-aes', good.signed, { env: { PODBOOT_CPUINFO: cpu('fpu sse sse2 sse3') } });
      expect(slow.code, slow.out).toBe(0);
      const ciphers = () => [...new Set(rig.requests.map((q) => q.cipher))];
      expect(ciphers()).toEqual(['TLS_CHACHA20_POLY1305_SHA256']);
      const fast = await install(shell, 'aes', good.signed, { env: { PODBOOT_CPUINFO: cpu('fpu sse sse2 sse3 ssse3 aes pclmulqdq') } });
      expect(fast.code, fast.out).toBe(0);
      expect(ciphers().every((c) => c.includes('_AES_') && c.endsWith('GCM_SHA384'))).toBe(true);
    });

    it("a range cut off once is asked for again by curl's own retry: the bytes that came first are not written twice", async () => {
      const at = 3 * CHUNK;
      const r = await install(shell, 'cut1', good.signed, { answer: cutter(at, 100_000, 1), env: { PODBOOT_FETCH_ROUNDS: '3' } });
      expect(r.code, r.out).toBe(0);
      expect(imageRanges().filter((q) => q === `bytes=${at}-${at + CHUNK - 1}`)).toHaveLength(2);
      expect(readFileSync(r.disk).subarray(0, good.raw.length).equals(expected(good.raw, good.layout))).toBe(true);
      expect(rig.states()).toEqual(['stage1', 'installing', 'installed']);
    });

    it('a range cut off on every try of a round resumes in the next round where the cut left it', async () => {
      const at = 3 * CHUNK;
      // PODBOOT_RETRIES=1: curl tries twice per round; both are cut after 100 000 bytes
      const r = await install(shell, 'cut2', good.signed, { answer: cutter(at, 100_000, 2), env: { PODBOOT_FETCH_ROUNDS: '3' } });
      expect(r.code, r.out).toBe(0);
      const ranges = imageRanges();
      const i = ranges.indexOf(`bytes=${at}-${at + CHUNK - 1}`);
      expect(ranges.slice(i, i + 3)).toEqual([`bytes=${at}-${at + CHUNK - 1}`, `bytes=${at}-${at + CHUNK - 1}`, `bytes=${at + 100_000}-${at + CHUNK - 1}`]);
      expect(ranges[i + 3]).toBe(`bytes=${at + CHUNK}-${at + 2 * CHUNK - 1}`);
      expect(r.out).toMatch(new RegExp(`podboot-stage1: fetch bytes ${at}-${at + CHUNK - 1}: curl: \\(18\\).*\\(round 1\\)`));
      expect(readFileSync(r.disk).subarray(0, good.raw.length).equals(expected(good.raw, good.layout))).toBe(true);
      expect(rig.states()).toEqual(['stage1', 'installing', 'installed']);
    });

    // Wherever the flipped byte is, its chunk is refused before zstd sees it: the stream stops there, no later chunk is asked for.
    const flips: [string, () => typeof good, (n: number) => number][] = [
      ['in the first chunk (the frame header)', () => good, () => 0],
      ['in the last, shorter chunk (the content checksum)', () => good, (n) => n - 1],
      ['in a middle chunk of a frame without a checksum (zstd would write it unnoticed)', () => unchecked, (n) => Math.floor(n / 2)],
    ];
    for (const [where, image, at] of flips)
      it(`one flipped byte ${where}: digest naming the chunk, nothing later fetched, nothing on the disk can boot, the seed is never asked for`, async () => {
        const { raw, signed } = image();
        const bad = Buffer.from(signed.image);
        bad[at(bad.length)]! ^= 0x01;
        // the disk held the good image, on an old disk whose GPT is at both of its ends
        const before = oldDisk(DISK_MIB);
        raw.copy(before, 0, 0, raw.length - 34 * SECTOR);
        expect(before.indexOf(EFI_PART)).toBe(SECTOR);
        expect(before.lastIndexOf(EFI_PART)).toBe(before.length - SECTOR);
        const r = await install(shell, `flip-${at(100)}`, { ...signed, image: bad }, { before });
        expect(r.code, r.out).toBe(1);
        expect(failure(), r.out).toMatchObject({ reason: 'digest' });
        const i = Math.floor(at(bad.length) / CHUNK);
        const count = Math.ceil(bad.length / CHUNK);
        const [first, last] = [i * CHUNK, Math.min((i + 1) * CHUNK, bad.length) - 1];
        const chunk = `image chunk ${i + 1} of ${count} (bytes ${first}-${last}): sha256 ${sha256(bad.subarray(first, last + 1))}, the manifest says ${sha256(signed.image.subarray(first, last + 1))}`;
        expect(failure()!.detail).toBe(`${chunk}: nothing on ${r.disk} can boot`);
        expect(rig.states()).toEqual(['stage1', 'installing', 'failed']);
        expect(r.out).toContain(`podboot-stage1: FAILED digest: ${chunk}`);
        // the bad chunk was the last one asked for
        expect(imageRanges().at(-1)).toBe(`bytes=${first}-${last}`);
        expect(r.out).not.toMatch(/seed written|partition table written|kickstart: installed/);
        const disk = readFileSync(r.disk);
        expect(disk.subarray(0, MiB).equals(Buffer.alloc(MiB))).toBe(true);
        expect(disk.indexOf(EFI_PART)).toBe(-1);
        expect(r.headZeroAtSeed).toBeUndefined();
        expect(rig.requests.map((q) => q.path)).not.toContain('/v1/seed');
      });

    it('an image that cannot be fetched: download, naming the range; the boot areas are wiped', async () => {
      const s = good.signed;
      const notFound = (_range: [number, number], res: ServerResponse) => {
        res.writeHead(404).end();
        return true;
      };
      const r = await install(shell, 'dl', s, { answer: notFound });
      expect(r.code, r.out).toBe(1);
      expect(failure()).toMatchObject({ reason: 'download', detail: expect.stringMatching(new RegExp(`^download bytes 0-${CHUNK - 1}: curl: \\(22\\).*404`)) });
      expect(rig.states()).toEqual(['stage1', 'installing', 'failed']);
      expect(readFileSync(r.disk).indexOf(EFI_PART)).toBe(-1);
      expect(rig.requests.map((q) => q.path)).not.toContain('/v1/seed');
    });

    it('a disk too small: install, saying its size; nothing is fetched or written', async () => {
      const before = Buffer.alloc(2 * MiB, 0x77);
      const r = await install(shell, 'small', good.signed, { before });
      expect(r.code, r.out).toBe(1);
      expect(failure()).toEqual({ state: 'failed', reason: 'install', detail: `${r.disk} is too small (${2 * MiB} bytes)` });
      expect(r.out).toContain(`podboot-stage1: FAILED install: ${r.disk} is too small (${2 * MiB} bytes)`);
      expect(readFileSync(r.disk).equals(before)).toBe(true);
      expect(imageRanges()).toEqual([]);
    });

    it('not a disk (a directory): install, saying so; nothing is fetched', async () => {
      const dir = join(tmp, 'disks', `${shell.name.replace(/\W+/g, '-')}-a-directory`);
      mkdirSync(dir, { recursive: true });
      const r = await install(shell, 'dir', good.signed, { disk: dir });
      expect(r.code, r.out).toBe(1);
      expect(failure()).toEqual({ state: 'failed', reason: 'install', detail: `${dir} is not a disk` });
      expect(imageRanges()).toEqual([]);
    });

    it('a signed zstd manifest without its chunk list, or with a list that does not cover the image: manifest, before the kickstart is fetched', async () => {
      const m = JSON.parse(good.signed.manifest.toString()) as Record<string, unknown>;
      const cases: [string, Record<string, unknown>, string][] = [
        ['nochunks', { ...m, chunkBytes: undefined, chunkSha256: undefined }, 'a zstd image needs chunkBytes and chunkSha256'],
        [
          'short',
          { ...m, chunkSha256: (m.chunkSha256 as string[]).slice(1) },
          `chunkSha256 lists ${Math.ceil(good.signed.image.length / CHUNK) - 1} digests, the image has ${Math.ceil(good.signed.image.length / CHUNK)} chunks`,
        ],
      ];
      for (const [tag, manifest, detail] of cases) {
        const file = join(tmp, `${tag}-${shell.name.replace(/\W+/g, '-')}.json`);
        writeFileSync(file, JSON.stringify(manifest, null, 2));
        const r = await install(shell, tag, { ...good.signed, manifest: readFileSync(file), manifestP7s: rig.signCms(file) });
        expect(r.code, r.out).toBe(1);
        expect(failure()).toEqual({ state: 'failed', reason: 'manifest', detail });
        expect(rig.requests.map((q) => q.path)).not.toContain('/v1/kickstart');
      }
    });

    it('a signed manifest with an encoding stage1 does not know: manifest, before the kickstart is fetched', async () => {
      const m = JSON.parse(good.signed.manifest.toString()) as Record<string, unknown>;
      m.encoding = 'xz';
      const file = join(tmp, `xz-${shell.name.replace(/\W+/g, '-')}.json`);
      writeFileSync(file, JSON.stringify(m, null, 2));
      const r = await install(shell, 'xz', { ...good.signed, manifest: readFileSync(file), manifestP7s: rig.signCms(file) });
      expect(r.code, r.out).toBe(1);
      expect(failure()).toEqual({ state: 'failed', reason: 'manifest', detail: 'unknown encoding xz' });
      expect(rig.states()).toEqual(['stage1', 'failed']);
      const paths = rig.requests.map((q) => q.path);
      expect(paths).not.toContain('/v1/kickstart');
      expect(paths).not.toContain('/v1/stage2/image');
    });
  });

// Beyond 64 MiB of zstd data stream.sh prints a progress line every 64 MiB: on the console, not into the image.
let big: typeof good | undefined;
/** 66 MiB, incompressible: made once, when first needed */
function bigImage(): typeof good {
  if (!big) {
    const { raw, layout } = diskImage(66, 'big', true);
    big = { raw, layout, signed: signedImage('big', raw, [], 0) };
  }
  return big;
}
for (const shell of SHELLS)
  describe(`stage1 streamed install of an image over 64 MiB (${shell.name})`, () => {
    it('installs with the default chunk size; the progress line is on the console', async () => {
      const { raw, layout, signed: s } = bigImage();
      expect(s.image.length).toBeGreaterThan(64 * MiB);
      const r = await install(shell, 'big', s, { before: Buffer.alloc(68 * MiB) });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`podboot-stage1: streamed 64 of ${Math.floor(s.image.length / MiB)} MiB`);
      expect(imageRanges()[0]).toBe(`bytes=0-${16 * MiB - 1}`);
      expect(readFileSync(r.disk).subarray(0, raw.length).equals(expected(raw, layout))).toBe(true);
    });
  });
