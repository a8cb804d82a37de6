// One pod-manager instance: built from its config, its state directory and
// its logger; owns its database and its protocol servers. Two instances in
// one process share nothing mutable.
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { PodConfig } from '../config/types.js';
import { DhcpServer } from '../dhcp/server.js';
import { DhcpService } from '../dhcp/service.js';
import { warmUpDhcp } from '../dhcp/warmup.js';
import { startCheckpointer, type Checkpointer } from '../store/checkpointer.js';
import { openPodDatabase, type Durability } from '../store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../store/sqlite-store.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_STAGE1 } from '../bootcfg/types.js';
import { GeneratedFilesResolver, podServer } from '../tftp/generated-resolver.js';
import { BootTreeResolver, FirstMatchResolver } from '../tftp/resolver.js';
import { TftpServer, tftpOptionsFromPod } from '../tftp/server.js';
import { PodNodeDirectory } from './node-directory.js';

export interface PodInstanceOptions {
  stateDir: string;
  durability?: Durability;
}

export class PodInstance {
  readonly db: Database.Database;
  readonly dhcp: DhcpService;
  readonly nodeState: SqliteNodeStateStore;
  private readonly dhcpServer: DhcpServer;
  private checkpointer?: Checkpointer;
  private tftpServer?: TftpServer;
  /** the pod's boot tree (bootloaders, stage1 kernel and initrd), served read-only over TFTP */
  readonly bootDir: string;

  constructor(
    readonly config: PodConfig,
    readonly log: Logger,
    opts: PodInstanceOptions,
  ) {
    this.db = openPodDatabase(opts.stateDir, opts.durability);
    const leases = new SqliteLeaseStore(this.db);
    this.nodeState = new SqliteNodeStateStore(this.db);
    this.dhcp = new DhcpService(config, leases, this.nodeState, log);
    this.dhcpServer = new DhcpServer(this.dhcp, leases, log, { address: config.listen.address, port: config.listen.dhcpPort });
    this.bootDir = join(opts.stateDir, 'boot');
    mkdirSync(this.bootDir, { recursive: true, mode: 0o755 });
  }

  async start(): Promise<void> {
    try {
      warmUpDhcp(this.config, this.log);
    } catch (err) {
      // Only latency is at stake: serve cold rather than not at all.
      this.log.warn({ err }, 'DHCP warm-up failed; serving without it');
    }
    this.checkpointer = startCheckpointer(this.db, this.log);
    await this.dhcpServer.start();
    // Generated per-server configs first, then files from the boot tree.
    const generated = new GeneratedFilesResolver({ server: podServer(this.config), stage1: DEFAULT_STAGE1, directory: new PodNodeDirectory(this.config, this.nodeState) });
    this.tftpServer = new TftpServer(tftpOptionsFromPod(this.config), new FirstMatchResolver([generated, await BootTreeResolver.open(this.bootDir)]), this.log);
    await this.tftpServer.start();
    this.log.info({ leases: this.dhcp.leaseCount }, 'pod instance started');
  }

  async stop(): Promise<void> {
    await this.tftpServer?.stop();
    await this.dhcpServer.stop();
    await this.checkpointer?.stop();
    this.db.close();
    this.log.info('pod instance stopped');
  }
}
