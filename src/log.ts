import { isatty } from 'node:tty';
import { pino, type Logger, type DestinationStream } from 'pino';
import { formatLogLine, REDACTED, SECRET_FIELDS } from './log-pretty.js';

export type { Logger } from 'pino';

/** json: one JSON object a line (files, journald, pipes); pretty: readable lines for a terminal (src/log-pretty.ts). */
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level?: string;
  destination?: DestinationStream;
}

// One JSON line per event. Field names that carry secrets are redacted at the
// root and one level down, so a token or key can never reach a log file by
// accident; the redaction happens before any formatting, so the console's
// readable form never sees a secret either.
export function createLogger(bindings: Record<string, unknown>, opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.PODBOOT_LOG_LEVEL ?? 'info',
      base: { ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]),
        censor: REDACTED,
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * A process's console (stdout) in one format: the destination its logger
 * writes to, and `relay` for lines another process logged (a pod instance's,
 * read back from its log file by the central node), which then look like
 * its own. Both go through one buffered writer, so lines never interleave.
 */
export interface LogConsole {
  format: LogFormat;
  destination: DestinationStream;
  /** one JSON log line written elsewhere, shown as this console shows its own */
  relay(line: string): void;
}

export function logConsole(format: LogFormat, fd = 1, color = format === 'pretty' && isatty(fd) && !process.env.NO_COLOR): LogConsole {
  const out = pino.destination({ dest: fd, sync: false });
  if (format === 'json') return { format, destination: out, relay: (line) => out.write(line + '\n') };
  const pretty = (chunk: string): string => {
    let text = '';
    // pino writes one line per call; a chunk of several is formatted line by line.
    for (const line of chunk.split('\n')) if (line) text += formatLogLine(line, { color }) + '\n';
    return text;
  };
  return {
    format,
    destination: { write: (chunk: string) => void out.write(pretty(chunk)) },
    relay: (line) => void out.write(pretty(line)),
  };
}
