import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerificationError, type VerificationCheck } from '../../../src/signing/errors.js';
import { readCapped, sha256File } from '../../../src/signing/files.js';
import { encodeManifest, MANIFEST_SCHEMA, type ImageManifest } from '../../../src/signing/manifest.js';
import { signBytes, signDigest, type SignerIdentity } from '../../../src/signing/sign.js';
import { LIMITS, verifyImage, type VerifyImageOptions } from '../../../src/signing/verify.js';
import { issueCertificate, randomSerial } from '../../../src/signing/issue.js';
import { generateKey } from '../../../src/signing/keys.js';
import { buildName } from '../../../src/signing/names.js';
import { OID } from '../../../src/signing/oids.js';
import { parseCertificate } from '../../../src/signing/x509.js';
import { DAY, makePki, type TestPki } from './pki.js';

const NOW = new Date('2031-03-15T12:00:00Z');

let dir: string;
let pki: TestPki;
let impostor: TestPki; // same names as pki, other keys
let image: string;
let otherImage: string;
let digest: Buffer;
let good: { signature: Buffer; manifest: Buffer; manifestSignature: Buffer };

function manifestFor(over: Partial<ImageManifest> = {}): Buffer {
  return encodeManifest({
    schema: MANIFEST_SCHEMA,
    name: 'stage2',
    version: '1.0.0',
    size: 256 * 1024,
    sha256: digest.toString('hex'),
    created: NOW.toISOString(),
    notAfter: new Date(NOW.getTime() + 90 * DAY).toISOString(),
    pods: ['rack-a', 'rack-b'],
    ...over,
  });
}

function signedWith(id: SignerIdentity, manifest = manifestFor()) {
  return { signature: signDigest(id, digest, { now: NOW }), manifest, manifestSignature: signBytes(id, manifest, { now: NOW }) };
}

function opts(over: Partial<VerifyImageOptions> = {}): VerifyImageOptions {
  return { image, ...good, rootCa: pki.rootPem, now: NOW, ...over };
}

async function refused(p: Promise<unknown>, check: VerificationCheck, message: RegExp): Promise<VerificationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a refusal [${check}]`).toBeInstanceOf(VerificationError);
  const v = err as VerificationError;
  expect({ check: v.check, message: v.message }).toMatchObject({ check, message: expect.stringMatching(message) });
  return v;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'podboot-verify-'));
  pki = makePki(NOW);
  impostor = makePki(NOW);
  image = join(dir, 'stage2.img');
  otherImage = join(dir, 'other.img');
  writeFileSync(image, randomBytes(256 * 1024));
  writeFileSync(otherImage, randomBytes(256 * 1024));
  digest = (await sha256File(image)).sha256;
  good = signedWith(pki.identity(pki.leaf()));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('verifyImage accepts', () => {
  it('a good image with its manifest, naming signer, chain and manifest', async () => {
    const v = await verifyImage(opts({ pod: 'rack-a', crl: [pki.crl(), pki.crl({ issuer: pki.root })] }));
    expect(v.sha256).toBe(digest.toString('hex'));
    expect(v.size).toBe(256 * 1024);
    expect(v.chain).toEqual(['O=podboot-test, CN=ci-pipeline', 'O=podboot-test, CN=test signing CA', 'O=podboot-test, CN=test root CA']);
    expect(v.manifest).toMatchObject({ name: 'stage2', version: '1.0.0', pods: ['rack-a', 'rack-b'] });
    expect(v.signingTime).toBe(NOW.toISOString());
    expect(v.revocation).toEqual({ checked: [v.chain[0], v.chain[1]], unchecked: [] });
  });

  it('a signer whose issuing CA is restricted to codeSigning (the code-signing CA), or to nothing (a migrated signing CA)', async () => {
    const codesign = pki.leaf({ name: 'code-signing CA', issuer: pki.root, profile: { kind: 'ca', pathLen: 0, eku: [OID.codeSigning] } });
    const v = await verifyImage(opts({ ...signedWith(pki.identity(pki.leaf({ issuer: codesign }), [codesign])), manifest: undefined, manifestSignature: undefined }));
    expect(v.chain[1]).toBe('O=podboot-test, CN=code-signing CA');
    expect(pki.signingCa.cert.extKeyUsage).toBeUndefined(); // every other test here signs through an EKU-less CA
  });

  it('a signature naming its signer by subjectKeyIdentifier', async () => {
    const id = pki.identity(pki.leaf());
    const v = await verifyImage(opts({ signature: signDigest(id, digest, { now: NOW, bySubjectKeyId: true }) }));
    expect(v.signer.serial).toBe(id.cert.serialHex);
  });

  it('the image alone when no pod, name or version is asked for', async () => {
    const v = await verifyImage({ image, signature: good.signature, rootCa: pki.rootPem, now: NOW });
    expect(v.manifest).toBeUndefined();
    expect(v.revocation.unchecked).toHaveLength(2);
  });
});

describe('verifyImage refuses, naming the check', () => {
  it('an image with one flipped byte', async () => {
    const flipped = join(dir, 'flipped.img');
    const bytes = Buffer.from(await readCapped(image, 1 << 20, 'image'));
    bytes[12345]! ^= 0x01;
    writeFileSync(flipped, bytes);
    await refused(verifyImage(opts({ image: flipped })), 'digest', /image signature: the image is not what was signed/);
  });

  it('a signature from another CA with the same names (its own signing CA in the signature)', async () => {
    await refused(verifyImage(opts(signedWith(impostor.identity(impostor.leaf())))), 'chain', /signature does not verify with the trusted root's key \(a different CA with the same name\?\)/);
  });

  it("a signer from another CA whose signature carries our signing CA's certificate", async () => {
    await refused(verifyImage(opts(signedWith(impostor.identity(impostor.leaf(), [pki.signingCa])))), 'chain', /does not verify with the key of O=podboot-test, CN=test signing CA/);
  });

  it('a signature without the signing CA certificate', async () => {
    await refused(verifyImage(opts(signedWith(pki.identity(pki.leaf(), [])))), 'chain', /the signature must carry the issuing CA certificate/);
  });

  it('a signature whose certificates all vouch for each other, within a bounded search', async () => {
    // 12 CA certificates with one name and one key: every one verifies every other.
    const key = generateKey();
    const name = buildName({ organization: 'mesh', commonName: 'mesh CA' });
    const mesh = Array.from({ length: 12 }, () => {
      const der = issueCertificate({
        serial: randomSerial(),
        issuerName: name,
        subjectName: name,
        notBefore: new Date(NOW.getTime() - DAY),
        notAfter: new Date(NOW.getTime() + DAY),
        publicKey: key,
        issuerKey: key,
        profile: { kind: 'ca', pathLen: 5 },
      });
      return { der, cert: parseCertificate(der, 'mesh'), key };
    });
    const leaf = pki.leaf({ issuer: mesh[0]! });
    await refused(verifyImage(opts(signedWith(pki.identity(leaf, mesh)))), 'chain', /no path found within 64 signature checks/);
  });

  it('an expired signer certificate', async () => {
    const leaf = pki.leaf({ notBefore: new Date(NOW.getTime() - 60 * DAY), notAfter: new Date(NOW.getTime() - DAY) });
    await refused(verifyImage(opts(signedWith(pki.identity(leaf)))), 'expired', /signer certificate \(O=podboot-test, CN=ci-pipeline, serial [0-9a-f]+\) expired at 2031-03-14T12:00:00.000Z/);
  });

  it('a signer certificate not yet valid', async () => {
    const leaf = pki.leaf({ notBefore: new Date(NOW.getTime() + DAY), notAfter: new Date(NOW.getTime() + 60 * DAY) });
    await refused(verifyImage(opts(signedWith(pki.identity(leaf)))), 'not-yet-valid', /signer certificate .* is not valid before 2031-03-16/);
  });

  it('an expired root, judged by the injected clock', async () => {
    await refused(verifyImage(opts({ now: new Date(NOW.getTime() + 4000 * DAY) })), 'expired', /certificate .* expired at/);
  });

  it('a TLS server certificate used for signing (wrong EKU)', async () => {
    const leaf = pki.leaf({ profile: { kind: 'tls-server', dns: ['rack-a'], ip: [] } });
    await refused(verifyImage(opts(signedWith(pki.identity(leaf)))), 'eku', /not for code signing: extendedKeyUsage lacks codeSigning \(has serverAuth\)/);
  });

  it('a code-signing leaf issued by a CA restricted to serverAuth (the service TLS CA), at any depth', async () => {
    const service = pki.leaf({ name: 'service TLS CA', issuer: pki.root, profile: { kind: 'ca', pathLen: 0, eku: [OID.serverAuth] } });
    const leaf = pki.leaf({ issuer: service });
    expect(leaf.cert.extKeyUsage).toEqual([OID.codeSigning]);
    await refused(
      verifyImage(opts(signedWith(pki.identity(leaf, [service])))),
      'eku',
      /issuing CA certificate \(O=podboot-test, CN=service TLS CA, serial [0-9a-f]+\) is not a code-signing CA: its extendedKeyUsage \(serverAuth\) excludes codeSigning/,
    );
    // the same leaf with the code-signing CA's certificate added to the signature does not help
    await refused(verifyImage(opts(signedWith(pki.identity(leaf, [service, pki.signingCa])))), 'eku', /CN=service TLS CA.*is not a code-signing CA/);
  });

  it('a CA certificate used as the signer', async () => {
    const id = pki.identity(pki.signingCa, []);
    await refused(verifyImage(opts(signedWith(id))), 'eku', /is a CA certificate/);
  });

  it('a chain through an end-entity certificate posing as a CA', async () => {
    const fakeCa = pki.leaf({ name: 'posing-ca' });
    const leaf = pki.leaf({ issuer: fakeCa });
    await refused(verifyImage(opts(signedWith(pki.identity(leaf, [fakeCa, pki.signingCa])))), 'ca', /CN=posing-ca.* is not a CA \(basicConstraints cA is not set\)/);
  });

  it('a sub-CA below the signing CA (pathLenConstraint 0)', async () => {
    const sub = pki.leaf({ name: 'sub CA', profile: { kind: 'ca', pathLen: 0 } });
    const leaf = pki.leaf({ issuer: sub });
    await refused(verifyImage(opts(signedWith(pki.identity(leaf, [sub, pki.signingCa])))), 'ca', /allows 0 CA certificates below it \(pathLenConstraint\), the path has 1/);
  });

  it('a revoked signer (CRL)', async () => {
    const leaf = pki.leaf();
    const crl = pki.crl({ revoked: [{ serial: leaf.cert.serial, date: new Date(NOW.getTime() - 3600_000), reason: 'keyCompromise' }] });
    await refused(verifyImage(opts({ ...signedWith(pki.identity(leaf)), crl })), 'revoked', /signer certificate .* was revoked on 2031-03-15T11:00:00.000Z \(keyCompromise\)/);
  });

  it('a revoked signing CA (root CRL)', async () => {
    const crl = pki.crl({ issuer: pki.root, revoked: [{ serial: pki.signingCa.cert.serial, date: NOW }] });
    await refused(verifyImage(opts({ crl: [pki.crl(), crl] })), 'revoked', /issuing CA certificate \(O=podboot-test, CN=test signing CA.* was revoked/);
  });

  it('a CRL signed by another CA with the same name', async () => {
    await refused(verifyImage(opts({ crl: pki.crl({ signWith: impostor.signingCa.key }) })), 'crl', /signature that does not verify/);
  });

  it('an out-of-date CRL', async () => {
    const crl = pki.crl({ thisUpdate: new Date(NOW.getTime() - 40 * DAY), nextUpdate: new Date(NOW.getTime() - 10 * DAY) });
    await refused(verifyImage(opts({ crl })), 'crl', /out of date since/);
  });

  it('a CRL from outside the chain', async () => {
    const stranger = makePki(NOW, 'elsewhere');
    await refused(verifyImage(opts({ crl: stranger.crl() })), 'crl', /does not belong to this chain/);
  });

  it('the manifest of another image', async () => {
    const otherDigest = (await sha256File(otherImage)).sha256;
    const m = manifestFor({ sha256: otherDigest.toString('hex') });
    const id = pki.identity(pki.leaf());
    await refused(verifyImage(opts({ manifest: m, manifestSignature: signBytes(id, m, { now: NOW }) })), 'manifest', /manifest is for another image: it says sha256 [0-9a-f]{64}, the image is/);
  });

  it('a manifest of another size (before hashing the image)', async () => {
    const m = manifestFor({ size: 1 });
    await refused(verifyImage(opts({ manifest: m, manifestSignature: signBytes(pki.identity(pki.leaf()), m, { now: NOW }) })), 'manifest', /it says 1 bytes, the image has 262144/);
  });

  it('a manifest edited after signing', async () => {
    const edited = Buffer.from(good.manifest.toString().replace('"rack-b"', '"rack-z"'));
    await refused(verifyImage(opts({ manifest: edited })), 'digest', /manifest signature: the content is not what was signed/);
  });

  it('a pod not on the allow-list', async () => {
    await refused(verifyImage(opts({ pod: 'rack-c' })), 'manifest', /pod rack-c is not allowed to install stage2 1\.0\.0 \(allowed: rack-a, rack-b\)/);
  });

  it('a manifest past its notAfter', async () => {
    const m = manifestFor({ notAfter: new Date(NOW.getTime() + DAY).toISOString() });
    const later = new Date(NOW.getTime() + 2 * DAY); // the signer certificate is still valid then
    await refused(verifyImage(opts({ ...signedWith(pki.identity(pki.leaf()), m), now: later })), 'manifest', /manifest for stage2 1\.0\.0 expired at 2031-03-16T12:00:00.000Z/);
  });

  it('another name or version than asked for', async () => {
    await refused(verifyImage(opts({ expect: { name: 'stage2', version: '2.0.0' } })), 'manifest', /names version 1\.0\.0, expected 2\.0\.0/);
  });

  it('a pod check without a manifest', async () => {
    await refused(verifyImage({ image, signature: good.signature, rootCa: pki.rootPem, now: NOW, pod: 'rack-a' }), 'manifest', /needs the signed manifest/);
  });

  it('a manifest without its signature', async () => {
    await refused(verifyImage({ image, signature: good.signature, manifest: good.manifest, rootCa: pki.rootPem, now: NOW }), 'manifest', /has no signature/);
  });

  it('a manifest that is not JSON, or has unknown fields', async () => {
    const id = pki.identity(pki.leaf());
    const notJson = Buffer.from('name=stage2');
    await refused(verifyImage(opts({ manifest: notJson, manifestSignature: signBytes(id, notJson, { now: NOW }) })), 'malformed', /manifest: not JSON/);
    const extra = Buffer.from(JSON.stringify({ ...JSON.parse(good.manifest.toString()), install: 'yes' }));
    await refused(verifyImage(opts({ manifest: extra, manifestSignature: signBytes(id, extra, { now: NOW }) })), 'malformed', /unknown field\(s\) install/);
  });

  it("a manifest whose chunk digests are not the image's (a signer's mistake): the first wrong chunk, by number and bytes", async () => {
    const id = pki.identity(pki.leaf());
    const bytes = readFileSync(image);
    const chunks = Array.from({ length: 4 }, (_, i) =>
      createHash('sha256')
        .update(bytes.subarray(i * 65536, (i + 1) * 65536))
        .digest('hex'),
    );
    const ok = manifestFor({ chunkBytes: 65536, chunkSha256: chunks });
    await expect(verifyImage(opts({ manifest: ok, manifestSignature: signBytes(id, ok, { now: NOW }) }))).resolves.toMatchObject({ manifest: { chunkBytes: 65536 } });
    const wrong = manifestFor({ chunkBytes: 65536, chunkSha256: [chunks[0]!, chunks[1]!, chunks[0]!, chunks[3]!] });
    await refused(
      verifyImage(opts({ manifest: wrong, manifestSignature: signBytes(id, wrong, { now: NOW }) })),
      'digest',
      new RegExp(`image chunk 3 of 4 \\(bytes 131072-196607\\): sha256 ${chunks[2]}, the manifest says ${chunks[0]}`),
    );
  });

  it('a chunk list of the wrong shape, or a zstd image without one', async () => {
    const id = pki.identity(pki.leaf());
    const base = JSON.parse(good.manifest.toString()) as Record<string, unknown>;
    const hex = 'ab'.repeat(32);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ chunkBytes: 100_000, chunkSha256: [hex, hex, hex] }, /chunkBytes must be a power of two from 65536 to 1073741824/],
      [{ chunkBytes: 65536, chunkSha256: [hex, hex, hex] }, /chunkSha256 must list 4 sha256 digests \(64 lower-case hex digits\), one per 65536 bytes of the 262144-byte image/],
      [{ chunkBytes: 65536, chunkSha256: [hex, hex, hex, 'AB'.repeat(32)] }, /chunkSha256 must list 4/],
      [{ chunkSha256: [hex] }, /chunkBytes must be a power of two/],
      [{ encoding: 'zstd' }, /a zstd image needs chunkBytes and chunkSha256/],
    ];
    for (const [over, message] of cases) {
      const m = Buffer.from(JSON.stringify({ ...base, ...over }));
      await refused(verifyImage(opts({ manifest: m, manifestSignature: signBytes(id, m, { now: NOW }) })), 'malformed', message);
    }
  });

  it('a truncated signature', async () => {
    await refused(verifyImage(opts({ signature: good.signature.subarray(0, good.signature.length - 40) })), 'malformed', /image signature: truncated/);
    await refused(verifyImage(opts({ signature: good.signature.subarray(0, 1) })), 'malformed', /truncated/);
  });

  it('a garbage or empty signature', async () => {
    await refused(verifyImage(opts({ signature: Buffer.from('this is not a signature at all') })), 'malformed', /image signature:/);
    await refused(verifyImage(opts({ signature: Buffer.alloc(0) })), 'malformed', /empty file/);
    await refused(verifyImage(opts({ signature: Buffer.concat([good.signature, Buffer.from([0])]) })), 'malformed', /trailing data/);
  });

  it('signed attributes changed after signing', async () => {
    const sig = Buffer.from(good.signature);
    // signingTime is a UTCTime "310315120000Z"; make it a minute later.
    const at = sig.indexOf(Buffer.from('310315120000Z'));
    expect(at).toBeGreaterThan(0);
    sig[at + 9] = '1'.charCodeAt(0);
    await refused(verifyImage(opts({ signature: sig })), 'signature', /signature over the signed attributes does not verify with the key of O=podboot-test, CN=ci-pipeline/);
  });

  it('BER encodings DER forbids', async () => {
    const sig = Buffer.from(good.signature);
    // Outer SEQUENCE with an indefinite length.
    const ber = Buffer.concat([Buffer.from([0x30, 0x80]), sig.subarray(sig[1]! & 0x80 ? 2 + (sig[1]! & 0x7f) : 2), Buffer.from([0, 0])]);
    await refused(verifyImage(opts({ signature: ber })), 'malformed', /indefinite length \(BER\)/);
    const nonMinimal = Buffer.concat([Buffer.from([0x30, 0x84, 0, 0]), sig.subarray(2)]);
    nonMinimal.writeUInt16BE(sig.readUInt16BE(2), 4);
    await refused(verifyImage(opts({ signature: nonMinimal })), 'malformed', /not minimally encoded/);
  });

  it('an absurdly large signature, manifest or root file', async () => {
    await refused(verifyImage(opts({ signature: Buffer.alloc(LIMITS.signature + 1, 0x30) })), 'too-large', /image signature: 1048577 bytes is more than 1048576/);
    await refused(verifyImage(opts({ manifest: Buffer.alloc(LIMITS.manifest + 1, 0x20) })), 'too-large', /manifest: 262145 bytes/);
    await refused(verifyImage(opts({ rootCa: Buffer.alloc(LIMITS.rootCa + 1) })), 'too-large', /root CA file/);
  });

  it('an oversized file before reading any of it', async () => {
    const huge = join(dir, 'huge.p7s');
    writeFileSync(huge, '');
    truncateSync(huge, 8 * 2 ** 30); // sparse: 8 GiB that take no disk and would exhaust memory if read
    await refused(readCapped(huge, LIMITS.signature, 'signature file'), 'too-large', /signature file is 8589934592 bytes; more than 1048576 is never legitimate/);
  });

  it('a root CA file without a certificate', async () => {
    await refused(verifyImage(opts({ rootCa: Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n') })), 'malformed', /root CA file: holds no CERTIFICATE/);
  });

  it('a signature whose messageDigest is not the image, for a different image of the same size', async () => {
    await refused(verifyImage(opts({ image: otherImage, manifest: undefined, manifestSignature: undefined })), 'digest', /the image is not what was signed/);
  });
});
