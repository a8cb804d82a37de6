// A pod instance's TLS server certificate and the root CA its servers trust.
// They live in <state>/tls. A supervised pod only reads them: the central node
// issues them before it starts the pod (src/pod-vm/pod-tls.ts; where they
// live and what they carry: src/pod-link/tls.ts), so no pod
// process ever opens the CA directory. Run by hand (labs, as root), a pod may
// still issue its own from --ca DIR, creating a local CA there when none exists.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { CaDirectory, writeFileAtomic } from '../signing/index.js';
import { podCertificate, tlsPaths } from '../pod-link/tls.js';

export interface PodTls {
  /** leaf + signing CA, PEM */
  cert: Buffer;
  key: Buffer;
  /** baked into the pod's stage1 and used by its servers to check everything they fetch */
  rootCa: Buffer;
}

export interface PodTlsSource {
  /** the central node's CA directory */
  caDir: string;
  /** create the CA when the directory does not exist (labs, the embedded default) */
  createCa: boolean;
}

export async function ensurePodTls(pod: PodConfig, stateDir: string, source: PodTlsSource | undefined, log: Logger): Promise<PodTls> {
  const p = tlsPaths(stateDir);
  if (!(existsSync(p.cert) && existsSync(p.key) && existsSync(p.rootCa))) {
    // Supervised, the central node has put them there before the start: a pod never opens the CA directory.
    if (!source) throw new Error(`no TLS certificate in ${p.dir}: the central node issues it before the pod starts (run by hand: give --ca DIR)`);
    let ca: CaDirectory;
    if (existsSync(join(source.caDir, 'root.pem'))) {
      ca = await CaDirectory.open(source.caDir);
    } else if (source.createCa) {
      ca = await createLocalCa(source.caDir, log);
    } else {
      throw new Error(`no CA in ${source.caDir} (podboot ca init --out ${source.caDir})`);
    }
    const issued = await podCertificate(ca, pod);
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(p.key, issued.key, { mode: 0o600 });
    await writeFileAtomic(p.cert, issued.chain, { mode: 0o644 });
    await writeFileAtomic(p.rootCa, issued.rootCa, { mode: 0o644 });
    log.info({ addresses: issued.addresses, caDir: source.caDir }, 'issued the pod its TLS certificate');
  }
  return { cert: readFileSync(p.cert), key: readFileSync(p.key), rootCa: readFileSync(p.rootCa) };
}

/**
 * Several pods of one node may start at once and all find no CA: each builds
 * one aside and renames it into place; the first rename wins and the others
 * use the winner's, so every pod of the node trusts the same root.
 */
export async function createLocalCa(caDir: string, log: Logger): Promise<CaDirectory> {
  const aside = `${caDir}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  await CaDirectory.init(aside, { organization: 'podboot local CA' });
  try {
    renameSync(aside, caDir);
    log.warn({ caDir }, "created a local CA for this node; production pods should use your organisation's (podboot ca init)");
  } catch (err) {
    rmSync(aside, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
  return CaDirectory.open(caDir);
}
