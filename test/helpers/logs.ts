import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

/** A real pino logger whose JSON lines are kept in memory for assertions. */
export function captureLogger(bindings: Record<string, unknown> = { pod: 'test' }) {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = createLogger(bindings, { level: 'debug', destination: dest });
  return { log, lines };
}
