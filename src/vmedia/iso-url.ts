// The URL a BMC is given to mount a server's ISO, with the install token the
// ISO's block will carry. Minted next to the running pod, from its state
// directory (its token secret and the server's current install attempt), as
// `podboot nodes reinstall` writes there: the same stateless token scheme
// (src/install/token.ts) the pod checks, only shorter-lived.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodConfig } from '../config/types.js';
import { issueToken } from '../install/token.js';
import { openPodState } from '../store/pod-state.js';

/** long enough for a BMC to mount the ISO and the server to boot it; the install itself runs on its session */
export const VMEDIA_TOKEN_SEC = 3600;

export function mintVmediaToken(podStateDir: string, mac: string, nowSec: number, ttlSec = VMEDIA_TOKEN_SEC): string {
  const secret = readFileSync(join(podStateDir, 'token.key'));
  const state = openPodState(podStateDir, { readonly: true });
  let attempt = 1;
  try {
    attempt = state?.node(mac)?.attempt ?? 1;
  } finally {
    state?.close();
  }
  return issueToken(secret, { scope: 'install', mac, attempt, expires: nowSec + ttlSec });
}

/** https://pod:443/vmedia/<mac12>.iso?token=…, or http:// on the pod's HTTP port where the BMC entry asks for plain HTTP */
export function vmediaIsoUrl(pod: PodConfig, mac: string, token: string, plainHttp: boolean): string {
  const host = pod.boot.nextServer;
  const base = plainHttp ? `http://${host}:${pod.listen.httpPort}` : `https://${host}:${pod.listen.httpsPort}`;
  return `${base}/vmedia/${mac.replace(/:/g, '')}.iso?token=${encodeURIComponent(token)}`;
}
