import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaDirectory } from '../../../src/signing/ca-dir.js';
import { parseCrl } from '../../../src/signing/crl.js';
import { readPrivateKey } from '../../../src/signing/keys.js';
import { derObjects } from '../../../src/signing/pem.js';
import { signImage, signerIdentity } from '../../../src/signing/sign.js';
import { verifyImage } from '../../../src/signing/verify.js';
import { VerificationError } from '../../../src/signing/errors.js';
import { DAY } from './pki.js';

const T0 = new Date('2032-01-10T00:00:00Z');
let dir: string;
let ca: CaDirectory;
let image: string;

const crlOf = (path: string) => parseCrl(derObjects(readFileSync(path), 'X509 CRL')[0]!);
const verifyAt = (now: Date, crl: Buffer[]) =>
  verifyImage({ image, signature: readFileSync(`${image}.p7s`), rootCa: readFileSync(ca.paths.rootCert), crl, now }).catch((e: unknown) => e as VerificationError);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podboot-ca-'));
  ca = await CaDirectory.init(join(dir, 'ca'), { organization: 'Unit', crlDays: 30, now: T0 });
  const signer = await ca.issueSigner('ci', { now: T0 });
  image = join(dir, 'img');
  writeFileSync(image, randomBytes(4096));
  await signImage({ image, signer: signerIdentity(readFileSync(signer.chain), await readPrivateKey(signer.key), T0), name: 'img', version: '1', now: T0 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('CaDirectory', () => {
  it('refuses to initialise over an existing CA', async () => {
    await expect(CaDirectory.init(ca.dir)).rejects.toThrow(/already holds a CA/);
  });

  it('validates names before issuing', async () => {
    await expect(ca.issueServer('Rack_A')).rejects.toThrow(/must be a DNS label/);
    await expect(ca.issueSigner('../evil')).rejects.toThrow(/signer name/);
    await expect(ca.revoke('abcdef')).rejects.toThrow(/no certificate with serial abcdef was issued/);
  });

  it('re-signs the CRL with a fresh window and a higher number (refresh)', async () => {
    const before = crlOf(ca.paths.crl);
    expect(before.number).toBe(1n);
    const later = new Date(T0.getTime() + 40 * DAY);
    expect(await verifyAt(later, [readFileSync(ca.paths.crl)])).toMatchObject({ check: 'crl', message: expect.stringMatching(/out of date/) });
    await ca.refreshCrl(later);
    const after = crlOf(ca.paths.crl);
    expect(after.number).toBe(2n);
    expect(after.nextUpdate!.getTime()).toBe(later.getTime() + 30 * DAY);
    expect(await verifyAt(later, [readFileSync(ca.paths.crl)])).toMatchObject({ sha256: expect.any(String) });
  });

  it('revokes the signing CA on the root CRL, which needs root.key', async () => {
    const reopened = await CaDirectory.open(ca.dir);
    const serial = JSON.parse(readFileSync(reopened.paths.state, 'utf8')).issued[0].serial as string;
    const offline = join(dir, 'root.key.offline');
    renameSync(reopened.paths.rootKey, offline);
    await expect(reopened.revoke(serial, { now: T0 })).rejects.toThrow(/needs the root key: bring root.key back/);
    renameSync(offline, reopened.paths.rootKey);
    const r = await reopened.revoke(serial, { reason: 'cACompromise', now: T0 });
    expect(r.crl).toBe(reopened.paths.rootCrl);
    expect(crlOf(reopened.paths.rootCrl).revoked.get(serial)?.reason).toBe('cACompromise');
    const refused = await verifyAt(new Date(T0.getTime() + DAY), [readFileSync(reopened.paths.rootCrl)]);
    expect(refused).toMatchObject({ check: 'revoked', message: expect.stringMatching(/issuing CA certificate \(O=Unit, CN=Unit podboot signing CA.*\(cACompromise\)/) });
  });
});
