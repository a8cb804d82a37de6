import type { Command } from './command.js';
import { validateCommand } from './commands/validate.js';
import { podRunCommand } from './commands/pod-run.js';
import { serveCommand } from './commands/serve.js';
import { dhcpProbeCommand } from './commands/dhcp-probe.js';

// Every subcommand, in the order `podboot --help` lists them.
export const commands: Command[] = [
  serveCommand,
  podRunCommand,
  validateCommand,
  dhcpProbeCommand,
];
