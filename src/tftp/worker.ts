// Entry point of a TFTP worker thread: runs the transfers the pool hands it,
// each on its own socket, and reports how they ended. Nothing is logged here;
// the server thread logs and counts from the reports.
import { parentPort } from 'node:worker_threads';
import { sourceFromDescriptor } from './file-source.js';
import { runTransfer, type TransferHandle } from './runner.js';
import type { ToWorker, FromWorker } from './worker-pool.js';

function serve(port: NonNullable<typeof parentPort>): void {
  const running = new Map<number, TransferHandle>();
  const post = (m: FromWorker) => port.postMessage(m);
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'start':
        running.set(
          m.id,
          runTransfer(m.job, sourceFromDescriptor(m.source), {
            onProgress: () => post({ type: 'progress', id: m.id }),
            onEnd: (result) => {
              running.delete(m.id);
              post({ type: 'end', id: m.id, result });
            },
          }),
        );
        return;
      case 'repeat':
        running.get(m.id)?.repeat();
        return;
      case 'abort':
        running.get(m.id)?.abort(m.detail);
        return;
    }
  });
}

if (parentPort) serve(parentPort);
