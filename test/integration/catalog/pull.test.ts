// `podboot images pull` against a real HTTPS artifact store (Debian's nginx),
// with a connection cut mid-download, tampered artifacts, and the catalog's
// selective-onboarding lookup.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog, CatalogError } from '../../../src/catalog/catalog.js';
import { download, httpsDispatcher } from '../../../src/catalog/fetch.js';
import { VerificationError } from '../../../src/signing/errors.js';
import { forgeServiceCaSigner } from '../../helpers/forged-signer.js';
import { captureLogger } from '../../helpers/logs.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';
import { startCuttingRelay, startNginx, type CuttingRelay, type Nginx } from './artifact-server.js';

const MiB = 1 << 20;
const IMAGE_SIZE = 24 * MiB;

let dir: string;
let ca: string;
let catalogDir: string;
let nginx: Nginx | undefined;
let relay: CuttingRelay | undefined;
let imageSha: string;
let signerSerial: string;

async function podboot(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(process.execPath, [PODBOOT, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
  return { code, out, err };
}

async function ok(args: string[]) {
  const r = await podboot(...args);
  expect(r.code, r.out + r.err).toBe(0);
  return r;
}

const url = (path: string) => `https://127.0.0.1:${relay!.port}/${path}`;
const pull = (path: string, ...extra: string[]) => podboot('images', 'pull', url(path), '--ca', `${ca}/root.pem`, '--tls-ca', `${ca}/root.pem`, '--catalog', catalogDir, ...extra);
const blobs = () => readdirSync(join(catalogDir, 'blobs', 'sha256')).sort();
const staging = () => readdirSync(join(catalogDir, 'tmp'));
const listJson = async () => JSON.parse((await ok(['images', 'list', '--catalog', catalogDir, '--json'])).out) as { name: string; version: string; image: string }[];

/** Publishes image + signed files under www/<sub>/, optionally altered. */
function publish(sub: string, alter: { image?: (b: Buffer) => void; manifest?: (s: string) => string } = {}): void {
  const to = join(nginx!.root, sub);
  mkdirSync(to, { recursive: true });
  const img = readFileSync(join(dir, 'stage2.img'));
  alter.image?.(img);
  writeFileSync(join(to, 'stage2.img'), img);
  copyFileSync(join(dir, 'stage2.img.p7s'), join(to, 'stage2.img.p7s'));
  copyFileSync(join(dir, 'stage2.img.manifest.json.p7s'), join(to, 'stage2.img.manifest.json.p7s'));
  const manifest = readFileSync(join(dir, 'stage2.img.manifest.json'), 'utf8');
  writeFileSync(join(to, 'stage2.img.manifest.json'), alter.manifest ? alter.manifest(manifest) : manifest);
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'podboot-catalog-'));
  ca = join(dir, 'ca');
  catalogDir = join(dir, 'catalog');
  await ok(['ca', 'init', '--out', ca, '--org', 'Catalog Test']);
  signerSerial = (await ok(['ca', 'issue-signer', 'ci', '--ca', ca])).out.match(/serial ([0-9a-f]+)/)![1]!;
  await ok(['ca', 'issue-server', 'artifacts', '--ca', ca, '--ip', '127.0.0.1', '--dns', 'localhost']);
  const image = randomBytes(IMAGE_SIZE);
  imageSha = createHash('sha256').update(image).digest('hex');
  writeFileSync(join(dir, 'stage2.img'), image);
  await ok(['sign', 'stage2.img', '--cert', `${ca}/signers/ci.chain.pem`, '--key', `${ca}/signers/ci.key`, '--name', 'stage2', '--version', '1.0', '--pods', 'rack-a', '--not-after', '30d']);
  nginx = await startNginx(dir, `${ca}/servers/artifacts.chain.pem`, `${ca}/servers/artifacts.key`);
  relay = await startCuttingRelay(nginx.port);
  publish('images');
});

afterAll(async () => {
  await relay?.close();
  await nginx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('images pull', () => {
  it('resumes a download cut mid-transfer and admits the verified image', async () => {
    relay!.cutOnceAfter(6 * MiB);
    const r = await pull('images/stage2.img');
    expect(r.code, r.out + r.err).toBe(0);
    expect(relay!.cuts).toBe(1);
    expect(r.out).toMatch(/image: .*; resuming at byte \d+/);
    expect(r.out).toMatch(/^ {2}image: 50% \(\d+\.\d MiB of 24\.0 MiB\)$/m);
    expect(r.out).not.toContain('\r'); // not a terminal: plain lines, no redrawn bar
    expect(r.out).toMatch(new RegExp(`admitted: stage2@1\\.0 sha256 ${imageSha} \\(${IMAGE_SIZE} bytes\\), signed by O=Catalog Test, CN=ci`));

    // nginx served the rest as a range of the same file (If-Range matched), not the whole file again.
    const gets = nginx!.accessLog().filter((l) => l.includes(' /images/stage2.img '));
    expect(gets[0]).toMatch(/^200 GET \/images\/stage2\.img "-" "-" \d+$/);
    // nginx logs the quotes of the ETag sent in If-Range as \x22
    expect(gets[1]).toMatch(/^206 GET \/images\/stage2\.img "bytes=\d+-" "\\x22[0-9a-f]+-[0-9a-f]+\\x22" \d+$/);
    const served = gets.map((l) => Number(l.split(' ').pop()));
    expect(served.reduce((a, b) => a + b, 0)).toBeLessThan(IMAGE_SIZE * 1.5);

    const blob = join(catalogDir, 'blobs', 'sha256', imageSha);
    expect(createHash('sha256').update(readFileSync(blob)).digest('hex')).toBe(imageSha);
    expect(statSync(blob).mode & 0o777).toBe(0o444);
    expect(blobs()).toHaveLength(4); // image, signature, manifest, manifest signature
    expect(staging()).toEqual([]);
  });

  it('lists and shows what it admitted; a second pull is a no-op', async () => {
    expect(await listJson()).toMatchObject([{ name: 'stage2', version: '1.0', image: imageSha }]);
    expect((await ok(['images', 'list', '--catalog', catalogDir])).out).toMatch(new RegExp(`^stage2@1\\.0  ${IMAGE_SIZE}  sha256:${imageSha}  pods:rack-a$`, 'm'));
    const show = (await ok(['images', 'show', 'stage2@1.0', '--catalog', catalogDir])).out;
    expect(show).toMatch(new RegExp(`path +${join(catalogDir, 'blobs', 'sha256', imageSha)}`));
    expect(show).toMatch(/signer +O=Catalog Test, CN=ci/);
    expect((await podboot('images', 'show', 'stage9', '--catalog', catalogDir)).code).toBe(1);
    const imageGets = () => nginx!.accessLog().filter((l) => l.includes(' /images/stage2.img ')).length;
    const before = imageGets();
    const again = await pull('images/stage2.img');
    expect(again.out).toMatch(/already in the catalog: stage2@1\.0/);
    expect(imageGets()).toBe(before); // known from its signed manifest: not downloaded again
    expect(blobs()).toHaveLength(4);
  });

  it('draws a progress bar when stdout is a terminal', async () => {
    await ok(['images', 'remove', 'stage2@1.0', '--catalog', catalogDir]);
    const argv = [process.execPath, PODBOOT, 'images', 'pull', url('images/stage2.img'), '--ca', `${ca}/root.pem`, '--tls-ca', `${ca}/root.pem`, '--catalog', catalogDir];
    // script(1) gives the command a pseudo-terminal; async spawn keeps this process's relay running.
    const p = spawn('script', ['-qfec', argv.map((a) => `'${a}'`).join(' '), '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    expect(await new Promise((resolve) => p.on('close', resolve)), out).toBe(0);
    expect(out).toMatch(/\r {2}image \[#{30}\] 100% {2}24\.0 MiB \/ 24\.0 MiB/);
    expect(out).not.toMatch(/image: 25%/); // the plain-line form is for pipes and files
    expect(out).toMatch(/admitted: stage2@1\.0/);
  });

  it('refuses a tampered image and leaves nothing behind', async () => {
    publish('tampered', { image: (b) => (b[IMAGE_SIZE / 2]! ^= 0x01) });
    // With stage2@1.0 in the catalog the pull would stop at the manifest ("already in the catalog").
    await ok(['images', 'remove', 'stage2@1.0', '--catalog', catalogDir]);
    const r = await pull('tampered/stage2.img');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/REFUSED \[digest\] .*image signature: the image is not what was signed/);
    expect(r.err).toMatch(/"msg":"image not admitted"/);
    expect(blobs()).toEqual([]);
    expect(await listJson()).toEqual([]);
    expect(staging()).toEqual([]);
    await ok(['images', 'pull', url('images/stage2.img'), '--ca', `${ca}/root.pem`, '--tls-ca', `${ca}/root.pem`, '--catalog', catalogDir]);
    expect(blobs()).toHaveLength(4);
  });

  it('refuses an edited manifest before downloading the image', async () => {
    publish('badmanifest', { manifest: (m) => m.replace('"rack-a"', '"rack-b"') });
    const before = blobs();
    const r = await pull('badmanifest/stage2.img');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/REFUSED \[digest\] .*manifest signature: the content is not what was signed/);
    expect(nginx!.accessLog().some((l) => l.includes(' /badmanifest/stage2.img '))).toBe(false);
    expect(blobs()).toEqual(before);
    expect(staging()).toEqual([]);
  });

  it('refuses an image signed through the service TLS CA (a signer claiming codeSigning), before downloading it', async () => {
    const to = join(nginx!.root, 'forged');
    mkdirSync(to, { recursive: true });
    const f = forgeServiceCaSigner(ca, dir);
    writeFileSync(join(to, 'stage2.img'), randomBytes(4096));
    await ok(['sign', join(to, 'stage2.img'), '--cert', f.chain, '--key', f.key, '--name', 'stage2', '--version', '6.6']);
    const before = blobs();
    const r = await pull('forged/stage2.img');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/REFUSED \[eku\] .*manifest signature: issuing CA certificate \(O=Catalog Test, CN=Catalog Test podboot service TLS CA, serial [0-9a-f]+\) is not a code-signing CA/);
    expect(nginx!.accessLog().some((l) => l.includes(' /forged/stage2.img '))).toBe(false);
    expect(blobs()).toEqual(before);
    expect(staging()).toEqual([]);
  });

  it('reports a missing artifact and an untrusted TLS server, leaving nothing', async () => {
    const missing = await pull('nowhere/stage2.img');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/nowhere\/stage2\.img\.manifest\.json: HTTP 404/);
    const untrusted = await podboot('images', 'pull', url('images/stage2.img'), '--ca', `${ca}/root.pem`, '--catalog', catalogDir);
    expect(untrusted.code).toBe(1);
    expect(untrusted.err).toMatch(/certificate/i);
    expect(untrusted.out).not.toMatch(/resuming|starting again/); // a TLS trust failure is not retried
    expect(staging()).toEqual([]);
    expect((await podboot('images', 'pull', 'http://127.0.0.1/x', '--ca', `${ca}/root.pem`)).code).toBe(2);
  });
});

describe('resumable download', () => {
  it('starts over when the file changed between attempts (If-Range mismatch)', async () => {
    const served = join(nginx!.root, 'changing.bin');
    writeFileSync(served, randomBytes(8 * MiB));
    const replacement = randomBytes(8 * MiB + 1); // another size, so nginx's ETag differs even within one second
    relay!.cutOnceAfter(2 * MiB);
    const dest = join(dir, 'changing.out');
    const dispatcher = httpsDispatcher({ ca: readFileSync(`${ca}/root.pem`) });
    const retries: boolean[] = [];
    try {
      const r = await download({
        url: url('changing.bin'),
        dest,
        dispatcher,
        maxBytes: 16 * MiB,
        retryDelayMs: 10,
        onRetry: (x) => {
          retries.push(x.resume);
          writeFileSync(`${served}.new`, replacement);
          renameSync(`${served}.new`, served);
        },
      });
      expect(r).toEqual({ size: replacement.length, resumed: 0 });
    } finally {
      await dispatcher.close();
    }
    expect(retries).toEqual([true]);
    expect(readFileSync(dest).equals(replacement)).toBe(true);
    const gets = nginx!.accessLog().filter((l) => l.includes(' /changing.bin '));
    expect(gets[1]).toMatch(/^200 GET \/changing\.bin "bytes=\d+-" /); // asked for a range, got the whole new file
  });

  it('refuses a body longer than expected without writing past the cap', async () => {
    const dispatcher = httpsDispatcher({ ca: readFileSync(`${ca}/root.pem`) });
    try {
      await expect(download({ url: url('images/stage2.img'), dest: join(dir, 'capped.out'), dispatcher, maxBytes: MiB })).rejects.toThrow(/25165824 bytes is more than the 1048576 expected/);
    } finally {
      await dispatcher.close();
    }
    expect(statSync(join(dir, 'capped.out')).size).toBe(0);
  });
});

describe('selective onboarding', () => {
  it('images onboard hands each pod only the image its pod file names', async () => {
    const pods = join(dir, 'pods');
    mkdirSync(pods, { recursive: true });
    const pod = (name: string, third: number, stage2: string) =>
      writeFileSync(
        join(pods, `${name}.yaml`),
        `apiVersion: podboot/v1\nkind: Pod\nmetadata: { name: ${name} }\nspec:\n  listen: { address: 10.99.${third}.1 }\n  relays: [10.${third}.0.1]\n  subnets: [ { cidr: 10.${third}.0.0/24, pool: 10.${third}.0.100-10.${third}.0.199 } ]\n${stage2}`,
      );
    pod('rack-a', 1, '  stage2: { image: stage2, version: 1.0 }\n');
    pod('rack-b', 2, '  stage2: { image: stage2, version: 1.0 }\n'); // the manifest allows rack-a only
    pod('rack-c', 3, '');
    const state = join(dir, 'onboard-state');
    const r = await podboot('images', 'onboard', '--pods', pods, '--ca', `${ca}/root.pem`, '--catalog', catalogDir, '--state', state);
    expect(r.code, r.out + r.err).toBe(1);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^rack-a: stage2@1\.0 sha256 [0-9a-f]{64} -> /);
    expect(lines[1]).toMatch(/^rack-b: stage2@1\.0 refused \(manifest\)/);
    expect(lines[2]).toBe('rack-c: no stage2 assigned');
    const placed = join(state, 'rack-a', 'images', 'stage2@1.0');
    expect(readdirSync(placed).sort()).toEqual(['image', 'image.p7s', 'manifest.json', 'manifest.json.p7s']);
    expect(
      createHash('sha256')
        .update(readFileSync(join(placed, 'image')))
        .digest('hex'),
    ).toBe(imageSha);
    expect(readdirSync(state).sort()).toEqual(['rack-a']);
  });

  it("gives a pod its assigned image's verified blob, and refuses what it may not have", async () => {
    const { log, lines } = captureLogger({ component: 'catalog' });
    const catalog = await Catalog.open(catalogDir, log);
    const rootCa = readFileSync(`${ca}/root.pem`);
    try {
      const got = await catalog.resolveForPod({ pod: 'rack-a', name: 'stage2', version: '1.0', rootCa, crl: [readFileSync(`${ca}/codesign-crl.pem`)] });
      expect(got.image).toBe(join(catalogDir, 'blobs', 'sha256', imageSha));
      expect(got.verified.manifest?.pods).toEqual(['rack-a']);
      expect((await catalog.resolveForPod({ pod: 'rack-a', name: 'stage2', version: '1.0', rootCa, rehash: true })).sha256).toBe(imageSha);

      const other = await catalog.resolveForPod({ pod: 'rack-b', name: 'stage2', version: '1.0', rootCa }).catch((e: unknown) => e);
      expect(other).toBeInstanceOf(VerificationError);
      expect((other as VerificationError).check).toBe('manifest');
      await expect(catalog.resolveForPod({ pod: 'rack-a', name: 'stage2', version: '9.9', rootCa })).rejects.toThrow(CatalogError);
      expect(lines.filter((l) => l.msg === 'assigned image refused' || l.msg === 'assigned image is not in the catalog').map((l) => l.pod)).toEqual(['rack-b', 'rack-a']);

      // A signer revoked after admission: the pod no longer gets the image.
      await ok(['ca', 'revoke', signerSerial, '--ca', ca]);
      const revoked = await catalog.resolveForPod({ pod: 'rack-a', name: 'stage2', version: '1.0', rootCa, crl: [readFileSync(`${ca}/codesign-crl.pem`)] }).catch((e: unknown) => e);
      expect((revoked as VerificationError).check).toBe('revoked');
    } finally {
      catalog.close();
    }
  });

  it('images remove deletes the entry and its blobs', async () => {
    expect((await ok(['images', 'remove', 'stage2@1.0', '--catalog', catalogDir])).out).toMatch(/removed stage2@1\.0/);
    expect(blobs()).toEqual([]);
    expect(await listJson()).toEqual([]);
    expect((await podboot('images', 'remove', 'stage2@1.0', '--catalog', catalogDir)).code).toBe(1);
    expect((await podboot('images', 'remove', 'stage2', '--catalog', catalogDir)).code).toBe(2);
  });
});
