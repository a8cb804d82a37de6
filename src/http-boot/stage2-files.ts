// The pod's copy of its assigned stage2 (written by `podboot images onboard`
// into <state>/images/<name>@<version>/): which files there are, and a strong
// validator for each so a resumed download never splices two versions.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { etagOf } from './range.js';

export const STAGE2_FILES = ['image', 'image.p7s', 'manifest.json', 'manifest.json.p7s'] as const;
export type Stage2FileName = (typeof STAGE2_FILES)[number];

export interface Stage2File {
  path: string;
  size: number;
  etag: string;
  lastModified: string;
}

export interface Stage2Set {
  name: string;
  version: string;
  sha256: string;
  /** the manifest's chunk size (streamed images): rack peers keep and share chunks of it */
  chunkBytes?: number;
  files: Record<Stage2FileName, Stage2File>;
}

/** Small files are hashed; the image is named by the sha256 its (signed) manifest gives. */
export function loadStage2(dir: string): Stage2Set {
  const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');
  let manifest: { name?: unknown; version?: unknown; sha256?: unknown; size?: unknown; chunkBytes?: unknown };
  try {
    manifest = JSON.parse(manifestText) as typeof manifest;
  } catch (err) {
    throw new Error(`${join(dir, 'manifest.json')}: not JSON: ${(err as Error).message}`);
  }
  if (typeof manifest.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(manifest.sha256) || typeof manifest.name !== 'string' || typeof manifest.version !== 'string') {
    throw new Error(`${join(dir, 'manifest.json')}: no name, version or sha256`);
  }
  const files = {} as Record<Stage2FileName, Stage2File>;
  for (const f of STAGE2_FILES) {
    const path = join(dir, f);
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const identity = f === 'image' ? manifest.sha256 : createHash('sha256').update(readFileSync(path)).digest('hex');
    files[f] = { path, size: st.size, etag: etagOf(identity), lastModified: st.mtime.toUTCString() };
  }
  if (files.image.size !== manifest.size) throw new Error(`${files.image.path}: ${files.image.size} bytes, its manifest says ${String(manifest.size)}`);
  const chunkBytes = typeof manifest.chunkBytes === 'number' && Number.isSafeInteger(manifest.chunkBytes) && manifest.chunkBytes > 0 ? manifest.chunkBytes : undefined;
  return { name: manifest.name, version: manifest.version, sha256: manifest.sha256, ...(chunkBytes ? { chunkBytes } : {}), files };
}
