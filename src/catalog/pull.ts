// `images pull`: fetch an image and its signed files from an artifact store,
// verify, admit. Order matters: the small signed files are checked first, so a
// bad signature or a manifest for another pod costs no image download, and the
// manifest's size caps the image download.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { LIMITS, checkManifest, checkSignature, loadTrust, parseManifest, verifyDetached, verifyImage, type VerifiedImage } from '../signing/index.js';
import { CatalogError, type Catalog, type CatalogEntry, type StagedImage } from './catalog.js';
import { download, type DownloadProgress } from './fetch.js';

export type Artifact = keyof StagedImage['files'];

export type PullEvent =
  | { kind: 'fetch'; artifact: Artifact; url: string }
  | ({ kind: 'progress'; artifact: Artifact } & DownloadProgress)
  | { kind: 'retry'; artifact: Artifact; offset: number; error: string; resume: boolean }
  | { kind: 'fetched'; artifact: Artifact; size: number; resumed: number }
  | { kind: 'verifying' };

export interface PullOptions {
  /** https URL of the image; the other files are URL.p7s, URL.manifest.json, URL.manifest.json.p7s */
  url: string;
  catalog: Catalog;
  dispatcher: Dispatcher;
  rootCa: Buffer;
  crl?: Buffer[];
  now?: Date;
  onEvent?: (e: PullEvent) => void;
  retryDelayMs?: number;
}

export interface PullResult {
  entry: CatalogEntry;
  added: boolean;
  /** absent when the catalog already held this image (nothing was downloaded) */
  verified?: VerifiedImage;
}

export function artifactUrls(url: string): Record<Artifact, string> {
  return { image: url, signature: `${url}.p7s`, manifest: `${url}.manifest.json`, manifestSignature: `${url}.manifest.json.p7s` };
}

export async function pullImage(opts: PullOptions): Promise<PullResult> {
  if (!opts.url.startsWith('https://')) throw new Error(`${opts.url}: only https:// artifact stores are accepted`);
  const now = opts.now ?? new Date();
  const urls = artifactUrls(opts.url);
  const staging = await opts.catalog.createStaging();
  const files: Record<Artifact, string> = {
    image: join(staging, 'image'),
    signature: join(staging, 'image.p7s'),
    manifest: join(staging, 'manifest.json'),
    manifestSignature: join(staging, 'manifest.json.p7s'),
  };
  const fetch = async (artifact: Artifact, maxBytes: number) => {
    opts.onEvent?.({ kind: 'fetch', artifact, url: urls[artifact] });
    const r = await download({
      url: urls[artifact],
      dest: files[artifact],
      dispatcher: opts.dispatcher,
      maxBytes,
      onProgress: (p) => opts.onEvent?.({ kind: 'progress', artifact, ...p }),
      onRetry: (r) => opts.onEvent?.({ kind: 'retry', artifact, offset: r.offset, error: r.error, resume: r.resume }),
      ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
    });
    opts.onEvent?.({ kind: 'fetched', artifact, size: r.size, resumed: r.resumed });
  };
  try {
    await fetch('manifest', LIMITS.manifest);
    await fetch('manifestSignature', LIMITS.signature);
    await fetch('signature', LIMITS.signature);
    const staged: StagedImage = {
      files,
      signature: await readFile(files.signature),
      manifest: await readFile(files.manifest),
      manifestSignature: await readFile(files.manifestSignature),
    };
    const trust = loadTrust(opts.rootCa, opts.crl ?? []);
    verifyDetached(staged.manifest, staged.manifestSignature, trust, now, 'manifest signature');
    const manifest = parseManifest(staged.manifest);
    checkManifest(manifest, { size: manifest.size, now }); // expired manifests stop here, before the download
    checkSignature(staged.signature, trust, now, 'image signature');
    const existing = opts.catalog.get(manifest.name, manifest.version);
    if (existing?.image === manifest.sha256) return { entry: existing, added: false };
    if (existing) throw new CatalogError(`the catalog already holds ${manifest.name} ${manifest.version} with different content (sha256 ${existing.image}); versions are immutable: remove it first`);

    await fetch('image', manifest.size);
    opts.onEvent?.({ kind: 'verifying' });
    const verified = await verifyImage({
      image: files.image,
      signature: staged.signature,
      manifest: staged.manifest,
      manifestSignature: staged.manifestSignature,
      rootCa: opts.rootCa,
      crl: opts.crl ?? [],
      now,
    });
    return { ...opts.catalog.admit(staged, verified, opts.url), verified };
  } catch (err) {
    opts.catalog.log.warn({ url: opts.url, check: (err as { check?: string }).check, err: (err as Error).message }, 'image not admitted');
    throw err;
  } finally {
    // Admitted files were renamed away; whatever is left was not admitted.
    await rm(staging, { recursive: true, force: true });
  }
}
