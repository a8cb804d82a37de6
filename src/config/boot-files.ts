// Boot file names and URLs (spec.boot.files, spec.nodes[].boot).
import { BOOT_FILE_KINDS, BOOT_FILES_SHAPE, fieldsOf } from './pod-shape.js';
import { BOOT_FILE_PLACEHOLDERS, type BootFiles } from './types.js';
import type { Section } from './yaml-reader.js';

const BOOT_FILE_FIELDS = fieldsOf(BOOT_FILES_SHAPE);

/** The boot files given under `parent.key`; absent kinds are left out (the caller applies defaults). */
export function readBootFiles(parent: Section, key: string): Partial<BootFiles> | undefined {
  const section = parent.section(key, BOOT_FILE_FIELDS);
  if (!section) return undefined;
  const files: Partial<BootFiles> = {};
  for (const kind of BOOT_FILE_KINDS) {
    const value = section.string(kind);
    if (value === undefined) continue;
    const problem = bootFileProblem(kind, value);
    if (problem) section.report(kind, problem);
    else files[kind] = value;
  }
  return files;
}

function bootFileProblem(kind: keyof BootFiles, value: string): string | undefined {
  if (value.trim() === '') return 'boot file is empty';
  if (/\s/.test(value)) return `${JSON.stringify(value)} contains white space`;
  for (const m of value.matchAll(/\{([^}]*)\}/g)) {
    if (!(BOOT_FILE_PLACEHOLDERS as readonly string[]).includes(m[1]!)) {
      return `unknown placeholder {${m[1]}} (known: ${BOOT_FILE_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`;
    }
  }
  // UEFI HTTP boot firmware takes a URL in option 67, never a TFTP file name.
  if (kind === 'httpBoot' && !/^https?:\/\//.test(value)) return `${value} is not an http:// or https:// URL`;
  return undefined;
}
