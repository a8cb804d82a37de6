// The stage2 images a pod holds, side by side under <state>/images/<name>@<version>
// (placed by `podboot images onboard`, a rollout's start or the central image
// check): each loaded when first asked for and again whenever its copy is
// replaced, so a repaired or newly placed copy is served at the next request.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadStage2, type Stage2Set } from '../http-boot/stage2-files.js';

/**
 * Which copy a stage2 directory holds: its files' inodes and the manifest's
 * mtime. A copy placed again is a new directory of new files, so this
 * changes; undefined without a manifest.
 */
function copyIdentity(dir: string): string | undefined {
  const manifest = statSync(join(dir, 'manifest.json'), { throwIfNoEntry: false });
  const image = statSync(join(dir, 'image'), { throwIfNoEntry: false });
  return manifest && `${manifest.ino}:${manifest.mtimeMs}:${image?.ino}:${image?.size}`;
}

interface Slot {
  copy?: string;
  set?: Stage2Set;
  lastError?: string;
}

/** `name@version` as the directory is named; nothing else is looked up (no `..`, no `/`). */
const REF_RE = /^[A-Za-z0-9._-]+@[A-Za-z0-9._+-]+$/;

export class Stage2Library {
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly imagesDir: string,
    private readonly log: Logger,
  ) {}

  /** The image `ref` (name@version) if the pod holds a usable copy of it. Two stats per call. */
  get(ref: string): Stage2Set | undefined {
    if (!REF_RE.test(ref) || ref.startsWith('.')) return undefined;
    const dir = join(this.imagesDir, ref);
    const slot = this.slots.get(ref) ?? {};
    this.slots.set(ref, slot);
    const copy = copyIdentity(dir);
    if (slot.set && copy === slot.copy) return slot.set;
    slot.set = undefined;
    if (copy === undefined) return undefined;
    try {
      const set = loadStage2(dir);
      // The directory's name is what servers are assigned by: a copy whose signed manifest names another version is not that version.
      if (`${set.name}@${set.version}` !== ref) throw new Error(`${dir}: its manifest names ${set.name}@${set.version}`);
      slot.set = set;
      slot.copy = copy;
      this.log.info({ image: slot.set.name, version: slot.set.version, sha256: slot.set.sha256 }, 'stage2 ready to serve');
    } catch (err) {
      const msg = (err as Error).message;
      // Once per distinct problem: every agent of the pod would otherwise log it again.
      if (msg !== slot.lastError) this.log.error({ dir, err: msg }, 'stage2 copy unusable; servers get 404');
      slot.lastError = msg;
    }
    return slot.set;
  }

  /** Every version the pod holds a usable copy of, by name@version. */
  refs(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.imagesDir);
    } catch {
      return [];
    }
    return names.filter((n) => REF_RE.test(n) && !n.startsWith('.') && this.get(n) !== undefined).sort();
  }

  /** The name@version of the copy whose signed manifest has this image sha256, if the pod holds one. */
  refOf(sha256: string): string | undefined {
    return this.refs().find((ref) => this.get(ref)?.sha256 === sha256);
  }
}
