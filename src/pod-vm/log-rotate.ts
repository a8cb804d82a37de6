// Keeps each instance's log file bounded. The instance holds the file open
// (O_APPEND, set up by the supervisor) for its whole life, so the file is
// rotated by copy and truncate: the copy becomes instance.log.1, and the
// instance's next line lands at the start of the emptied file. Lines written
// between the copy and the truncate are lost; that window is one copy long.
import { copyFile, stat, truncate } from 'node:fs/promises';

/** Rotates `file` to `file.1` when it is larger than maxBytes; true when it did. */
export async function rotateIfLarger(file: string, maxBytes: number): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  await copyFile(file, `${file}.1`);
  await truncate(file, 0);
  return true;
}
