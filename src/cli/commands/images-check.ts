import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultStateRoot, STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { LIMITS, readCapped } from '../../signing/index.js';
import { POD_NAME_RE } from '../../signing/manifest.js';
import { EXIT_FAILURE, UsageError, type Command } from '../command.js';

export const imagesCheckCommand: Command = {
  summary: "hash every pod's cached image copies again; --repair replaces a bad one from the catalog",
  usage: `usage: podboot images check --ca ROOT.pem [--pod P]... [--state DIR] [--catalog DIR] [--crl FILE]... [--repair] [--json]

Hashes every copy in STATE/<pod>/images/<image>@<version>/ again (the image
streamed, against the sha256 and size the catalog recorded; the signature and
manifest files against theirs). A symlink, FIFO or other non-regular file is
refused, never followed. One line per copy: ok, corrupt, repaired or
unrepairable, with what was wrong.

With --repair a bad copy is moved to STATE/<pod>/images/.quarantine/ (the pod
stops serving it), its catalog blob verified again (chain, revocation, the
pod's allow-list, re-hashed) and copied into place; if the catalog's blob is
bad too the pod is left without that version. Each repair is an event in the
pod's database. podboot serve runs the same check on a schedule
(--image-check-interval).

Exit 0: every copy is good (with --repair: good now); 1: a copy is bad, could
not be replaced, or a --pod has no state; 2: usage.

  --ca ROOT.pem   root CA the catalog's images must chain to
  --pod P         only this pod (repeatable; default every pod with images)
  --crl FILE      CRL (repeatable)
  --state DIR     state root (${STATE_DEFAULT_HELP})
  --catalog DIR   the catalog (default $PODBOOT_CATALOG or ./catalog)
  --repair        move bad copies aside and place them again from the catalog
  --json          the results as a JSON array`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        ca: { type: 'string' },
        pod: { type: 'string', multiple: true },
        crl: { type: 'string', multiple: true },
        state: { type: 'string' },
        catalog: { type: 'string' },
        repair: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.ca) throw new UsageError('--ca ROOT.pem is required');
    for (const p of values.pod ?? []) if (!POD_NAME_RE.test(p)) throw new UsageError(`--pod ${p}: not a pod name`);
    const stateRoot = values.state ?? defaultStateRoot();
    const catalogDir = values.catalog ?? process.env.PODBOOT_CATALOG ?? 'catalog';
    // Opening a catalog creates one; an empty one would call every copy "not in the catalog".
    if (!existsSync(join(catalogDir, 'index.db'))) {
      process.stderr.write(`podboot images check: no catalog in ${catalogDir} (no index.db): give --catalog DIR\n`);
      return EXIT_FAILURE;
    }
    for (const p of values.pod ?? []) {
      if (!existsSync(join(stateRoot, p))) {
        process.stderr.write(`podboot images check: no pod ${p} in ${stateRoot}\n`);
        return EXIT_FAILURE;
      }
    }
    const rootCa = await readCapped(values.ca, LIMITS.rootCa, 'root CA');
    const crl = await Promise.all((values.crl ?? []).map((f) => readCapped(f, LIMITS.crl, `CRL file ${f}`)));
    const [{ Catalog }, { checkPodImages, podsWithImages }, { checkExitCode, formatResult }, { createLogger }] = await Promise.all([
      import('../../catalog/catalog.js'),
      import('../../catalog/pod-cache.js'),
      import('../../catalog/cache-verdict.js'),
      import('../../log.js'),
    ]);
    // JSON log lines go to stderr so stdout stays the results.
    const log = createLogger({ component: 'image-check' }, { level: process.env.PODBOOT_LOG_LEVEL ?? 'warn', destination: process.stderr });
    const catalog = await Catalog.open(catalogDir, log);
    try {
      const pods = values.pod ?? (await podsWithImages(stateRoot));
      const results = [];
      for (const pod of pods) results.push(...(await checkPodImages({ stateRoot, pod, catalog, rootCa, crl, repair: values.repair === true, log })));
      if (values.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
      else {
        for (const r of results) process.stdout.write(formatResult(r) + '\n');
        if (!results.length) process.stdout.write(`no cached images under ${stateRoot}\n`);
      }
      return checkExitCode(results);
    } finally {
      catalog.close();
    }
  },
};
