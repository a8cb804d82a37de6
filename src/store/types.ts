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

export interface NodeRecord {
  mac: string;
  state: string;
  /** install attempt; tokens of an older attempt are refused */
  attempt: number;
  /** unix seconds of the last state change */
  updatedAt: number;
  /** why the last install failed */
  reason?: string;
  /** unix seconds of the last report of any kind (heartbeats included) */
  lastSeen?: number;
}

export interface NodeStateStore {
  /** install state of a server, or undefined if it never got that far */
  installState(mac: string): string | undefined;
  setInstallState(mac: string, state: string, time: number, reason?: string): void;
  node(mac: string): NodeRecord | undefined;
  nodes(): NodeRecord[];
  /** records a report without a state change */
  touch(mac: string, time: number): void;
  /** an operator's reinstall: a new attempt (older tokens die), state back to `discovered`, an event */
  reinstall(mac: string, time: number, by: string): NodeRecord;
  addEvent(event: NodeEvent): void;
  events(mac?: string, limit?: number): NodeEvent[];
}
