import type Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

export interface Checkpointer {
  /** a worker thread is running (it exits on its own once the WAL stays checkpointed) */
  readonly active: boolean;
  stop(): Promise<void>;
}

export interface CheckpointerOptions {
  intervalMs?: number;
  /** rounds in a row with nothing to copy after which the worker exits */
  idleRounds?: number;
  /** the compiled worker; by default next to this module */
  script?: string;
}

/**
 * Moves WAL checkpoints off the main thread. The worker thread (a V8 isolate
 * and a SQLite connection: ~9 MiB) runs only while there is something to copy:
 * the main thread notices writes by the WAL file's size and mtime, starts a
 * worker, and the worker exits after `idleRounds` quiet rounds. An idle pod
 * therefore carries no worker. Falls back to SQLite's own in-thread
 * auto-checkpoint when the compiled worker is not there (running from
 * TypeScript sources under the test runner).
 */
export function startCheckpointer(db: Database.Database, log: Logger, opts: CheckpointerOptions = {}): Checkpointer {
  const { intervalMs = 1000, idleRounds = 30 } = opts;
  const script = opts.script ?? fileURLToPath(new URL('./checkpoint-worker.js', import.meta.url));
  if (!existsSync(script) || db.memory) return { active: false, stop: async () => undefined };
  db.pragma('wal_autocheckpoint = 0');
  const walFile = `${db.name}-wal`;
  const walStamp = () => {
    try {
      const st = statSync(walFile);
      return `${st.size}:${st.mtimeMs}`;
    } catch {
      return '';
    }
  };
  let worker: Worker | undefined;
  let stopped = false;
  // A WAL left by the last run (a crash) is copied back now, on this thread:
  // the instance is not serving yet, and an empty WAL is one the watch below
  // can leave alone until the first write.
  db.pragma('wal_checkpoint(TRUNCATE)');
  // What the WAL looked like when it last had nothing left to copy.
  let quietStamp = walStamp();

  const startWorker = () => {
    const w = new Worker(script, { workerData: { file: db.name, intervalMs, idleRounds } });
    worker = w;
    w.unref();
    w.on('message', (m: { error?: string; idle?: boolean }) => {
      if (m.error) log.warn({ err: m.error }, 'WAL checkpoint failed; will retry');
      if (m.idle) quietStamp = walStamp();
    });
    w.on('error', (err) => {
      log.error({ err }, 'checkpoint worker died; falling back to in-thread checkpoints');
      stopped = true;
      clearInterval(watch);
      db.pragma('wal_autocheckpoint = 1000');
    });
    w.on('exit', () => {
      if (worker === w) worker = undefined;
    });
  };
  const watch = setInterval(() => {
    if (worker || stopped) return;
    const stamp = walStamp();
    if (stamp !== quietStamp) startWorker();
  }, intervalMs);
  watch.unref();

  return {
    get active() {
      return worker !== undefined;
    },
    stop: async () => {
      stopped = true;
      clearInterval(watch);
      const w = worker;
      if (!w) return;
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.once('message', (m: { stopped?: boolean }) => {
          if (m.stopped) void w.terminate();
        });
        w.postMessage('stop');
        setTimeout(() => void w.terminate(), 5000).unref();
      });
    },
  };
}
