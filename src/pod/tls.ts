// A pod instance's TLS server certificate and the root CA its servers trust.
// They live in <state>/tls; when missing they are issued from the central
// node's CA directory (docs/trust-model.md), which a lab or first start may
// create on the spot.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { CaDirectory, writeFileAtomic } from '../signing/index.js';

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

export function tlsPaths(stateDir: string) {
  const dir = join(stateDir, 'tls');
  return { dir, cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), rootCa: join(dir, 'root.pem') };
}

export async function ensurePodTls(pod: PodConfig, stateDir: string, source: PodTlsSource | undefined, log: Logger): Promise<PodTls> {
  const p = tlsPaths(stateDir);
  if (!(existsSync(p.cert) && existsSync(p.key) && existsSync(p.rootCa))) {
    if (!source) throw new Error(`no TLS certificate in ${p.dir} and no CA to issue one (give --ca DIR)`);
    let ca: CaDirectory;
    if (existsSync(join(source.caDir, 'root.pem'))) {
      ca = await CaDirectory.open(source.caDir);
    } else if (source.createCa) {
      ca = await createLocalCa(source.caDir, log);
    } else {
      throw new Error(`no CA in ${source.caDir} (podboot ca init --out ${source.caDir})`);
    }
    const ips = [...new Set([pod.listen.address, pod.boot.nextServer])];
    // The CA never overwrites a key: a pod whose state was wiped gets its issued pair back.
    const kept = { key: join(source.caDir, 'servers', `${pod.name}.key`), chain: join(source.caDir, 'servers', `${pod.name}.chain.pem`) };
    const issued = existsSync(kept.key) && existsSync(kept.chain) ? kept : await ca.issueServer(pod.name, { ip: ips });
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(p.key, readFileSync(issued.key), { mode: 0o600 });
    await writeFileAtomic(p.cert, readFileSync(issued.chain), { mode: 0o644 });
    copyFileSync(ca.paths.rootCert, p.rootCa);
    log.info({ addresses: ips, caDir: source.caDir }, 'issued the pod its TLS certificate');
  }
  return { cert: readFileSync(p.cert), key: readFileSync(p.key), rootCa: readFileSync(p.rootCa) };
}

/**
 * Several pods of one node may start at once and all find no CA: each builds
 * one aside and renames it into place; the first rename wins and the others
 * use the winner's, so every pod of the node trusts the same root.
 */
async function createLocalCa(caDir: string, log: Logger): Promise<CaDirectory> {
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
