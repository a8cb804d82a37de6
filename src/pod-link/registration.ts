// A pod's registration token, the one secret both sides of registration
// share (the central node checks it in src/api/targets.ts, the pod presents
// it from src/pod/registrar.ts). The token is an HMAC of the pod's name under
// a secret only the central node keeps (STATE/central/register.key): the node
// checks a token against the pod name it claims without keeping a list of
// issued tokens, and a pod's token is worth nothing for another name. The
// supervisor writes each pod its token (STATE/<pod>/register.token) before
// every start; the pod finds the node's API on the unix socket named here.
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const REGISTER_KEY_FILE = 'register.key';
export const REGISTER_TOKEN_FILE = 'register.token';
/** The central API on a unix socket, STATE/central/api.sock: reachable from a pod's network namespace too. */
export const CENTRAL_API_SOCKET = 'api.sock';

export function registerKeyPath(stateRoot: string): string {
  return join(stateRoot, 'central', REGISTER_KEY_FILE);
}

export function registerTokenPath(stateRoot: string, pod: string): string {
  return join(stateRoot, pod, REGISTER_TOKEN_FILE);
}

/** The central node's registration secret: read, or created (mode 0600, 256 random bits) on first start. */
export async function registerKey(stateRoot: string): Promise<Buffer> {
  const file = registerKeyPath(stateRoot);
  if (existsSync(file)) {
    const k = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
    if (k.length < 16) throw new Error(`${file}: a registration key must be at least 16 bytes`);
    return k;
  }
  await mkdir(dirname(file), { recursive: true });
  const k = randomBytes(32);
  await writeFile(file, `${k.toString('base64url')}\n`, { mode: 0o600 });
  return k;
}

/** A pod's registration token: HMAC-SHA256 of its name under the central key. */
export function registrationToken(key: Buffer, pod: string): string {
  return createHmac('sha256', key).update(`podboot-register:${pod}`).digest('base64url');
}

/** Writes STATE/<pod>/register.token (mode 0600) for the pod instance to present. */
export async function writeRegistrationToken(stateRoot: string, pod: string, token: string): Promise<void> {
  const file = registerTokenPath(stateRoot, pod);
  await mkdir(dirname(file), { recursive: true });
  // The pod owns its directory: whatever is at this name (a planted symlink too)
  // is removed, never written through, and the file is made anew.
  await rm(file, { force: true });
  await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
}

/**
 * The pod's token, as the pod reads it: STATE/<pod>/register.token, written
 * by the central node before it starts the pod. A pod run by hand on the
 * same state root, by a user who can read the node's key, derives its own
 * and keeps it there.
 */
export async function podRegistrationToken(stateRoot: string, pod: string): Promise<string | undefined> {
  const file = registerTokenPath(stateRoot, pod);
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    /* not given one */
  }
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(registerKeyPath(stateRoot), 'utf8').trim(), 'base64url');
  } catch {
    return undefined;
  }
  if (key.length < 16) return undefined;
  const token = registrationToken(key, pod);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return token;
}
