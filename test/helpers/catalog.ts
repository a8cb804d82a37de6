// A signed image admitted to a catalog as `podboot images pull` admits one,
// without an artifact store: its four files staged, verified, admitted.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalog, CatalogEntry } from '../../src/catalog/catalog.js';
import { verifyImage } from '../../src/signing/index.js';

/** `signed` is the image path `podboot sign` was given (its .p7s and manifest files sit beside it). */
export async function admitSigned(catalog: Catalog, signed: string, rootCa: Buffer): Promise<CatalogEntry> {
  const staging = await catalog.createStaging();
  const files = {
    image: join(staging, 'image'),
    signature: join(staging, 'image.p7s'),
    manifest: join(staging, 'manifest.json'),
    manifestSignature: join(staging, 'manifest.json.p7s'),
  };
  copyFileSync(signed, files.image);
  copyFileSync(`${signed}.p7s`, files.signature);
  copyFileSync(`${signed}.manifest.json`, files.manifest);
  copyFileSync(`${signed}.manifest.json.p7s`, files.manifestSignature);
  const staged = { files, signature: readFileSync(files.signature), manifest: readFileSync(files.manifest), manifestSignature: readFileSync(files.manifestSignature) };
  const verified = await verifyImage({ image: files.image, signature: staged.signature, manifest: staged.manifest, manifestSignature: staged.manifestSignature, rootCa, crl: [] });
  return catalog.admit(staged, verified, `file://${signed}`).entry;
}
