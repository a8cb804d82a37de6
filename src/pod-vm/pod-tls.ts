// The central node issues each pod its TLS certificate before starting it and
// hands it only what the pod needs: its key, its chain and the root CA (the
// trust anchor baked into its stage1), in STATE/<pod>/tls. The pod process
// never opens the CA directory, so a compromised pod holds no CA key.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { podCertificate, tlsPaths } from '../pod-link/tls.js';
import { CaDirectory } from '../signing/index.js';
import { ensureOwnedDir, writeOwned, type PodUser } from './pod-user.js';

const ROOT: PodUser = { uid: 0, gid: 0 };

export class PodTlsIssuer {
  /** one issuance at a time: the CA directory's record (ca.json) is read, changed and written */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly caDir: string,
    private readonly log: Logger,
  ) {}

  /** Makes sure STATE/<pod>/tls holds the pod's key, chain and root, owned by `owner`. */
  ensure(pod: PodConfig, stateDir: string, owner: PodUser = ROOT): Promise<void> {
    const next = this.chain.then(() => this.ensureNow(pod, stateDir, owner));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async ensureNow(pod: PodConfig, stateDir: string, owner: PodUser): Promise<void> {
    const p = tlsPaths(stateDir);
    ensureOwnedDir(p.dir, owner, 0o700);
    const present = existsSync(p.cert) && existsSync(p.key) && existsSync(p.rootCa);
    if (!existsSync(join(this.caDir, 'root.pem'))) {
      if (present) return;
      throw new Error(`no CA in ${this.caDir} to issue pod ${pod.name} its TLS certificate`);
    }
    const ca = await CaDirectory.open(this.caDir);
    // A certificate from before the CA split (issued by what is now the code-signing CA) or from another CA is replaced.
    if (present && ca.isFromServiceCa(readFileSync(p.cert))) return;
    if (present) this.log.warn({ pod: pod.name, caDir: this.caDir }, "the pod's TLS certificate is not from this CA's service CA: issuing it a new one");
    const c = await podCertificate(ca, pod);
    writeOwned(p.key, c.key, owner, 0o600);
    writeOwned(p.cert, c.chain, owner, 0o644);
    writeOwned(p.rootCa, c.rootCa, owner, 0o644);
    this.log.info(
      { pod: pod.name, addresses: c.addresses, newlyIssued: c.issued, caDir: this.caDir },
      c.issued ? 'issued the pod its TLS certificate' : 'handed the pod its issued TLS certificate again',
    );
  }
}
