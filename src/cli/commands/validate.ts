import { existsSync } from 'node:fs';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { loadPodPaths } from '../../config/load.js';
import { formatProblem } from '../../config/types.js';

export const validateCommand: Command = {
  summary: 'check pod files; one file:line:col line per problem',
  usage: `usage: podboot validate <file|dir>...

Checks pod YAML files. A directory stands for every *.yaml and *.yml in it.
All the pods named are also checked against each other, as if they ran on one
central node: pod names, listen sockets and subnets must not collide.

Prints one line per problem, "file:line:col: field: message", and exits 1;
or prints "ok: N pods" and exits 0. Exits 2 when no path is given or a path
does not exist.`,
  async run(argv) {
    if (argv.length === 0) throw new UsageError('give at least one pod file or directory');
    const option = argv.find((a) => a.startsWith('-'));
    if (option) throw new UsageError(`unknown option ${option}`);
    const missing = argv.find((path) => !existsSync(path));
    if (missing) throw new UsageError(`${missing}: no such file or directory`);
    const { pods, problems } = loadPodPaths(argv);
    for (const p of problems) process.stdout.write(formatProblem(p) + '\n');
    if (problems.length) return EXIT_FAILURE;
    process.stdout.write(`ok: ${pods.length} pod${pods.length === 1 ? '' : 's'}\n`);
    return EXIT_OK;
  },
};
