// Private keys on disk: generated as ECDSA P-256 (docs/decisions.md, "Signing
// and trust"), written 0600 and never over an existing file, refused when
// readable by others. Key material never reaches a log or an error message.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { writeFileAtomic } from './files.js';

export function generateKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

export async function writePrivateKey(path: string, key: KeyObject): Promise<void> {
  const pem = key.export({ type: 'pkcs8', format: 'pem' });
  await writeFileAtomic(path, pem, { mode: 0o600, exclusive: true });
}

/** Cap on a key file: a PEM key is a few KiB. */
const MAX_KEY_FILE = 64 << 10;

/**
 * Loads a PEM or DER private key (PKCS#8, SEC1 or PKCS#1). Like ssh, refuses a
 * key file that group or others can read. `passphrase` opens an encrypted key.
 */
export async function readPrivateKey(path: string, passphrase?: string): Promise<KeyObject> {
  const fh = await open(path, 'r');
  let bytes: Buffer;
  try {
    const st = await fh.stat();
    if (st.isFile() && st.mode & 0o077) {
      throw new Error(`${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
    }
    if (st.size > MAX_KEY_FILE) throw new Error(`${path} is ${st.size} bytes, too large for a private key`);
    bytes = await fh.readFile();
  } finally {
    await fh.close();
  }
  const pem = bytes.includes('-----BEGIN');
  try {
    return createPrivateKey(pem ? { key: bytes, format: 'pem', passphrase } : { key: bytes, format: 'der', type: 'pkcs8', passphrase });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    // The library's message can quote parts of the input; give only what went wrong.
    if (/PASSPHRASE|BAD_DECRYPT/i.test(code)) throw new Error(`${path}: the key is encrypted and the passphrase is missing or wrong`);
    throw new Error(`${path}: not a private key this program can read (${code || 'unrecognised format'})`);
  }
}
