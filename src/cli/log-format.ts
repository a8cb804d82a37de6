// --log-format for the long-running commands (serve, pod run): readable lines
// on a terminal, JSON lines anywhere else (a file, a pipe, journald), unless
// the operator says which.
import { isatty } from 'node:tty';
import type { LogFormat } from '../log.js';
import { UsageError } from './command.js';

export const LOG_FORMAT_HELP = `  --log-format json|pretty  the console's log lines: pretty (time, level, pod,
                    server MAC, message, then the other fields) when stdout is
                    a terminal, JSON lines otherwise (default: by stdout)`;

export const LOG_LEVEL_HELP = `Environment: PODBOOT_LOG_LEVEL=trace|debug|info|warn|error|fatal is the least
level logged (default info; pod instances started by serve inherit it).`;

/** The format asked for, or by stdout: a terminal reads pretty lines, everything else JSON. */
export function chooseLogFormat(flag: string | undefined, stdoutIsTTY = isatty(1)): LogFormat {
  if (flag === undefined) return stdoutIsTTY ? 'pretty' : 'json';
  if (flag === 'json' || flag === 'pretty') return flag;
  throw new UsageError(`--log-format must be json or pretty, not ${flag}`);
}
