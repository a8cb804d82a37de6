// Keeps each instance's log file bounded. The instance holds the file open
// (O_APPEND, set up by the supervisor) for its whole life, so the file is
// rotated by copy and truncate: the copy becomes instance.log.1, and the
// instance's next line lands at the start of the emptied file. Lines written
// between the copy and the truncate are lost; that window is one copy long.
//
// The file sits in the pod's own directory and the node runs as root: a
// symlink planted in its place is never followed (lstat, O_NOFOLLOW), and the
// truncate goes through the descriptor that was checked.
import { constants } from 'node:fs';
import { lstat, open, rm } from 'node:fs/promises';

/** Rotates `file` to `file.1` when it is larger than maxBytes; true when it did. */
export async function rotateIfLarger(file: string, maxBytes: number): Promise<boolean> {
  let size: number;
  try {
    const st = await lstat(file);
    if (!st.isFile()) return false;
    size = st.size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  const src = await open(file, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    const copy = `${file}.1`;
    await rm(copy, { force: true });
    const dst = await open(copy, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
    try {
      const buf = Buffer.alloc(1024 * 1024);
      for (let pos = 0; ; ) {
        const { bytesRead } = await src.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        await dst.write(buf, 0, bytesRead);
        pos += bytesRead;
      }
    } finally {
      await dst.close();
    }
    await src.truncate(0);
  } finally {
    await src.close();
  }
  return true;
}
