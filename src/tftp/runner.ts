// Where accepted transfers run: on the server's own thread (InlineRunner) or
// spread over worker threads (TftpWorkerPool). Lock-step TFTP costs a wake-up
// and a few microseconds of JavaScript per block; with many clients one event
// loop becomes the limit, and a second one on the other core lifts it.
import dgram from 'node:dgram';
import type { FileSource } from './file-source.js';
import type { TransferParams } from './negotiate.js';
import type { ClientInfo } from './resolver.js';
import { TransferSession, type SessionEvents } from './session.js';

/** Everything a transfer needs besides its file, as plain data. */
export interface TransferJob {
  /** local address for the transfer's socket (the pod's address) */
  address: string;
  client: ClientInfo;
  params: TransferParams;
  maxRetries: number;
}

export interface TransferHandle {
  /** the client repeated its request before acknowledging anything */
  repeat(): void;
  abort(detail: string): void;
}

export interface TransferRunner {
  /** Runs the job; `source` is owned by the runner from here on (closed when the transfer ends). */
  start(job: TransferJob, source: FileSource, events: SessionEvents): TransferHandle;
  close(): Promise<void>;
}

function connectTo(socket: dgram.Socket, job: TransferJob): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, job.address, () => {
      // Connected: sends skip the per-packet address lookup, and only the client's own packets come in.
      socket.connect(job.client.port, job.client.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  });
}

/** Opens the transfer's socket (its TID) and runs the session on the calling thread. */
export function runTransfer(job: TransferJob, source: FileSource, events: SessionEvents): TransferHandle {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  let session: TransferSession | undefined;
  let abortedBefore: string | undefined;
  connectTo(socket, job).then(
    () => {
      session = new TransferSession(socket, job.params, source, job.maxRetries, events);
      if (abortedBefore !== undefined) session.abort(abortedBefore);
      else session.start();
    },
    (err: Error) => {
      socket.close();
      source.close().catch(() => undefined);
      events.onEnd({ outcome: { ok: false, kind: 'socket-error', detail: err.message }, stats: { bytesSent: 0, retransmittedBlocks: 0, duplicateAcks: 0 }, blocksAcked: 0, ms: 0 });
    },
  );
  return {
    // Before the socket is up, the first packet has not gone out yet: nothing to repeat.
    repeat: () => session?.repeat(),
    abort: (detail) => {
      if (session) session.abort(detail);
      else abortedBefore = detail;
    },
  };
}

export class InlineRunner implements TransferRunner {
  start(job: TransferJob, source: FileSource, events: SessionEvents): TransferHandle {
    return runTransfer(job, source, events);
  }

  async close(): Promise<void> {}
}
