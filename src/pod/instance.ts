// One pod-manager instance: built from its config, its state directory and
// its logger; owns its database and its protocol servers. Two instances in
// one process share nothing mutable.
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { DEFAULT_IMAGE_STREAMS, type PodConfig } from '../config/types.js';
import { DhcpServer } from '../dhcp/server.js';
import { DhcpService } from '../dhcp/service.js';
import { warmUpDhcp } from '../dhcp/warmup.js';
import { startCheckpointer, type Checkpointer } from '../store/checkpointer.js';
import { openPodDatabase, type Durability } from '../store/database.js';
import { SqliteLeaseStore, SqliteManagementAddressStore, SqliteNodeStateStore } from '../store/sqlite-store.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_STAGE1 } from '../bootcfg/types.js';
import { GeneratedFilesResolver, podServer } from '../tftp/generated-resolver.js';
import { BootTreeResolver, FirstMatchResolver } from '../tftp/resolver.js';
import { TftpServer, tftpOptionsFromPod } from '../tftp/server.js';
import { PodNodeDirectory } from './node-directory.js';
import { HttpBootServer } from '../http-boot/server.js';
import { loadTokenSecret, TokenAuthority } from '../install/tokens.js';
import { packageRoot } from '../package-root.js';
import { KickstartSource, podSources, rackOf } from './boot-services.js';
import { Stage2Library } from './stage2-library.js';
import { PodRollouts } from '../rollout/pod-driver.js';
import type { Stage2Set } from '../http-boot/stage2-files.js';
import { SeedSource } from './seed-source.js';
import { ensurePodTls, type PodTlsSource } from './tls.js';
import { AdmittingNodeStore, type AdmissionLimits } from '../install/admission.js';
import { bootConfigAccess } from '../install/boot-config-access.js';
import { InstallCredentials } from '../install/credentials.js';
import { SqliteTokenUseStore } from '../store/token-uses.js';
import { RateLimitedLog } from '../log-limit.js';
import type { ClientInfo } from '../tftp/resolver.js';
import { checkLiveness } from '../install/liveness.js';
import { PodTaskService } from '../tasks/pod-service.js';
import { VmediaIsoSource, vmediaAddress } from '../vmedia/iso-source.js';
import { parseIPv4 } from '../net/ipv4.js';
import { ChunkBoard } from '../share/chunk-board.js';
import { DEFAULT_SHARING, ShareService } from '../share/service.js';
import { SwarmTlsKeys } from '../share/swarm-tls.js';

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

export interface PodInstanceOptions {
  stateDir: string;
  durability?: Durability;
  /** where the pod's TLS certificate comes from when <state>/tls has none */
  tlsSource?: PodTlsSource;
  /** lays stage1 (bootloaders, kernel, initrd with the root CA) into the boot tree before serving */
  prepareBootTree?: (bootDir: string, rootCa: Buffer) => Promise<void>;
  /** caps on unknown servers and on event rows per server (tests lower them) */
  admission?: AdmissionLimits;
  /** a stage1 build holding the virtual-media ISO (vmedia/stage1.iso), streamed per server at /vmedia/<mac>.iso */
  stage1Dir?: string;
}

export class PodInstance {
  readonly db: Database.Database;
  readonly dhcp: DhcpService;
  readonly nodeState: SqliteNodeStateStore;
  /** the store as protocol code writes it: unknown servers and event rows capped (src/install/admission.ts) */
  readonly nodes: AdmittingNodeStore;
  private readonly dhcpServer: DhcpServer;
  private checkpointer?: Checkpointer;
  private tftpServer?: TftpServer;
  private httpServer?: HttpBootServer;
  private tokens?: TokenAuthority;
  /** remote tasks for the node agents (src/tasks/) */
  readonly tasks: PodTaskService;
  /** rack peers sharing image chunks: who holds and who fetches what (src/share/) */
  readonly share: ShareService;
  private warming?: Promise<void>;
  /** marks booted-from-disk servers silent when their heartbeats stop (src/install/liveness.ts) */
  private livenessTimer?: NodeJS.Timeout;
  /** aborts a warm-up still running when the instance stops */
  private readonly stopping = new AbortController();
  /** The stage2 versions the pod holds side by side, each read when first asked for (onboarding may come after start). */
  private readonly stage2: Stage2Library;
  /** releases and rollouts: which image each server installs (src/rollout/) */
  readonly rollouts: PodRollouts;
  /** the pod's boot tree (bootloaders, stage1 kernel and initrd), served read-only over TFTP */
  readonly bootDir: string;

  constructor(
    readonly config: PodConfig,
    readonly log: Logger,
    private readonly opts: PodInstanceOptions,
  ) {
    this.db = openPodDatabase(opts.stateDir, opts.durability);
    const leases = new SqliteLeaseStore(this.db);
    this.nodeState = new SqliteNodeStateStore(this.db);
    this.nodes = new AdmittingNodeStore(this.nodeState, config, log, opts.admission);
    this.dhcp = new DhcpService(config, leases, this.nodes, log);
    this.dhcpServer = new DhcpServer(this.dhcp, leases, log, { address: config.listen.address, port: config.listen.dhcpPort });
    this.bootDir = join(opts.stateDir, 'boot');
    this.tasks = new PodTaskService({ pod: config.name, log, db: this.db, stateDir: opts.stateDir });
    this.share = new ShareService({
      config: config.imageSharing ?? DEFAULT_SHARING,
      board: new ChunkBoard(),
      keys: new SwarmTlsKeys(config.name),
      rackOf: rackOf(config),
      image: (mac) => this.stage2Of(mac),
      event: (mac, kind, detail) => this.nodeState.addEvent({ time: Math.floor(Date.now() / 1000), mac, kind, detail }),
      log,
    });
    this.stage2 = new Stage2Library(join(opts.stateDir, 'images'), log);
    this.rollouts = new PodRollouts(this.db, this.nodes, config, log);
    mkdirSync(this.bootDir, { recursive: true, mode: 0o755 });
  }

  async start(): Promise<void> {
    this.checkpointer = startCheckpointer(this.db, this.log);
    await this.dhcpServer.start();
    const tls = await ensurePodTls(this.config, this.opts.stateDir, this.opts.tlsSource, this.log);
    await this.opts.prepareBootTree?.(this.bootDir, tls.rootCa);
    const secret = loadTokenSecret(join(this.opts.stateDir, 'token.key'));
    const tokens = new TokenAuthority(secret, this.nodeState);
    this.tokens = tokens;
    const credentials = new InstallCredentials({
      pod: this.config.name,
      log: this.log,
      secret,
      tokens,
      nodes: this.nodes,
      uses: new SqliteTokenUseStore(this.db),
      mayProvision: (mac) => this.nodes.mayProvision(mac).ok,
      fromServer: (mac, source, now) => this.fromServer(mac, source, now).allow,
    });
    const refusals = new RateLimitedLog(this.log);
    // One policy for TFTP and plain HTTP: a config with a token goes to its server only.
    const access = (mac: string, client: ClientInfo, name: string): boolean => {
      const d = this.fromServer(mac, client.address, nowSec());
      if (!d.allow)
        refusals.warn(`boot-config:${d.reason}`, { node: mac, file: name, source: client.address, reason: d.reason, detail: d.detail }, 'boot config with an install token refused: not its server');
      return d.allow;
    };
    // Generated per-server configs first, then files from the boot tree.
    const server = podServer(this.config);
    // iPXE fetches kernel and initrd over HTTP (seconds over a WAN); pxelinux and GRUB use TFTP.
    const stage1 = this.config.boot.stage1 === 'http' ? { ...DEFAULT_STAGE1, httpBase: `http://{server}:{httpPort}/boot` } : DEFAULT_STAGE1;
    const generated = new GeneratedFilesResolver({
      server,
      stage1,
      directory: new PodNodeDirectory(this.config, this.nodeState, () => this.dhcp.degraded),
      token: (mac) => credentials.mint(mac, nowSec()),
      access,
    });
    const bootFiles = new FirstMatchResolver([generated, await BootTreeResolver.open(this.bootDir)]);
    this.tftpServer = new TftpServer(tftpOptionsFromPod(this.config), bootFiles, this.log);
    await this.tftpServer.start();
    const { install } = this.config;
    const kickstart = new KickstartSource(this.config, install.kickstart.startsWith('/') ? install.kickstart : join(packageRoot(), 'kickstart', install.kickstart), {
      rootCa: tls.rootCa.toString('utf8'),
      disk: install.disk,
      nodeToken: (mac) => tokens.issue(mac, 'node', nowSec()),
      // {{token}} in a kickstart (the RHEL one calls back with it) is a session: it travels over TLS only.
      installToken: (mac) => credentials.session(mac, nowSec()),
      stage2: (mac) => this.stage2Of(mac),
    });
    const seeds = new SeedSource(this.config, {
      rootCa: tls.rootCa.toString('utf8'),
      nodeToken: (mac) => tokens.issue(mac, 'node', nowSec()),
      attempt: (mac) => this.nodeState.node(mac)?.attempt ?? 1,
      addresses: new SqliteManagementAddressStore(this.db),
      log: this.log,
    });
    this.httpServer = new HttpBootServer(
      {
        address: this.config.listen.address,
        httpPort: this.config.boot.stage1 === 'http' ? this.config.listen.httpPort : undefined,
        httpsPort: this.config.listen.httpsPort,
        tls,
        allowSource: podSources(this.config),
        imageStreams: { ...(this.config.imageStreams ?? DEFAULT_IMAGE_STREAMS), rackOf: rackOf(this.config) },
      },
      {
        pod: this.config.name,
        log: this.log,
        nodes: this.nodes,
        tokens,
        credentials,
        bootFiles,
        stage2: (mac) => this.stage2Of(mac),
        imageRef: (sha256) => this.stage2.refOf(sha256),
        rollouts: this.rollouts,
        kickstart: (mac) => kickstart.render(mac),
        seed: (mac) => seeds.image(mac),
        tasks: this.tasks,
        share: this.share,
        vmedia: new VmediaIsoSource({ pod: this.config, stage1Dir: this.opts.stage1Dir, tokens, state: (mac) => this.nodeState.node(mac)?.state, rootCa: tls.rootCa }),
      },
    );
    this.tasks.start();
    this.rollouts.syncPodFile(nowSec());
    this.rollouts.start();
    await this.httpServer.start();
    this.watchLiveness();
    this.log.info({ leases: this.dhcp.leaseCount }, 'pod instance started');
  }

  /**
   * Runs the DHCP JIT warm-up (src/dhcp/warmup.ts) while the pod serves. Once:
   * a second call returns the first one's promise. Never rejects.
   */
  warmUp(): Promise<void> {
    this.warming ??= (async () => {
      const started = Date.now();
      try {
        const exchanges = await warmUpDhcp(this.config, this.log, { signal: this.stopping.signal });
        this.log.info({ exchanges, ms: Date.now() - started }, this.stopping.signal.aborted ? 'DHCP warm-up cut short: stopping' : 'DHCP warm-up done');
      } catch (err) {
        // Only latency is at stake: serve cold rather than not at all.
        this.log.warn({ err }, 'DHCP warm-up failed; serving without it');
      }
    })();
    return this.warming;
  }

  get tftp(): TftpServer | undefined {
    return this.tftpServer;
  }

  get http(): HttpBootServer | undefined {
    return this.httpServer;
  }

  /** Is `source` the address this pod leased to `mac`, in one of its subnets? */
  private fromServer(mac: string, source: string, now: number) {
    const d = bootConfigAccess({ mac, source, now, leases: this.dhcp.leasesOf(mac), subnets: this.config.subnets });
    if (d.allow || (d.reason !== 'no-lease' && d.reason !== 'lease-expired')) return d;
    // Booted from virtual media, a server asks no DHCP: the static address its ISO block gave it (its fixed
    // address in the pod file, only for servers with a bmc entry) is its own.
    const fixed = vmediaAddress(this.config, mac);
    if (fixed !== undefined && parseIPv4(source.replace(/^::ffff:/i, '')) === parseIPv4(fixed)) return { allow: true as const, address: fixed };
    return d;
  }

  private stage2Of(mac: string): Stage2Set | undefined {
    const ref = this.rollouts.assigned(mac);
    return ref === undefined ? undefined : this.stage2.get(ref);
  }

  /** A token as the pod would hand it out (tests, `podboot nodes token`). */
  issueToken(mac: string, scope: 'install' | 'node'): string {
    if (!this.tokens) throw new Error('pod instance not started');
    return this.tokens.issue(mac, scope, nowSec());
  }

  /**
   * Silence is counted from now at the earliest: servers did not fall silent
   * while the pod itself was down. Checked every heartbeat interval, at least
   * every 10 s, so a silence is seen within one check of its limit.
   */
  private watchLiveness(): void {
    const w = { nodes: this.nodes, log: this.log, heartbeatSeconds: this.config.heartbeatSeconds, watchingSince: nowSec() };
    this.livenessTimer = setInterval(
      () => {
        try {
          checkLiveness(w, nowSec());
        } catch (err) {
          this.log.error({ err }, 'liveness check failed');
        }
      },
      Math.min(Math.max(this.config.heartbeatSeconds, 1), 10) * 1000,
    );
    this.livenessTimer.unref();
  }

  /** Stop (or resume) new installs; leases, TFTP and installs under way go on. */
  setDegraded(on: boolean, reason?: string): void {
    if (this.dhcp.degraded === on) return;
    this.dhcp.degraded = on;
    this.log.warn({ degraded: on, reason }, on ? 'degraded: no new installs' : 'new installs allowed again');
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.livenessTimer);
    await this.warming;
    // Long-polls held for the node agents are answered now, not after the HTTP server's grace.
    this.tasks.stop();
    this.rollouts.stop();
    await this.httpServer?.stop();
    await this.tftpServer?.stop();
    await this.dhcpServer.stop();
    await this.checkpointer?.stop();
    this.db.close();
    this.log.info('pod instance stopped');
  }
}
