// Runs in a worker thread with its own connection: copies the WAL back into
// the database and fsyncs it there, so the event loop that answers DHCP never
// waits for the disk. (In-thread auto-checkpoints stalled replies 90-300 ms.)
// Exits once the WAL has stayed fully copied for idleRounds rounds; the main
// thread starts a new worker when the WAL changes again.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { file, intervalMs, idleRounds } = workerData as { file: string; intervalMs: number; idleRounds: number };
const db = new Database(file);
db.pragma('busy_timeout = 5000');
let quiet = 0;

/** Copies what it can; true when nothing was left to copy. */
const passive = (): boolean => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    return r !== undefined && r.busy === 0 && r.log === r.checkpointed;
  } catch (err) {
    parentPort?.postMessage({ error: (err as Error).message });
    return false;
  }
};

const timer = setInterval(() => {
  quiet = passive() ? quiet + 1 : 0;
  if (quiet < idleRounds) return;
  clearInterval(timer);
  db.close();
  parentPort?.postMessage({ idle: true });
  parentPort?.close();
}, intervalMs);

parentPort?.on('message', (msg: string) => {
  if (msg !== 'stop') return;
  clearInterval(timer);
  passive();
  db.close();
  parentPort?.postMessage({ stopped: true });
});
