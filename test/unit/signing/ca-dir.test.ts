import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaDirectory } from '../../../src/signing/ca-dir.js';
import { parseCrl } from '../../../src/signing/crl.js';
import { readPrivateKey } from '../../../src/signing/keys.js';
import { OID } from '../../../src/signing/oids.js';
import { derObjects } from '../../../src/signing/pem.js';
import { signImage, signerIdentity } from '../../../src/signing/sign.js';
import { verifyImage } from '../../../src/signing/verify.js';
import type { VerificationError } from '../../../src/signing/errors.js';
import { parseCertificate } from '../../../src/signing/x509.js';
import { makeLegacyCa } from '../../helpers/legacy-ca.js';
import { DAY } from './pki.js';

const T0 = new Date('2032-01-10T00:00:00Z');
let dir: string;
let ca: CaDirectory;
let image: string;

const crlOf = (path: string) => parseCrl(derObjects(readFileSync(path), 'X509 CRL')[0]!);
const certs = (path: string) => derObjects(readFileSync(path), 'CERTIFICATE').map((d, i) => parseCertificate(d, `${path} #${i}`));
const verifyAt = (now: Date, crl: Buffer[]) =>
  verifyImage({ image, signature: readFileSync(`${image}.p7s`), rootCa: readFileSync(ca.paths.rootCert), crl, now }).catch((e: unknown) => e as VerificationError);
/** Moves a key out of the directory for the duration of `fn`, as when it lives on another machine. */
async function without<T>(key: string, fn: () => Promise<T>): Promise<T> {
  renameSync(key, `${key}.elsewhere`);
  try {
    return await fn();
  } finally {
    renameSync(`${key}.elsewhere`, key);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podboot-ca-'));
  ca = await CaDirectory.init(join(dir, 'ca'), { organization: 'Unit', crlDays: 30, now: T0 });
  const signer = await ca.issueSigner('ci', { now: T0 });
  image = join(dir, 'img');
  writeFileSync(image, randomBytes(4096));
  await signImage({ image, signer: signerIdentity(readFileSync(signer.chain), await readPrivateKey(signer.key), T0), name: 'img', version: '1', now: T0 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('CaDirectory: two intermediates with different jobs', () => {
  it('init makes a code-signing CA (EKU codeSigning) and a service TLS CA (EKU serverAuth) under the root', () => {
    const p = ca.paths;
    const [root] = certs(p.rootCert);
    const [codesign] = certs(p.codeSigningCaCert);
    const [service] = certs(p.serviceCaCert);
    expect(root!.basicConstraints).toEqual({ ca: true, pathLen: 1 });
    for (const [c, eku, cn] of [
      [codesign!, OID.codeSigning, 'Unit podboot code-signing CA'],
      [service!, OID.serverAuth, 'Unit podboot service TLS CA'],
    ] as const) {
      expect(c.subjectText).toBe(`O=Unit, CN=${cn}`);
      expect(c.issuer.equals(root!.subject)).toBe(true);
      expect(c.basicConstraints).toEqual({ ca: true, pathLen: 0 });
      expect(c.extKeyUsage).toEqual([eku]);
      expect([...c.keyUsage!].sort()).toEqual(['cRLSign', 'keyCertSign']);
    }
    for (const k of [p.rootKey, p.codeSigningCaKey, p.serviceCaKey]) expect(statSync(k).mode & 0o777).toBe(0o600);
    expect(crlOf(p.codeSigningCrl).issuer.equals(codesign!.subject)).toBe(true);
    expect(crlOf(p.serviceCrl).issuer.equals(service!.subject)).toBe(true);
    expect(existsSync(join(ca.dir, 'signing-ca.pem')) || existsSync(join(ca.dir, 'crl.pem'))).toBe(false);
    expect(JSON.parse(readFileSync(p.state, 'utf8'))).toMatchObject({ format: 'podboot-ca/2', issued: [{ kind: 'codesign-ca' }, { kind: 'service-ca' }, { kind: 'signer', issuer: 'codesign' }] });
  });

  it('issues signers from the code-signing CA and servers from the service CA, each chain carrying its own CA', async () => {
    const signer = certs(join(ca.dir, 'signers', 'ci.chain.pem'));
    expect(signer.map((c) => c.subjectText)).toEqual(['O=Unit, CN=ci', 'O=Unit, CN=Unit podboot code-signing CA']);
    const server = await ca.issueServer('rack-a', { ip: ['10.0.0.1'], now: T0 });
    expect(certs(server.chain).map((c) => c.subjectText)).toEqual(['O=Unit, CN=rack-a', 'O=Unit, CN=Unit podboot service TLS CA']);
    expect(certs(server.cert)[0]!.extKeyUsage).toEqual([OID.serverAuth]);
    expect(ca.isFromServiceCa(readFileSync(server.chain))).toBe(true);
    expect(ca.isFromServiceCa(readFileSync(join(ca.dir, 'signers', 'ci.pem')))).toBe(false);
  });

  it('issues server certificates without the code-signing CA key (the central node), and signers without the service CA key', async () => {
    const central = await CaDirectory.open(ca.dir);
    const server = await without(ca.paths.codeSigningCaKey, async () => {
      await expect(central.issueSigner('nope', { now: T0 })).rejects.toThrow(/needs .*codesign-ca\.key, which is not here: the code-signing CA key lives where CI\/CD signers are issued/);
      return central.issueServer('rack-b', { ip: ['10.0.0.2'], now: T0 });
    });
    expect(certs(server.chain)[1]!.subjectText).toMatch(/service TLS CA/);
    const signer = await without(ca.paths.serviceCaKey, async () => {
      await expect(central.issueServer('rack-c', { now: T0 })).rejects.toThrow(/needs .*service-ca\.key, which is not here/);
      return central.issueSigner('ci-2', { now: T0 });
    });
    expect(certs(signer.chain)[1]!.subjectText).toMatch(/code-signing CA/);
  });

  it('can be created without keeping the code-signing CA key (a node-local CA that only issues TLS)', async () => {
    const local = await CaDirectory.init(join(dir, 'local'), { organization: 'Local', discardCodeSigningKey: true });
    expect(existsSync(local.paths.codeSigningCaKey)).toBe(false);
    expect(existsSync(local.paths.codeSigningCaCert) && existsSync(local.paths.codeSigningCrl)).toBe(true);
    expect(certs((await local.issueServer('rack-a', { ip: ['10.0.0.1'] })).chain)[1]!.subjectText).toBe('O=Local, CN=Local podboot service TLS CA');
    await expect(local.issueSigner('ci')).rejects.toThrow(/codesign-ca\.key, which is not here/);
  });

  it('refuses to initialise over an existing CA', async () => {
    await expect(CaDirectory.init(ca.dir)).rejects.toThrow(/already holds a CA/);
  });

  it('validates names before issuing', async () => {
    await expect(ca.issueServer('Rack_A')).rejects.toThrow(/must be a DNS label/);
    await expect(ca.issueSigner('../evil')).rejects.toThrow(/signer name/);
    await expect(ca.revoke('abcdef')).rejects.toThrow(/no certificate with serial abcdef was issued/);
  });

  it('revokes a server on the service CA CRL with the service key alone, a signer on the code-signing CA CRL', async () => {
    const server = await ca.issueServer('rack-r', { ip: ['10.0.0.9'], now: T0 });
    const codesignBefore = crlOf(ca.paths.codeSigningCrl).number;
    const r = await without(ca.paths.codeSigningCaKey, () => ca.revoke(server.serial, { reason: 'superseded', now: T0 }));
    expect(r.crl).toBe(ca.paths.serviceCrl);
    expect(crlOf(ca.paths.serviceCrl).revoked.get(server.serial)?.reason).toBe('superseded');
    expect(crlOf(ca.paths.codeSigningCrl).number).toBe(codesignBefore);

    const leaving = await ca.issueSigner('leaving', { now: T0 });
    const img = join(dir, 'leaving.img');
    writeFileSync(img, randomBytes(100));
    await signImage({ image: img, signer: signerIdentity(readFileSync(leaving.chain), await readPrivateKey(leaving.key), T0), name: 'img', version: '1', now: T0 });
    const s = await without(ca.paths.serviceCaKey, () => ca.revoke(leaving.serial, { reason: 'keyCompromise', now: T0 }));
    expect(s.crl).toBe(ca.paths.codeSigningCrl);
    const refused = await verifyImage({ image: img, signature: readFileSync(`${img}.p7s`), rootCa: readFileSync(ca.paths.rootCert), crl: [readFileSync(ca.paths.codeSigningCrl)], now: T0 }).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ check: 'revoked', message: expect.stringMatching(/CN=leaving.*keyCompromise/) });
    // The service CA's CRL does not belong to a code-signing chain: given it, a verifier says so.
    expect(await verifyAt(T0, [readFileSync(ca.paths.serviceCrl)])).toMatchObject({ check: 'crl', message: expect.stringMatching(/does not belong to this chain/) });
  });

  it('re-signs the CRLs with a fresh window and a higher number (refresh), only those whose key is present', async () => {
    const before = crlOf(ca.paths.codeSigningCrl);
    const later = new Date(T0.getTime() + 40 * DAY);
    expect(await verifyAt(later, [readFileSync(ca.paths.codeSigningCrl)])).toMatchObject({ check: 'crl', message: expect.stringMatching(/out of date/) });
    const serviceBefore = crlOf(ca.paths.serviceCrl).number;
    const written = await without(ca.paths.serviceCaKey, () => without(ca.paths.rootKey, () => ca.refreshCrl(later)));
    expect(written).toEqual([ca.paths.codeSigningCrl]);
    expect(crlOf(ca.paths.serviceCrl).number).toBe(serviceBefore);
    const after = crlOf(ca.paths.codeSigningCrl);
    expect(after.number).toBe(before.number! + 1n);
    expect(after.nextUpdate!.getTime()).toBe(later.getTime() + 30 * DAY);
    expect(await verifyAt(later, [readFileSync(ca.paths.codeSigningCrl)])).toMatchObject({ sha256: expect.any(String) });
    expect(await ca.refreshCrl(later)).toEqual([ca.paths.codeSigningCrl, ca.paths.serviceCrl, ca.paths.rootCrl]);
  });

  it('revokes the code-signing CA on the root CRL, which needs root.key', async () => {
    const reopened = await CaDirectory.open(ca.dir);
    const serial = reopened.issued.find((r) => r.kind === 'codesign-ca')!.serial;
    const offline = join(dir, 'root.key.offline');
    renameSync(reopened.paths.rootKey, offline);
    await expect(reopened.revoke(serial, { now: T0 })).rejects.toThrow(/needs .*root\.key, which is not here: bring root\.key back/);
    renameSync(offline, reopened.paths.rootKey);
    const r = await reopened.revoke(serial, { reason: 'cACompromise', now: T0 });
    expect(r.crl).toBe(reopened.paths.rootCrl);
    expect(crlOf(reopened.paths.rootCrl).revoked.get(serial)?.reason).toBe('cACompromise');
    const refused = await verifyAt(new Date(T0.getTime() + DAY), [readFileSync(reopened.paths.rootCrl)]);
    expect(refused).toMatchObject({ check: 'revoked', message: expect.stringMatching(/issuing CA certificate \(O=Unit, CN=Unit podboot code-signing CA.*\(cACompromise\)/) });
  });

  it('refuses to open a directory of the old layout, naming the migration', async () => {
    const legacy = makeLegacyCa(join(dir, 'legacy-open'));
    await expect(CaDirectory.open(legacy.dir)).rejects.toThrow(/old layout \(one signing CA for code and TLS\); run podboot ca migrate --dir .*legacy-open/);
  });
});
