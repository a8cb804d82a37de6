// What the cached image check calls wrong with a copy, from what it read
// and what the catalog recorded; its names, events and exit code.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cacheEvent, checkExitCode, copyProblems, formatResult, type ObservedCopy, type ObservedFile, parseCopyRef, quarantinedRef, quarantineName } from '../../../src/catalog/cache-verdict.js';
import type { CatalogEntry } from '../../../src/catalog/index-db.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const manifest = Buffer.from(JSON.stringify({ name: 'lab', version: '1.0', sha256: hex('image'), size: 5 }));
const file = (content: string | Buffer, size?: number): ObservedFile => ({ kind: 'file', sha256: hex(content.toString()), size: size ?? content.length, bytes: Buffer.from(content) });
const good = (): ObservedCopy => ({ image: file('image'), signature: file('sig'), manifest: file(manifest), manifestSignature: file('msig') });
const entry: CatalogEntry = {
  name: 'lab',
  version: '1.0',
  image: hex('image'),
  signature: hex('sig'),
  manifest: hex(manifest.toString()),
  manifestSignature: hex('msig'),
  size: 5,
  signer: 'CN=ci',
  signerSerial: '01',
  created: '2026-01-01T00:00:00Z',
  source: 'test',
  pulledAt: '2026-01-01T00:00:00Z',
};
const ref = { name: 'lab', version: '1.0' };

describe('copyProblems', () => {
  it('finds nothing wrong with a copy that hashes to the catalog entry', () => {
    expect(copyProblems(ref, good(), entry)).toEqual([]);
  });

  it('names each file that differs from the catalog, and how', () => {
    const seen = { ...good(), image: file('imagf'), manifestSignature: file('other') };
    expect(copyProblems(ref, seen, entry)).toEqual([
      `image has sha256 ${hex('imagf')}, the catalog says ${entry.image}`,
      `manifest.json.p7s has sha256 ${hex('other')}, the catalog says ${entry.manifestSignature}`,
    ]);
    expect(copyProblems(ref, { ...good(), image: file('image!', 6) }, entry)).toEqual(['image is 6 bytes, the catalog says 5']);
  });

  it('refuses links, FIFOs, missing and unreadable files by what they are', () => {
    const seen: ObservedCopy = { image: { kind: 'not-regular', what: 'a FIFO' }, signature: { kind: 'missing' }, manifest: file(manifest), manifestSignature: { kind: 'unreadable', error: 'EIO' } };
    expect(copyProblems(ref, seen, entry)).toEqual(['image is a FIFO, not a regular file (not followed, not read)', 'image.p7s is missing', 'manifest.json.p7s cannot be read: EIO']);
  });

  it('without a catalog entry, checks the image against its own manifest.json only', () => {
    expect(copyProblems(ref, good(), undefined)).toEqual([]);
    expect(copyProblems(ref, { ...good(), image: file('imagf') }, undefined)).toEqual([`image has sha256 ${hex('imagf')}, manifest.json says ${hex('image')}`]);
    expect(copyProblems({ name: 'lab', version: '2.0' }, good(), undefined)).toEqual(['manifest.json names lab@1.0, not lab@2.0']);
    expect(copyProblems(ref, { ...good(), manifest: file('{') }, undefined)).toEqual(['manifest.json is not a manifest (no sha256 and size)']);
  });
});

describe('names, events, exit code', () => {
  it('parses NAME@VERSION by the manifest rules', () => {
    expect(parseCopyRef('stage2-lab@1.0')).toEqual({ name: 'stage2-lab', version: '1.0' });
    expect(parseCopyRef('debian@12+1~b')).toEqual({ name: 'debian', version: '12+1~b' });
    for (const bad of ['.quarantine', '@1.0', 'lab@', 'lab', 'a/b@1', '.placing-x']) expect(parseCopyRef(bad), bad).toBeUndefined();
  });

  it('names a quarantined copy by its ref and the time, and reads the ref back', () => {
    const q = quarantineName('stage2-lab@1.0', new Date('2026-12-07T22:40:01.123Z'));
    expect(q).toBe('.quarantine/stage2-lab@1.0.2026-12-07T22-40-01-123Z');
    expect(quarantinedRef(q.slice('.quarantine/'.length))).toBe('stage2-lab@1.0');
    expect(quarantinedRef('stage2-lab@1.0')).toBeUndefined();
    expect(quarantinedRef('notes.txt')).toBeUndefined();
  });

  it('exits 0 only when every copy is good now; an event for every copy that was not', () => {
    const r = (status: 'ok' | 'corrupt' | 'repaired' | 'unrepairable') => ({ pod: 'p', ref: 'lab@1.0', status, detail: 'why' });
    expect(checkExitCode([])).toBe(0);
    expect(checkExitCode([r('ok'), r('repaired')])).toBe(0);
    expect(checkExitCode([r('ok'), r('corrupt')])).toBe(1);
    expect(checkExitCode([r('unrepairable')])).toBe(1);
    expect(cacheEvent(r('ok'))).toBeUndefined();
    expect(cacheEvent(r('repaired'))).toEqual({ kind: 'image-repaired', detail: 'lab@1.0: why' });
    expect(formatResult(r('unrepairable'))).toBe('p: lab@1.0 unrepairable: why');
  });
});
