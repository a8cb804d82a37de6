// Runs in a worker thread with its own connection: copies the WAL back into
// the database and fsyncs it there, so the event loop that answers DHCP never
// waits for the disk. (In-thread auto-checkpoints stalled replies 90-300 ms.)
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file);
db.pragma('busy_timeout = 5000');
const passive = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort?.postMessage({ error: (err as Error).message });
  }
};
const timer = setInterval(passive, intervalMs);
parentPort?.on('message', (msg: string) => {
  if (msg !== 'stop') return;
  clearInterval(timer);
  passive();
  db.close();
  parentPort?.postMessage({ stopped: true });
});
