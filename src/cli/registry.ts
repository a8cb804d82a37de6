import type { Command } from './command.js';

/**
 * The routing table of the CLI: the words that select a command, and where
 * its code is. A command's module is loaded only when it runs (or for
 * `--help`): a pod instance started by the supervisor (`pod run`) then loads
 * no lab, image-building or API client code, ~50 ms of CPU per start.
 */
export interface CommandEntry {
  /** words that select the command, e.g. ['pod', 'run'] */
  name: string[];
  load(): Promise<Command>;
}

// Every subcommand, in the order `podboot --help` lists them.
export const commands: CommandEntry[] = [
  { name: ['serve'], load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: ['pod', 'run'], load: async () => (await import('./commands/pod-run.js')).podRunCommand },
  { name: ['pods', 'list'], load: async () => (await import('./commands/pods.js')).podsListCommand },
  { name: ['pods', 'status'], load: async () => (await import('./commands/pods.js')).podsStatusCommand },
  { name: ['pods', 'start'], load: async () => (await import('./commands/pods.js')).podsStartCommand },
  { name: ['pods', 'stop'], load: async () => (await import('./commands/pods.js')).podsStopCommand },
  { name: ['pods', 'restart'], load: async () => (await import('./commands/pods.js')).podsRestartCommand },
  { name: ['pods', 'degrade'], load: async () => (await import('./commands/pods.js')).podsDegradeCommand },
  { name: ['pods', 'undegrade'], load: async () => (await import('./commands/pods.js')).podsUndegradeCommand },
  { name: ['pods', 'rolling-restart'], load: async () => (await import('./commands/pods.js')).podsRollingRestartCommand },
  { name: ['events'], load: async () => (await import('./commands/pods.js')).eventsCommand },
  { name: ['logs'], load: async () => (await import('./commands/logs.js')).logsCommand },
  { name: ['validate'], load: async () => (await import('./commands/validate.js')).validateCommand },
  { name: ['nodes', 'list'], load: async () => (await import('./commands/nodes.js')).nodesListCommand },
  { name: ['nodes', 'show'], load: async () => (await import('./commands/nodes.js')).nodesShowCommand },
  { name: ['nodes', 'reinstall'], load: async () => (await import('./commands/nodes.js')).nodesReinstallCommand },
  { name: ['rollout', 'start'], load: async () => (await import('./commands/rollout.js')).rolloutStartCommand },
  { name: ['rollout', 'status'], load: async () => (await import('./commands/rollout.js')).rolloutStatusCommand },
  { name: ['rollout', 'pause'], load: async () => (await import('./commands/rollout.js')).rolloutPauseCommand },
  { name: ['rollout', 'resume'], load: async () => (await import('./commands/rollout.js')).rolloutResumeCommand },
  { name: ['rollout', 'promote'], load: async () => (await import('./commands/rollout.js')).rolloutPromoteCommand },
  { name: ['rollout', 'rollback'], load: async () => (await import('./commands/rollout.js')).rolloutRollbackCommand },
  { name: ['nodes', 'vmedia-boot'], load: async () => (await import('./commands/vmedia.js')).nodesVmediaBootCommand },
  { name: ['tasks', 'run'], load: async () => (await import('./commands/tasks.js')).tasksRunCommand },
  { name: ['tasks', 'list'], load: async () => (await import('./commands/tasks.js')).tasksListCommand },
  { name: ['tasks', 'show'], load: async () => (await import('./commands/tasks.js')).tasksShowCommand },
  { name: ['tasks', 'logs'], load: async () => (await import('./commands/tasks.js')).tasksLogsCommand },
  { name: ['tasks', 'cancel'], load: async () => (await import('./commands/tasks.js')).tasksCancelCommand },
  { name: ['tasks', 'templates'], load: async () => (await import('./commands/tasks.js')).tasksTemplatesCommand },
  { name: ['dhcp', 'probe'], load: async () => (await import('./commands/dhcp-probe.js')).dhcpProbeCommand },
  { name: ['tftp', 'serve'], load: async () => (await import('./commands/tftp-serve.js')).tftpServeCommand },
  { name: ['ca', 'init'], load: async () => (await import('./commands/ca.js')).caInitCommand },
  { name: ['ca', 'issue-signer'], load: async () => (await import('./commands/ca.js')).caIssueSignerCommand },
  { name: ['ca', 'issue-server'], load: async () => (await import('./commands/ca.js')).caIssueServerCommand },
  { name: ['ca', 'revoke'], load: async () => (await import('./commands/ca.js')).caRevokeCommand },
  { name: ['ca', 'migrate'], load: async () => (await import('./commands/ca.js')).caMigrateCommand },
  { name: ['sign'], load: async () => (await import('./commands/sign.js')).signCommand },
  { name: ['verify'], load: async () => (await import('./commands/verify.js')).verifyCommand },
  { name: ['images', 'pull'], load: async () => (await import('./commands/images.js')).imagesPullCommand },
  { name: ['images', 'list'], load: async () => (await import('./commands/images.js')).imagesListCommand },
  { name: ['images', 'show'], load: async () => (await import('./commands/images.js')).imagesShowCommand },
  { name: ['images', 'remove'], load: async () => (await import('./commands/images.js')).imagesRemoveCommand },
  { name: ['images', 'onboard'], load: async () => (await import('./commands/images.js')).imagesOnboardCommand },
  { name: ['images', 'check'], load: async () => (await import('./commands/images-check.js')).imagesCheckCommand },
  { name: ['images', 'build-stage1'], load: async () => (await import('./commands/images-build.js')).imagesBuildStage1Command },
  { name: ['images', 'build-lab-stage2'], load: async () => (await import('./commands/images-build.js')).imagesBuildLabStage2Command },
  { name: ['images', 'build-vmedia-iso'], load: async () => (await import('./commands/vmedia.js')).imagesBuildVmediaIsoCommand },
  { name: ['images', 'build-debian'], load: async () => (await import('./commands/images-build.js')).imagesBuildDebianCommand },
  { name: ['lab', 'up'], load: async () => (await import('./commands/lab.js')).labUpCommand },
  { name: ['lab', 'boot'], load: async () => (await import('./commands/lab.js')).labBootCommand },
  { name: ['lab', 'down'], load: async () => (await import('./commands/lab.js')).labDownCommand },
  { name: ['lab', 'doctor'], load: async () => (await import('./commands/lab.js')).labDoctorCommand },
];

/**
 * A line under a group's own help (`podboot lab`), where the subcommands'
 * summaries do not say where to read on. The group help itself is built from
 * the commands above (src/cli/help.ts).
 */
export const groupNotes: Record<string, string> = {
  lab: 'See docs/lab.md.',
  ca: 'See docs/trust-model.md.',
  tasks: 'See docs/tasks.md.',
  rollout: 'See docs/rollouts.md.',
};
