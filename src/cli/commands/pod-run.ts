import { defaultStateRoot, STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { loadPodFile } from '../../config/load.js';
import { formatProblem } from '../../config/types.js';
import { createLogger, logConsole } from '../../log.js';
import { chooseLogFormat, LOG_FORMAT_HELP, LOG_LEVEL_HELP } from '../log-format.js';
import { PodInstance } from '../../pod/instance.js';
import { untilSignal } from '../signals.js';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { installStage1, STAGE1_INITRD } from '../../images/stage1.js';
import { attachInstanceChannels } from '../../pod/channels.js';
import { startRegistrar } from '../../pod/registrar.js';

/** Lays a built stage1 into the pod's boot tree; without one the tree is served as the operator filled it. */
export function stage1Preparer(dir: string | undefined, log: Logger): ((bootDir: string, rootCa: Buffer) => Promise<void>) | undefined {
  if (dir === undefined) return undefined;
  if (!existsSync(join(dir, STAGE1_INITRD))) throw new UsageError(`--stage1 ${dir}: no ${STAGE1_INITRD} there (podboot images build-stage1 --out ${dir})`);
  return async (bootDir, rootCa) => {
    installStage1(dir, bootDir, rootCa);
    log.info({ stage1: dir }, 'stage1 laid into the boot tree');
  };
}

/**
 * A debug hook for the memory-limit tests (docs/operations.md, Resource
 * limits): with PODBOOT_DEBUG_ALLOCATE_ON_SIGUSR2=1 in its environment, the
 * instance allocates (and touches) memory without end once it gets SIGUSR2,
 * as a leaking instance would. Only a local signal from root or the pod's own
 * user triggers it, never anything from the network; without the variable
 * SIGUSR2 keeps Node's default.
 */
function armMemoryHook(log: Logger): void {
  if (process.env.PODBOOT_DEBUG_ALLOCATE_ON_SIGUSR2 !== '1') return;
  const hold: Buffer[] = [];
  process.on('SIGUSR2', () => {
    log.warn('debug hook: allocating memory until the memory limit stops this process');
    const grow = () => {
      // 8 MiB a step, filled so every page is really charged, with a turn of the event loop between.
      for (let i = 0; i < 4; i++) hold.push(Buffer.alloc(2 * 1024 * 1024, 1));
      setImmediate(grow);
    };
    grow();
  });
}

/** How long a stopping instance lets running transfers finish. */
const DRAIN_MS = Number(process.env.PODBOOT_DRAIN_MS ?? 5000);

export const podRunCommand: Command = {
  summary: 'run one pod instance in the foreground (logs to stdout)',
  usage: `usage: podboot pod run <pod.yaml> [--state DIR] [--ca DIR] [--stage1 DIR] [--durability process|power]
                            [--log-format json|pretty]

Runs one pod-manager instance: DHCP, TFTP, HTTP (iPXE script, stage1) and
HTTPS (stage2, kickstart, install callbacks) on the pod's listen address.
Logs go to stdout: readable lines on a terminal, JSON lines otherwise (run by
\`podboot serve\`, into STATE/<pod>/instance.log). SIGTERM or SIGINT stops it
cleanly; leases and install states are committed before they are answered, so
even kill -9 loses none.

  --state DIR        state root; the pod keeps its database in DIR/<pod name> (${STATE_DEFAULT_HELP})
  --ca DIR           run by hand: CA directory that issues the pod's TLS certificate when
                     DIR/<pod>/tls has none (default: DIR/ca of the state root, created as a
                     local CA if absent). Run by \`podboot serve\`, a pod is never given one: the
                     central node puts its key and chain in DIR/<pod>/tls before it starts
  --stage1 DIR       a built stage1 (podboot images build-stage1 --out DIR) to lay into the
                     pod's boot tree with the root CA baked in (default: serve the tree as it is)
  --durability MODE  process: a committed lease survives a crash of podboot (default)
                     power:   it also survives a power cut (fsync per group commit)
${LOG_FORMAT_HELP}

${LOG_LEVEL_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { state: { type: 'string' }, durability: { type: 'string' }, ca: { type: 'string' }, stage1: { type: 'string' }, 'log-format': { type: 'string' } },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one pod file');
    const format = chooseLogFormat(values['log-format']);
    const durability = values.durability ?? 'process';
    if (durability !== 'process' && durability !== 'power') throw new UsageError(`--durability must be process or power, not ${durability}`);
    const loaded = loadPodFile(positionals[0]!);
    if (!loaded.pod) {
      for (const p of loaded.problems) process.stderr.write(formatProblem(p) + '\n');
      return EXIT_FAILURE;
    }
    const pod = loaded.pod;
    const log = createLogger({ pod: pod.name }, { destination: logConsole(format).destination });
    const stateRoot = values.state ?? defaultStateRoot();
    const stateDir = join(stateRoot, pod.name);
    const supervised = process.send !== undefined;
    armMemoryHook(log);
    const instance = new PodInstance(pod, log, {
      stateDir,
      durability,
      // Supervised (an IPC channel to \`podboot serve\`), the pod gets its key and chain
      // from the central node in DIR/<pod>/tls and never opens a CA directory; it is
      // not given --ca. Run by hand (labs, as root), it may issue its own.
      tlsSource: supervised && values.ca === undefined ? undefined : { caDir: values.ca ?? join(stateRoot, 'ca'), createCa: values.ca === undefined },
      prepareBootTree: stage1Preparer(values.stage1, log),
      // the virtual-media ISO is read in place from the stage1 build, never copied per pod or per server
      stage1Dir: values.stage1,
    });
    // Run by hand, a pod opens its sockets warm (src/dhcp/warmup.ts); run by
    // the supervisor, it serves first and warms up when the supervisor says.
    if (!process.send) await instance.warmUp();
    try {
      await instance.start();
    } catch (err) {
      log.error({ err }, 'pod instance failed to start');
      // Whatever did start (database, worker thread, sockets) would keep the
      // process alive: a supervisor would then wait for a ready that never comes.
      await instance.stop().catch(() => undefined);
      throw err;
    }
    // Metrics socket in the state dir; heartbeat and degrade when run by `podboot serve`.
    const channels = await attachInstanceChannels(instance, log, stateDir);
    // The operator's degrade (podboot pods degrade): no new installs, leases and installs under way go on.
    channels.onDegrade((on, reason) => instance.setDegraded(on, reason));
    channels.onWarmUp(() => void instance.warmUp());
    // A scrape target of the central node on this state root (register.token; docs/operations.md).
    const registrar = await startRegistrar({ pod: pod.name, stateRoot, metricsSocket: channels.metricsSocket, log });
    const signal = await untilSignal();
    log.info({ signal }, 'stopping');
    // Leave the discovery list first: nothing should scrape a pod that is going.
    await registrar.close();
    // Bounded below the supervisor's 10 s stop timeout.
    await channels.drain(DRAIN_MS);
    await instance.stop();
    await channels.close();
    return EXIT_OK;
  },
};
