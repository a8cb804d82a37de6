import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { loadPodFile } from '../../config/load.js';
import { formatProblem } from '../../config/types.js';
import { createLogger } from '../../log.js';
import { PodInstance } from '../../pod/instance.js';
import { untilSignal } from '../signals.js';
import { attachInstanceChannels } from '../../pod-vm/child.js';

export const podRunCommand: Command = {
  name: ['pod', 'run'],
  summary: 'run one pod instance in the foreground (logs to stdout)',
  usage: `usage: podboot pod run <pod.yaml> [--state DIR] [--durability process|power]

Runs one pod-manager instance: its DHCP server (and, as they land, TFTP and
HTTPS) on the pod's listen address. Logs are JSON lines on stdout. SIGTERM or
SIGINT stops it cleanly; leases are committed before every ACK, so even
kill -9 loses none.

  --state DIR        state root; the pod keeps its database in DIR/<pod name> (default ./state)
  --durability MODE  process: a committed lease survives a crash of podboot (default)
                     power:   it also survives a power cut (fsync per group commit)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { state: { type: 'string' }, durability: { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one pod file');
    const durability = values.durability ?? 'process';
    if (durability !== 'process' && durability !== 'power') throw new UsageError(`--durability must be process or power, not ${durability}`);
    const loaded = loadPodFile(positionals[0]!);
    if (!loaded.pod) {
      for (const p of loaded.problems) process.stderr.write(formatProblem(p) + '\n');
      return EXIT_FAILURE;
    }
    const pod = loaded.pod;
    const log = createLogger({ pod: pod.name });
    const stateDir = join(values.state ?? 'state', pod.name);
    const instance = new PodInstance(pod, log, { stateDir, durability });
    await instance.start();
    // Metrics socket in the state dir; heartbeat and degrade when run by `podboot serve`.
    const channels = await attachInstanceChannels(instance, log, stateDir);
    const signal = await untilSignal();
    log.info({ signal }, 'stopping');
    await instance.stop();
    await channels.close();
    return EXIT_OK;
  },
};
