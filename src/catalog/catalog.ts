// The central node's catalog of verified images. Layout:
//
//   DIR/blobs/sha256/<hex>   content-addressed, read-only files: images, their
//                            signatures, manifests and manifest signatures
//   DIR/index.db             name@version → blobs (SQLite)
//   DIR/tmp/                 downloads in progress; never read as catalog content
//
// Only verified files enter blobs/, by rename from tmp/ after fsync, so a
// reader sees a whole verified file or none.
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { LIMITS, readCapped, verifyImage, type VerifiedImage } from '../signing/index.js';
import { CatalogIndex, type CatalogEntry } from './index-db.js';

export type { CatalogEntry } from './index-db.js';

export class CatalogError extends Error {}

type Artifact = 'image' | 'signature' | 'manifest' | 'manifestSignature';

/**
 * One image's files, downloaded into DIR/tmp, written through (fsync) and
 * verified, waiting to be admitted; the small ones also as the bytes verified.
 */
export interface StagedImage {
  files: Record<Artifact, string>;
  signature: Buffer;
  manifest: Buffer;
  manifestSignature: Buffer;
}

export interface PodImage {
  image: string;
  signature: string;
  manifest: string;
  manifestSignature: string;
  sha256: string;
  size: number;
  verified: VerifiedImage;
}

/** Staging directories older than this are left over from a crash and removed on open. */
const STALE_STAGING_MS = 24 * 3_600_000;

const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class Catalog {
  private constructor(
    readonly dir: string,
    private readonly index: CatalogIndex,
    readonly log: Logger,
  ) {}

  static async open(dir: string, log: Logger): Promise<Catalog> {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
    await mkdir(join(dir, 'tmp'), { recursive: true, mode: 0o700 });
    const catalog = new Catalog(dir, new CatalogIndex(join(dir, 'index.db')), log);
    await catalog.removeStaleStaging();
    return catalog;
  }

  close(): void {
    this.index.close();
  }

  blobPath(hex: string): string {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new CatalogError(`not a sha256: ${hex}`);
    return join(this.dir, 'blobs', 'sha256', hex);
  }

  list(): CatalogEntry[] {
    return this.index.list();
  }

  get(name: string, version: string): CatalogEntry | undefined {
    return this.index.get(name, version);
  }

  versions(name: string): CatalogEntry[] {
    return this.index.versions(name);
  }

  /** A fresh private directory under DIR/tmp for one download. */
  async createStaging(): Promise<string> {
    return mkdtemp(join(this.dir, 'tmp', 'pull-'));
  }

  private async removeStaleStaging(): Promise<void> {
    const tmp = join(this.dir, 'tmp');
    for (const name of await readdir(tmp)) {
      const path = join(tmp, name);
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_STAGING_MS) {
        await rm(path, { recursive: true, force: true });
        this.log.info({ path }, 'removed stale download directory');
      }
    }
  }

  /**
   * Moves a verified image and its signed files into blobs/ and records it.
   * Refuses to replace name@version with different bytes: versions are immutable.
   */
  admit(staged: StagedImage, verified: VerifiedImage, source: string): { entry: CatalogEntry; added: boolean } {
    const m = verified.manifest;
    if (!m) throw new CatalogError('an image enters the catalog only with its signed manifest');
    const entry: CatalogEntry = {
      name: m.name,
      version: m.version,
      image: verified.sha256,
      signature: sha256Hex(staged.signature),
      manifest: sha256Hex(staged.manifest),
      manifestSignature: sha256Hex(staged.manifestSignature),
      size: verified.size,
      signer: verified.signer.subject,
      signerSerial: verified.signer.serial,
      created: m.created,
      source,
      pulledAt: new Date().toISOString(),
    };
    if (m.notAfter) entry.notAfter = m.notAfter;
    if (m.pods) entry.pods = m.pods;

    return this.index.exclusive(() => {
      const existing = this.index.get(m.name, m.version);
      if (existing) {
        if (existing.image !== entry.image) {
          throw new CatalogError(`the catalog already holds ${m.name} ${m.version} with different content (sha256 ${existing.image}); versions are immutable: remove it first`);
        }
        return { entry: existing, added: false };
      }
      for (const role of ['signature', 'manifest', 'manifestSignature', 'image'] as const) this.placeBlob(staged.files[role], entry[role]);
      syncDirSync(join(this.dir, 'blobs', 'sha256'));
      this.index.insert(entry);
      this.log.info({ image: entry.name, version: entry.version, sha256: entry.image, signer: entry.signer, source }, 'image admitted to the catalog');
      return { entry, added: true };
    });
  }

  private placeBlob(tmp: string, hex: string): void {
    chmodSync(tmp, 0o444);
    renameSync(tmp, this.blobPath(hex));
  }

  /** Removes name@version and every blob no other entry uses. */
  remove(name: string, version: string): CatalogEntry {
    return this.index.exclusive(() => {
      const e = this.index.get(name, version);
      if (!e) throw new CatalogError(`the catalog holds no ${name} ${version}`);
      this.index.delete(name, version);
      for (const hex of new Set([e.image, e.signature, e.manifest, e.manifestSignature])) {
        if (!this.index.references(hex) && existsSync(this.blobPath(hex))) unlinkSync(this.blobPath(hex));
      }
      this.log.info({ image: name, version, sha256: e.image }, 'image removed from the catalog');
      return e;
    });
  }

  /**
   * Selective onboarding: the verified blob for a pod's assigned image. Checks
   * again, at `now` and with the current CRLs, everything the signature and
   * manifest say (chain, revocation, expiry, the pod's allow-list); the image
   * bytes are re-hashed only with `rehash` (the blob was hashed on admission).
   */
  async resolveForPod(req: { pod: string; name: string; version: string; rootCa: Buffer; crl?: Buffer[]; now?: Date; rehash?: boolean }): Promise<PodImage> {
    const e = this.index.get(req.name, req.version);
    const log = this.log.child({ pod: req.pod });
    if (!e) {
      log.warn({ image: req.name, version: req.version }, 'assigned image is not in the catalog');
      throw new CatalogError(`pod ${req.pod} is assigned ${req.name} ${req.version}, which is not in the catalog: run podboot images pull`);
    }
    const paths = { image: this.blobPath(e.image), signature: this.blobPath(e.signature), manifest: this.blobPath(e.manifest), manifestSignature: this.blobPath(e.manifestSignature) };
    try {
      const verified = await verifyImage({
        image: paths.image,
        signature: await readCapped(paths.signature, LIMITS.signature, 'signature blob'),
        manifest: await readCapped(paths.manifest, LIMITS.manifest, 'manifest blob'),
        manifestSignature: await readCapped(paths.manifestSignature, LIMITS.signature, 'manifest signature blob'),
        rootCa: req.rootCa,
        crl: req.crl ?? [],
        pod: req.pod,
        expect: { name: req.name, version: req.version },
        ...(req.now ? { now: req.now } : {}),
        ...(req.rehash ? {} : { imageSha256: Buffer.from(e.image, 'hex') }),
      });
      return { ...paths, sha256: e.image, size: e.size, verified };
    } catch (err) {
      log.warn({ image: req.name, version: req.version, err: (err as Error).message, check: (err as { check?: string }).check }, 'assigned image refused');
      throw err;
    }
  }
}
