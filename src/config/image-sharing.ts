// spec.imageSharing: rack peers share the verified chunks of a streamed stage2
// image so the WAN carries about one copy per rack (src/share/). On unless
// switched off; the port and how much a server keeps to serve can be set.
import { isScalar } from 'yaml';
import { DEFAULT_SHARING, type SharingConfig } from '../share/service.js';
import { parseMemory } from './limits.js';
import { boundsOf, fieldsOf, IMAGE_SHARING_SHAPE } from './pod-shape.js';
import { found, type Section } from './yaml-reader.js';

const FIELDS = fieldsOf(IMAGE_SHARING_SHAPE);
/** Below two 16 MiB chunks a server could not serve the chunk after the one it is writing. */
const MIN_KEEP = 32 * 1024 * 1024;
const MAX_KEEP = 64 * 1024 ** 3;

/** undefined when the section is absent: the pod runs with DEFAULT_SHARING. */
export function readImageSharing(spec: Section): SharingConfig | undefined {
  const s = spec.section('imageSharing', FIELDS);
  if (!s) return undefined;
  const out = { ...DEFAULT_SHARING };
  const peers = s.boolean('peers');
  if (peers !== undefined) out.enabled = peers;
  const port = s.node('port') === undefined ? undefined : s.integer('port', ...boundsOf(IMAGE_SHARING_SHAPE, 'port'));
  if (port !== undefined) out.port = port;
  const keep = s.node('keep');
  if (keep !== undefined) {
    const bytes = isScalar(keep) ? parseMemory(keep.value) : undefined;
    if (bytes === undefined) s.report('keep', `expected a size such as 128Mi or a number of bytes, found ${found(keep)}`);
    else if (bytes < MIN_KEEP || bytes > MAX_KEEP) s.report('keep', `${bytes} bytes is outside 32Mi..64Gi`);
    else out.keepBytes = bytes;
  }
  return out;
}
