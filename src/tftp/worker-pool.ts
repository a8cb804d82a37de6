// Transfers spread over worker threads. The server thread keeps the request
// socket, the checks and the resolver; each accepted transfer goes, with its
// open descriptor, to the worker running the fewest. Workers start on first
// use, so an idle pod costs no threads; one pool may serve several pods.
import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { SourceDescriptor, FileSource } from './file-source.js';
import type { TransferHandle, TransferJob, TransferRunner } from './runner.js';
import type { SessionEvents, TransferResult } from './session.js';

export type ToWorker = { type: 'start'; id: number; job: TransferJob; source: SourceDescriptor } | { type: 'repeat'; id: number } | { type: 'abort'; id: number; detail: string };

export type FromWorker = { type: 'progress'; id: number } | { type: 'end'; id: number; result: TransferResult };

interface Running {
  events: SessionEvents;
  source: SourceDescriptor;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Running>;
}

export const DEFAULT_WORKER_URL = new URL('./worker.js', import.meta.url);

export class TftpWorkerPool implements TransferRunner {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;

  /** `workerUrl`: the compiled worker.js (tests running from sources pass the built one). */
  constructor(
    readonly size: number,
    private readonly workerUrl: URL = DEFAULT_WORKER_URL,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`worker pool size must be a positive integer, not ${size}`);
  }

  /** Transfers running per worker, for metrics. */
  get load(): number[] {
    return this.slots.map((s) => s.jobs.size);
  }

  start(job: TransferJob, source: FileSource, events: SessionEvents): TransferHandle {
    const slot = this.pick();
    const id = this.nextId++;
    slot.jobs.set(id, { events, source: source.descriptor });
    slot.worker.postMessage({ type: 'start', id, job, source: source.descriptor } satisfies ToWorker);
    const post = (m: ToWorker) => {
      if (slot.jobs.has(id)) slot.worker.postMessage(m);
    };
    return { repeat: () => post({ type: 'repeat', id }), abort: (detail) => post({ type: 'abort', id, detail }) };
  }

  /** Aborts what is running (each worker closes its own descriptors), then stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.slots) for (const id of s.jobs.keys()) s.worker.postMessage({ type: 'abort', id, detail: 'server stopping' } satisfies ToWorker);
    const deadline = Date.now() + 2000;
    while (this.slots.some((s) => s.jobs.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
    for (const s of slots) this.orphan(s, 'worker pool closed');
  }

  private pick(): Slot {
    let best = this.slots[0];
    for (const s of this.slots) if (s.jobs.size < best!.jobs.size) best = s;
    if (best && (best.jobs.size === 0 || this.slots.length >= this.size)) return best;
    return this.spawn();
  }

  private spawn(): Slot {
    // Descriptors arrive already open from the server thread; the worker closes them, which Node's fd tracking would flag.
    const slot: Slot = { worker: new Worker(this.workerUrl, { trackUnmanagedFds: false }), jobs: new Map() };
    slot.worker.on('message', (m: FromWorker) => {
      const running = slot.jobs.get(m.id);
      if (!running) return;
      if (m.type === 'progress') running.events.onProgress();
      else {
        slot.jobs.delete(m.id);
        running.events.onEnd(m.result);
      }
    });
    const gone = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (!this.closing) this.orphan(slot, why);
    };
    slot.worker.on('error', (err) => gone(`worker failed: ${err.message}`));
    slot.worker.on('exit', (code) => gone(`worker exited with code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  /**
   * Ends the transfers of a worker that is gone without reporting them. Their
   * descriptors are closed here, as nobody else will: a worker closes a
   * descriptor only in the same step that reports the end.
   */
  private orphan(slot: Slot, why: string): void {
    for (const [id, running] of slot.jobs) {
      slot.jobs.delete(id);
      if (running.source.kind === 'fd') {
        try {
          closeSync(running.source.fd);
        } catch {
          /* already closed by the worker before it went */
        }
      }
      running.events.onEnd({ outcome: { ok: false, kind: 'aborted', detail: why }, stats: { bytesSent: 0, retransmittedBlocks: 0, duplicateAcks: 0 }, blocksAcked: 0, ms: 0 });
    }
  }
}
