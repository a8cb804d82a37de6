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
   * Writes all records in one transaction (upsert by address), and with them
   * the rows about servers the same exchanges decided (DHCP's group commit).
   * When it returns, all of it survives a crash of this process (and, with
   * durability 'power', a power loss); when it throws, none of it was written.
   */
  commit(records: readonly LeaseRecord[], nodes?: NodeWrites): void;
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
  /** a booted-from-disk server: whether its node agent reports in (src/install/liveness.ts) */
  liveness?: Liveness;
  /** the last heartbeat of its node agent */
  heartbeat?: Heartbeat;
  /** the image (name@version, or sha256:HEX when the pod no longer assigns it) its disk holds */
  image?: string;
}

export type Liveness = 'active' | 'silent';

/** What a node agent's heartbeat carries; a figure it could not read is absent. */
export interface NodeMetrics {
  /** seconds since the server booted */
  uptime?: number;
  load1?: number;
  load5?: number;
  load15?: number;
  /** bytes */
  memTotal?: number;
  memAvailable?: number;
  /** the root filesystem, bytes */
  diskSize?: number;
  diskUsed?: number;
}

export interface Heartbeat {
  /** unix seconds */
  time: number;
  metrics: NodeMetrics;
}

/**
 * An install-state change and the event row that records it (its kind is the
 * new state): written in one transaction, never one without the other.
 */
export interface InstallStateChange {
  mac: string;
  state: string;
  /** unix seconds */
  time: number;
  /** why the install failed (state `failed`); any other state clears it */
  reason?: string;
  /** the event's detail */
  detail?: string;
  /** `installed`: the image now on the disk (an `installing` change clears it: the disk is being rewritten) */
  image?: string;
  /** false: the change without its event row (a bounded store dropped the event: src/install/admission.ts) */
  event?: boolean;
}

/** Rows about servers that another component commits later, with its own (DHCP: with the leases). */
export interface NodeWrites {
  /** install-state changes, each with its event */
  changes: readonly InstallStateChange[];
  /** events that change no state */
  events: readonly NodeEvent[];
}

export interface NodeStateStore {
  /** install state of a server, or undefined if it never got that far */
  installState(mac: string): string | undefined;
  /** an install-state change and its event, in one transaction */
  changeInstallState(change: InstallStateChange): void;
  node(mac: string): NodeRecord | undefined;
  nodes(): NodeRecord[];
  /** records a report without a state change */
  touch(mac: string, time: number): void;
  /**
   * A heartbeat of the installed OS: the last one's time and figures kept in
   * place of the one before, last seen moved on; no event row (one per beat
   * would flood the events).
   */
  recordHeartbeat(mac: string, heartbeat: Heartbeat): void;
  /** a server's liveness (undefined: not watched) and the event recording the change, in one transaction */
  setLiveness(mac: string, liveness: Liveness | undefined, event?: NodeEvent): void;
  /** an operator's reinstall: a new attempt (older tokens die), state back to `discovered`, an event */
  reinstall(mac: string, time: number, by: string): NodeRecord;
  addEvent(event: NodeEvent): void;
  events(mac?: string, limit?: number): NodeEvent[];
  /**
   * Of rows another component will commit (LeaseStore.commit), those this
   * store takes, as they should be written; writes nothing. All of them,
   * unless the store bounds what strangers make a pod write (admission).
   */
  admit(writes: NodeWrites): NodeWrites;
}

/** A server as listed from outside its pod: with the address of the unexpired lease it holds, if any. */
export type NodeWithLease = NodeRecord & { address?: number };

/**
 * A pod's state seen from outside the pod (the central node's API, `podboot
 * nodes`, the lab): what operators read. Opened with openPodState
 * (src/store/pod-state.ts), the one way in from outside; closed after use.
 */
export interface PodStateView {
  /** every server the pod recorded, by MAC, each with its bound unexpired lease's address */
  nodesWithLeases(now: number): NodeWithLease[];
  nodes(): NodeRecord[];
  node(mac: string): NodeRecord | undefined;
  /** newest first */
  events(mac?: string, limit?: number): NodeEvent[];
  close(): void;
}

/** The same, opened for the one write an operator makes from outside: a reinstall. */
export interface PodStateAdmin extends PodStateView {
  /** a new install attempt (older tokens die), state back to `discovered`, an event naming who asked */
  reinstall(mac: string, time: number, by: string): NodeRecord;
  /** an event the central node records in the pod's history; mac '' for one about the pod itself (its cached images) */
  addEvent(event: NodeEvent): void;
}

/** First and last address of a range, both included (uint32). */
export interface AddressRange {
  start: number;
  end: number;
}

/** A management address the pod handed out from its pool, and to whom. */
export interface ManagementAddress {
  mac: string;
  address: number;
  /** unix seconds */
  allocatedAt: number;
}

/**
 * Management addresses of the installed OS (F8) that the pod hands out from
 * spec.managementNetwork.pool to servers without one of their own: one per
 * server, allocated on first need, kept across restarts.
 */
export interface ManagementAddressStore {
  /**
   * The address `mac` holds in `pool`, allocated on first need: the lowest
   * one of the pool no other server holds and not in `reserved` (the pod
   * file's fixed management addresses). An address it holds outside the
   * pool or in `reserved` (the pod file changed since) is given up for a new
   * one. Throws ManagementPoolExhausted (src/store/address-pool.ts) when no
   * address is left.
   */
  managementAddress(mac: string, pool: AddressRange, reserved: ReadonlySet<number>, now: number): number;
  /** every address held, by MAC */
  managementAddresses(): ManagementAddress[];
}
