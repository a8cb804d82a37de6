// Verification of signed images: the one entry point the CLI, the catalog, the
// HTTPS boot server and stage1 tooling share. Cheap checks (sizes, parsing,
// chain, signatures, manifest fields) run before the image is hashed, so a bad
// signature never costs a pass over a GiB image.
import { createHash, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { verifySignature } from './algorithms.js';
import { validatePath, type TrustAnchors, type ValidatedPath } from './chain.js';
import { parseDetachedSignature, type SignerId } from './cms.js';
import { parseCrl } from './crl.js';
import { DerError } from './der.js';
import { VerificationError } from './errors.js';
import { sha256File } from './files.js';
import { checkChunks, checkManifest, parseManifest, type ImageManifest } from './manifest.js';
import { OID } from './oids.js';
import { derObjects } from './pem.js';
import { parseCertificate, serialHex, type Certificate } from './x509.js';

/** Inputs larger than these are refused before they are parsed. */
export const LIMITS = {
  signature: 1 << 20,
  // a chunk list of MAX_CHUNKS digests fits with room to spare
  manifest: 256 << 10,
  crl: 16 << 20,
  rootCa: 1 << 20,
} as const;

export interface SignerSummary {
  subject: string;
  issuer: string;
  serial: string;
  notAfter: string;
  sha256Fingerprint: string;
}

export interface SignatureFacts {
  signer: SignerSummary;
  /** subjects, signer first, root last */
  chain: string[];
  signingTime?: string;
  revocation: ValidatedPath['revocation'];
  /** the SHA-256 the signer vouched for */
  messageDigest: Buffer;
}

/** Runs `fn`, labelling its failures with `what` and turning parse errors into 'malformed'. */
function labelled<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof VerificationError) throw new VerificationError(err.check, `${what}: ${err.message}`);
    if (err instanceof DerError) throw new VerificationError('malformed', `${what}: ${err.message}`);
    throw err;
  }
}

/** Root certificate(s) and CRLs, PEM or DER, as verification uses them. */
export function loadTrust(rootCa: Buffer, crls: Buffer[] = []): TrustAnchors {
  const roots = labelled('root CA file', () => {
    if (rootCa.length > LIMITS.rootCa) throw new VerificationError('too-large', `${rootCa.length} bytes is more than ${LIMITS.rootCa}`);
    const ders = derObjects(rootCa, 'CERTIFICATE');
    if (ders.length === 0) throw new DerError('holds no CERTIFICATE (PEM or DER)');
    return ders.map((d, i) => parseCertificate(d, `certificate ${i + 1}`));
  });
  const parsedCrls = crls.flatMap((bytes, f) =>
    labelled(`CRL file ${f + 1}`, () => {
      if (bytes.length > LIMITS.crl) throw new VerificationError('too-large', `${bytes.length} bytes is more than ${LIMITS.crl}`);
      const ders = derObjects(bytes, 'X509 CRL');
      if (ders.length === 0) throw new DerError('holds no X509 CRL (PEM or DER)');
      return ders.map((d) => parseCrl(d));
    }),
  );
  return { roots, crls: parsedCrls };
}

function summary(c: Certificate): SignerSummary {
  return { subject: c.subjectText, issuer: c.issuerText, serial: c.serialHex, notAfter: c.notAfter.toISOString(), sha256Fingerprint: c.sha256Fingerprint };
}

function findSigner(certs: Certificate[], id: SignerId): Certificate | undefined {
  if (id.kind === 'issuerAndSerialNumber') return certs.find((c) => c.issuer.equals(id.issuer) && c.serial === id.serial);
  return certs.find((c) => c.subjectKeyId?.equals(id.keyId));
}

function describeSignerId(id: SignerId): string {
  return id.kind === 'issuerAndSerialNumber' ? `serial ${serialHex(id.serial)}` : `subjectKeyIdentifier ${id.keyId.toString('hex')}`;
}

/**
 * Everything about a detached signature except comparing its messageDigest
 * with the content: structure, signer, path to a trusted root, purpose,
 * validity at `now`, revocation, content type and the signature itself.
 */
export function checkSignature(signature: Buffer, trust: TrustAnchors, now: Date, what = 'signature'): SignatureFacts {
  return labelled(what, () => {
    if (signature.length > LIMITS.signature) throw new VerificationError('too-large', `${signature.length} bytes is more than ${LIMITS.signature}; a detached signature is a few KiB`);
    if (signature.length === 0) throw new DerError('empty file');
    const sd = parseDetachedSignature(signature);
    const certs = sd.certificates.map((d, i) => parseCertificate(d, `certificate ${i + 1}`));
    const signer = findSigner(certs, sd.signerId);
    if (!signer) throw new VerificationError('chain', `the signer's certificate (${describeSignerId(sd.signerId)}) is not among the ${certs.length} certificates in the signature`);
    const path = validatePath(signer, certs, trust, now, OID.codeSigning);
    if (sd.eContentType !== OID.data) throw new VerificationError('content-type', `signed content type is ${sd.eContentType}, not data (${OID.data})`);
    if (sd.attributes.contentType !== sd.eContentType)
      throw new VerificationError('content-type', `contentType attribute ${sd.attributes.contentType} differs from the content type ${sd.eContentType}`);
    if (sd.digestAlgorithm !== 'sha256') throw new VerificationError('unsupported', `digest algorithm ${sd.digestAlgorithm}; podboot signs and checks images with sha256`);
    if (sd.attributes.messageDigest.length !== 32) throw new DerError(`messageDigest is ${sd.attributes.messageDigest.length} bytes, a SHA-256 is 32`);
    if (!verifySignature(sd.signatureAlgorithm, signer.publicKey, sd.signedAttributesDer, sd.signature)) {
      throw new VerificationError('signature', `the ${sd.signatureAlgorithm.label} signature over the signed attributes does not verify with the key of ${signer.subjectText}`);
    }
    const facts: SignatureFacts = {
      signer: summary(signer),
      chain: path.chain.map((c) => c.subjectText),
      revocation: path.revocation,
      messageDigest: sd.attributes.messageDigest,
    };
    if (sd.attributes.signingTime) facts.signingTime = sd.attributes.signingTime.toISOString();
    return facts;
  });
}

function checkDigest(facts: SignatureFacts, actual: Buffer, what: string, content: string): void {
  if (!timingSafeEqual(facts.messageDigest, actual)) {
    throw new VerificationError('digest', `${what}: ${content} is not what was signed: its sha256 is ${actual.toString('hex')}, the signature vouches for ${facts.messageDigest.toString('hex')}`);
  }
}

/** A detached signature over bytes held in memory (manifests, small files). */
export function verifyDetached(content: Buffer, signature: Buffer, trust: TrustAnchors, now: Date, what = 'signature'): SignatureFacts {
  const facts = checkSignature(signature, trust, now, what);
  checkDigest(facts, createHash('sha256').update(content).digest(), what, 'the content');
  return facts;
}

export interface VerifyImageOptions {
  /** path of the image; it is streamed, never loaded whole */
  image: string;
  /** the image's detached CMS signature (DER) */
  signature: Buffer;
  manifest?: Buffer;
  manifestSignature?: Buffer;
  /** trusted root certificate(s), PEM or DER */
  rootCa: Buffer;
  /** CRL file(s), PEM or DER; each must come from a CA in the chain */
  crl?: Buffer | Buffer[];
  /** the clock; tests inject one */
  now?: Date;
  /** the pod that will install the image: must be on the manifest's allow-list */
  pod?: string;
  /** name and version the caller asked for: the manifest must say the same */
  expect?: { name?: string; version?: string };
  /**
   * The image's SHA-256 when the caller already knows it from bytes it verified
   * and stored immutably (a content-addressed catalog). The image is then not
   * read again; everything else is still checked.
   */
  imageSha256?: Buffer;
}

export interface VerifiedImage {
  path: string;
  size: number;
  /** lower-case hex */
  sha256: string;
  signer: SignerSummary;
  chain: string[];
  signingTime?: string;
  revocation: ValidatedPath['revocation'];
  manifest?: ImageManifest;
  manifestSigner?: SignerSummary;
}

/** Verifies an image against its signature (and manifest); throws VerificationError naming the failed check. */
export async function verifyImage(opts: VerifyImageOptions): Promise<VerifiedImage> {
  const now = opts.now ?? new Date();
  const crls = opts.crl === undefined ? [] : Array.isArray(opts.crl) ? opts.crl : [opts.crl];
  const trust = loadTrust(opts.rootCa, crls);
  const image = checkSignature(opts.signature, trust, now, 'image signature');
  const { size } = await stat(opts.image);

  let manifest: ImageManifest | undefined;
  let manifestFacts: SignatureFacts | undefined;
  const want = { size, now, pod: opts.pod, name: opts.expect?.name, version: opts.expect?.version };
  if (opts.manifest) {
    const bytes = opts.manifest;
    if (!opts.manifestSignature) throw new VerificationError('manifest', 'the manifest has no signature (IMAGE.manifest.json.p7s)');
    if (bytes.length > LIMITS.manifest) throw new VerificationError('too-large', `manifest: ${bytes.length} bytes is more than ${LIMITS.manifest}`);
    manifestFacts = verifyDetached(bytes, opts.manifestSignature, trust, now, 'manifest signature');
    manifest = parseManifest(bytes);
    checkManifest(manifest, want); // size, names, expiry and pod before spending a pass over the image
  } else if (opts.pod !== undefined || opts.expect) {
    throw new VerificationError('manifest', 'checking the pod allow-list, name or version needs the signed manifest');
  }

  // a digest the caller already holds (the catalog's, checked at admission) stands for the chunks too
  const hashed = opts.imageSha256 ? { sha256: opts.imageSha256, size } : await sha256File(opts.image, manifest?.chunkBytes);
  checkDigest(image, hashed.sha256, 'image signature', 'the image');
  const sha256 = hashed.sha256.toString('hex');
  if (manifest) checkManifest(manifest, { ...want, size: hashed.size, sha256 });
  if (manifest && 'chunks' in hashed && hashed.chunks) checkChunks(manifest, hashed.chunks);

  const out: VerifiedImage = { path: opts.image, size: hashed.size, sha256, signer: image.signer, chain: image.chain, revocation: image.revocation };
  if (image.signingTime) out.signingTime = image.signingTime;
  if (manifest && manifestFacts) {
    out.manifest = manifest;
    out.manifestSigner = manifestFacts.signer;
  }
  return out;
}
