// What rack peers need to serve one another chunks over TLS: a key and a
// self-signed certificate per swarm, and a random path the chunks sit under.
// The pod hands both to each member over its own HTTPS session; a peer that
// fetches trusts that certificate alone (curl --cacert, the name pinned with
// --resolve), so a host on the rack LAN that is not in the swarm neither
// reads the image nor poses as a peer. Integrity does not rest on this: every
// chunk is checked against the signed manifest. Kept in memory only: after a
// pod restart members get a new key and old holders simply stop matching.
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { issueCertificate, randomSerial } from '../signing/issue.js';
import { generateKey } from '../signing/keys.js';
import { buildName } from '../signing/names.js';
import { toPem } from '../signing/pem.js';

/** The name peers' certificates carry; fetchers pin it to a peer's address (curl --resolve). */
export const PEER_TLS_NAME = 'rack-peer.podboot';
const DAY_MS = 86_400_000;
/** Servers' clocks before NTP can be off by a lot: the window is wide, the key short-lived in the pod's memory. */
const VALID_BEFORE_MS = 2 * DAY_MS;
const VALID_AFTER_MS = 7 * DAY_MS;
/** A swarm's key is replaced once this old (members that join later get the new one). */
const ROTATE_MS = DAY_MS;

export interface SwarmTls {
  /** key and certificate, PEM, one file: what openssl s_server -cert and curl --cacert read */
  pem: string;
  /** the path segment chunks are served under */
  path: string;
  createdMs: number;
}

export class SwarmTlsKeys {
  private readonly bySwarm = new Map<string, SwarmTls>();

  constructor(private readonly pod: string) {}

  for(swarm: string, nowMs: number): SwarmTls {
    const have = this.bySwarm.get(swarm);
    if (have && nowMs - have.createdMs < ROTATE_MS) return have;
    const made = makeSwarmTls(this.pod, nowMs);
    this.bySwarm.set(swarm, made);
    return made;
  }
}

export function makeSwarmTls(pod: string, nowMs: number): SwarmTls {
  const key: KeyObject = generateKey();
  const name = buildName({ organization: `podboot pod ${pod}`, commonName: 'rack peers' });
  const der = issueCertificate({
    serial: randomSerial(),
    issuerName: name,
    subjectName: name,
    notBefore: new Date(nowMs - VALID_BEFORE_MS),
    notAfter: new Date(nowMs + VALID_AFTER_MS),
    publicKey: createPublicKey(key),
    issuerKey: key,
    profile: { kind: 'tls-server', dns: [PEER_TLS_NAME], ip: [] },
  });
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { pem: toPem('CERTIFICATE', der) + keyPem, path: randomBytes(16).toString('hex'), createdMs: nowMs };
}
