// `ca migrate`: a CA directory of the old layout (root → one signing CA that
// issued signers AND servers) becomes root → code-signing CA (the old signing
// CA, unchanged) + a new service TLS CA, in place and idempotently.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaDirectory } from '../../../src/signing/ca-dir.js';
import { readPrivateKey } from '../../../src/signing/keys.js';
import { OID } from '../../../src/signing/oids.js';
import { derObjects } from '../../../src/signing/pem.js';
import { signImage, signerIdentity } from '../../../src/signing/sign.js';
import { verifyImage } from '../../../src/signing/verify.js';
import { parseCertificate } from '../../../src/signing/x509.js';
import { forgeServiceCaSigner } from '../../helpers/forged-signer.js';
import { makeLegacyCa, type LegacyCa } from '../../helpers/legacy-ca.js';

let dir: string;
let legacy: LegacyCa;
/** the old layout's files, before migration */
let before: Record<string, Buffer>;
let oldImage: string;

const cert = (path: string) => parseCertificate(derObjects(readFileSync(path), 'CERTIFICATE')[0]!, path);
/** every file in the directory (recursively) and its bytes */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[p.slice(root.length + 1)] = readFileSync(p).toString('base64');
    }
  };
  walk(root);
  return out;
}
async function sign(chain: string, key: string, name: string): Promise<string> {
  const img = join(dir, name);
  writeFileSync(img, randomBytes(2048));
  await signImage({ image: img, signer: signerIdentity(readFileSync(chain), await readPrivateKey(key)), name: 'img', version: '1' });
  return img;
}
const verify = (img: string, caDir: string, crls: string[]) =>
  verifyImage({ image: img, signature: readFileSync(`${img}.p7s`), rootCa: readFileSync(join(caDir, 'root.pem')), crl: crls.map((c) => readFileSync(join(caDir, c))) });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podboot-ca-migrate-'));
  legacy = makeLegacyCa(join(dir, 'ca'), 'Old Corp');
  before = Object.fromEntries(['signing-ca.pem', 'signing-ca.key', 'crl.pem', 'root.pem', 'root-crl.pem', 'servers/rack-a.chain.pem'].map((f) => [f, readFileSync(join(legacy.dir, f))]));
  oldImage = await sign(legacy.signer.chain, legacy.signer.key, 'signed-before.img');
  await verify(oldImage, legacy.dir, ['crl.pem', 'root-crl.pem']); // the old layout's own check
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ca migrate', () => {
  it('needs root.key, and changes nothing without it', async () => {
    renameSync(join(legacy.dir, 'root.key'), join(dir, 'root.key.offline'));
    const untouched = snapshot(legacy.dir);
    await expect(CaDirectory.migrate(legacy.dir)).rejects.toThrow(/bring root\.key back into/);
    expect(snapshot(legacy.dir)).toEqual(untouched);
    renameSync(join(dir, 'root.key.offline'), join(legacy.dir, 'root.key'));
  });

  it('turns the old signing CA into the code-signing CA and adds a service TLS CA under the root', async () => {
    const { ca, changed } = await CaDirectory.migrate(legacy.dir);
    expect(changed.join('\n')).toMatch(/renamed signing-ca\.pem[\s\S]*issued the service TLS CA[\s\S]*rewrote .*ca\.json as podboot-ca\/2/);
    const p = ca.paths;
    // The same CA, certificate, key and CRL, under the names of its job.
    expect(readFileSync(p.codeSigningCaCert).equals(before['signing-ca.pem']!)).toBe(true);
    expect(readFileSync(p.codeSigningCaKey).equals(before['signing-ca.key']!)).toBe(true);
    expect(readFileSync(p.codeSigningCrl).equals(before['crl.pem']!)).toBe(true);
    expect(readFileSync(p.rootCert).equals(before['root.pem']!)).toBe(true);
    for (const gone of ['signing-ca.pem', 'signing-ca.key', 'crl.pem']) expect(existsSync(join(legacy.dir, gone)), gone).toBe(false);
    // The new service CA: issued by the root, serverAuth only, with its own CRL.
    const service = cert(p.serviceCaCert);
    expect(service.subjectText).toBe('O=Old Corp, CN=Old Corp podboot service TLS CA');
    expect(service.issuer.equals(cert(p.rootCert).subject)).toBe(true);
    expect(service.extKeyUsage).toEqual([OID.serverAuth]);
    expect(service.basicConstraints).toEqual({ ca: true, pathLen: 0 });
    expect(existsSync(p.serviceCrl)).toBe(true);
    // The old servers are set aside, so the next issuance for rack-a uses the service CA.
    expect(readdirSync(p.servers)).toEqual([]);
    expect(readFileSync(join(p.legacyServers, 'rack-a.chain.pem')).equals(before['servers/rack-a.chain.pem']!)).toBe(true);
    const state = JSON.parse(readFileSync(p.state, 'utf8'));
    expect(state).toMatchObject({ format: 'podboot-ca/2', organization: 'Old Corp', migrated: { from: 'podboot-ca/1', legacySigningCa: legacy.signingCaSerial } });
    expect(state.issued.map((r: { kind: string; issuer: string }) => `${r.kind}:${r.issuer}`)).toEqual(['codesign-ca:root', 'signer:codesign', 'server:codesign', 'service-ca:root']);
    expect(state.crlNumber).toEqual({ root: 1, codesign: 1, service: 1 });
  });

  it('keeps images signed before the migration verifying, with the CRLs of the new layout', async () => {
    const v = await verify(oldImage, legacy.dir, ['codesign-crl.pem', 'root-crl.pem']);
    expect(v.chain).toEqual(['O=Old Corp, CN=ci', 'O=Old Corp, CN=Old Corp podboot signing CA', 'O=Old Corp, CN=Old Corp podboot root CA']);
    expect(v.revocation.unchecked).toEqual([]);
  });

  it('is idempotent: a second run changes nothing', async () => {
    const once = snapshot(legacy.dir);
    const { changed } = await CaDirectory.migrate(legacy.dir);
    expect(changed).toEqual([]);
    expect(snapshot(legacy.dir)).toEqual(once);
  });

  it('issues server certificates from the service CA without the code-signing CA key (the central node)', async () => {
    const central = await CaDirectory.open(legacy.dir);
    renameSync(central.paths.codeSigningCaKey, join(dir, 'codesign-ca.key.ci'));
    renameSync(central.paths.rootKey, join(dir, 'root.key.offline'));
    try {
      expect(central.isFromServiceCa(readFileSync(join(central.paths.legacyServers, 'rack-a.chain.pem')))).toBe(false);
      const server = await central.issueServer('rack-a', { ip: ['127.0.0.1'] });
      expect(cert(server.chain).issuerText).toBe('O=Old Corp, CN=Old Corp podboot service TLS CA');
      expect(central.isFromServiceCa(readFileSync(server.chain))).toBe(true);
      await expect(central.issueSigner('ci-2')).rejects.toThrow(/codesign-ca\.key, which is not here/);
      // A code signer the service CA's key could mint is refused: the migrated code-signing CA has no
      // extendedKeyUsage, the service CA's excludes codeSigning.
      const forged = forgeServiceCaSigner(legacy.dir, dir);
      const img = await sign(forged.chain, forged.key, 'forged.img');
      await expect(verify(img, legacy.dir, [])).rejects.toMatchObject({ check: 'eku', message: expect.stringMatching(/service TLS CA.*is not a code-signing CA/) });
    } finally {
      renameSync(join(dir, 'codesign-ca.key.ci'), join(legacy.dir, 'codesign-ca.key'));
      renameSync(join(dir, 'root.key.offline'), join(legacy.dir, 'root.key'));
    }
  });

  it('issues new signers from the code-signing CA and revokes the old ones on its CRL', async () => {
    const ca = await CaDirectory.open(legacy.dir);
    const fresh = await ca.issueSigner('ci-new');
    await verify(await sign(fresh.chain, fresh.key, 'signed-after.img'), legacy.dir, ['codesign-crl.pem', 'root-crl.pem']);
    const r = await ca.revoke(legacy.signer.serial, { reason: 'superseded' });
    expect(r.crl).toBe(ca.paths.codeSigningCrl);
    await expect(verify(oldImage, legacy.dir, ['codesign-crl.pem'])).rejects.toMatchObject({ check: 'revoked' });
    expect(JSON.parse(readFileSync(ca.paths.state, 'utf8')).crlNumber.codesign).toBe(2); // numbering goes on from crl.pem's
  });

  it('finishes an interrupted migration when run again', async () => {
    const half = makeLegacyCa(join(dir, 'half'), 'Half');
    // as if a first run stopped after its first rename and the service CA key
    renameSync(join(half.dir, 'signing-ca.pem'), join(half.dir, 'codesign-ca.pem'));
    const { changed } = await CaDirectory.migrate(half.dir);
    expect(changed.some((c) => c.startsWith('renamed signing-ca.key'))).toBe(true);
    const ca = await CaDirectory.open(half.dir);
    expect(cert(ca.paths.codeSigningCaCert).subjectText).toBe('O=Half, CN=Half podboot signing CA');
    expect(existsSync(ca.paths.serviceCrl)).toBe(true);
    const img = await sign(half.signer.chain, half.signer.key, 'half.img');
    await verify(img, half.dir, ['codesign-crl.pem', 'root-crl.pem']);
    expect((await CaDirectory.migrate(half.dir)).changed).toEqual([]);
  });
});
