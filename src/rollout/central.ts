// The central node's side of rollouts: an operator's start, pause, resume,
// promote and rollback, written into the pod's own database (as tasks and
// reinstalls are); the pod's driver (src/rollout/pod-driver.ts) moves the
// rollout on from there. Before a start the pod's cached copies of the
// target and of the active release are hashed again, and the target is
// placed from the central catalog when the pod has none yet; a rollback
// needs no copy it does not already hold, so it fetches nothing.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { CacheCheckResult } from '../catalog/cache-verdict.js';
import { parseSelector, SelectorError, selects } from '../config/labels.js';
import { loadPodFile } from '../config/load.js';
import { formatStage2Ref, parseStage2Ref } from '../config/stage2-ref.js';
import type { PodConfig } from '../config/types.js';
import { openExistingPodDatabase } from '../store/database.js';
import { SqliteNodeStateStore } from '../store/sqlite-store.js';
import { CanaryError, canaryCount, OPEN_PHASES, type Phase, type Rollout, type RolloutServer, stableOrder } from './plan.js';
import { type Release, type ReleaseChange, RolloutStore } from './store.js';

export const DEFAULT_SERVER_TIMEOUT_SECONDS = 1800;

export class RolloutRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface StartRequest {
  target: string;
  select: string;
  canary: string;
  batch: number;
  maxFailures: number;
  serverTimeoutSeconds: number;
  why?: string;
}

const int = (v: unknown, name: string, min: number, max: number, fallback: number): number => {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new RolloutRequestError(400, `${name}: a whole number ${min}..${max}`);
  return v;
};

/** The API's JSON body for a start, checked. */
export function parseStart(body: Record<string, unknown> | undefined): StartRequest {
  if (!body || typeof body.target !== 'string' || !parseStage2Ref(body.target)) throw new RolloutRequestError(400, 'target: an image as name@version');
  if (body.select !== undefined && typeof body.select !== 'string') throw new RolloutRequestError(400, 'select: a label selector such as role=web');
  if (body.canary !== undefined && typeof body.canary !== 'string' && typeof body.canary !== 'number') throw new RolloutRequestError(400, 'canary: a count or a share (10%)');
  if (body.why !== undefined && typeof body.why !== 'string') throw new RolloutRequestError(400, 'why: text');
  const canary = body.canary === undefined ? '0' : String(body.canary);
  try {
    canaryCount(canary, 1);
    parseSelector(body.select ?? '');
  } catch (err) {
    if (err instanceof CanaryError || err instanceof SelectorError) throw new RolloutRequestError(400, err.message);
    throw err;
  }
  return {
    target: body.target,
    select: (body.select as string | undefined)?.trim() ?? '',
    canary,
    batch: int(body.batch, 'batch', 1, 10000, 1),
    maxFailures: int(body.maxFailures, 'maxFailures', 1, 10000, 1),
    serverTimeoutSeconds: int(body.serverTimeoutSeconds, 'serverTimeoutSeconds', 30, 7 * 86400, DEFAULT_SERVER_TIMEOUT_SECONDS),
    ...(typeof body.why === 'string' && body.why ? { why: body.why.slice(0, 300) } : {}),
  };
}

function withStore<T>(stateRoot: string, pod: string, readonly: boolean, fn: (store: RolloutStore, db: Database.Database) => T): T {
  const db = openExistingPodDatabase(join(stateRoot, pod), readonly);
  if (!db) throw new RolloutRequestError(404, `pod ${pod} has no database yet (it never started)`);
  try {
    return fn(new RolloutStore(db), db);
  } finally {
    db.close();
  }
}

/** The pod file in force (the copy the instance runs). */
function podConfig(stateRoot: string, pod: string): PodConfig {
  const loaded = loadPodFile(join(stateRoot, pod, 'pod.yaml'));
  if (!loaded.pod) throw new RolloutRequestError(404, `pod ${pod} has no usable pod file in its state directory (it never started)`);
  return loaded.pod;
}

function event(db: Database.Database, time: number, kind: string, detail: string, mac = ''): void {
  new SqliteNodeStateStore(db).addEvent({ time, mac, kind, detail });
}

export interface ServerStatus extends RolloutServer {
  hostname?: string;
  /** the pod's install record now */
  nodeState?: string;
  nodeImage?: string;
}

export interface RolloutStatus {
  pod: string;
  releases: Release[];
  history: ReleaseChange[];
  rollout?: Rollout;
  servers: ServerStatus[];
}

export function rolloutStatus(stateRoot: string, pod: string): RolloutStatus {
  const hostnames = new Map<string, string>();
  const loaded = loadPodFile(join(stateRoot, pod, 'pod.yaml'));
  for (const n of loaded.pod?.nodes ?? []) if (n.hostname) hostnames.set(n.mac, n.hostname);
  return withStore(stateRoot, pod, true, (store, db) => {
    const nodes = new SqliteNodeStateStore(db);
    const rollout = store.latest();
    const servers = (rollout ? store.servers(rollout.id) : []).map((s): ServerStatus => {
      const n = nodes.node(s.mac);
      const hostname = hostnames.get(s.mac);
      return { ...s, ...(hostname ? { hostname } : {}), ...(n ? { nodeState: n.state } : {}), ...(n?.image ? { nodeImage: n.image } : {}) };
    });
    return { pod, releases: store.releases().filter((r) => r.role !== 'retired'), history: store.releaseHistory(20), ...(rollout ? { rollout } : {}), servers };
  });
}

export interface StartOptions {
  stateRoot: string;
  pod: string;
  req: StartRequest;
  by: string;
  /** hashes the pod's copies of these name@version again, placing a missing one from the catalog (src/catalog/pod-cache.ts) */
  checkImages: (refs: string[]) => Promise<CacheCheckResult[]>;
  now?: number;
}

export async function startRollout(o: StartOptions): Promise<RolloutStatus> {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const pod = podConfig(o.stateRoot, o.pod);
  const fileRef = pod.stage2 ? formatStage2Ref(pod.stage2) : undefined;
  const active = withStore(o.stateRoot, o.pod, true, (store) => {
    const open = store.latest();
    if (open && OPEN_PHASES.has(open.phase)) throw new RolloutRequestError(409, `rollout ${open.id} to ${open.target} is ${open.phase}: let it complete or roll it back first`);
    return store.release('active') ?? fileRef;
  });
  if (active === o.req.target) throw new RolloutRequestError(409, `${o.req.target} is already the pod's active release`);

  // Checksums at this hop: every copy the rollout (and its rollback) will need, hashed again now.
  const refs = [o.req.target, ...(active ? [active] : [])];
  let checked: CacheCheckResult[];
  try {
    checked = await o.checkImages(refs);
  } catch (err) {
    throw new RolloutRequestError(409, `the pod's copies could not be checked, nothing was started: ${(err as Error).message}`);
  }
  for (const ref of refs) {
    const r = checked.find((c) => c.ref === ref);
    if (!r || (r.status !== 'ok' && r.status !== 'repaired')) {
      throw new RolloutRequestError(409, `the pod's copy of ${ref} is ${r?.status ?? 'missing'}${r?.detail ? `: ${r.detail}` : ''}; nothing was started`);
    }
  }

  const selector = parseSelector(o.req.select);
  const candidates = pod.nodes.filter((n) => !n.stage2 && selects(selector, n.labels));
  if (!candidates.length) {
    const pinned = pod.nodes.filter((n) => n.stage2).length;
    throw new RolloutRequestError(400, `selector ${JSON.stringify(o.req.select)} picks none of the pod's ${pod.nodes.length} server(s)${pinned ? ` (${pinned} pinned, never rolled)` : ''}`);
  }
  const id = randomBytes(6).toString('hex');
  const count = canaryCount(o.req.canary, candidates.length);
  const order = stableOrder(
    id,
    candidates.map((n) => n.mac),
  );
  const servers: RolloutServer[] = order.map((mac, i) => ({ rollout: id, pass: 'forward', mac, ord: i, canary: i < count, image: o.req.target, state: 'pending' }));
  const rollout: Rollout = {
    id,
    target: o.req.target,
    ...(active ? { previous: active } : {}),
    selector: o.req.select,
    canary: o.req.canary,
    batch: o.req.batch,
    maxFailures: o.req.maxFailures,
    serverTimeout: o.req.serverTimeoutSeconds,
    phase: count ? 'canary' : 'promoting',
    createdAt: now,
    createdBy: o.by,
    updatedAt: now,
  };
  const why = o.req.why ?? `rollout ${id}`;
  withStore(o.stateRoot, o.pod, false, (store, db) =>
    store.transaction(() => {
      const open = store.latest();
      if (open && OPEN_PHASES.has(open.phase)) throw new RolloutRequestError(409, `rollout ${open.id} started meanwhile`);
      store.insertRollout(rollout, servers);
      if (active && !store.release('active')) store.setRole({ time: now, ref: active, role: 'active', by: 'pod file', why: 'spec.stage2 in the pod file' });
      store.setRole({ time: now, ref: o.req.target, role: 'staged', by: o.by, why: `${why}: cached copy verified` });
      if (count) store.setRole({ time: now, ref: o.req.target, role: 'canary', by: o.by, why });
      else promoteReleases(store, rollout, now, o.by, why);
      event(
        db,
        now,
        'rollout-started',
        `rollout ${id} to ${o.req.target}${o.req.select ? ` (${o.req.select})` : ''}: ${candidates.length} server(s), ${count} canary, batch ${o.req.batch}, by ${o.by}`,
      );
    }),
  );
  return rolloutStatus(o.stateRoot, o.pod);
}

function promoteReleases(store: RolloutStore, r: Rollout, now: number, by: string, why: string): void {
  if (r.previous) store.setRole({ time: now, ref: r.previous, role: 'previous', by, why });
  store.setRole({ time: now, ref: r.target, role: 'active', by, why });
}

export type RolloutAction = 'pause' | 'resume' | 'promote' | 'rollback';
export const ROLLOUT_ACTIONS: readonly RolloutAction[] = ['pause', 'resume', 'promote', 'rollback'];

export interface ActionRequest {
  why?: string;
  /** rollback: servers at a time on the way back; resume: a new failure limit */
  batch?: number;
  maxFailures?: number;
}

export function parseAction(body: Record<string, unknown> | undefined): ActionRequest {
  const b = body ?? {};
  if (b.why !== undefined && typeof b.why !== 'string') throw new RolloutRequestError(400, 'why: text');
  return {
    ...(typeof b.why === 'string' && b.why ? { why: b.why.slice(0, 300) } : {}),
    ...(b.batch !== undefined ? { batch: int(b.batch, 'batch', 1, 10000, 1) } : {}),
    ...(b.maxFailures !== undefined ? { maxFailures: int(b.maxFailures, 'maxFailures', 1, 10000, 1) } : {}),
  };
}

const PAUSABLE: ReadonlySet<Phase> = new Set(['canary', 'canary-passed', 'promoting', 'rolling-back']);
const ROLLBACKABLE: ReadonlySet<Phase> = new Set(['canary', 'canary-passed', 'promoting', 'paused', 'completed']);

export function actOnRollout(stateRoot: string, pod: string, action: RolloutAction, req: ActionRequest, by: string, now = Math.floor(Date.now() / 1000)): RolloutStatus {
  withStore(stateRoot, pod, false, (store, db) =>
    store.transaction(() => {
      const r = store.latest();
      if (!r) throw new RolloutRequestError(404, `pod ${pod} has no rollout`);
      const why = req.why ?? `${action} by ${by}`;
      const refuse = (what: string) => new RolloutRequestError(409, `rollout ${r.id} is ${r.phase}${r.pausedFrom ? ` (from ${r.pausedFrom})` : ''}: ${what}`);
      switch (action) {
        case 'pause':
          if (!PAUSABLE.has(r.phase)) throw refuse('nothing to pause');
          store.setPhase(r.id, r.phase, 'paused', now, { pausedFrom: r.phase, reason: why });
          break;
        case 'resume': {
          if (r.phase !== 'paused' || !r.pausedFrom) throw refuse('only a paused rollout resumes');
          if (req.maxFailures !== undefined) db.prepare('UPDATE rollouts SET max_failures = ? WHERE id = ?').run(req.maxFailures, r.id);
          store.setPhase(r.id, 'paused', r.pausedFrom, now);
          break;
        }
        case 'promote':
          if (r.phase !== 'canary-passed') throw refuse('promote follows canaries that all booted with the target (phase canary-passed)');
          store.setPhase(r.id, r.phase, 'promoting', now);
          promoteReleases(store, r, now, by, why);
          break;
        case 'rollback': {
          if (!ROLLBACKABLE.has(r.phase) || (r.phase === 'paused' && r.pausedFrom === 'rolling-back')) throw refuse('nothing to roll back');
          if (!r.previous) throw refuse('the pod had no release before it to return to');
          const back: RolloutServer[] = [];
          for (const s of store.servers(r.id)) {
            if (s.pass !== 'forward') continue;
            // Asked but not yet taken: never reinstalled, nothing to undo.
            if (s.state === 'pending' || s.state === 'requested') store.updateServer(r.id, 'forward', s.mac, { state: 'skipped', finishedAt: now, detail: 'rolled back before it started' });
            else if (s.state !== 'skipped') back.push({ ...s, pass: 'back', image: r.previous, state: 'pending' });
          }
          store.insertServers(back);
          if (req.batch !== undefined) db.prepare('UPDATE rollouts SET batch = ? WHERE id = ?').run(req.batch, r.id);
          store.setPhase(r.id, r.phase, 'rolling-back', now, { reason: why });
          store.setRole({ time: now, ref: r.target, role: 'staged', by, why });
          store.setRole({ time: now, ref: r.previous, role: 'active', by, why });
          break;
        }
      }
      event(db, now, `rollout-${action}`, `rollout ${r.id} to ${r.target}: ${action} by ${by}${req.why ? ` (${req.why})` : ''}`);
    }),
  );
  return rolloutStatus(stateRoot, pod);
}
