import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { defaultPodPath } from '../../config/load.js';
import { createLogger } from '../../log.js';
import { Supervisor } from '../../pod-vm/supervisor.js';
import { untilSignal } from '../signals.js';
import { statSync } from 'node:fs';

/** The CLI entry the supervisor runs for each pod (`podboot pod run`). */
const CLI_SCRIPT = fileURLToPath(new URL('../main.js', import.meta.url));

export const serveCommand: Command = {
  name: ['serve'],
  summary: 'run the central node: one supervised instance per pod file in a directory',
  usage: `usage: podboot serve [--pods DIR] [--state DIR]

The central node. Starts one pod instance (its own process: \`podboot pod run\`)
per pod file in DIR (*.yaml, *.yml), restarts an instance that dies (with
backoff; a crash loop is reported as such), and follows DIR: a new file starts
its pod, a changed file reloads it (leases kept), a removed file stops it, and
a file with problems is refused with file:line while every running pod goes on.

With no --pods it runs the embedded example pod (examples/default-pod.yaml:
loopback address, high ports) so a new install can be seen working without
touching a network.

  --pods DIR    directory of pod files
  --state DIR   state root; each pod keeps its database, its running copy of
                its file (pod.yaml), its log (instance.log) and its metrics
                socket in DIR/<pod> (default ./state)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { pods: { type: 'string' }, state: { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.pods) {
      try {
        if (!statSync(values.pods).isDirectory()) throw new Error('not a directory');
      } catch (err) {
        process.stderr.write(`podboot serve: --pods ${values.pods}: ${(err as Error).message}\n`);
        return EXIT_FAILURE;
      }
    }
    const stateRoot = values.state ?? 'state';
    const log = createLogger({ node: 'central' });
    const supervisor = new Supervisor({
      podsDir: values.pods,
      files: values.pods ? undefined : [defaultPodPath()],
      stateRoot,
      node: process.execPath,
      cliScript: CLI_SCRIPT,
      log,
    });
    await supervisor.start();
    log.info({ pods: supervisor.pods(), refused: supervisor.refusedFiles().map((r) => r.file), state: stateRoot, dir: values.pods ?? '(embedded pod)' }, 'central node serving');
    const signal = await untilSignal();
    log.info({ signal }, 'stopping');
    await supervisor.stop();
    log.info('central node stopped');
    return EXIT_OK;
  },
};
