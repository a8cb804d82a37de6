// Where a pod's TLS certificate lives (STATE/<pod>/tls) and what it carries:
// shared by the central node, which issues it before it starts the pod
// (src/pod-vm/pod-tls.ts), and the pod, which reads it or, run by hand with
// --ca DIR, issues its own (src/pod/tls.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodConfig } from '../config/types.js';
import type { CaDirectory } from '../signing/index.js';

export function tlsPaths(stateDir: string) {
  const dir = join(stateDir, 'tls');
  return { dir, cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), rootCa: join(dir, 'root.pem') };
}

/** The addresses a pod's certificate carries: its listen address and next server. */
export function podAddresses(pod: PodConfig): string[] {
  return [...new Set([pod.listen.address, pod.boot.nextServer])];
}

/**
 * The pod's key, chain (leaf + issuing CA) and root, issued by `ca` the first
 * time. The CA never overwrites a key: a pod whose state was wiped gets its
 * issued pair back.
 */
export async function podCertificate(ca: CaDirectory, pod: PodConfig): Promise<{ key: Buffer; chain: Buffer; rootCa: Buffer; addresses: string[]; issued: boolean }> {
  const addresses = podAddresses(pod);
  const kept = { key: join(ca.dir, 'servers', `${pod.name}.key`), chain: join(ca.dir, 'servers', `${pod.name}.chain.pem`) };
  const have = existsSync(kept.key) && existsSync(kept.chain);
  const files = have ? kept : await ca.issueServer(pod.name, { ip: addresses });
  return { key: readFileSync(files.key), chain: readFileSync(files.chain), rootCa: readFileSync(ca.paths.rootCert), addresses, issued: !have };
}
