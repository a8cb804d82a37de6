import { statSync } from 'node:fs';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { crossPodProblems, loadPodDir, loadPodFile } from '../../config/load.js';
import { formatProblem, type ConfigProblem, type PodConfig } from '../../config/types.js';

export const validateCommand: Command = {
  name: ['validate'],
  summary: 'check pod files; one file:line:col line per problem',
  usage: `usage: podboot validate <file|dir>...

Checks pod YAML files (a directory: every *.yaml and *.yml in it, plus the
checks between pods: names, listen addresses, overlapping subnets). Prints
one line per problem as file:line:col: field: message and exits 1, or prints
"ok: N pods" and exits 0.`,
  async run(argv) {
    if (argv.length === 0) throw new UsageError('give at least one pod file or directory');
    const pods: PodConfig[] = [];
    const problems: ConfigProblem[] = [];
    for (const path of argv) {
      let isDir: boolean;
      try {
        isDir = statSync(path).isDirectory();
      } catch {
        throw new UsageError(`${path}: no such file or directory`);
      }
      if (isDir) {
        const r = loadPodDir(path);
        pods.push(...r.pods);
        problems.push(...r.problems);
      } else {
        const r = loadPodFile(path);
        if (r.pod) pods.push(r.pod);
        problems.push(...r.problems);
      }
    }
    if (argv.length > 1) problems.push(...crossPodProblems(pods));
    for (const p of problems) process.stdout.write(formatProblem(p) + '\n');
    if (problems.length) return EXIT_FAILURE;
    process.stdout.write(`ok: ${pods.length} pod${pods.length === 1 ? '' : 's'}\n`);
    return EXIT_OK;
  },
};
