import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_OK, UsageError, type Command } from '../command.js';
import { CHUNK_BYTES_MAX, CHUNK_BYTES_MIN, IMAGE_NAME_RE, IMAGE_VERSION_RE, POD_NAME_RE, readPrivateKey, signImage, signerIdentity } from '../../signing/index.js';

const DAY = 86_400_000;

/** "90d" from now, or an ISO 8601 date/time. */
export function parseNotAfter(v: string, now: Date): Date {
  const days = v.match(/^(\d+)d$/);
  if (days) return new Date(now.getTime() + Number(days[1]) * DAY);
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(t)) throw new UsageError(`--not-after must be an ISO date like 2030-01-31 or a number of days like 90d, not ${v}`);
  return new Date(t);
}

export const signCommand: Command = {
  summary: 'sign an image: IMAGE.p7s and a signed manifest',
  usage: `usage: podboot sign IMAGE --cert CHAIN.pem --key KEY --version V [--name N]
                    [--not-after DATE|Nd] [--pods a,b] [--chunk-bytes N] [--keyid]

Writes IMAGE.p7s (detached CMS SignedData, DER, signed attributes contentType,
messageDigest, signingTime; carries the signer and code-signing CA certificates),
IMAGE.manifest.json (name, version, size, sha256, created, notAfter, pods,
encoding, and the sha256 of every chunk: chunkBytes, chunkSha256) and
IMAGE.manifest.json.p7s. stage1 checks a streamed (zstd) image chunk by chunk
before it writes a byte of it: a corrupt image stops at its first bad chunk. Check with podboot verify, or with
openssl cms -verify -binary -inform DER -in IMAGE.p7s -content IMAGE -CAfile root.pem -purpose any

  --cert FILE       signer certificate followed by its code-signing CA (NAME.chain.pem)
  --key FILE        the signer's private key (mode 0600; if encrypted, the
                    passphrase is read from PODBOOT_KEY_PASSPHRASE)
  --version V       image version (the catalog's key with the name)
  --name N          image name (default: the file name)
  --not-after T     pods refuse the image after T (ISO date or Nd from now)
  --pods a,b        only these pods may install the image (default: any)
  --chunk-bytes N   the manifest's chunk size, a power of two from 65536 to
                    1073741824 (default 16 MiB; larger for images of more than
                    2048 chunks)
  --keyid           name the signer by subjectKeyIdentifier (like openssl cms -keyid)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        cert: { type: 'string' },
        key: { type: 'string' },
        name: { type: 'string' },
        version: { type: 'string' },
        'not-after': { type: 'string' },
        pods: { type: 'string' },
        keyid: { type: 'boolean' },
        'chunk-bytes': { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one IMAGE');
    if (!values.cert || !values.key) throw new UsageError('--cert and --key are required');
    if (!values.version) throw new UsageError('--version is required (it names the image in the catalog)');
    const image = positionals[0]!;
    const name = values.name ?? basename(image);
    if (!IMAGE_NAME_RE.test(name)) throw new UsageError(`image name ${name} must be 1-128 of A-Z a-z 0-9 . _ - (give --name)`);
    if (!IMAGE_VERSION_RE.test(values.version)) throw new UsageError(`version ${values.version} must be 1-64 of A-Z a-z 0-9 . _ + ~ -`);
    const pods = values.pods?.split(',').map((p) => p.trim());
    const badPod = pods?.find((p) => !POD_NAME_RE.test(p));
    if (badPod !== undefined) throw new UsageError(`--pods: ${badPod || '(empty)'} is not a pod name`);
    const chunkBytes = values['chunk-bytes'] === undefined ? undefined : Number(values['chunk-bytes']);
    if (chunkBytes !== undefined && (!Number.isSafeInteger(chunkBytes) || chunkBytes < CHUNK_BYTES_MIN || chunkBytes > CHUNK_BYTES_MAX || (chunkBytes & (chunkBytes - 1)) !== 0)) {
      throw new UsageError(`--chunk-bytes must be a power of two from ${CHUNK_BYTES_MIN} to ${CHUNK_BYTES_MAX}, not ${values['chunk-bytes']}`);
    }
    const now = new Date();
    const notAfter = values['not-after'] ? parseNotAfter(values['not-after'], now) : undefined;

    const key = await readPrivateKey(values.key, process.env.PODBOOT_KEY_PASSPHRASE);
    const signer = signerIdentity(await readFile(values.cert), key, now);
    const files = await signImage({
      image,
      signer,
      name,
      version: values.version,
      now,
      bySubjectKeyId: values.keyid ?? false,
      ...(notAfter ? { notAfter } : {}),
      ...(pods ? { pods } : {}),
      ...(chunkBytes ? { chunkBytes } : {}),
    });
    const m = files.manifestContent;
    process.stdout.write(
      `signed ${image} as ${m.name} ${m.version} by ${signer.cert.subjectText}\n  sha256     ${m.sha256} (${m.size} bytes)\n  signature  ${files.signature}\n  manifest   ${files.manifest}\n             ${files.manifestSignature}\n`,
    );
    return EXIT_OK;
  },
};
