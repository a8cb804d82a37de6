// What is wrong with a pod's cached image copy (STATE/<pod>/images/<ref>/),
// given what was read from it and what the catalog recorded when it admitted
// the image; what the check reports; its exit code. Pure: the reading, moving
// and copying are in pod-cache.ts and pod-copy.ts.
import { IMAGE_NAME_RE, IMAGE_VERSION_RE } from '../signing/manifest.js';
import type { CatalogEntry } from './index-db.js';

/** The four files of a pod's copy, by the catalog entry field holding each one's sha256. */
export const COPY_FILES = { image: 'image', signature: 'image.p7s', manifest: 'manifest.json', manifestSignature: 'manifest.json.p7s' } as const;
export type CopyRole = keyof typeof COPY_FILES;
export const COPY_ROLES = Object.keys(COPY_FILES) as CopyRole[];

/** One file of a copy as the check found it. */
export type ObservedFile =
  | { kind: 'file'; sha256: string; size: number; bytes?: Buffer }
  | { kind: 'missing' }
  /** a symlink, FIFO, device, directory: never opened through, never read */
  | { kind: 'not-regular'; what: string }
  | { kind: 'unreadable'; error: string };

export type ObservedCopy = Record<CopyRole, ObservedFile>;

/** 'corrupt': found bad and left in place (no repair asked for). */
export type CacheStatus = 'ok' | 'corrupt' | 'repaired' | 'unrepairable';

export interface CacheCheckResult {
  pod: string;
  /** name@version, the copy's directory name */
  ref: string;
  status: CacheStatus;
  /** what was wrong, and what was done about it */
  detail?: string;
  /** where a bad copy was moved, relative to STATE/<pod>/images */
  quarantined?: string;
}

/** `name@version` → its parts, by the manifest's own rules; undefined for anything else. */
export function parseCopyRef(dirName: string): { name: string; version: string } | undefined {
  const at = dirName.lastIndexOf('@');
  if (at <= 0) return undefined;
  const name = dirName.slice(0, at);
  const version = dirName.slice(at + 1);
  return IMAGE_NAME_RE.test(name) && IMAGE_VERSION_RE.test(version) ? { name, version } : undefined;
}

/** What the unsigned manifest.json of a copy claims; used only where the catalog has no entry to compare with. */
function manifestClaims(bytes: Buffer | undefined): { name?: unknown; version?: unknown; sha256?: unknown; size?: unknown } | undefined {
  if (!bytes) return undefined;
  try {
    const m = JSON.parse(bytes.toString('utf8')) as unknown;
    return m && typeof m === 'object' ? (m as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function fileProblem(name: string, f: ObservedFile): string | undefined {
  if (f.kind === 'missing') return `${name} is missing`;
  if (f.kind === 'not-regular') return `${name} is ${f.what}, not a regular file (not followed, not read)`;
  if (f.kind === 'unreadable') return `${name} cannot be read: ${f.error}`;
  return undefined;
}

/**
 * Everything wrong with a copy, empty when it is good. With the catalog
 * entry every file must hash to the digest recorded at admission (the
 * manifest's digest is the signed manifest's, so the image's sha256 and size
 * it gives are trusted); without one, only the image against its
 * manifest.json, and the caller says the small files went unchecked.
 */
export function copyProblems(ref: { name: string; version: string }, seen: ObservedCopy, entry: CatalogEntry | undefined): string[] {
  const problems: string[] = [];
  for (const role of COPY_ROLES) {
    const p = fileProblem(COPY_FILES[role], seen[role]);
    if (p) problems.push(p);
  }
  if (entry) {
    for (const role of COPY_ROLES) {
      const f = seen[role];
      if (f.kind !== 'file') continue;
      if (role === 'image' && f.size !== entry.size) problems.push(`image is ${f.size} bytes, the catalog says ${entry.size}`);
      else if (f.sha256 !== entry[role]) problems.push(`${COPY_FILES[role]} has sha256 ${f.sha256}, the catalog says ${entry[role]}`);
    }
    return problems;
  }
  const m = seen.manifest.kind === 'file' ? manifestClaims(seen.manifest.bytes) : undefined;
  if (seen.manifest.kind === 'file' && (!m || typeof m.sha256 !== 'string' || typeof m.size !== 'number')) {
    problems.push('manifest.json is not a manifest (no sha256 and size)');
    return problems;
  }
  if (m && (m.name !== ref.name || m.version !== ref.version)) problems.push(`manifest.json names ${String(m.name)}@${String(m.version)}, not ${ref.name}@${ref.version}`);
  const img = seen.image;
  if (m && img.kind === 'file') {
    if (img.size !== m.size) problems.push(`image is ${img.size} bytes, manifest.json says ${String(m.size)}`);
    else if (img.sha256 !== m.sha256) problems.push(`image has sha256 ${img.sha256}, manifest.json says ${String(m.sha256)}`);
  }
  return problems;
}

/** Where a bad copy goes: `.quarantine/<ref>.<UTC time>`, a name no pod serves and two checks never share. */
export const QUARANTINE_DIR = '.quarantine';
export function quarantineName(ref: string, now: Date): string {
  return `${QUARANTINE_DIR}/${ref}.${now.toISOString().replace(/[:.]/g, '-')}`;
}

/** The ref a quarantined copy was, from its name; undefined for anything else there. */
export function quarantinedRef(name: string): string | undefined {
  const m = /^(.+)\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/.exec(name);
  return m && parseCopyRef(m[1]!) ? m[1] : undefined;
}

/** 0: every copy checked is good (as found, or placed again); 1: one is bad, or could not be replaced. */
export function checkExitCode(results: readonly CacheCheckResult[]): 0 | 1 {
  return results.every((r) => r.status === 'ok' || r.status === 'repaired') ? 0 : 1;
}

/** The pod-level event (its database's events, no MAC) recording what the check did; none for a good copy. */
export function cacheEvent(r: CacheCheckResult): { kind: string; detail: string } | undefined {
  if (r.status === 'ok') return undefined;
  return { kind: `image-${r.status}`, detail: `${r.ref}: ${r.detail ?? r.status}` };
}

/** One line per copy for `podboot images check`. */
export function formatResult(r: CacheCheckResult): string {
  return `${r.pod}: ${r.ref} ${r.status}${r.detail ? `: ${r.detail}` : ''}`;
}
