// Vitest global setup: builds stage1 once per run (bootloaders, kernel,
// initrd) into .cache/stage1 for the QEMU boot tests. Cached: the first run
// on a machine downloads the Debian packages (~75 MB) and builds (~20 s);
// later runs only check that nothing changed (well under a second), without
// asking apt again (preferCache).
import { join } from 'node:path';
import { buildStage1 } from '../src/images/stage1.js';
import { buildVmediaIso } from '../src/vmedia/iso-build.js';

const ROOT = new URL('..', import.meta.url).pathname;
export const CACHE_DIR = join(ROOT, '.cache');
export const STAGE1_DIR = join(CACHE_DIR, 'stage1');

export default async function setup(): Promise<void> {
  if (process.env.PODBOOT_SKIP_STAGE1_BUILD === '1') return;
  const started = Date.now();
  let report: Awaited<ReturnType<typeof buildStage1>>;
  try {
    report = await buildStage1({ outDir: STAGE1_DIR, cacheDir: join(CACHE_DIR, 'debs'), preferCache: true });
  } catch (err) {
    // Only the boot tests need stage1: the rest of the suite still runs, and those tests fail naming the missing files.
    process.stdout.write(`[global-setup] stage1 build FAILED: ${(err as Error).message}\n`);
    return;
  }
  const initrd = report.artifacts.find((a) => a.name === 'stage1/initrd.img');
  process.stdout.write(`[global-setup] stage1 ${report.upToDate ? 'up to date' : 'built'} in ${Date.now() - started} ms (${STAGE1_DIR}, initrd ${initrd?.size} bytes)\n`);
  // The virtual-media ISO is made of that stage1: built once here, cached by its inputs (src/vmedia/iso-build.ts).
  try {
    const iso = buildVmediaIso(STAGE1_DIR);
    process.stdout.write(`[global-setup] vmedia ISO ${iso.upToDate ? 'up to date' : 'built'} in ${iso.ms} ms (${iso.size} bytes)\n`);
  } catch (err) {
    process.stdout.write(`[global-setup] vmedia ISO build FAILED: ${(err as Error).message}\n`);
  }
}
