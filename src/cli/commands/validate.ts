import { existsSync } from 'node:fs';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { loadPodPaths } from '../../config/load.js';
import { podSchema } from '../../config/pod-schema.js';
import { formatProblem, type ConfigProblem } from '../../config/types.js';

export const validateCommand: Command = {
  summary: 'check pod files; one file:line:col line per problem',
  usage: `usage: podboot validate <file|dir>... [--json]
       podboot validate --schema

Checks pod YAML files. A directory stands for every *.yaml and *.yml in it.
All the pods named are also checked against each other, as if they ran on one
central node: pod names, listen sockets, subnets, servers (by MAC) and
management networks (spec.managementNetwork) must not collide. Both kinds of
problem come in one run: a file with problems of its own is still compared
with the others in every field whose value could be read.

Prints one line per problem, "file:line:col: field: message", and exits 1;
or prints "ok: N pods" and exits 0. Exits 2 when no path is given or a path
does not exist.

  --json     print {"ok", "pods" (how many are valid), "problems": [{file,
             line, column, field, message}]} instead of lines; same exit codes
  --schema   print the pod file's JSON Schema (draft 2020-12) for editors,
             made from the same field tables as the validator; it checks
             field names and value types, validate checks the rest`,
  async run(argv) {
    const json = argv.includes('--json');
    const schema = argv.includes('--schema');
    const paths = argv.filter((a) => a !== '--json' && a !== '--schema');
    const option = paths.find((a) => a.startsWith('-'));
    if (option) throw new UsageError(`unknown option ${option}`);
    if (schema) {
      if (json || paths.length) throw new UsageError('--schema takes no path and no other option');
      process.stdout.write(`${JSON.stringify(podSchema(), null, 2)}\n`);
      return EXIT_OK;
    }
    if (paths.length === 0) throw new UsageError('give at least one pod file or directory');
    const missing = paths.find((path) => !existsSync(path));
    if (missing) throw new UsageError(`${missing}: no such file or directory`);
    const { pods, problems } = loadPodPaths(paths);
    if (json) process.stdout.write(`${JSON.stringify(jsonReport(pods.length, problems))}\n`);
    else {
      for (const p of problems) process.stdout.write(`${formatProblem(p)}\n`);
      if (!problems.length) process.stdout.write(`ok: ${pods.length} pod${pods.length === 1 ? '' : 's'}\n`);
    }
    return problems.length ? EXIT_FAILURE : EXIT_OK;
  },
};

/** For scripts and editors: field names a consumer can rely on (column, not col; field, not path). */
function jsonReport(pods: number, problems: ConfigProblem[]) {
  return {
    ok: problems.length === 0,
    pods,
    problems: problems.map((p) => ({ file: p.file, line: p.line, column: p.col, field: p.path, message: p.message })),
  };
}
