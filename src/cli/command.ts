// Exit codes scripts can rely on, the same for every subcommand.
export const EXIT_OK = 0;
/** the command ran and found a problem (invalid config, failed verification, …) */
export const EXIT_FAILURE = 1;
/** the command line itself was wrong (unknown subcommand, missing argument) */
export const EXIT_USAGE = 2;

/** A subcommand; the words that select it are in the registry (src/cli/registry.ts). */
export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {}
