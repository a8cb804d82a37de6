// A stage2 image named by catalog name and version: the pod's (spec.stage2)
// and a server's pin (spec.nodes[].stage2) are read by the same rules.
import { IMAGE_NAME_RE, IMAGE_VERSION_RE } from '../signing/manifest.js';
import { fieldsOf, STAGE2_SHAPE } from './pod-shape.js';
import type { Section } from './yaml-reader.js';

export interface Stage2Ref {
  image: string;
  version: string;
}

const STAGE2_FIELDS = fieldsOf(STAGE2_SHAPE);

/** `name@version`, the form the CLI, the pod's image directories and its records use. */
export function formatStage2Ref(ref: Stage2Ref): string {
  return `${ref.image}@${ref.version}`;
}

/** `name@version` back to its parts; undefined when either part breaks the manifest's rules. */
export function parseStage2Ref(text: string): Stage2Ref | undefined {
  const at = text.lastIndexOf('@');
  if (at <= 0) return undefined;
  const ref = { image: text.slice(0, at), version: text.slice(at + 1) };
  return IMAGE_NAME_RE.test(ref.image) && IMAGE_VERSION_RE.test(ref.version) ? ref : undefined;
}

export function readStage2Ref(parent: Section, key: string): Stage2Ref | undefined {
  const s = parent.section(key, STAGE2_FIELDS);
  if (!s) return undefined;
  const image = s.string('image');
  const version = s.string('version');
  // The same rules `podboot sign` applies to a manifest's name and version.
  const okImage = image !== undefined && IMAGE_NAME_RE.test(image);
  const okVersion = version !== undefined && IMAGE_VERSION_RE.test(version);
  if (image !== undefined && !okImage) s.report('image', `${JSON.stringify(image)} is not a valid image name`);
  if (version !== undefined && !okVersion) s.report('version', `${JSON.stringify(version)} is not a valid image version`);
  return okImage && okVersion ? { image: image!, version: version! } : undefined;
}
