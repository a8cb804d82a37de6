// The central API's TLS certificate and operator token. The certificate comes
// from the operator's CA directory (docs/trust-model.md) when one is given;
// otherwise the node issues itself a private CA in its state directory and
// says so, so clients must be given that CA's root explicitly.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CaDirectory } from '../signing/index.js';

export interface ServerCredentials {
  key: string;
  /** the server certificate followed by the signing CA */
  cert: string;
  /** the root a client trusts */
  caFile: string;
  selfIssued: boolean;
}

const CERT_NAME = 'central';

/**
 * The node's CA: the operator's (--ca), or without one a local CA in
 * STATE/ca, made on first start. The pods' HTTPS certificates come from the
 * same directory, so one root is trusted for the node and all its pods.
 */
export async function nodeCa(stateRoot: string, caDir: string | undefined, log: Logger): Promise<{ ca: CaDirectory; selfIssued: boolean }> {
  const dir = caDir ?? join(stateRoot, 'ca');
  if (existsSync(join(dir, 'ca.json'))) {
    if (caDir) return { ca: await CaDirectory.open(dir), selfIssued: false };
    // The node's own local CA (root key here) moves to the two-CA layout by itself; an operator's CA is migrated by the operator (podboot ca migrate).
    const { ca, changed } = await CaDirectory.migrate(dir);
    if (changed.length) log.warn({ ca: dir, changed }, 'migrated the local CA to the code-signing CA + service CA layout');
    return { ca, selfIssued: true };
  }
  if (caDir) throw new Error(`${dir} is not a CA directory (no ca.json); create one with podboot ca init --out ${dir}`);
  log.warn({ ca: dir }, 'no --ca given: creating a local CA for this node');
  return { ca: await CaDirectory.init(dir, { organization: 'podboot local' }), selfIssued: true };
}

export async function centralCredentials(opts: { ca: CaDirectory; selfIssued: boolean; ip: string[]; dns?: string[]; log: Logger }): Promise<ServerCredentials> {
  const { ca, selfIssued } = opts;
  const dir = ca.dir;
  // The certificate is issued again whenever the names it must carry change.
  const names = { ip: [...opts.ip].sort(), dns: [...(opts.dns ?? ['localhost'])].sort() };
  const namesFile = join(dir, 'servers', `${CERT_NAME}.names.json`);
  const chain = join(dir, 'servers', `${CERT_NAME}.chain.pem`);
  const keyFile = join(dir, 'servers', `${CERT_NAME}.key`);
  const recorded = existsSync(namesFile) ? (JSON.parse(await readFile(namesFile, 'utf8')) as { ip: string[]; dns: string[]; serial?: string }) : undefined;
  const same = recorded && JSON.stringify({ ip: recorded.ip, dns: recorded.dns }) === JSON.stringify(names);
  if (!existsSync(chain) || !existsSync(keyFile) || !same) {
    // The CA never overwrites an issued key: the old certificate is revoked
    // (superseded) and its files removed before the new one is issued.
    if (recorded?.serial) {
      await ca
        .revoke(recorded.serial, { reason: 'superseded' })
        .catch((err) => opts.log.warn({ err: (err as Error).message, serial: recorded.serial }, 'could not revoke the previous central API certificate'));
    }
    for (const f of [keyFile, chain, join(dir, 'servers', `${CERT_NAME}.pem`)]) await rm(f, { force: true });
    const issued = await ca.issueServer(CERT_NAME, { ip: names.ip, dns: names.dns });
    await writeFile(namesFile, JSON.stringify({ ...names, serial: issued.serial }));
    opts.log.info({ ca: dir, ip: names.ip, dns: names.dns, serial: issued.serial }, 'issued the central API certificate');
  }
  if (selfIssued) opts.log.warn({ ca: join(dir, 'root.pem') }, 'central API certificate is self-issued (no --ca given): clients must trust this root explicitly');
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(chain, 'utf8'), caFile: join(dir, 'root.pem'), selfIssued };
}

/** The operator token: read from a file, or created (mode 0600) on first start. */
export async function operatorToken(file: string, create: boolean): Promise<string> {
  if (existsSync(file)) {
    const t = (await readFile(file, 'utf8')).trim();
    if (t.length < 16) throw new Error(`${file}: an operator token must be at least 16 characters`);
    return t;
  }
  if (!create) throw new Error(`${file}: no such token file`);
  await mkdir(join(file, '..'), { recursive: true });
  const t = randomBytes(32).toString('base64url');
  await writeFile(file, `${t}\n`, { mode: 0o600 });
  return t;
}

/** Constant-time comparison of a presented bearer token (hashing first evens out the lengths). */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}
