import type Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * Moves WAL checkpoints off the main thread. Falls back to SQLite's own
 * in-thread auto-checkpoint when the compiled worker is not there (running
 * from TypeScript sources under the test runner).
 */
export function startCheckpointer(db: Database.Database, log: Logger, intervalMs = 1000): Checkpointer {
  const script = fileURLToPath(new URL('./checkpoint-worker.js', import.meta.url));
  if (!existsSync(script) || db.memory) return { stop: async () => undefined };
  db.pragma('wal_autocheckpoint = 0');
  const worker = new Worker(script, { workerData: { file: db.name, intervalMs } });
  worker.unref();
  worker.on('message', (m: { error?: string }) => {
    if (m.error) log.warn({ err: m.error }, 'WAL checkpoint failed; will retry');
  });
  worker.on('error', (err) => {
    log.error({ err }, 'checkpoint worker died; falling back to in-thread checkpoints');
    db.pragma('wal_autocheckpoint = 1000');
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => resolve();
        worker.once('exit', done);
        worker.once('message', (m: { stopped?: boolean }) => {
          if (m.stopped) void worker.terminate();
        });
        worker.postMessage('stop');
        setTimeout(() => void worker.terminate(), 5000).unref();
      }),
  };
}
