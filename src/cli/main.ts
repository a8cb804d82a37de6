#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commands, type CommandEntry } from './registry.js';
import { EXIT_USAGE, EXIT_FAILURE, UsageError } from './command.js';

/** The longest registered name that prefixes argv wins: `pod run` before `pod`. */
function findCommand(argv: string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: CommandEntry | undefined;
  for (const c of commands) {
    if (c.name.every((w, i) => argv[i] === w) && (!best || c.name.length > best.name.length)) best = c;
  }
  return best ? { entry: best, rest: argv.slice(best.name.length) } : undefined;
}

/** The version in package.json, found upwards from this file (src/cli under vitest, dist/src/cli when built). */
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'podboot' && pkg.version) return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return 'unknown';
}

const isHelp = (w: string | undefined) => w === '--help' || w === '-h';

/**
 * Words that select no command: a group alone (`podboot pods`) prints that
 * group's subcommands; anything else is named, with the command it most
 * likely meant, and the group's help when the group was right.
 */
async function notACommand(argv: string[]): Promise<number> {
  const { didYouMean, groupHelp, isGroup } = await import('./help.js');
  const [first, second] = argv;
  if (isGroup(first) && (second === undefined || second.startsWith('-'))) {
    // Like `podboot` alone: the help on stdout, but a command was still expected (2).
    if (second === undefined || isHelp(second)) {
      process.stdout.write(`${await groupHelp(first!)}\n`);
      return isHelp(second) ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`podboot ${first}: expected a subcommand before ${second}\n\n${await groupHelp(first!)}\n`);
    return EXIT_USAGE;
  }
  const guess = didYouMean(argv);
  const hint = guess ? `; did you mean ${guess}?` : '';
  const more = isGroup(first) ? await groupHelp(first!) : 'podboot --help lists every command.';
  process.stderr.write(`podboot: unknown command '${argv.join(' ')}'${hint}\n\n${more}\n`);
  return EXIT_USAGE;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`podboot ${version()}\n`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    // Loaded here, not above: a command that runs (`pod run`, started per pod) needs no help texts.
    const { overview } = await import('./help.js');
    process.stdout.write((await overview()) + '\n');
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  const found = findCommand(argv);
  if (!found) return notACommand(argv);
  const cmd = await found.entry.load();
  const name = found.entry.name.join(' ');
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(found.rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`podboot ${name}: ${err.message}\n\n${cmd.usage}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof Error && (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`podboot ${name}: ${err.message}\n\n${cmd.usage}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`podboot ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

// `podboot … | head` closes stdout early; that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await main(process.argv.slice(2));
// Long-running commands (serve, pod run) resolve only when they have stopped.
process.exitCode = code;
