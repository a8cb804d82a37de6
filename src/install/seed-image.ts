// A server's cloud-init seed as the small FAT file system NoCloud looks for:
// volume label CIDATA, the files meta-data, user-data and network-config in
// its root. The stage1 agent writes it into a partition after the image.
// Made with mkfs.vfat and mcopy (no mount, so an unprivileged pod can make
// it) in a private temporary directory that is removed afterwards: the
// files hold the server's node token.
//
// The same seed gives the same bytes: the volume id is fixed, mkfs.vfat's
// --invariant drops its clock, every file gets one fixed time (mcopy -m
// keeps it, in UTC), so an image can be compared and cached by its digest.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProgramMissing, programNotFound } from '../host/programs.js';
import type { Seed } from './seed.js';

/** 1 MiB: room to spare for the three files, and it fits the 4 MiB partition the image leaves for it. */
export const SEED_IMAGE_BYTES = 1024 * 1024;
/** NoCloud finds its seed by this label (either case). */
export const SEED_LABEL = 'CIDATA';
/** Without -i, mkfs.vfat takes the volume id from the clock; "PODS". */
const VOLUME_ID = '504f4453';
/** FAT stores no time before 1980; every file gets this one. */
const FIXED_TIME = new Date('2000-01-01T00:00:00Z');
const RUN_TIMEOUT_MS = 10_000;
const SEED_FILES = ['meta-data', 'user-data', 'network-config'] as const;

/**
 * The FAT image of `seed`. Throws with the step that failed (and, for a
 * missing program, the Debian package that brings it).
 */
export async function seedImage(seed: Seed): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'podboot-seed-'));
  try {
    const names: string[] = [];
    for (const name of SEED_FILES) {
      const text = seed[name];
      if (text === undefined) continue;
      const path = join(dir, name);
      await writeFile(path, text, { mode: 0o600 });
      await utimes(path, FIXED_TIME, FIXED_TIME);
      names.push(path);
    }
    const img = join(dir, 'seed.img');
    // mkfs.vfat counts in KiB; -i after --invariant, which would set its own id.
    await run(spawn('mkfs.vfat', ['-C', '-n', SEED_LABEL, '--invariant', '-i', VOLUME_ID, img, String(SEED_IMAGE_BYTES / 1024)], spawnOptions()), 'mkfs.vfat');
    // -m: the files' own (fixed) times, not the clock's; mtools makes VFAT long names for the lower-case names.
    await run(spawn('mcopy', ['-m', '-i', img, ...names, '::'], spawnOptions()), 'mcopy');
    const bytes = await readFile(img);
    if (bytes.length !== SEED_IMAGE_BYTES) throw new Error(`seed image: mkfs.vfat made ${bytes.length} bytes, ${SEED_IMAGE_BYTES} expected`);
    return bytes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function spawnOptions() {
  return {
    env: {
      ...process.env,
      // mkfs.vfat is in sbin, which an unprivileged user's PATH may lack.
      PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin`,
      // mcopy turns file times into FAT's local times: one zone, the same bytes everywhere.
      TZ: 'UTC',
      MTOOLS_SKIP_CHECK: '1',
      // Neither a user's ~/.mtoolsrc nor an inherited setting may turn long names off.
      MTOOLSRC: '/dev/null',
      MTOOLS_NO_VFAT: undefined,
    },
    stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'],
    timeout: RUN_TIMEOUT_MS,
  };
}

/** Waits for `child`; an Error naming `program` and its stderr when it fails. */
function run(child: ReturnType<typeof spawn>, program: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    child.on('error', (err) => reject(isProgramMissing(err) ? new Error(programNotFound(program)) : new Error(`${program}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${program} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${stderr.trim().slice(-500) || 'no message'}`));
    });
  });
}
