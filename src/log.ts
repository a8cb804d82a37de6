import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  destination?: DestinationStream;
}

// One JSON line per event. Field names that carry secrets are redacted at the
// root so a token or key can never reach a log file by accident.
export function createLogger(bindings: Record<string, unknown>, opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.PODBOOT_LOG_LEVEL ?? 'info',
      base: { ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['token', '*.token', 'secret', '*.secret', 'key', '*.key', 'password', '*.password', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
