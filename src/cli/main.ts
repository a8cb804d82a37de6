#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commands, type CommandEntry } from './registry.js';
import { EXIT_USAGE, EXIT_FAILURE, UsageError } from './command.js';

async function overview(): Promise<string> {
  // Only the overview needs every command's summary, so only it loads them all.
  const loaded = await Promise.all(commands.map(async (c) => ({ name: c.name.join(' '), summary: (await c.load()).summary })));
  const width = Math.max(...loaded.map((c) => c.name.length));
  const lines = loaded.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'podboot: bare-metal provisioning appliance',
    '',
    'usage: podboot <command> [options]   (podboot <command> --help for its options; podboot --version)',
    '',
    'commands:',
    ...lines,
    '',
    'exit codes: 0 ok, 1 the command found a problem, 2 wrong usage',
  ].join('\n');
}

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

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`podboot ${version()}\n`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write((await overview()) + '\n');
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    process.stderr.write(`podboot: unknown command '${argv.join(' ')}'\n\n${await overview()}\n`);
    return EXIT_USAGE;
  }
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
