// The pod's persistent state, behind narrow interfaces so protocol code never
// sees SQL and a second backend (e.g. PostgreSQL for a central HA node) can be
// added without touching it.

export type LeaseState = 'bound' | 'released' | 'declined' | 'expired';

export interface LeaseRecord {
  /** the leased address, uint32; one row per address */
  address: number;
  /** option 61 or hardware address (see ClientRequest.clientKey); '' for declined addresses */
  clientKey: string;
  mac: string;
  hostname?: string;
  state: LeaseState;
  /** unix seconds */
  starts: number;
  ends: number;
  subnet: string;
}

export interface LeaseStore {
  loadAll(): LeaseRecord[];
  /**
   * Writes all records in one transaction (upsert by address). When it
   * returns, the records survive a crash of this process (and, with
   * durability 'power', a power loss).
   */
  commit(records: readonly LeaseRecord[]): void;
}

export interface NodeEvent {
  time: number;
  mac: string;
  kind: string;
  detail?: string;
}

export interface NodeStateStore {
  /** install state of a server, or undefined if it never got that far */
  installState(mac: string): string | undefined;
  setInstallState(mac: string, state: string, time: number): void;
  addEvent(event: NodeEvent): void;
  events(mac?: string, limit?: number): NodeEvent[];
}
