// Pods run as their own users and read nothing outside the state root, so
// `serve --stage1 DIR` does not hand them DIR (a build cache in a checkout,
// perhaps under a directory only root may enter): the node copies the build
// once into STATE/central/stage1, root-owned and world-readable (stage1 is
// public: every server on the rack may fetch it over TFTP), and the pods lay
// it into their boot trees from there.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { STAGE1_BOOT_FILES, STAGE1_INITRD } from '../images/stage1.js';
import { VMEDIA_ISO, VMEDIA_LAYOUT } from '../vmedia/iso-build.js';

const SUMS = 'stage1/SHA256SUMS';

function sums(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, SUMS), 'utf8');
  } catch {
    return undefined;
  }
}

/** The shared copy's directory; copied again only when the build's SHA256SUMS differs from the copy's. */
export async function shareStage1(src: string, stateRoot: string, log: Logger): Promise<string> {
  const dest = join(stateRoot, 'central', 'stage1');
  const want = sums(src);
  // The virtual-media ISO is built after stage1 (and optional): its layout, which names its digest, is compared too.
  const layout = (dir: string) => (existsSync(join(dir, VMEDIA_LAYOUT)) ? readFileSync(join(dir, VMEDIA_LAYOUT), 'utf8') : undefined);
  if (want !== undefined && want === sums(dest) && layout(src) === layout(dest)) return dest;
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  // SHA256SUMS last: a copy cut short has none and is made again.
  const iso = layout(src) !== undefined && existsSync(join(src, VMEDIA_ISO)) ? [VMEDIA_ISO, VMEDIA_LAYOUT] : [];
  for (const name of [...STAGE1_BOOT_FILES, STAGE1_INITRD, ...iso, ...(want !== undefined ? [SUMS] : [])]) {
    if (!existsSync(join(src, name))) throw new Error(`--stage1 ${src}: no ${name} there (podboot images build-stage1 --out ${src})`);
    await mkdir(dirname(join(tmp, name)), { recursive: true, mode: 0o755 });
    await copyFile(join(src, name), join(tmp, name));
    await chmod(join(tmp, name), 0o644);
  }
  await chmod(tmp, 0o755);
  await rm(dest, { recursive: true, force: true });
  await rename(tmp, dest);
  log.info({ stage1: src, shared: dest }, 'stage1 copied where the pods can read it');
  return dest;
}
