// How `images pull` shows its progress: a redrawn bar on a terminal, plain
// lines (each 25 %, each retry) when the output is a file or a pipe.
import type { PullEvent } from './pull.js';

const MiB = 1 << 20;
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
const LABEL = { image: 'image', signature: 'signature', manifest: 'manifest', manifestSignature: 'manifest signature' } as const;

export function progressReporter(out: { write(s: string): unknown; isTTY?: boolean }, clock: () => number = Date.now): (e: PullEvent) => void {
  let started = clock();
  let lastDraw = 0;
  let lastQuarter = -1;
  let barOpen = false;
  const endBar = () => {
    if (barOpen) out.write('\n');
    barOpen = false;
  };
  return (e) => {
    switch (e.kind) {
      case 'fetch':
        started = clock();
        lastQuarter = -1;
        if (!out.isTTY) out.write(`fetching ${LABEL[e.artifact]}: ${e.url}\n`);
        break;
      case 'progress': {
        if (e.artifact !== 'image' || e.total === undefined || e.total === 0) break;
        const frac = e.received / e.total;
        if (out.isTTY) {
          const now = clock();
          if (now - lastDraw < 100 && e.received < e.total) break;
          lastDraw = now;
          const width = 30;
          const filled = Math.round(frac * width);
          const rate = e.received / Math.max(0.001, (now - started) / 1000) / 1e6;
          out.write(`\r  image [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${mib(e.received)} / ${mib(e.total)}  ${rate.toFixed(1)} MB/s `);
          barOpen = true;
        } else {
          const quarter = Math.floor(frac * 4);
          if (quarter > lastQuarter && quarter < 4) {
            lastQuarter = quarter;
            out.write(`  image: ${quarter * 25}% (${mib(e.received)} of ${mib(e.total)})\n`);
          }
        }
        break;
      }
      case 'retry':
        endBar();
        out.write(`  ${LABEL[e.artifact]}: ${e.error}; ${e.resume ? `resuming at byte ${e.offset}` : 'starting again'}\n`);
        break;
      case 'fetched':
        endBar();
        if (e.artifact === 'image' || !out.isTTY) out.write(`  ${LABEL[e.artifact]}: ${e.size} bytes${e.resumed ? `, resumed ${e.resumed} time(s)` : ''}\n`);
        break;
      case 'verifying':
        out.write('verifying before admitting\n');
        break;
    }
  };
}
