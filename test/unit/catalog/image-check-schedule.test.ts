// `podboot serve`'s schedule of the cached image check, in-process against a
// real catalog, a signed image and a pod database: the first run after its
// delay, then every interval, each repair an event; the metrics it feeds;
// nothing after stop; a node without a catalog says so once.
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageCheckSchedule } from '../../../src/catalog/image-check-schedule.js';
import { Catalog, type CatalogEntry } from '../../../src/catalog/catalog.js';
import { checkPodImages } from '../../../src/catalog/pod-cache.js';
import { placeCopy } from '../../../src/catalog/pod-copy.js';
import { CaDirectory, readPrivateKey, signerIdentity, signImage } from '../../../src/signing/index.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { openPodState } from '../../../src/store/pod-state.js';
import { admitSigned } from '../../helpers/catalog.js';
import { captureLogger } from '../../helpers/logs.js';

let dir: string;
let ca: CaDirectory;
let entry: CatalogEntry;
const state = () => join(dir, 'state');
const copy = () => join(state(), 'rack-s', 'images', 'lab@1.0', 'image');

function flip(file: string): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 7);
  b[0]! ^= 1;
  writeSync(fd, b, 0, 1, 7);
  closeSync(fd);
}

const repairs = () => {
  const s = openPodState(join(state(), 'rack-s'), { readonly: true });
  try {
    return (s?.events(undefined, 100) ?? []).filter((e) => e.kind === 'image-repaired' && e.mac === '');
  } finally {
    s?.close();
  }
};

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within 5 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pb-image-check-'));
  ca = await CaDirectory.init(join(dir, 'ca'), { organization: 'Schedule Test' });
  const issued = await ca.issueSigner('ci');
  const signer = signerIdentity(readFileSync(issued.chain), await readPrivateKey(issued.key));
  writeFileSync(join(dir, 'lab.img'), randomBytes(200_000));
  await signImage({ image: join(dir, 'lab.img'), signer, name: 'lab', version: '1.0', pods: ['rack-s'] });
  const { log } = captureLogger({ component: 'catalog' });
  const catalog = await Catalog.open(join(dir, 'catalog'), log);
  try {
    entry = await admitSigned(catalog, join(dir, 'lab.img'), readFileSync(ca.paths.rootCert));
    await placeCopy({ entry, blobPath: (h) => catalog.blobPath(h), imagesDir: join(state(), 'rack-s', 'images'), log });
  } finally {
    catalog.close();
  }
  openPodDatabase(join(state(), 'rack-s')).close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ImageCheckSchedule', () => {
  it('checks after its first delay and then every interval, repairing each time; stops when told', async () => {
    const { log, lines } = captureLogger({ node: 'central' });
    const schedule = new ImageCheckSchedule({
      stateRoot: state(),
      catalogDir: join(dir, 'catalog'),
      rootCaFile: ca.paths.rootCert,
      crlFiles: [ca.paths.codeSigningCrl, ca.paths.rootCrl, join(dir, 'no-such.crl')],
      intervalMs: 150,
      firstDelayMs: 20,
      pods: () => ['rack-s'],
      log,
    });
    flip(copy());
    schedule.start();
    await until(() => repairs().length === 1, 'first repair');
    flip(copy());
    await until(() => repairs().length === 2, 'second repair');
    expect(repairs()[0]!.detail).toMatch(/^lab@1\.0: image has sha256 [0-9a-f]{64}, the catalog says [0-9a-f]{64}; moved to \.quarantine\/lab@1\.0\.\S+; placed again from the catalog/);
    expect(lines.filter((l) => l.msg === 'cached image copy placed again from the catalog').every((l) => l.pod === 'rack-s')).toBe(true);
    await until(() => schedule.families()[0]!.samples.some((s) => s.labels?.status === 'ok' && s.value === 1), 'a good run');

    const copies = schedule.families().find((f) => f.name === 'podboot_image_copies')!;
    expect(copies.samples).toEqual(
      expect.arrayContaining([
        { labels: { pod: 'rack-s', status: 'ok' }, value: 1 },
        { labels: { pod: 'rack-s', status: 'unrepairable' }, value: 0 },
      ]),
    );
    await schedule.stop();
    flip(copy());
    await new Promise((r) => setTimeout(r, 400));
    expect(repairs()).toHaveLength(2);
    // Left bad for the next test.
  });

  it('counts a copy it cannot place again as unrepairable in its metrics', async () => {
    const { log } = captureLogger({ node: 'central' });
    const blob = join(dir, 'catalog', 'blobs', 'sha256', entry.image);
    flip(blob);
    const schedule = new ImageCheckSchedule({ stateRoot: state(), catalogDir: join(dir, 'catalog'), rootCaFile: ca.paths.rootCert, crlFiles: [], intervalMs: 60_000, pods: () => ['rack-s'], log });
    const results = await schedule.runNow();
    expect(results).toMatchObject([{ pod: 'rack-s', ref: 'lab@1.0', status: 'unrepairable' }]);
    expect(schedule.families()[0]!.samples).toContainEqual({ labels: { pod: 'rack-s', status: 'unrepairable' }, value: 1 });
    flip(blob);
  });

  it('checks only the refs asked for, placing one the pod does not have; removes copies left half-placed', async () => {
    const { log } = captureLogger({ node: 'central' });
    const images = join(state(), 'rack-s', 'images');
    mkdirSync(join(images, '.placing-crashed'));
    mkdirSync(join(images, '.placing-now'));
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(join(images, '.placing-crashed'), hoursAgo, hoursAgo);
    const catalog = await Catalog.open(join(dir, 'catalog'), log);
    try {
      const rootCa = readFileSync(ca.paths.rootCert);
      const r = await checkPodImages({ stateRoot: state(), pod: 'rack-s', catalog, rootCa, refs: ['lab@1.0', 'lab@9.9'], log });
      expect(r).toMatchObject([
        { ref: 'lab@1.0', status: 'repaired', detail: expect.stringMatching(/^the pod has no copy; placed again from the catalog/) },
        { ref: 'lab@9.9', status: 'unrepairable', detail: 'the pod has no copy; not in the catalog, so not placed again: the pod has no lab@9.9' },
      ]);
      // A copy being placed right now is someone's work in progress: kept.
      expect(readdirSync(images).filter((n) => n.startsWith('.placing-'))).toEqual(['.placing-now']);
      await expect(checkPodImages({ stateRoot: state(), pod: '../etc', catalog, rootCa, log })).rejects.toThrow(/not a pod name/);
    } finally {
      catalog.close();
    }
  });

  it('says once that there is no catalog, and checks nothing', async () => {
    const { log, lines } = captureLogger({ node: 'central' });
    const schedule = new ImageCheckSchedule({ stateRoot: state(), catalogDir: join(dir, 'nowhere'), rootCaFile: ca.paths.rootCert, crlFiles: [], intervalMs: 60_000, pods: () => ['rack-s'], log });
    expect(await schedule.runNow()).toEqual([]);
    expect(await schedule.runNow()).toEqual([]);
    expect(lines.filter((l) => /no catalog there/.test(String(l.msg)))).toHaveLength(1);
  });
});
