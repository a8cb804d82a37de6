// Virtual media: the generic stage1 ISO (src/vmedia/) and booting a server
// from it through its BMC over Redfish (src/redfish/).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { STATE_DEFAULT_HELP } from '../../config/state-root.js';

export const imagesBuildVmediaIsoCommand: Command = {
  summary: 'build the generic stage1 ISO for BMC virtual media (GRUB, BIOS and UEFI)',
  usage: `usage: podboot images build-vmedia-iso [--stage1 DIR] [--force]

Builds DIR/vmedia/stage1.iso from the stage1 in DIR (default .cache/stage1,
see podboot images build-stage1): El Torito for BIOS and UEFI made by
grub-mkrescue, GRUB loading stage1's kernel and initrd with a fixed-size
config block the pod fills per server while it streams the ISO
(docs/vmedia.md). Skipped when nothing it is made of changed. Prints the
ISO's size, SHA-256 and the block's offset.`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { stage1: { type: 'string' }, force: { type: 'boolean' } } });
    const { buildVmediaIso } = await import('../../vmedia/iso-build.js');
    const dir = values.stage1 ?? join(process.cwd(), '.cache', 'stage1');
    const r = buildVmediaIso(dir, { force: values.force });
    process.stdout.write(`${r.path}: ${r.upToDate ? 'up to date' : `built in ${r.ms} ms`}, ${r.size} bytes, sha256 ${r.sha256}, config block at byte ${r.contentOffset} (${r.contentBytes} bytes)\n`);
    return EXIT_OK;
  },
};

export const nodesVmediaBootCommand: Command = {
  summary: 'boot a server once from the stage1 ISO through its BMC (Redfish virtual media)',
  usage: `usage: podboot nodes vmedia-boot --pod NAME SERVER [--state DIR] [--pod-file FILE] [--ttl SECONDS]

For sites without PXE. SERVER is a MAC or a host name of spec.nodes with a
bmc entry. Mints a short-lived install token for the server from the pod's
state (STATE/NAME), hands its BMC the URL of the server's ISO
(https://POD/vmedia/<mac>.iso?token=…, or http:// when its bmc entry sets
plainHttpMedia), asks for one boot from CD and resets the server. The pod
fills the ISO's config block (static address, the pod's URL, the token)
while it streams. The BMC password is read from bmc.passwordFile; neither it
nor the token is printed or logged.

  --state DIR       state root of the central node (${STATE_DEFAULT_HELP})
  --pod-file FILE   the pod file (default STATE/NAME/pod.yaml, the running pod's copy)
  --ttl SECONDS     how long the token in the URL stays good (default 3600)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { pod: { type: 'string' }, state: { type: 'string' }, 'pod-file': { type: 'string' }, ttl: { type: 'string' } },
      allowPositionals: true,
    });
    if (!values.pod) throw new UsageError('--pod NAME is required');
    if (positionals.length !== 1) throw new UsageError('expected exactly one SERVER (a MAC or a host name)');
    const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) throw new UsageError(`--ttl ${values.ttl}: not a positive number of seconds`);
    const [{ defaultStateRoot }, { loadPodFile }, { formatProblem }, { normalizeMac }, { createLogger, logConsole }, { bootServerFromIso }] = await Promise.all([
      import('../../config/state-root.js'),
      import('../../config/load.js'),
      import('../../config/types.js'),
      import('../../net/mac.js'),
      import('../../log.js'),
      import('../../redfish/vmedia-boot.js'),
    ]);
    const root = values.state ?? defaultStateRoot();
    const podFile = values['pod-file'] ?? join(root, values.pod, 'pod.yaml');
    const loaded = loadPodFile(podFile);
    if (!loaded.pod) {
      for (const p of loaded.problems) process.stderr.write(formatProblem(p) + '\n');
      return EXIT_FAILURE;
    }
    const pod = loaded.pod;
    if (pod.name !== values.pod) throw new UsageError(`${podFile} is pod ${pod.name}, not ${values.pod}`);
    const wanted = positionals[0]!;
    const mac = normalizeMac(wanted);
    const node = pod.nodes.find((n) => (mac ? n.mac === mac : n.hostname?.toLowerCase() === wanted.toLowerCase()));
    if (!node) {
      process.stderr.write(`podboot nodes vmedia-boot: ${wanted} is not in spec.nodes of ${podFile}\n`);
      return EXIT_FAILURE;
    }
    const log = createLogger({ pod: pod.name, node: node.mac }, { destination: logConsole('json', 2).destination });
    try {
      const r = await bootServerFromIso({ pod, node, podStateDir: join(root, pod.name), log, ttlSec: ttl });
      process.stdout.write(`${node.mac}: ${r.slot} holds ${r.isoPath}; boot once from Cd; ${r.reset} sent to ${r.system}\n`);
      return EXIT_OK;
    } catch (err) {
      process.stderr.write(`podboot nodes vmedia-boot: ${(err as Error).message}\n`);
      return EXIT_FAILURE;
    } finally {
      log.flush();
    }
  },
};
