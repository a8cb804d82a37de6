import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/**
 * The line of a log file that says why its writer exited (at most 8 KiB read,
 * nothing before `from`, where this run of the child began).
 */
export function exitLogLine(file: string, from: number): string | undefined {
  let fd: number | undefined;
  try {
    // Never through a symlink: the log sits in the pod's own directory (the node reads as root).
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const size = fstatSync(fd).size;
    // Rotated (copied and truncated) since the child started: all of it is this run's.
    if (size < from) from = 0;
    const len = Math.min(size - from, 8192);
    if (len <= 0) return undefined;
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    // A read that starts mid-file starts mid-line: that fragment is not a line.
    if (len < size - from) lines.shift();
    const whole = lines.filter((l) => l.trim());
    // The line that says why: an instance logs its shutdown after the error that
    // caused it, and pino and stderr may reach the file in either order.
    const why = whole.findLast((l) => isErrorLine(l)) ?? whole.at(-1);
    return why?.slice(0, 500);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A plain stderr line (not JSON) or a JSON log line at error level or above. */
function isErrorLine(line: string): boolean {
  if (!line.startsWith('{')) return true;
  return /"level":(?:"(?:error|fatal)"|[5-9]\d\b)/.test(line);
}
