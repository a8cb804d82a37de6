// The WAL checkpoint worker runs only while there is something to copy: an
// idle pod carries no extra V8 isolate. Uses the compiled worker (npm test
// builds first), a real database file and real writes.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../../src/store/checkpointer.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { captureLogger } from '../../helpers/logs.js';
import { requireBuild } from '../../helpers/netns.js';

const WORKER = new URL('../../../dist/src/store/checkpoint-worker.js', import.meta.url).pathname;

async function until(what: string, fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('WAL checkpointer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-ckpt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts a worker on writes, copies the WAL into the database, and leaves when it stays quiet', async () => {
    requireBuild();
    const db = openPodDatabase(join(dir, 'a'));
    db.exec('CREATE TABLE blob (id INTEGER PRIMARY KEY, data BLOB)');
    const { log, lines } = captureLogger();
    const ckpt = startCheckpointer(db, log, { intervalMs: 30, idleRounds: 3, script: WORKER });
    // Nothing written since the start: no worker.
    await new Promise((r) => setTimeout(r, 200));
    expect(ckpt.active).toBe(false);
    const mainSize = () => statSync(db.name).size;
    const before = mainSize();

    const insert = db.prepare('INSERT INTO blob (data) VALUES (?)');
    for (let i = 0; i < 64; i++) insert.run(Buffer.alloc(16 * 1024, i));
    // With auto-checkpoint off only a checkpoint grows the database file.
    await until('a worker', () => ckpt.active);
    await until('the rows copied into the database file', () => mainSize() >= before + 64 * 16 * 1024);
    await until('the worker gone once quiet', () => !ckpt.active);

    // The next write brings a worker back.
    insert.run(Buffer.alloc(1024));
    await until('a worker again', () => ckpt.active);
    await ckpt.stop();
    expect(ckpt.active).toBe(false);
    db.close();
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

    const again = new Database(db.name, { readonly: true });
    expect((again.prepare('SELECT count(*) AS n FROM blob').get() as { n: number }).n).toBe(65);
    again.close();
  }, 30_000);

  it('copies back a WAL left by a killed run before serving', () => {
    const file = join(dir, 'b');
    const db = openPodDatabase(file);
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (x)');
    db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(256 * 1024));
    const wal = `${db.name}-wal`;
    expect(statSync(wal).size).toBeGreaterThan(256 * 1024);
    const { log } = captureLogger();
    const ckpt = startCheckpointer(db, log, { intervalMs: 1000, script: WORKER });
    // Truncated on this thread at start: nothing for a worker to do yet.
    expect(statSync(wal).size).toBe(0);
    expect(statSync(db.name).size).toBeGreaterThan(256 * 1024);
    expect(ckpt.active).toBe(false);
    void ckpt.stop();
    db.close();
  });
});
