// `podboot nodes vmedia-boot`: one server, its BMC from the pod file, the
// ISO URL with a fresh install token for it, and the Redfish calls. Logs what
// was asked of which BMC and how it answered, never the password or token.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { NodeConfig, PodConfig } from '../config/types.js';
import { mintVmediaToken, vmediaIsoUrl } from '../vmedia/iso-url.js';
import { RedfishClient } from './client.js';

export interface VmediaBootRequest {
  pod: PodConfig;
  node: NodeConfig;
  /** STATE/<pod>: the pod's token secret and its record of the server's install attempt */
  podStateDir: string;
  log: Logger;
  ttlSec?: number;
  nowSec?: number;
}

export async function bootServerFromIso(r: VmediaBootRequest): Promise<{ system: string; slot: string; reset: string; isoPath: string }> {
  const bmc = r.node.bmc;
  if (!bmc) throw new Error(`${r.node.mac} has no bmc entry in the pod file`);
  let password: string;
  try {
    password = readFileSync(bmc.passwordFile, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(`bmc.passwordFile ${bmc.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const ca = bmc.caFile ? readFileSync(bmc.caFile) : undefined;
  const token = mintVmediaToken(r.podStateDir, r.node.mac, r.nowSec ?? Math.floor(Date.now() / 1000), r.ttlSec);
  const url = vmediaIsoUrl(r.pod, r.node.mac, token, bmc.plainHttpMedia);
  const isoPath = url.slice(0, url.indexOf('?'));
  const client = new RedfishClient({ address: bmc.address, username: bmc.username, password, ...(ca ? { ca } : {}) });
  r.log.info({ bmc: bmc.address, user: bmc.username, iso: isoPath, plainHttp: bmc.plainHttpMedia }, 'vmedia boot: asking the BMC');
  try {
    const done = await client.bootFromIso(url);
    r.log.info({ bmc: bmc.address, steps: client.steps, ...done }, 'vmedia boot requested');
    return { ...done, isoPath };
  } catch (err) {
    r.log.warn({ bmc: bmc.address, steps: client.steps, err: (err as Error).message }, 'vmedia boot failed');
    throw new Error(`BMC ${bmc.address}: ${(err as Error).message}`);
  } finally {
    await client.close();
  }
}
