// Signing an image: IMAGE.p7s (detached CMS over the image), and the signed
// manifest IMAGE.manifest.json + IMAGE.manifest.json.p7s.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { encodeDetachedSignature } from './cms.js';
import { sha256File, writeFileAtomic } from './files.js';
import { chunkBytesFor, encodeManifest, encodingOf, validateManifest, MANIFEST_SCHEMA, type ImageManifest } from './manifest.js';
import { OID } from './oids.js';
import { derObjects } from './pem.js';
import { parseCertificate, type Certificate } from './x509.js';

export interface SignerIdentity {
  cert: Certificate;
  /** issuing CA certificates (DER) to carry in every signature */
  chain: Buffer[];
  key: KeyObject;
}

/**
 * The signer from a certificate bundle (signer first, then its issuing CA, as
 * `ca issue-signer` writes NAME.chain.pem) and its private key.
 */
export function signerIdentity(bundle: Buffer, key: KeyObject, now: Date = new Date()): SignerIdentity {
  const ders = derObjects(bundle, 'CERTIFICATE');
  if (ders.length === 0) throw new Error('the certificate file holds no CERTIFICATE');
  const cert = parseCertificate(ders[0]!, 'signer certificate');
  const chain = ders.slice(1);
  if (chain.length === 0) {
    throw new Error('the certificate file holds only the signer; verifiers need the issuing CA too: use NAME.chain.pem from podboot ca issue-signer');
  }
  if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(cert.spki)) throw new Error(`the private key does not belong to ${cert.subjectText}`);
  if (!cert.extKeyUsage?.includes(OID.codeSigning)) throw new Error(`${cert.subjectText} is not a code-signing certificate (no extendedKeyUsage codeSigning)`);
  if (now < cert.notBefore || now > cert.notAfter) {
    throw new Error(`${cert.subjectText} is valid only from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}`);
  }
  return { cert, chain, key };
}

/** A detached signature over content whose SHA-256 is `digest`. */
export function signDigest(signer: SignerIdentity, digest: Buffer, opts: { now?: Date; bySubjectKeyId?: boolean } = {}): Buffer {
  const { cert } = signer;
  return encodeDetachedSignature({
    digest,
    signer: { der: cert.der, issuer: cert.issuer, serial: cert.serial, ...(cert.subjectKeyId ? { subjectKeyId: cert.subjectKeyId } : {}) },
    chain: signer.chain,
    key: signer.key,
    signingTime: opts.now ?? new Date(),
    bySubjectKeyId: opts.bySubjectKeyId ?? false,
  });
}

export function signBytes(signer: SignerIdentity, content: Buffer, opts: { now?: Date; bySubjectKeyId?: boolean } = {}): Buffer {
  return signDigest(signer, createHash('sha256').update(content).digest(), opts);
}

export interface SignImageOptions {
  image: string;
  signer: SignerIdentity;
  name: string;
  version: string;
  notAfter?: Date;
  pods?: string[];
  now?: Date;
  bySubjectKeyId?: boolean;
  /** the manifest's chunk size (a power of two); default: chunkBytesFor(the image's size) */
  chunkBytes?: number;
}

export interface SignedImageFiles {
  signature: string;
  manifest: string;
  manifestSignature: string;
  manifestContent: ImageManifest;
}

export async function signImage(opts: SignImageOptions): Promise<SignedImageFiles> {
  const now = opts.now ?? new Date();
  const signOpts = { now, bySubjectKeyId: opts.bySubjectKeyId ?? false };
  // Validate the manifest fields before the (long) pass over the image.
  const draft = { schema: MANIFEST_SCHEMA, name: opts.name, version: opts.version, size: 0, sha256: '0'.repeat(64), created: now.toISOString() };
  const extra = { ...(opts.notAfter ? { notAfter: opts.notAfter.toISOString() } : {}), ...(opts.pods ? { pods: opts.pods } : {}) };
  validateManifest({ ...draft, ...extra });

  const { size: sizeNow } = await stat(opts.image);
  const chunkBytes = opts.chunkBytes ?? chunkBytesFor(sizeNow);
  const { sha256, size, chunks = [] } = await sha256File(opts.image, chunkBytes);
  const encoding = encodingOf(await readHead(opts.image, 4));
  const manifest = validateManifest({
    ...draft,
    ...extra,
    size,
    sha256: sha256.toString('hex'),
    ...(encoding ? { encoding } : {}),
    chunkBytes,
    chunkSha256: chunks.map((c) => c.toString('hex')),
  });
  const manifestBytes = encodeManifest(manifest);
  const files: SignedImageFiles = {
    signature: `${opts.image}.p7s`,
    manifest: `${opts.image}.manifest.json`,
    manifestSignature: `${opts.image}.manifest.json.p7s`,
    manifestContent: manifest,
  };
  await writeFileAtomic(files.signature, signDigest(opts.signer, sha256, signOpts));
  await writeFileAtomic(files.manifest, manifestBytes);
  await writeFileAtomic(files.manifestSignature, signBytes(opts.signer, manifestBytes, signOpts));
  return files;
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
