// The pod's side of releases and rollouts: which image each server installs,
// the reboot a rollout asks of a server (answered to its agent's next
// report), and the rollout's steps, every few seconds. The central node
// starts, pauses, promotes and rolls back by writing the same database
// (src/rollout/central.ts); this driver moves a rollout on from there.
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { formatStage2Ref } from '../config/stage2-ref.js';
import type { PodConfig } from '../config/types.js';
import { INSTALLED_STATES } from '../install/state.js';
import type { NodeRecord, NodeStateStore } from '../store/types.js';
import { OPEN_PHASES, type Op, type Rollout, STEERING_STATES, step } from './plan.js';
import { RolloutStore } from './store.js';

const POD_FILE = 'pod file';
const OPEN = [...OPEN_PHASES];
const STEERING = [...STEERING_STATES];

export class PodRollouts {
  readonly store: RolloutStore;
  private readonly pins = new Map<string, string>();
  private timer?: NodeJS.Timeout;

  constructor(
    db: Database.Database,
    private readonly nodes: NodeStateStore,
    private readonly pod: PodConfig,
    private readonly log: Logger,
  ) {
    this.store = new RolloutStore(db);
    for (const n of pod.nodes) if (n.stage2) this.pins.set(n.mac, formatStage2Ref(n.stage2));
  }

  /**
   * The pod file's spec.stage2 is the first release, and an operator who
   * edits it has chosen a new one: it becomes active (the one before it,
   * previous) when it differs from what the file said at the last start.
   */
  syncPodFile(now: number): void {
    if (!this.pod.stage2) return;
    const ref = formatStage2Ref(this.pod.stage2);
    const lastFromFile = this.store.releaseHistory(1000).find((c) => c.by === POD_FILE && c.role === 'active')?.ref;
    const active = this.store.release('active');
    if (active !== undefined && lastFromFile === ref) return;
    if (active === ref) return;
    this.store.transaction(() => {
      if (active) this.store.setRole({ time: now, ref: active, role: 'previous', by: POD_FILE, why: `spec.stage2 is now ${ref}` });
      this.store.setRole({ time: now, ref, role: 'active', by: POD_FILE, why: 'spec.stage2 in the pod file' });
    });
    this.log.info({ image: ref, previous: active }, 'release from the pod file');
  }

  /** name@version this server installs: its pin, else a rollout's, else the pod's active release. */
  assigned(mac: string): string | undefined {
    const pin = this.pins.get(mac);
    if (pin) return pin;
    const row = this.store.steering(mac, OPEN, STEERING);
    if (row) return row.image;
    return this.store.release('active') ?? (this.pod.stage2 ? formatStage2Ref(this.pod.stage2) : undefined);
  }

  /**
   * A report from a server (`scope` says which token made it): when a
   * rollout asked for this server, the pod takes it back for a new install
   * (an installed one: a new attempt; a failed one: as it is) and the answer
   * tells its agent to reboot into the network boot.
   */
  onReport(mac: string, scope: 'install' | 'node', node: NodeRecord | undefined, now: number): 'reboot' | undefined {
    const row = this.store.steering(mac, OPEN, ['requested']);
    if (!row || !node) return undefined;
    const installed = scope === 'node' && INSTALLED_STATES.has(node.state);
    const failed = scope === 'install' && node.state === 'failed';
    if (!installed && !failed) return undefined;
    const by = `rollout ${row.rollout} (${row.pass})`;
    const taken = this.store.transaction(() => {
      if (!this.store.updateServer(row.rollout, row.pass, mac, { state: 'installing', startedAt: now }, 'requested')) return false;
      if (installed) this.nodes.reinstall(mac, now, by);
      else this.nodes.addEvent({ time: now, mac, kind: 'reinstall', detail: `${by}: after failed(${node.reason ?? 'other'})` });
      return true;
    });
    if (!taken) return undefined;
    this.log.info({ mac, rollout: row.rollout, pass: row.pass, image: row.image, from: node.state }, 'rollout: reboot asked of the server');
    return 'reboot';
  }

  /** One step of the newest open rollout. */
  tick(now: number): void {
    const r = this.store.latest();
    if (!r || !OPEN_PHASES.has(r.phase)) return;
    const ops = step(r, this.store.servers(r.id), (mac) => this.nodes.node(mac), now);
    if (!ops.length) return;
    const applied = this.store.transaction(() => this.apply(r, ops, now));
    if (!applied) return;
    for (const op of ops) {
      if (op.kind === 'phase') this.log.info({ rollout: r.id, from: r.phase, to: op.phase, reason: op.reason }, 'rollout phase');
      else if (op.kind === 'server' && op.state !== 'pending') this.log.info({ mac: op.mac, rollout: r.id, pass: op.pass, state: op.state, detail: op.detail }, 'rollout server');
    }
  }

  /** All of a step or none: false when the central node changed the rollout meanwhile. */
  private apply(r: Rollout, ops: Op[], now: number): boolean {
    for (const op of ops) {
      if (op.kind === 'phase') {
        if (!this.store.setPhase(r.id, r.phase, op.phase, now, { pausedFrom: op.pausedFrom ?? null, reason: op.reason ?? null })) {
          throw new Error('rollout changed meanwhile');
        }
      } else if (op.kind === 'server') {
        const { kind: _k, pass, mac, ...change } = op;
        this.store.updateServer(r.id, pass, mac, change);
      } else {
        this.nodes.addEvent({ time: now, mac: op.mac, kind: op.event, detail: op.detail });
      }
    }
    return true;
  }

  start(every = 2000): void {
    const run = () => {
      try {
        this.tick(Math.floor(Date.now() / 1000));
      } catch (err) {
        const msg = (err as Error).message;
        if (msg !== 'rollout changed meanwhile') this.log.error({ err: msg }, 'rollout step failed');
      }
    };
    this.timer = setInterval(run, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
