// Where big image builds are cached: outside any checkout, so a fresh clone
// (CI's among them) on a machine that built before reuses the result.
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_IMAGE_CACHE = process.getuid?.() === 0 ? '/var/cache/podboot' : join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'podboot');
