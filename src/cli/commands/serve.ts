import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { defaultPodPath, loadPodDir, loadPodFile } from '../../config/load.js';
import { formatProblem, type ConfigProblem, type PodConfig } from '../../config/types.js';
import { createLogger } from '../../log.js';
import { PodInstance } from '../../pod/instance.js';
import { untilSignal } from '../signals.js';

export const serveCommand: Command = {
  name: ['serve'],
  summary: 'run the central node: every pod in a directory (default: the embedded example pod)',
  usage: `usage: podboot serve [--pods DIR] [--state DIR]

Starts one pod instance per pod file in DIR (*.yaml, *.yml). With no --pods it
runs the embedded example pod (examples/default-pod.yaml: loopback address,
high ports) so a new install can be seen working without touching a network.

  --pods DIR    directory of pod files
  --state DIR   state root; each pod keeps its database in DIR/<pod> (default ./state)`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { pods: { type: 'string' }, state: { type: 'string' } }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    let pods: PodConfig[];
    let problems: ConfigProblem[];
    if (values.pods) {
      ({ pods, problems } = loadPodDir(values.pods));
    } else {
      const r = loadPodFile(defaultPodPath());
      pods = r.pod ? [r.pod] : [];
      problems = r.problems;
    }
    if (problems.length) {
      for (const p of problems) process.stderr.write(formatProblem(p) + '\n');
      return EXIT_FAILURE;
    }
    if (pods.length === 0) {
      process.stderr.write(`podboot serve: no pod files in ${values.pods}\n`);
      return EXIT_FAILURE;
    }
    const stateRoot = values.state ?? 'state';
    const central = createLogger({ node: 'central' });
    const instances = pods.map((pod) => new PodInstance(pod, createLogger({ pod: pod.name }), { stateDir: join(stateRoot, pod.name) }));
    for (const i of instances) await i.start();
    central.info({ pods: pods.map((p) => `${p.name}@${p.listen.address}:${p.listen.dhcpPort}`), state: stateRoot }, 'central node serving');
    const signal = await untilSignal();
    central.info({ signal }, 'stopping');
    for (const i of instances) await i.stop();
    return EXIT_OK;
  },
};
