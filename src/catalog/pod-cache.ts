// The central node's check of the image copies cached in each pod's state
// (STATE/<pod>/images/<name>@<version>/), I3's last hop: every file hashed
// again against the digests the catalog recorded at admission. A bad copy is
// moved aside at once (so the pod stops serving it), placed again from the
// catalog after the catalog's own blob is verified again, and the pod's
// database gets an event saying so. If the catalog's blob is bad too, the pod
// is left without that version: no bytes at all rather than bad bytes.
//
// What is wrong with a copy is decided in cache-verdict.ts (pure); this
// module reads, moves and records.
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { LIMITS } from '../signing/index.js';
import { POD_NAME_RE } from '../signing/manifest.js';
import { openPodState } from '../store/pod-state.js';
import { type CacheCheckResult, cacheEvent, COPY_FILES, COPY_ROLES, copyProblems, type ObservedCopy, parseCopyRef, QUARANTINE_DIR, quarantinedRef, quarantineName } from './cache-verdict.js';
import type { Catalog } from './catalog.js';
import { observeFile, PLACING_PREFIX, placeCopy } from './pod-copy.js';

export type { CacheCheckResult, CacheStatus } from './cache-verdict.js';

export interface CheckPodImagesOptions {
  /** the state root: the pod's copies are in STATE/<pod>/images */
  stateRoot: string;
  pod: string;
  catalog: Catalog;
  /** root CA the catalog's blob must still chain to before it is copied again */
  rootCa: Buffer;
  crl?: Buffer[];
  /** name@version of the copies to check (one missing is placed); default: every copy the pod has */
  refs?: readonly string[];
  /** false: only report ('corrupt'), move and write nothing; default true */
  repair?: boolean;
  log: Logger;
  now?: () => Date;
}

const STALE_PLACING_MS = 3_600_000;

// One check per pod at a time in this process (a scheduled one and one before a rollout).
const running = new Map<string, Promise<unknown>>();

/**
 * Checks, and unless `repair: false` repairs, a pod's cached image copies.
 * One result per copy, in name order; a pod with no images directory has none.
 */
export async function checkPodImages(o: CheckPodImagesOptions): Promise<CacheCheckResult[]> {
  if (!POD_NAME_RE.test(o.pod)) throw new Error(`not a pod name: ${JSON.stringify(o.pod)}`);
  const key = join(o.stateRoot, o.pod);
  const before = running.get(key) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(() => checkOnePod(o));
  running.set(key, mine);
  try {
    return await mine;
  } finally {
    if (running.get(key) === mine) running.delete(key);
  }
}

/** Every pod under the state root that has an images directory, checked one after the other. */
export async function checkAllPodImages(o: Omit<CheckPodImagesOptions, 'pod' | 'refs'>): Promise<CacheCheckResult[]> {
  const results: CacheCheckResult[] = [];
  for (const pod of await podsWithImages(o.stateRoot)) results.push(...(await checkPodImages({ ...o, pod })));
  return results;
}

export async function podsWithImages(stateRoot: string): Promise<string[]> {
  const names = await readdir(stateRoot).catch(() => [] as string[]);
  const pods: string[] = [];
  for (const name of names.sort()) {
    if (!POD_NAME_RE.test(name)) continue;
    const st = await lstat(join(stateRoot, name, 'images')).catch(() => undefined);
    if (st?.isDirectory()) pods.push(name);
  }
  return pods;
}

async function checkOnePod(o: CheckPodImagesOptions): Promise<CacheCheckResult[]> {
  const imagesDir = join(o.stateRoot, o.pod, 'images');
  const log = o.log.child({ pod: o.pod });
  if (o.repair !== false) await removeStalePlacing(imagesDir, log);
  const refs = o.refs ? [...new Set(o.refs)].sort() : await cachedRefs(imagesDir);
  const results: CacheCheckResult[] = [];
  for (const ref of refs) {
    const r = await checkCopy(o, imagesDir, ref, log);
    results.push(r);
    if (r.status !== 'ok') recordEvent(o, r, log);
  }
  log.info({ checked: results.length, bad: results.filter((r) => r.status !== 'ok').length }, 'cached images checked');
  return results;
}

/**
 * The copies a pod has, and the versions a check took out of service and
 * could not place again: those are tried again at every check (a catalog
 * blob pulled again repairs them) until the quarantined copy is deleted.
 * Names starting with a dot are the check's and onboarding's own.
 */
async function cachedRefs(imagesDir: string): Promise<string[]> {
  const present = (await readdir(imagesDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
  const aside = (await readdir(join(imagesDir, QUARANTINE_DIR)).catch(() => [] as string[])).map(quarantinedRef).filter((r): r is string => r !== undefined);
  return [...new Set([...present, ...aside])].sort();
}

/** Copies being placed when a process died (an hour is far longer than placing any image takes). */
async function removeStalePlacing(imagesDir: string, log: Logger): Promise<void> {
  for (const name of await readdir(imagesDir).catch(() => [] as string[])) {
    if (!name.startsWith(PLACING_PREFIX)) continue;
    const st = await lstat(join(imagesDir, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_PLACING_MS) {
      await rm(join(imagesDir, name), { recursive: true, force: true });
      log.info({ path: join(imagesDir, name) }, 'removed a copy left half-placed');
    }
  }
}

async function observeCopy(dir: string): Promise<ObservedCopy> {
  const seen = {} as ObservedCopy;
  for (const role of COPY_ROLES) seen[role] = await observeFile(join(dir, COPY_FILES[role]), role === 'manifest' ? LIMITS.manifest : 0);
  return seen;
}

async function checkCopy(o: CheckPodImagesOptions, imagesDir: string, ref: string, log: Logger): Promise<CacheCheckResult> {
  const base = { pod: o.pod, ref };
  const parsed = parseCopyRef(ref);
  if (!parsed) return { ...base, status: 'unrepairable', detail: `${join(imagesDir, ref)} is not named NAME@VERSION; left alone` };
  const entry = o.catalog.get(parsed.name, parsed.version);
  const dir = join(imagesDir, ref);
  const st = await lstat(dir).catch(() => undefined);
  let problems: string[];
  if (!st) problems = ['the pod has no copy'];
  else if (!st.isDirectory()) problems = [`${ref} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'} (not followed)`];
  else problems = copyProblems(parsed, await observeCopy(dir), entry);

  if (problems.length === 0) {
    return entry ? { ...base, status: 'ok' } : { ...base, status: 'ok', detail: 'not in the catalog: image matches its manifest.json; the other files were not compared' };
  }
  const what = problems.join('; ');
  log.warn({ image: ref, problems }, 'cached image copy is bad');
  if (o.repair === false) return { ...base, status: 'corrupt', detail: what };

  let quarantined: string | undefined;
  if (st) {
    // Out of service first: from here on the pod finds no copy rather than a bad one.
    quarantined = quarantineName(ref, (o.now ?? (() => new Date()))());
    try {
      await mkdir(join(imagesDir, QUARANTINE_DIR), { recursive: true, mode: 0o700 });
      await rename(dir, join(imagesDir, quarantined));
    } catch (err) {
      log.error({ image: ref, err: (err as Error).message }, 'bad image copy could not be moved aside');
      return { ...base, status: 'unrepairable', detail: `${what}; could not be moved aside: ${(err as Error).message}` };
    }
    log.warn({ image: ref, to: join(imagesDir, quarantined) }, 'bad image copy taken out of service');
  }
  const aside = quarantined ? `; moved to ${quarantined}` : '';
  const q = quarantined ? { quarantined } : {};
  if (!entry) {
    return { ...base, status: 'unrepairable', detail: `${what}${aside}; not in the catalog, so not placed again: the pod has no ${ref}`, ...q };
  }
  try {
    // The catalog's blob is verified again (chain, revocation, the pod's allow-list, the image re-hashed) before it is copied.
    await o.catalog.resolveForPod({ pod: o.pod, name: parsed.name, version: parsed.version, rootCa: o.rootCa, crl: o.crl ?? [], rehash: true });
    await placeCopy({ entry, blobPath: (h) => o.catalog.blobPath(h), imagesDir, log });
  } catch (err) {
    const check = (err as { check?: string }).check;
    const why = `${check ? `[${check}] ` : ''}${(err as Error).message}`;
    log.error({ image: ref, err: why }, 'cached image copy could not be placed again: the catalog copy is refused');
    return { ...base, status: 'unrepairable', detail: `${what}${aside}; the catalog's copy is refused too (${why}): the pod has no ${ref} until it is pulled again`, ...q };
  }
  log.warn({ image: ref, sha256: entry.image }, 'cached image copy placed again from the catalog');
  return { ...base, status: 'repaired', detail: `${what}${aside}; placed again from the catalog (sha256 ${entry.image})`, ...q };
}

/** The pod's own record of what the check did: an event with no MAC (the pod's, not a server's). */
function recordEvent(o: CheckPodImagesOptions, r: CacheCheckResult, log: Logger): void {
  const event = cacheEvent(r);
  if (!event || o.repair === false) return;
  try {
    const s = openPodState(join(o.stateRoot, o.pod), { readonly: false });
    if (!s) {
      log.warn({ image: r.ref, event: event.kind }, 'pod has no database yet: the image event is only in this log');
      return;
    }
    try {
      s.addEvent({ time: Math.floor(Date.now() / 1000), mac: '', ...event });
    } finally {
      s.close();
    }
  } catch (err) {
    log.error({ image: r.ref, event: event.kind, err: (err as Error).message }, 'image event could not be written to the pod database');
  }
}
