// The signing module's public face: what the CLI, the catalog, the HTTPS boot
// server and stage1 tooling use. It depends on nothing else in podboot.
export { VerificationError, type VerificationCheck } from './errors.js';
export { verifyImage, verifyDetached, checkSignature, loadTrust, LIMITS, type VerifyImageOptions, type VerifiedImage, type SignatureFacts, type SignerSummary } from './verify.js';
export { sha256File, readCapped, readThrough, writeFileAtomic, syncDir, type FileDigest } from './files.js';
export { signImage, signBytes, signDigest, signerIdentity, type SignerIdentity, type SignImageOptions, type SignedImageFiles } from './sign.js';
export { CaDirectory, type IssuedFiles, type CaInitOptions, type Authority } from './ca-dir.js';
export { readPrivateKey } from './keys.js';
export { REVOCATION_REASONS, type RevocationReason } from './crl.js';
export {
  parseManifest,
  checkManifest,
  checkChunks,
  encodeManifest,
  CHUNK_BYTES_MAX,
  CHUNK_BYTES_MIN,
  IMAGE_NAME_RE,
  IMAGE_VERSION_RE,
  POD_NAME_RE,
  MANIFEST_SCHEMA,
  type ImageManifest,
} from './manifest.js';
