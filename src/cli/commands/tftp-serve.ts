import { parseArgs } from 'node:util';
import { EXIT_OK, UsageError, type Command } from '../command.js';
import { parseIPv4 } from '../../net/ipv4.js';
import { createLogger } from '../../log.js';
import { RFC_MAX_BLKSIZE } from '../../tftp/negotiate.js';
import { BootTreeResolver } from '../../tftp/resolver.js';
import { availableParallelism } from 'node:os';
import { InlineRunner } from '../../tftp/runner.js';
import { DEFAULT_TFTP_TUNING, TftpServer } from '../../tftp/server.js';
import { TftpWorkerPool } from '../../tftp/worker-pool.js';
import { untilSignal } from '../signals.js';

function intOption(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer in ${min}..${max}, not ${value}`);
  return n;
}

export const tftpServeCommand: Command = {
  summary: 'serve one directory read-only over TFTP (no pod, no generated configs)',
  usage: `usage: podboot tftp serve --root DIR [--address ADDR] [--port PORT] [--name NAME]
                          [--max-blksize N] [--max-windowsize N] [--max-transfers N] [--workers N]

Runs podboot's TFTP server alone on one directory: the server a pod runs,
without the per-server boot configs (those need a pod's inventory). Useful to
check a boot tree, and for benchmarks. Read-only; names leaving DIR (.., /,
backslashes, symlinks pointing outside) are refused. JSON logs on stdout;
SIGTERM or SIGINT stops it.

  --root DIR            directory to serve (required)
  --address ADDR        IPv4 address to listen on (default 127.0.0.1)
  --port PORT           UDP port (default 69)
  --name NAME           value of the "pod" field in log lines (default tftp)
  --max-blksize N       largest blksize negotiated, 8..65464 (default 65464)
  --max-windowsize N    largest windowsize negotiated, 1..65535 (default 64)
  --max-transfers N     concurrent transfers before requests get "busy" (default 200)
  --workers N           worker threads running transfers, 0 = all on the main thread
                        (default: one per CPU, at most 4)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        root: { type: 'string' },
        address: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        name: { type: 'string', default: 'tftp' },
        'max-blksize': { type: 'string' },
        'max-windowsize': { type: 'string' },
        'max-transfers': { type: 'string' },
        workers: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.root) throw new UsageError('--root DIR is required');
    if (parseIPv4(values.address) === undefined) throw new UsageError(`--address: ${values.address} is not an IPv4 address`);
    const opts = {
      ...DEFAULT_TFTP_TUNING,
      address: values.address,
      port: intOption(values.port, '--port', 0, 65535, 69),
      maxBlockSize: intOption(values['max-blksize'], '--max-blksize', 8, RFC_MAX_BLKSIZE, RFC_MAX_BLKSIZE),
      maxWindowSize: intOption(values['max-windowsize'], '--max-windowsize', 1, 65535, 64),
      maxTransfers: intOption(values['max-transfers'], '--max-transfers', 1, 10_000, 200),
    };
    const workers = intOption(values.workers, '--workers', 0, 64, Math.min(4, availableParallelism()));
    const log = createLogger({ pod: values.name });
    const resolver = await BootTreeResolver.open(values.root);
    const runner = workers > 0 ? new TftpWorkerPool(workers) : new InlineRunner();
    const server = new TftpServer(opts, resolver, log, runner);
    await server.start();
    const signal = await untilSignal();
    log.info({ signal, counters: server.counters }, 'stopping');
    await server.stop();
    await runner.close();
    return EXIT_OK;
  },
};
