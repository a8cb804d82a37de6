// The central catalog opened for one job on the pods' cached copies (the
// scheduled check, a rollout's start): the root CA and CRLs read as they are
// now (CRLs are re-signed while the node runs), closed after the job.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { LIMITS, readCapped } from '../signing/index.js';
import { Catalog } from './catalog.js';

export interface CatalogSource {
  catalogDir: string;
  rootCaFile: string;
  /** CRL files, passed on when they exist (a CA directory's) */
  crlFiles: readonly string[];
  log: Logger;
}

export class NoCatalog extends Error {}

export async function withCatalog<T>(o: CatalogSource, job: (s: { catalog: Catalog; rootCa: Buffer; crl: Buffer[] }) => Promise<T>): Promise<T> {
  if (!existsSync(join(o.catalogDir, 'index.db'))) throw new NoCatalog(`no image catalog in ${o.catalogDir} (podboot images pull; serve --catalog DIR)`);
  const rootCa = await readCapped(o.rootCaFile, LIMITS.rootCa, 'root CA');
  const crl = await Promise.all(o.crlFiles.filter((f) => existsSync(f)).map((f) => readCapped(f, LIMITS.crl, `CRL file ${f}`)));
  const catalog = await Catalog.open(o.catalogDir, o.log.child({ component: 'catalog' }));
  try {
    return await job({ catalog, rootCa, crl });
  } finally {
    catalog.close();
  }
}
