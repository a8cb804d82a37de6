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
  }

  async start(): Promise<void> {
    warmUpDhcp(this.config, this.log);
    this.checkpointer = startCheckpointer(this.db, this.log);
    await this.dhcpServer.start();
    this.log.info({ leases: this.dhcp.leaseCount }, 'pod instance started');
  }

  async stop(): Promise<void> {
    await this.dhcpServer.stop();
    await this.checkpointer?.stop();
    this.db.close();
    this.log.info('pod instance stopped');
  }
}
