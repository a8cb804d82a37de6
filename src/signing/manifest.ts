// The image manifest: a small JSON document, signed like the image, that binds
// the image's bytes (size, sha256) to a name, a version, an expiry and the pods
// allowed to install it.
import { VerificationError } from './errors.js';

export const MANIFEST_SCHEMA = 'podboot.image-manifest/1';

export interface ImageManifest {
  schema: typeof MANIFEST_SCHEMA;
  name: string;
  version: string;
  size: number;
  /** lower-case hex */
  sha256: string;
  /** ISO 8601 UTC */
  created: string;
  /** ISO 8601 UTC; after it no pod may install the image */
  notAfter?: string;
  /** pod names allowed to install the image; absent: every pod */
  pods?: string[];
  /**
   * How the bytes are packed for the wire: `zstd` is a raw disk image that
   * stage1 streams onto the disk, decompressing and hashing as it goes
   * (docs/boot-chain.md); absent: a file stage1 downloads whole, verifies,
   * then hands to the kickstart.
   */
  encoding?: ImageEncoding;
  /**
   * The image in pieces of chunkBytes (a power of two), each with its sha256
   * (the last piece may be shorter): stage1 checks each piece before it
   * writes it, so a corrupt image stops at its first bad piece, and a piece
   * can come from anywhere and still be trusted. Required with `zstd`.
   */
  chunkBytes?: number;
  chunkSha256?: string[];
}

/** The smallest and largest chunkBytes; `podboot sign` picks 16 MiB, more for images so big the list would pass MAX_CHUNKS. */
export const CHUNK_BYTES_MIN = 64 << 10;
export const CHUNK_BYTES_MAX = 1 << 30;
export const DEFAULT_CHUNK_BYTES = 16 << 20;
export const MAX_CHUNKS = 2048;

/** The chunk size `podboot sign` uses for an image of `size` bytes: 16 MiB, or the power of two that keeps the list at MAX_CHUNKS. */
export function chunkBytesFor(size: number): number {
  let bytes = DEFAULT_CHUNK_BYTES;
  while (bytes < CHUNK_BYTES_MAX && Math.ceil(size / bytes) > MAX_CHUNKS) bytes *= 2;
  return bytes;
}

export const IMAGE_ENCODINGS = ['zstd'] as const;
export type ImageEncoding = (typeof IMAGE_ENCODINGS)[number];

/** The zstd frame magic (RFC 8878, 3.1.1), little-endian 0xFD2FB528. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The encoding a file's first bytes announce. */
export function encodingOf(head: Buffer): ImageEncoding | undefined {
  return head.subarray(0, 4).equals(ZSTD_MAGIC) ? 'zstd' : undefined;
}

export const IMAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const IMAGE_VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;
/** the same rule pod files use for metadata.name: a DNS label */
export const POD_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ISO_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const FIELDS = ['schema', 'name', 'version', 'size', 'sha256', 'created', 'notAfter', 'pods', 'encoding', 'chunkBytes', 'chunkSha256'];

function bad(message: string): never {
  throw new VerificationError('malformed', `manifest: ${message}`);
}

function isoField(v: unknown, field: string): string {
  if (typeof v !== 'string' || !ISO_UTC_RE.test(v) || Number.isNaN(Date.parse(v))) bad(`${field} must be an ISO 8601 UTC time like 2030-01-31T00:00:00Z`);
  return v;
}

/** Checks the shape of every field; problems are errors naming the field, never guesses. */
export function validateManifest(value: unknown): ImageManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not a JSON object');
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !FIELDS.includes(k));
  if (unknown.length) bad(`unknown field(s) ${unknown.join(', ')}`);
  if (o.schema !== MANIFEST_SCHEMA) bad(`schema must be "${MANIFEST_SCHEMA}"`);
  if (typeof o.name !== 'string' || !IMAGE_NAME_RE.test(o.name)) bad('name must be 1-128 of A-Z a-z 0-9 . _ - starting with a letter or digit');
  if (typeof o.version !== 'string' || !IMAGE_VERSION_RE.test(o.version)) bad('version must be 1-64 of A-Z a-z 0-9 . _ + ~ - starting with a letter or digit');
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) bad('size must be a non-negative integer');
  if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) bad('sha256 must be 64 lower-case hex digits');
  const m: ImageManifest = { schema: MANIFEST_SCHEMA, name: o.name, version: o.version, size: o.size, sha256: o.sha256, created: isoField(o.created, 'created') };
  if (o.notAfter !== undefined) m.notAfter = isoField(o.notAfter, 'notAfter');
  if (o.pods !== undefined) {
    if (!Array.isArray(o.pods) || o.pods.length === 0 || o.pods.some((p) => typeof p !== 'string' || !POD_NAME_RE.test(p))) {
      bad('pods must be a non-empty list of pod names (DNS labels)');
    }
    m.pods = o.pods as string[];
  }
  if (o.encoding !== undefined) {
    if (!(IMAGE_ENCODINGS as readonly unknown[]).includes(o.encoding)) bad(`encoding must be one of ${IMAGE_ENCODINGS.join(', ')}`);
    m.encoding = o.encoding as ImageEncoding;
  }
  if (o.chunkBytes !== undefined || o.chunkSha256 !== undefined) {
    const bytes = o.chunkBytes;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < CHUNK_BYTES_MIN || bytes > CHUNK_BYTES_MAX || (bytes & (bytes - 1)) !== 0) {
      bad(`chunkBytes must be a power of two from ${CHUNK_BYTES_MIN} to ${CHUNK_BYTES_MAX}`);
    }
    const count = Math.ceil(m.size / bytes);
    const list = o.chunkSha256;
    if (!Array.isArray(list) || list.length !== count || list.some((d) => typeof d !== 'string' || !/^[0-9a-f]{64}$/.test(d))) {
      bad(`chunkSha256 must list ${count} sha256 digests (64 lower-case hex digits), one per ${bytes} bytes of the ${m.size}-byte image`);
    }
    m.chunkBytes = bytes;
    m.chunkSha256 = list as string[];
  }
  if (m.encoding === 'zstd' && m.chunkBytes === undefined) bad('a zstd image needs chunkBytes and chunkSha256: stage1 checks each chunk before it writes it');
  return m;
}

/** Throws VerificationError('digest') naming the first chunk whose sha256 is not the manifest's. */
export function checkChunks(m: ImageManifest, chunks: readonly Buffer[]): void {
  if (m.chunkBytes === undefined || m.chunkSha256 === undefined) return;
  const bad = m.chunkSha256.findIndex((want, i) => chunks[i]?.toString('hex') !== want);
  if (bad >= 0 || chunks.length !== m.chunkSha256.length) {
    const i = bad >= 0 ? bad : Math.min(chunks.length, m.chunkSha256.length);
    const first = i * m.chunkBytes;
    const last = Math.min(first + m.chunkBytes, m.size) - 1;
    throw new VerificationError(
      'digest',
      `image chunk ${i + 1} of ${m.chunkSha256.length} (bytes ${first}-${last}): sha256 ${chunks[i]?.toString('hex') ?? 'missing'}, the manifest says ${m.chunkSha256[i] ?? 'none'}`,
    );
  }
}

export function parseManifest(bytes: Buffer): ImageManifest {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    bad(`not JSON (${(err as Error).message})`);
  }
  return validateManifest(value);
}

/** Stable field order, two-space indent, trailing newline: the bytes that get signed. */
export function encodeManifest(m: ImageManifest): Buffer {
  const ordered: Record<string, unknown> = {};
  for (const k of FIELDS) if ((m as unknown as Record<string, unknown>)[k] !== undefined) ordered[k] = (m as unknown as Record<string, unknown>)[k];
  return Buffer.from(JSON.stringify(ordered, null, 2) + '\n', 'utf8');
}

export interface ManifestExpectations {
  /** the image the manifest must describe */
  size: number;
  /** absent: checked later, once the image has been hashed */
  sha256?: string;
  now: Date;
  /** the pod asking: must be on the allow-list when there is one */
  pod?: string;
  /** the image a caller asked for by name and version */
  name?: string;
  version?: string;
}

/** Throws VerificationError('manifest') unless `m` describes this image for this pod at this time. */
export function checkManifest(m: ImageManifest, want: ManifestExpectations): void {
  const fail = (message: string): never => {
    throw new VerificationError('manifest', message);
  };
  if (m.size !== want.size) fail(`manifest is for another image: it says ${m.size} bytes, the image has ${want.size}`);
  if (want.sha256 !== undefined && m.sha256 !== want.sha256) fail(`manifest is for another image: it says sha256 ${m.sha256}, the image is ${want.sha256}`);
  if (want.name !== undefined && m.name !== want.name) fail(`manifest names image ${m.name}, expected ${want.name}`);
  if (want.version !== undefined && m.version !== want.version) fail(`manifest names version ${m.version}, expected ${want.version}`);
  if (m.notAfter && want.now > new Date(m.notAfter)) fail(`manifest for ${m.name} ${m.version} expired at ${m.notAfter}`);
  if (want.pod !== undefined && m.pods && !m.pods.includes(want.pod)) fail(`pod ${want.pod} is not allowed to install ${m.name} ${m.version} (allowed: ${m.pods.join(', ')})`);
}
