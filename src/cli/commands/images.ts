import { defaultStateRoot, STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import type { Catalog, CatalogEntry } from '../../catalog/catalog.js';
import { LIMITS, VerificationError, readCapped } from '../../signing/index.js';

// The catalog pulls in undici, SQLite and pino; load them only when an images
// command runs, so every other podboot command starts faster.
const catalogModule = () => import('../../catalog/catalog.js');

const CATALOG_OPTION = { catalog: { type: 'string' } } as const;
const CATALOG_HELP = '  --catalog DIR  the catalog (default $PODBOOT_CATALOG or ./catalog)';

async function openCatalog(dir: string | undefined): Promise<Catalog> {
  const [{ Catalog }, { createLogger }] = await Promise.all([catalogModule(), import('../../log.js')]);
  // JSON log lines go to stderr so stdout stays the command's own output.
  const log = createLogger({ component: 'catalog' }, { level: process.env.PODBOOT_LOG_LEVEL ?? 'warn', destination: process.stderr });
  return Catalog.open(dir ?? process.env.PODBOOT_CATALOG ?? 'catalog', log);
}

/** NAME@VERSION, or NAME alone when `versionOptional`. */
function parseRef(ref: string | undefined, versionOptional: boolean): { name: string; version?: string } {
  if (!ref) throw new UsageError(`expected NAME${versionOptional ? '[@VERSION]' : '@VERSION'}`);
  const at = ref.lastIndexOf('@');
  if (at < 0) {
    if (!versionOptional) throw new UsageError(`${ref}: give NAME@VERSION`);
    return { name: ref };
  }
  return { name: ref.slice(0, at), version: ref.slice(at + 1) };
}

function describe(e: CatalogEntry, blobPath: (hex: string) => string): string {
  return [
    `${e.name}@${e.version}`,
    `  sha256      ${e.image} (${e.size} bytes)`,
    `  path        ${blobPath(e.image)}`,
    `  signer      ${e.signer} (serial ${e.signerSerial})`,
    `  created     ${e.created}`,
    `  not after   ${e.notAfter ?? '-'}`,
    `  pods        ${e.pods?.join(', ') ?? 'any'}`,
    `  source      ${e.source}`,
    `  pulled at   ${e.pulledAt}`,
  ].join('\n');
}

export const imagesPullCommand: Command = {
  summary: 'fetch a signed image over HTTPS, verify it, add it to the catalog',
  usage: `usage: podboot images pull URL --ca ROOT.pem [--tls-ca CA.pem] [--crl FILE]... [--catalog DIR]

Fetches URL, URL.p7s, URL.manifest.json and URL.manifest.json.p7s (https
only, TLS 1.2+), verifies them against ROOT.pem (as podboot verify does) and
only then adds the image to the catalog, content-addressed by sha256 under
its manifest's name and version. A cut connection resumes (Range/If-Range).
Nothing of a refused image stays behind. Exit 1 with the failed check named.

  --ca ROOT.pem    root CA the signatures must chain to
  --tls-ca CA.pem  CA that issued the artifact store's TLS certificate (default: system CAs)
  --crl FILE       CRL of the code-signing CA and/or root (repeatable)
${CATALOG_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...CATALOG_OPTION, ca: { type: 'string' }, 'tls-ca': { type: 'string' }, crl: { type: 'string', multiple: true } },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one URL');
    const url = positionals[0]!;
    if (!/^https:\/\//.test(url)) throw new UsageError(`${url}: the artifact store must be an https:// URL`);
    if (!values.ca) throw new UsageError('--ca ROOT.pem is required');
    const rootCa = await readCapped(values.ca, LIMITS.rootCa, 'root CA file');
    const crl = await Promise.all((values.crl ?? []).map((p) => readCapped(p, LIMITS.crl, `CRL file ${p}`)));
    const [{ httpsDispatcher }, { progressReporter }, { pullImage }, { CatalogError }] = await Promise.all([
      import('../../catalog/fetch.js'),
      import('../../catalog/progress.js'),
      import('../../catalog/pull.js'),
      catalogModule(),
    ]);
    const dispatcher = httpsDispatcher(values['tls-ca'] ? { ca: await readFile(values['tls-ca']) } : {});
    const catalog = await openCatalog(values.catalog);
    try {
      const r = await pullImage({ url, catalog, dispatcher, rootCa, crl, onEvent: progressReporter(process.stdout) });
      const e = r.entry;
      process.stdout.write(`${r.added ? 'admitted' : 'already in the catalog'}: ${e.name}@${e.version} sha256 ${e.image} (${e.size} bytes), signed by ${e.signer}\n`);
      return EXIT_OK;
    } catch (err) {
      if (err instanceof VerificationError) {
        process.stderr.write(`podboot images pull: REFUSED [${err.check}] ${url}: ${err.message}\n`);
        return EXIT_FAILURE;
      }
      if (err instanceof CatalogError) {
        process.stderr.write(`podboot images pull: ${err.message}\n`);
        return EXIT_FAILURE;
      }
      throw err;
    } finally {
      catalog.close();
      await dispatcher.close();
    }
  },
};

export const imagesListCommand: Command = {
  summary: 'list the images in the catalog',
  usage: `usage: podboot images list [--catalog DIR] [--json]

One line per image: NAME@VERSION, size, sha256, pods allowed.
${CATALOG_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { ...CATALOG_OPTION, json: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const catalog = await openCatalog(values.catalog);
    try {
      const entries = catalog.list();
      if (values.json) {
        process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
      } else {
        for (const e of entries) process.stdout.write(`${e.name}@${e.version}  ${e.size}  sha256:${e.image}  pods:${e.pods?.join(',') ?? 'any'}\n`);
        if (!entries.length) process.stdout.write('the catalog is empty\n');
      }
      return EXIT_OK;
    } finally {
      catalog.close();
    }
  },
};

export const imagesShowCommand: Command = {
  summary: 'show an image in the catalog',
  usage: `usage: podboot images show NAME[@VERSION] [--catalog DIR]

Every version of NAME, or just VERSION: digest, blob path, signer, expiry, pods.
${CATALOG_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: CATALOG_OPTION, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('expected exactly one NAME[@VERSION]');
    const ref = parseRef(positionals[0], true);
    const catalog = await openCatalog(values.catalog);
    try {
      const found = ref.version !== undefined ? [catalog.get(ref.name, ref.version)].filter((e) => e !== undefined) : catalog.versions(ref.name);
      if (!found.length) {
        process.stderr.write(`podboot images show: no ${positionals[0]} in the catalog\n`);
        return EXIT_FAILURE;
      }
      process.stdout.write(found.map((e) => describe(e, (h) => catalog.blobPath(h))).join('\n\n') + '\n');
      return EXIT_OK;
    } finally {
      catalog.close();
    }
  },
};

export const imagesRemoveCommand: Command = {
  summary: 'remove an image from the catalog',
  usage: `usage: podboot images remove NAME@VERSION [--catalog DIR]

Removes the entry and every blob no other entry shares.
${CATALOG_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: CATALOG_OPTION, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('expected exactly one NAME@VERSION');
    const ref = parseRef(positionals[0], false);
    const catalog = await openCatalog(values.catalog);
    try {
      const e = catalog.remove(ref.name, ref.version!);
      process.stdout.write(`removed ${e.name}@${e.version} (sha256 ${e.image})\n`);
      return EXIT_OK;
    } catch (err) {
      if (err instanceof (await catalogModule()).CatalogError) {
        process.stderr.write(`podboot images remove: ${err.message}\n`);
        return EXIT_FAILURE;
      }
      throw err;
    } finally {
      catalog.close();
    }
  },
};

export const imagesOnboardCommand: Command = {
  summary: 'hand each pod the verified stage2 image its pod file names, and nothing else',
  usage: `usage: podboot images onboard --pods DIR --ca ROOT.pem [--crl FILE]... [--catalog DIR] [--state DIR]

Selective onboarding: for every pod file in DIR with spec.stage2 {image, version},
verifies that catalog entry again for that pod (chain, revocation, manifest pod
allow-list) and places it in STATE/<pod>/images/<image>@<version>/ (image,
image.p7s, manifest.json, manifest.json.p7s): a copy of its own, never a hard
link (reflinked where the file system can), each file hashed again. Pods
without spec.stage2 get nothing. Earlier versions stay for rollback. Exit 1 if
any pod's image is missing or refused; the other pods are still served.

  --pods DIR      pod files
  --ca ROOT.pem   root CA the images must chain to
  --crl FILE      CRL (repeatable)
  --state DIR     state root (${STATE_DEFAULT_HELP})
${CATALOG_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...CATALOG_OPTION, pods: { type: 'string' }, ca: { type: 'string' }, crl: { type: 'string', multiple: true }, state: { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.pods || !values.ca) throw new UsageError('--pods and --ca are required');
    const [{ loadPodDir }, { formatProblem }, { join }, { placeCopy }] = await Promise.all([
      import('../../config/load.js'),
      import('../../config/types.js'),
      import('node:path'),
      import('../../catalog/pod-copy.js'),
    ]);
    const { pods, problems } = loadPodDir(values.pods);
    if (problems.length) {
      for (const p of problems) process.stderr.write(formatProblem(p) + '\n');
      return EXIT_FAILURE;
    }
    const rootCa = await readCapped(values.ca, LIMITS.rootCa, 'root CA');
    const crl = await Promise.all((values.crl ?? []).map((f) => readCapped(f, LIMITS.crl, 'CRL')));
    const catalog = await openCatalog(values.catalog);
    let failed = 0;
    try {
      for (const pod of pods) {
        if (!pod.stage2) {
          process.stdout.write(`${pod.name}: no stage2 assigned\n`);
          continue;
        }
        const ref = `${pod.stage2.image}@${pod.stage2.version}`;
        try {
          const got = await catalog.resolveForPod({ pod: pod.name, name: pod.stage2.image, version: pod.stage2.version, rootCa, crl });
          const entry = catalog.get(pod.stage2.image, pod.stage2.version)!;
          // A copy (reflinked where the file system can), each file re-hashed: never a hard link to the catalog's blob (src/catalog/pod-copy.ts).
          const { dir: to } = await placeCopy({
            entry,
            blobPath: (h) => catalog.blobPath(h),
            imagesDir: join(values.state ?? defaultStateRoot(), pod.name, 'images'),
            log: catalog.log.child({ pod: pod.name }),
          });
          process.stdout.write(`${pod.name}: ${ref} sha256 ${got.sha256} -> ${to}\n`);
        } catch (err) {
          failed++;
          const check = err instanceof VerificationError ? ` (${err.check})` : '';
          process.stdout.write(`${pod.name}: ${ref} refused${check}: ${(err as Error).message}\n`);
        }
      }
    } finally {
      catalog.close();
    }
    return failed ? EXIT_FAILURE : EXIT_OK;
  },
};
