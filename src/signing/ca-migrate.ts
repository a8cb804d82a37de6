// From the one-signing-CA layout (podboot-ca/1: root → signing CA → signers
// AND servers) to two intermediates with different jobs (podboot-ca/2,
// ca-layout.ts). The old signing CA becomes the code-signing CA, unchanged
// (same certificate and key), so every signer it issued, and every image
// they signed, still verifies; a new service CA is issued under the root for
// TLS; the old server certificates are set aside so the next issuance for
// each pod comes from the service CA.
//
// Every step checks what is already done, and ca.json is rewritten last, so
// an interrupted run is finished by running it again, and a finished one
// changes nothing.
import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { CA_FORMAT, INTERMEDIATES, LEGACY_CA_FORMAT, caPaths, issueIntermediate, type CaState, type IssuedRecord, type RevokedRecord } from './ca-layout.js';
import { writeFileAtomic } from './files.js';
import { generateKey, readPrivateKey, writePrivateKey } from './keys.js';
import { derObjects, toPem } from './pem.js';
import { parseCertificate } from './x509.js';

/** ca.json as podboot-ca/1 wrote it. */
interface LegacyState {
  format: typeof LEGACY_CA_FORMAT;
  organization: string;
  crlDays: number;
  crlNumber: { root: number; signingCa: number };
  issued: { serial: string; kind: 'signing-ca' | 'signer' | 'server'; subject: string; notAfter: string }[];
  revoked: RevokedRecord[];
  rootRevoked: RevokedRecord[];
}

/** Files of the old layout and where they go. */
const RENAMES: [from: string, to: keyof ReturnType<typeof caPaths>][] = [
  ['signing-ca.pem', 'codeSigningCaCert'],
  ['signing-ca.key', 'codeSigningCaKey'],
  ['crl.pem', 'codeSigningCrl'],
];

/** The new state: the old signing CA's records and CRL become the code-signing CA's. */
export function migratedState(old: LegacyState, serviceCa: IssuedRecord, now: Date): CaState {
  const signingCa = old.issued.find((r) => r.kind === 'signing-ca');
  return {
    format: CA_FORMAT,
    organization: old.organization,
    crlDays: old.crlDays,
    crlNumber: { root: old.crlNumber.root, codesign: old.crlNumber.signingCa, service: 0 },
    issued: [...old.issued.map((r): IssuedRecord => (r.kind === 'signing-ca' ? { ...r, kind: 'codesign-ca', issuer: 'root' } : { ...r, kind: r.kind, issuer: 'codesign' })), serviceCa],
    revoked: { root: old.rootRevoked, codesign: old.revoked, service: [] },
    migrated: { from: LEGACY_CA_FORMAT, at: now.toISOString(), legacySigningCa: signingCa?.serial ?? '' },
  };
}

/**
 * Migrates `dir` in place; returns what it did (empty when it was already
 * migrated). Needs root.key (the root issues the service CA); does not need
 * the old signing CA's key.
 */
export async function migrateCaDirectory(dir: string, opts: { now?: Date; caDays?: number } = {}): Promise<string[]> {
  const now = opts.now ?? new Date();
  const p = caPaths(dir);
  if (!existsSync(p.state)) throw new Error(`${dir} is not a CA directory (no ca.json)`);
  const old = JSON.parse(await readFile(p.state, 'utf8')) as LegacyState | { format?: unknown };
  if (old.format === CA_FORMAT) return [];
  if (old.format !== LEGACY_CA_FORMAT) throw new Error(`${p.state}: unknown format ${String(old.format)}`);
  const legacy = old as LegacyState;
  if (!existsSync(p.rootKey)) throw new Error(`migrating ${dir} issues a service CA under the root: bring root.key back into ${dir} first`);
  const done: string[] = [];

  for (const [from, to] of RENAMES) {
    const src = join(dir, from);
    if (!existsSync(src)) continue; // moved by an earlier, interrupted run (or the key is kept elsewhere)
    if (existsSync(p[to])) throw new Error(`both ${src} and ${p[to]} exist; refusing to overwrite ${p[to]}`);
    await rename(src, p[to]);
    done.push(`renamed ${from} to ${p[to]}`);
  }
  if (!existsSync(p.codeSigningCaCert)) throw new Error(`${dir} has neither signing-ca.pem nor codesign-ca.pem`);

  // Servers the old CA issued: kept for reference, out of the way of the next issuance.
  if (existsSync(p.servers)) {
    await mkdir(p.legacyServers, { recursive: true, mode: 0o755 });
    for (const f of await readdir(p.servers)) {
      if (existsSync(join(p.legacyServers, f))) throw new Error(`both ${join(p.servers, f)} and ${join(p.legacyServers, f)} exist; refusing to overwrite`);
      await rename(join(p.servers, f), join(p.legacyServers, f));
    }
    done.push(`moved the old signing CA's server certificates to ${p.legacyServers} (each pod gets a service CA certificate at its next issuance)`);
  }

  const root = parseCertificate(derObjects(await readFile(p.rootCert), 'CERTIFICATE')[0] ?? Buffer.alloc(0), 'root certificate');
  const rootKey = await readPrivateKey(p.rootKey);
  if (!createPublicKey(rootKey).export({ type: 'spki', format: 'der' }).equals(root.spki)) throw new Error(`${p.rootKey} does not belong to ${p.rootCert}`);
  if (!existsSync(p.serviceCaKey)) {
    await writePrivateKey(p.serviceCaKey, generateKey());
    done.push(`created ${p.serviceCaKey}`);
  }
  const serviceKey = await readPrivateKey(p.serviceCaKey);
  if (!existsSync(p.serviceCaCert)) {
    const der = issueIntermediate('service', { root, rootKey, key: serviceKey, organization: legacy.organization, days: opts.caDays ?? 3650, now });
    await writeFileAtomic(p.serviceCaCert, toPem('CERTIFICATE', der));
    done.push(`issued the ${INTERMEDIATES.service.label} ${p.serviceCaCert}`);
  }
  const service = parseCertificate(derObjects(await readFile(p.serviceCaCert), 'CERTIFICATE')[0] ?? Buffer.alloc(0), 'service CA certificate');
  if (!createPublicKey(serviceKey).export({ type: 'spki', format: 'der' }).equals(service.spki)) throw new Error(`${p.serviceCaKey} does not belong to ${p.serviceCaCert}`);

  const serviceRecord: IssuedRecord = { serial: service.serialHex, kind: 'service-ca', issuer: 'root', subject: service.subjectText, notAfter: service.notAfter.toISOString() };
  await writeFileAtomic(p.state, JSON.stringify(migratedState(legacy, serviceRecord, now), null, 2) + '\n');
  done.push(`rewrote ${p.state} as ${CA_FORMAT}`);
  return done;
}
