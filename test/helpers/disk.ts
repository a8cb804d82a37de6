// A VM's disk as the tests look at it.
import { closeSync, openSync, readSync } from 'node:fs';

/** Every byte of the file is zero: nothing was ever written to the disk. */
export function allZero(path: string): boolean {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return true;
      for (let i = 0; i < n; i++) if (buf[i] !== 0) return false;
    }
  } finally {
    closeSync(fd);
  }
}
