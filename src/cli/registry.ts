import type { Command } from './command.js';
import { validateCommand } from './commands/validate.js';
import { podRunCommand } from './commands/pod-run.js';
import { serveCommand } from './commands/serve.js';
import { eventsCommand, podsDegradeCommand, podsListCommand, podsRestartCommand, podsStartCommand, podsStatusCommand, podsStopCommand, podsUndegradeCommand, podsRollingRestartCommand } from './commands/pods.js';
import { dhcpProbeCommand } from './commands/dhcp-probe.js';
import { tftpServeCommand } from './commands/tftp-serve.js';
import { caInitCommand, caIssueServerCommand, caIssueSignerCommand, caRevokeCommand } from './commands/ca.js';
import { signCommand } from './commands/sign.js';
import { nodesListCommand, nodesReinstallCommand, nodesShowCommand } from './commands/nodes.js';
import { verifyCommand } from './commands/verify.js';
import { imagesBuildLabStage2Command, imagesBuildStage1Command } from './commands/images-build.js';
import { labBootCommand, labCommand, labDoctorCommand, labDownCommand, labUpCommand } from './commands/lab.js';
import { imagesListCommand, imagesOnboardCommand, imagesPullCommand, imagesRemoveCommand, imagesShowCommand } from './commands/images.js';

// Every subcommand, in the order `podboot --help` lists them.
export const commands: Command[] = [
  serveCommand,
  podRunCommand,
  podsListCommand,
  podsStatusCommand,
  podsStartCommand,
  podsStopCommand,
  podsRestartCommand,
  podsDegradeCommand,
  podsUndegradeCommand,
  podsRollingRestartCommand,
  eventsCommand,
  validateCommand,
  nodesListCommand,
  nodesShowCommand,
  nodesReinstallCommand,
  dhcpProbeCommand,
  tftpServeCommand,
  caInitCommand,
  caIssueSignerCommand,
  caIssueServerCommand,
  caRevokeCommand,
  signCommand,
  verifyCommand,
  imagesPullCommand,
  imagesListCommand,
  imagesShowCommand,
  imagesRemoveCommand,
  imagesOnboardCommand,
  imagesBuildStage1Command,
  imagesBuildLabStage2Command,
  labCommand,
  labUpCommand,
  labBootCommand,
  labDownCommand,
  labDoctorCommand,
];
