// Pods run as their own users and own their state directory; the central node
// reads it as root. Whatever SQLite creates beside a pod's database while root
// reads it (the WAL and its index, when the pod is not running) stays the
// pod's, or the pod could not write its own database at its next start.
import { chownSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openPodDatabase, podDatabaseFile } from '../../../src/store/database.js';
import { openPodState } from '../../../src/store/pod-state.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';

const NOBODY = 65534;
const root = process.getuid?.() === 0;

describe.skipIf(!root)('pod state read by root', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-podstate-owner-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([true, false])('readonly %s: the files SQLite creates belong to the pod', (readonly) => {
    const db = openPodDatabase(dir);
    new SqliteNodeStateStore(db).changeInstallState({ mac: '52:54:00:00:0e:01', state: 'installed', time: 1 });
    db.close();
    const file = podDatabaseFile(dir);
    chownSync(dir, NOBODY, NOBODY);
    chownSync(file, NOBODY, NOBODY);
    const s = readonly ? openPodState(dir, { readonly: true })! : openPodState(dir, { readonly: false })!;
    expect(s.nodes()).toHaveLength(1);
    for (const f of [`${file}-wal`, `${file}-shm`]) {
      const st = lstatSync(f, { throwIfNoEntry: false });
      if (st) expect([f, st.uid, st.gid]).toEqual([f, NOBODY, NOBODY]);
    }
    s.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      const st = lstatSync(f, { throwIfNoEntry: false });
      if (st) expect([f, st.uid]).toEqual([f, NOBODY]);
    }
  });
});
