import { defaultStateRoot, ROOT_STATE_DIR, STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { blockedAncestor, NOBODY_UID } from '../../pod-vm/pod-user.js';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { defaultPodPath } from '../../config/load.js';
import { createLogger, logConsole } from '../../log.js';
import { InstanceLogRelay } from '../../log-relay.js';
import { chooseLogFormat, LOG_FORMAT_HELP, LOG_LEVEL_HELP } from '../log-format.js';
import { Supervisor } from '../../pod-vm/supervisor.js';
import { shareStage1 } from '../../pod-vm/stage1-share.js';
import { onReloadSignal, untilSignal } from '../signals.js';
import { statSync } from 'node:fs';
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isIPv4 } from 'node:net';
import { MetricsAggregator } from '../../metrics/aggregate.js';
import { centralCredentials, nodeCa, operatorToken } from '../../api/credentials.js';
import { CentralApi } from '../../api/server.js';
import { TargetRegistry } from '../../api/targets.js';
import { CENTRAL_API_SOCKET, registerKey, registrationToken } from '../../pod-link/registration.js';
import { DEFAULT_INSTANCE_NODE_OPTIONS } from '../../pod-vm/node-options.js';
import { ALERT_USAGE, alertingConfig, startAlerting } from '../../alerts/central.js';
import { supervisorFamilies } from '../../metrics/supervisor-metrics.js';
import { DEFAULT_IMAGE_CHECK_INTERVAL_SEC, ImageCheckSchedule } from '../../catalog/image-check-schedule.js';
import { withCatalog } from '../../catalog/catalog-session.js';
import { checkPodImages } from '../../catalog/pod-cache.js';
import { parseDuration } from '../../config/duration.js';

/** The CLI entry the supervisor runs for each pod (`podboot pod run`). */
const CLI_SCRIPT = fileURLToPath(new URL('../main.js', import.meta.url));

export const serveCommand: Command = {
  summary: 'run the central node: one supervised instance per pod file in a directory',
  usage: `usage: podboot serve [--pods DIR] [--state DIR] [--api ADDR:PORT] [--api-name NAME,…] [--ca DIR] [--token-file FILE]
                     [--stage1 DIR] [--instance-log-max MiB] [--instance-node-options "FLAGS"]
                     [--pod-user auto|root] [--no-limits] [--log-format json|pretty]
                     [--alert-webhook URL]… [--alert-rules FILE] [--alert-interval SEC]
                     [--catalog DIR] [--image-check-interval DURATION]

The central node. Starts one pod instance (its own process: \`podboot pod run\`)
per pod file in DIR (*.yaml, *.yml), restarts an instance that dies (with
backoff; a crash loop is reported as such), and follows DIR: a new file starts
its pod, a changed file reloads it (leases kept), a removed file stops it, and
a file with problems is refused with file:line while every running pod goes on.

With no --pods it runs the embedded example pod (examples/default-pod.yaml:
loopback address, high ports) so a new install can be seen working without
touching a network.

  --pods DIR        directory of pod files
  --state DIR       state root; each pod keeps its database, its running copy of
                    its file (pod.yaml), its log (instance.log) and its metrics
                    socket in DIR/<pod> (${STATE_DEFAULT_HELP})
  --api ADDR:PORT   the central HTTPS API, /metrics and the Prometheus
                    service-discovery list (default 127.0.0.1:9443; port 0 picks
                    one; 'off' runs no API)
  --api-name NAME,… DNS names the API's certificate carries besides localhost
                    and its address, for operators who reach the node (and its
                    web page) by name
  --ca DIR          CA directory (podboot ca init) that issues the TLS
                    certificates of the API and of every pod's HTTPS server;
                    without it the node creates a local CA in STATE/ca on first
                    start and logs that its certificates are self-issued
  --token-file FILE operator token (default STATE/central/operator.token,
                    created on first start with mode 0600)
  --stage1 DIR      a built stage1 every pod lays into its boot tree
                    (podboot pod run --stage1)
  --pod-user auto|root  auto (default): as root, the node runs each pod as its
                    own unprivileged uid (allocated once, recorded in
                    STATE/pod-users.json), keeping only the capability to bind
                    ports below 1024; root: pods run as root
  --no-limits       do not apply spec.limits (memory, pids, CPU weight) through
                    cgroups; \`podboot pods status\` then says they are not enforced
  --instance-log-max MiB  rotate a pod's instance.log to instance.log.1 past
                    this size (default 64)
  --instance-node-options "FLAGS"  Node/V8 flags for every pod instance
                    (default "${DEFAULT_INSTANCE_NODE_OPTIONS}": a 2 MiB young
                    generation, ~12 MiB less per idle instance; "" for V8's
                    own defaults; see docs/operations.md, Sizing)
${ALERT_USAGE}
  --catalog DIR     the image catalog (podboot images pull) the pods' cached
                    copies are checked against and repaired from (default
                    $PODBOOT_CATALOG or ./catalog)
  --image-check-interval DURATION  how often every pod's cached image copies
                    are hashed again (90s, 30m, 6h, 1d; default 6h, the first
                    run 5 minutes after the start; 0: never); a bad copy is
                    moved aside and placed again from the catalog, verified
                    against the CA's root (podboot images check, docs/operations.md)
${LOG_FORMAT_HELP}

The console shows the pod instances' lines too (a DHCP exchange, an install
step), read from each pod's STATE/<pod>/instance.log, which keeps them;
\`podboot logs\` reads them through the API.

${LOG_LEVEL_HELP}

Signals: SIGHUP reads DIR again at once (as a change seen by the watch would:
changed files reload their pods, leases kept) and the central API's
certificate files, serving a changed certificate to new connections; nothing
stops. SIGTERM and SIGINT stop every pod gracefully, then the node.

The API's address, CA root and token file are written to STATE/central/api.json
for \`podboot pods\` and \`podboot events\`. Details: docs/operations.md.`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        pods: { type: 'string' },
        state: { type: 'string' },
        api: { type: 'string' },
        'api-name': { type: 'string' },
        ca: { type: 'string' },
        'token-file': { type: 'string' },
        'instance-node-options': { type: 'string' },
        stage1: { type: 'string' },
        'instance-log-max': { type: 'string' },
        'pod-user': { type: 'string' },
        'no-limits': { type: 'boolean' },
        'log-format': { type: 'string' },
        'alert-webhook': { type: 'string', multiple: true },
        'alert-rules': { type: 'string' },
        'alert-interval': { type: 'string' },
        catalog: { type: 'string' },
        'image-check-interval': { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.pods) {
      try {
        if (!statSync(values.pods).isDirectory()) throw new Error('not a directory');
      } catch (err) {
        process.stderr.write(`podboot serve: --pods ${values.pods}: ${(err as Error).message}\n`);
        return EXIT_FAILURE;
      }
    }
    const stateRoot = values.state ?? defaultStateRoot();
    const podUser = values['pod-user'] ?? 'auto';
    if (podUser !== 'auto' && podUser !== 'root') throw new UsageError(`--pod-user must be auto or root, not ${podUser}`);
    const logMaxMiB = Number(values['instance-log-max'] ?? 64);
    if (!(logMaxMiB > 0)) throw new UsageError(`--instance-log-max must be a positive number of MiB, not ${values['instance-log-max']}`);
    const api = values.api === 'off' ? undefined : parseListen(values.api ?? '127.0.0.1:9443');
    const imageCheckSec = values['image-check-interval'] === '0' ? 0 : parseDuration(values['image-check-interval'] ?? DEFAULT_IMAGE_CHECK_INTERVAL_SEC);
    if (imageCheckSec === undefined) throw new UsageError(`--image-check-interval must be a duration such as 30m, 6h or 1d, or 0 for never, not ${values['image-check-interval']}`);
    const dns = [
      'localhost',
      ...(values['api-name'] ?? '')
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean),
    ];
    for (const n of dns) if (!/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(n)) throw new UsageError(`--api-name: '${n}' is not a DNS name`);
    let alerting: ReturnType<typeof alertingConfig>;
    try {
      alerting = alertingConfig({ webhooks: values['alert-webhook'], rules: values['alert-rules'], interval: values['alert-interval'] });
    } catch (err) {
      process.stderr.write(`podboot serve: ${(err as Error).message}\n`);
      return EXIT_FAILURE;
    }
    const out = logConsole(chooseLogFormat(values['log-format']));
    const log = createLogger({ node: 'central' }, { destination: out.destination });
    // The pods' own lines (their instance.log files) on this console too.
    const instanceLogs = new InstanceLogRelay({ console: out, log });
    // From here on SIGHUP reloads rather than kills (Node's default); until the
    // pods have started there is nothing to reload: the start reads everything.
    let reload = async (): Promise<void> => log.info({ signal: 'SIGHUP' }, 'reload requested (SIGHUP) while starting: nothing to reload yet');
    const stopReloads = onReloadSignal(() => reload());
    if (podUser === 'auto' && process.getuid?.() === 0) {
      // Said once, at start, rather than as every pod's failed start.
      await mkdir(stateRoot, { recursive: true });
      const blocked = blockedAncestor(join(stateRoot, 'pod'), NOBODY_UID);
      if (blocked) {
        process.stderr.write(
          `podboot serve: pods run as their own unprivileged users and must pass through ${blocked.dir} (mode ${blocked.mode.toString(8).padStart(4, '0')}) to reach their state in ${stateRoot}: chmod o+x ${blocked.dir}, or give another --state (the default as root is ${ROOT_STATE_DIR}), or --pod-user root\n`,
        );
        return EXIT_FAILURE;
      }
    }
    // Made before any pod starts: instances started together would race to create it.
    const { ca, selfIssued } = await nodeCa(stateRoot, values.ca, log);
    // Root's alone: pods (their own users) must not even list it.
    await keepPrivate(ca.dir, log);
    // Pods register themselves as scrape targets with a token derived from this key (docs/operations.md).
    const regKey = api ? await registerKey(stateRoot) : undefined;
    const supervisor = new Supervisor({
      podsDir: values.pods,
      files: values.pods ? undefined : [defaultPodPath()],
      stateRoot,
      node: process.execPath,
      cliScript: CLI_SCRIPT,
      logMaxBytes: Math.round(logMaxMiB * 1024 * 1024),
      // No --ca for pods: the node issues each its certificate before starting it.
      podArgs: values.stage1 ? ['--stage1', await shareStage1(values.stage1, stateRoot, log)] : [],
      caDir: ca.dir,
      podUser,
      limits: !values['no-limits'],
      nodeOptions: (values['instance-node-options'] ?? DEFAULT_INSTANCE_NODE_OPTIONS).split(/\s+/).filter(Boolean),
      registerToken: regKey ? (pod) => registrationToken(regKey, pod) : undefined,
      instanceLogs,
      log,
    });
    let central: CentralApi | undefined;
    let imageChecks: ImageCheckSchedule | undefined;
    // The catalog the pods' cached copies are checked against and placed from (the schedule and a rollout's start).
    const copySource = {
      catalogDir: values.catalog ?? process.env.PODBOOT_CATALOG ?? 'catalog',
      rootCaFile: ca.paths.rootCert,
      crlFiles: [ca.paths.codeSigningCrl, ca.paths.rootCrl],
      log: log.child({ component: 'image-check' }),
    };
    // One aggregation for the API's /metrics and the alert evaluator.
    const metrics = new MetricsAggregator(() => supervisor.pods().map((pod) => ({ pod, socketPath: supervisor.metricsSocket(pod) })));
    let externalURL = 'http://localhost';
    let reloadCredentials = async (): Promise<void> => undefined;
    // The API (and api.json) come first, so the pods find it for their first registration.
    if (api && regKey) {
      const tokenFile = values['token-file'] ?? join(stateRoot, 'central', 'operator.token');
      const token = await operatorToken(tokenFile, !values['token-file']);
      const credentialsOf = { ca, selfIssued, ip: [api.address === '0.0.0.0' ? '127.0.0.1' : api.address], dns, log };
      const credentials = await centralCredentials(credentialsOf);
      reloadCredentials = async () => {
        if (central?.updateCredentials(await centralCredentials(credentialsOf))) log.info({ ca: ca.dir }, 'central API certificate reloaded');
      };
      const targets = new TargetRegistry(regKey);
      central = new CentralApi({
        ...api,
        credentials,
        token,
        tokenFile: resolve(tokenFile),
        supervisor,
        stateRoot,
        metrics,
        log,
        targets,
        ownFamilies: () => imageChecks?.families() ?? [],
        checkImages: (pod, refs) => withCatalog(copySource, (c) => checkPodImages({ stateRoot, pod, refs, ...c, log: copySource.log })),
        socketPath: join(stateRoot, 'central', CENTRAL_API_SOCKET),
      });
      try {
        await central.start();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'central API could not start');
        return EXIT_FAILURE;
      }
      // Pods (their own users) register through the socket; each authenticates with its own token.
      await chmod(join(stateRoot, 'central', CENTRAL_API_SOCKET), 0o666).catch(() => undefined);
      const host = api.address === '0.0.0.0' ? '127.0.0.1' : api.address;
      externalURL = `https://${host}:${central.port}`;
      await mkdir(join(stateRoot, 'central'), { recursive: true });
      await writeFile(
        join(stateRoot, 'central', 'api.json'),
        JSON.stringify({ url: `https://${host}:${central.port}`, ca: resolve(credentials.caFile), tokenFile: resolve(tokenFile) }, null, 2) + '\n',
      );
      // Where an operator points a browser (docs/web-page.md); the token is in tokenFile, never in a log.
      log.info({ url: `https://${host}:${central.port}/`, ca: resolve(credentials.caFile), tokenFile: resolve(tokenFile) }, 'operator page');
    }
    instanceLogs.start();
    await supervisor.start();
    log.info({ pods: supervisor.pods(), refused: supervisor.refusedFiles().map((r) => r.file), state: stateRoot, dir: values.pods ?? '(embedded pod)' }, 'central node serving');
    // The pods' cached image copies hashed again on a schedule, repaired from the catalog (src/catalog/pod-cache.ts).
    if (imageCheckSec > 0) {
      imageChecks = new ImageCheckSchedule({ ...copySource, stateRoot, intervalMs: imageCheckSec * 1000, pods: () => supervisor.pods() });
      imageChecks.start();
    }
    const alerts = alerting && startAlerting(alerting, { metrics, own: () => [...supervisorFamilies(supervisor.status()), ...(imageChecks?.families() ?? [])], externalURL, log });
    reload = async () => {
      log.info({ signal: 'SIGHUP' }, 'reload requested (SIGHUP)');
      await supervisor.rescan();
      // A certificate that cannot be read (half-copied, wrong key) leaves the one in use serving.
      await reloadCredentials().catch((err: Error) => log.error({ err: err.message }, 'central API certificate could not be re-read; the one in use is kept'));
      log.info({ pods: supervisor.pods(), refused: supervisor.refusedFiles().map((r) => r.file) }, 'reload done');
    };
    const signal = await untilSignal();
    stopReloads();
    log.info({ signal }, 'stopping');
    await alerts?.stop();
    await imageChecks?.stop();
    // Instances first: they deregister from the API on their way out.
    await supervisor.stop();
    await instanceLogs.stop();
    await central?.stop();
    log.info('central node stopped');
    return EXIT_OK;
  },
};

async function keepPrivate(dir: string, log: ReturnType<typeof createLogger>): Promise<void> {
  const st = await stat(dir);
  if ((st.mode & 0o077) === 0) return;
  await chmod(dir, 0o700);
  log.warn({ ca: dir, was: (st.mode & 0o777).toString(8) }, 'CA directory was readable by others: now 0700');
}

function parseListen(text: string): { address: string; port: number } {
  const m = text.match(/^(.*):(\d+)$/);
  const port = Number(m?.[2]);
  if (!m || !isIPv4(m[1]!) || port > 65535) throw new UsageError(`--api must be ADDR:PORT with an IPv4 address, not ${text}`);
  return { address: m[1]!, port };
}
