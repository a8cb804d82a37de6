// The pod's stage2 library follows each copy on disk: a copy placed again (the
// central image check moves a bad one aside and renames a new one into
// place) is served from the next request on, and a copy moved aside is not
// served at all.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Stage2Library } from '../../../src/pod/stage2-library.js';
import { captureLogger } from '../../helpers/logs.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A copy as onboarding leaves it (the library reads the manifest's fields; signatures are stage1's to check). */
function writeCopy(to: string, image: Buffer, version = '1'): string {
  mkdirSync(to, { recursive: true });
  const sha256 = createHash('sha256').update(image).digest('hex');
  writeFileSync(join(to, 'image'), image);
  writeFileSync(join(to, 'image.p7s'), 'sig');
  writeFileSync(join(to, 'manifest.json'), JSON.stringify({ name: 'lab', version, sha256, size: image.length }));
  writeFileSync(join(to, 'manifest.json.p7s'), 'msig');
  return sha256;
}

describe('Stage2Library', () => {
  it('serves a copy placed again from the next get() on, and nothing once it is moved aside', () => {
    dir = mkdtempSync(join(tmpdir(), 'pb-slot-'));
    const images = join(dir, 'images');
    const { log, lines } = captureLogger();
    const library = new Stage2Library(images, log);
    const slot = { get: () => library.get('lab@1') };
    expect(slot.get()).toBeUndefined();

    const first = writeCopy(join(images, 'lab@1'), randomBytes(1000));
    expect(slot.get()?.sha256).toBe(first);
    expect(slot.get()?.sha256).toBe(first);
    expect(lines.filter((l) => l.msg === 'stage2 ready to serve')).toHaveLength(1);

    // Moved aside, a new copy renamed into place: new files, a new record.
    renameSync(join(images, 'lab@1'), join(images, 'aside'));
    expect(slot.get()).toBeUndefined();
    const second = writeCopy(join(images, '.placing-x'), randomBytes(2000));
    renameSync(join(images, '.placing-x'), join(images, 'lab@1'));
    const set = slot.get();
    expect(set?.sha256).toBe(second);
    expect(set?.files.image.size).toBe(2000);
    expect(lines.filter((l) => l.msg === 'stage2 ready to serve')).toHaveLength(2);
  });

  it('holds versions side by side, names a copy by its image sha256, and looks up nothing outside the directory', () => {
    dir = mkdtempSync(join(tmpdir(), 'pb-lib-'));
    const images = join(dir, 'images');
    const { log } = captureLogger();
    const library = new Stage2Library(images, log);
    expect(library.refs()).toEqual([]);
    const v1 = writeCopy(join(images, 'lab@1'), randomBytes(1000), '1');
    const v2 = writeCopy(join(images, 'lab@2'), randomBytes(1500), '2');
    mkdirSync(join(images, '.quarantine', 'lab@3'), { recursive: true });
    expect(library.refs()).toEqual(['lab@1', 'lab@2']);
    expect(library.get('lab@2')?.sha256).toBe(v2);
    expect(library.refOf(v1)).toBe('lab@1');
    expect(library.refOf('0'.repeat(64))).toBeUndefined();
    for (const bad of ['../images/lab@1', '.quarantine', 'lab', 'lab@1/..']) expect(library.get(bad)).toBeUndefined();
    // a copy under another version's name is not served as that version
    writeCopy(join(images, 'lab@3'), randomBytes(10), '2');
    expect(library.get('lab@3')).toBeUndefined();
    expect(library.refs()).toEqual(['lab@1', 'lab@2']);
  });
});
