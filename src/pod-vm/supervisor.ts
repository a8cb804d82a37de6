// src/pod-vm is each pod's isolated instance ("pod VM") as the central node
// sees it: this supervisor, the instance process and its lifecycle
// (instance.ts, lifecycle.ts), how it is launched and confined (confine.ts,
// pod-user.ts, cgroup.ts, netns.ts, node-options.ts), its restart backoff,
// /proc sampling, the plan that follows the pods directory, log rotation, the
// shared stage1 copy and the TLS certificate issued to it before it starts.
// Nothing in this folder runs inside a pod: the pod's own process is
// src/pod (PodInstance, its end of the IPC channel, self-probe, registration),
// and what both sides share (the IPC messages, the registration token, where
// the pod's certificate lives) is in src/pod-link, which imports neither:
// src/pod-vm and src/pod do not import each other.
//
// The central node's supervisor: one child process per pod file, kept in
// step with the pods directory (new file → start, changed → reload, removed
// → stop, invalid → refused and nothing else touched), restarted with backoff
// when it dies, sampled from /proc, and driven by operator actions.
import { watch, type FSWatcher } from 'node:fs';
import { lstat, mkdir, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { formatProblem, type ConfigProblem } from '../config/types.js';
import { availableParallelism } from 'node:os';
import { DEFAULT_TIMING, PodInstanceProcess, StartLimiter, type InstanceStatus, type InstanceTiming, type LaunchSpec } from './instance.js';
import { existsSync } from 'node:fs';
import type { PodConfig } from '../config/types.js';
import { netnsName, setupNetns, teardownNetns } from './netns.js';
import { rotateIfLarger } from './log-rotate.js';
import { REGISTER_TOKEN_FILE, writeRegistrationToken } from '../pod-link/registration.js';
import { hashText, planScan, type AppliedEntry, type PlanAction, type ScannedFile } from './plan.js';
import { PodConfinement } from './confine.js';
import { podsCgroupName, readLayout, type CgroupLayout } from './cgroup.js';
import { CODE_MOUNT, packageRootOf, podUser, type CodeMount } from './pod-user.js';
import { PodTlsIssuer } from './pod-tls.js';
import { copyMode, PodFileRefused, readPodFile } from '../config/read-pod-file.js';
import type { InstanceLogWatcher } from '../log-relay.js';
import { REQUIRED_INSTANCE_NODE_OPTIONS } from './node-options.js';

export interface SupervisorOptions {
  /** directory of pod files; or `files`: a fixed list (the embedded default pod) */
  podsDir?: string;
  files?: string[];
  stateRoot: string;
  /** how to run the CLI: node and dist/src/cli/main.js */
  node: string;
  cliScript: string;
  log: Logger;
  timing?: Partial<InstanceTiming>;
  /** safety-net rescan period; file watching can miss events on some file systems */
  rescanMs?: number;
  /** /proc sampling period for CPU % and memory */
  sampleMs?: number;
  /** extra `podboot pod run` arguments for every instance (--ca, --stage1) */
  podArgs?: string[];
  /** an instance's log is rotated (to instance.log.1) past this size (default 64 MiB) */
  logMaxBytes?: number;
  /** V8/Node flags for every instance, e.g. --max-semi-space-size=1 (less memory per idle pod) */
  nodeOptions?: string[];
  /** instances starting at the same time (default: 2 per core) */
  startConcurrency?: number;
  /** wraps the pod's command, e.g. to enter its network namespace */
  wrap?: (pod: string, command: string, args: string[]) => { command: string; args: string[] };
  /**
   * The pod's registration token with the central API (an HMAC of its name),
   * written to STATE/<pod>/register.token (mode 0600) before every start.
   */
  registerToken?: (pod: string) => string;
  /**
   * The central CA directory: the node issues each pod its TLS certificate
   * from it before the pod starts (the pod never opens it).
   */
  caDir?: string;
  /**
   * 'auto' (default): each pod runs as its own unprivileged uid when the node
   * runs as root; 'root': pods run as root (as before issue 12).
   */
  podUser?: 'auto' | 'root';
  /** apply spec.limits through cgroups (default true) */
  limits?: boolean;
  /** told which instance log files exist, to show their lines on the node's console (src/log-relay.ts) */
  instanceLogs?: InstanceLogWatcher;
}

export interface SupervisorEvent {
  seq: number;
  time: string;
  pod?: string;
  file?: string;
  kind: string;
  message: string;
  fields?: Record<string, unknown>;
}

export interface RefusedFile {
  file: string;
  /** the pod that keeps running on its previous version of this file */
  running?: string;
  problems: ConfigProblem[];
}

export type PodAction = 'start' | 'stop' | 'restart' | 'degrade' | 'undegrade';

const MAX_EVENTS = 2000;
/** The rest of a long list of problems is in the event and the API; a log line stays readable. */
const MAX_LOGGED_PROBLEMS = 20;

export class Supervisor {
  private readonly instances = new Map<string, PodInstanceProcess>();
  private readonly applied = new Map<string, AppliedEntry>();
  private readonly refused = new Map<string, RefusedFile>();
  private readonly events: SupervisorEvent[] = [];
  private seq = 0;
  private queue: Promise<void> = Promise.resolve();
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
  private rescanTimer?: NodeJS.Timeout;
  private sampleTimer?: NodeJS.Timeout;
  private rotateTimer?: NodeJS.Timeout;
  private readonly timing: InstanceTiming;
  private stopping = false;
  private readonly gate: StartLimiter;
  /** pods whose network namespace exists, with the isolation it was built for */
  private readonly netns = new Map<string, string>();
  /** each pod's user and cgroups, kept across restarts and reloads */
  private readonly confinements = new Map<string, PodConfinement>();
  private readonly issuer?: PodTlsIssuer;
  private layout?: CgroupLayout;
  private noLimitsReason?: string;

  constructor(private readonly opts: SupervisorOptions) {
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.gate = new StartLimiter(opts.startConcurrency ?? Math.max(2, 2 * availableParallelism()));
    if (opts.caDir) this.issuer = new PodTlsIssuer(opts.caDir, opts.log);
  }

  /** podboot's code as unprivileged pods see it (set at start) */
  private code?: CodeMount;

  /** Whether pods run as their own unprivileged users (serve as root, not --pod-user root). */
  get unprivilegedPods(): boolean {
    return this.opts.podUser !== 'root' && process.getuid?.() === 0;
  }

  get log(): Logger {
    return this.opts.log;
  }

  async start(): Promise<void> {
    await mkdir(this.opts.stateRoot, { recursive: true });
    if (this.opts.limits === false) this.noLimitsReason = 'limits turned off for this node';
    else if (process.getuid?.() !== 0) this.noLimitsReason = 'the central node does not run as root: it cannot create cgroups';
    else this.layout = readLayout();
    if (this.unprivilegedPods) {
      this.code = { root: packageRootOf(this.opts.cliScript), script: this.opts.cliScript, at: CODE_MOUNT };
      await mkdir(CODE_MOUNT, { recursive: true, mode: 0o755 });
    }
    this.log.info(
      { podUser: this.unprivilegedPods ? 'own unprivileged uid per pod' : 'root', limits: this.layout ? 'cgroups' : this.noLimitsReason, code: this.code?.at },
      'how pod instances are confined',
    );
    await this.rescan();
    if (this.opts.podsDir) {
      try {
        this.watcher = watch(this.opts.podsDir, () => this.scheduleRescan());
        this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'watching the pods directory failed; periodic rescans continue'));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cannot watch the pods directory; periodic rescans only');
      }
      this.rescanTimer = setInterval(() => this.scheduleRescan(0), this.opts.rescanMs ?? 5000);
      this.rescanTimer.unref();
    }
    this.sampleTimer = setInterval(() => void this.sample(), this.opts.sampleMs ?? 5000);
    this.sampleTimer.unref();
    // A pod logs a line per DHCP exchange: under a storm its log grows by megabytes a minute.
    this.rotateTimer = setInterval(() => void this.rotateLogs(), 30_000);
    this.rotateTimer.unref();
  }

  /** Stops every instance, in parallel, each gracefully (bounded by the stop timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.watcher?.close();
    for (const t of [this.debounce, this.rescanTimer, this.sampleTimer, this.rotateTimer]) if (t) clearTimeout(t);
    await this.queue;
    await Promise.all([...this.instances.values()].map((i) => i.stop('central node stopping')));
    for (const pod of [...this.netns.keys()]) await this.dropNetns(pod);
    for (const pod of [...this.confinements.keys()]) await this.dropNetns(pod);
  }

  /** A pod that stops for good: its network namespace and its cgroups go. */
  private async dropNetns(pod: string): Promise<void> {
    const c = this.confinements.get(pod);
    this.confinements.delete(pod);
    await c?.remove().catch((err) => this.log.warn({ pod, err: (err as Error).message }, "could not remove the pod's cgroups"));
    if (!this.netns.has(pod)) return;
    this.netns.delete(pod);
    await teardownNetns(pod);
  }

  /** Reads the directory again and applies what changed; serialized with every other change. */
  rescan(): Promise<void> {
    return this.enqueue(async () => {
      if (this.stopping) return;
      const scanned = await this.scanFiles();
      const actions = planScan(this.applied, scanned);
      for (const a of actions) await this.apply(a);
    });
  }

  status(): InstanceStatus[] {
    const now = Date.now();
    return [...this.instances.values()].map((i) => i.status(now)).sort((a, b) => a.pod.localeCompare(b.pod));
  }

  instance(pod: string): InstanceStatus | undefined {
    return this.instances.get(pod)?.status();
  }

  refusedFiles(): RefusedFile[] {
    return [...this.refused.values()];
  }

  eventsSince(after = 0, pod?: string, limit = 500): SupervisorEvent[] {
    return this.events.filter((e) => e.seq > after && (!pod || e.pod === pod)).slice(-limit);
  }

  /** Where a pod's metrics endpoint listens (a unix socket in its state directory). */
  metricsSocket(pod: string): string {
    return join(this.opts.stateRoot, pod, 'metrics.sock');
  }

  pods(): string[] {
    return [...this.instances.keys()].sort();
  }

  private rolling = false;

  /**
   * Restarts every instance onto the build now on disk, one pod at a time,
   * each only after the one before is ready again; stops at the first pod
   * that does not come back (the rest keep running the old build).
   * Returns at once; progress is in the events.
   */
  rollingRestart(): { started: boolean; pods: string[] } {
    // Only instances that run now: a crashed one picks up the new build at its next start anyway.
    const pods = this.pods().filter((p) => ['running', 'degraded'].includes(this.instances.get(p)!.state));
    if (this.rolling || this.stopping) return { started: false, pods };
    this.rolling = true;
    this.record({ kind: 'rolling', message: `rolling restart of ${pods.length} pods started` });
    void (async () => {
      let done = 0;
      try {
        for (const pod of pods) {
          const i = this.instances.get(pod);
          if (!i || this.stopping) continue;
          const r = await i.upgrade(this.timing.readyTimeoutMs + 5000);
          if (!r.ok) {
            this.log.error({ pod, reason: r.reason, done, left: pods.length - done }, 'rolling restart stopped');
            this.record({ pod, kind: 'rolling-aborted', message: `rolling restart stopped at ${pod}: ${r.reason}; ${pods.length - done - 1} pods not restarted` });
            return;
          }
          done++;
          this.record({ pod, kind: 'rolling', message: `${pod} restarted onto the current build (${done}/${pods.length})` });
        }
        this.log.info({ pods: done }, 'rolling restart done');
        this.record({ kind: 'rolling-done', message: `rolling restart done: ${done} pods` });
      } finally {
        this.rolling = false;
      }
    })();
    return { started: true, pods };
  }

  /** An operator action; false when no such pod. */
  async act(pod: string, action: PodAction, reason?: string): Promise<boolean> {
    const i = this.instances.get(pod);
    if (!i) return false;
    this.record({ pod, kind: 'action', message: `operator: ${action}${reason ? ` (${reason})` : ''}` });
    await this.enqueue(async () => {
      if (action === 'start') i.start();
      else if (action === 'stop') await i.stop('stopped by operator');
      else if (action === 'restart') await i.restart('restarted by operator');
      else i.degrade(action === 'degrade', reason);
    });
    return true;
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch((err) => this.log.error({ err }, 'supervisor change failed'));
    return next;
  }

  private scheduleRescan(delayMs = 200): void {
    if (this.stopping) return;
    // Editors write a file in several steps; one scan after they settle.
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.rescan().catch(() => undefined), delayMs);
  }

  private async scanFiles(): Promise<ScannedFile[]> {
    let files: string[];
    if (this.opts.podsDir) {
      try {
        files = (await readdir(this.opts.podsDir))
          .filter((n) => !n.startsWith('.') && /\.ya?ml$/.test(n))
          .sort()
          .map((n) => join(this.opts.podsDir!, n));
      } catch (err) {
        // A directory that vanished for a moment must not stop every pod.
        this.log.error({ err: (err as Error).message, dir: this.opts.podsDir }, 'cannot read the pods directory; keeping every pod as it is');
        return [...this.applied.keys()].map((file) => ({ file, hash: this.applied.get(file)!.running?.hash ?? this.applied.get(file)!.refusedHash ?? '' }));
      }
    } else files = this.opts.files ?? [];
    const out: ScannedFile[] = [];
    for (const file of files) {
      try {
        const { bytes, text, mode } = await readPodFile(file);
        out.push({ file, hash: hashText(bytes), text, mode });
      } catch (err) {
        if (!(err instanceof PodFileRefused)) throw err;
        if (err.kind === 'missing' && !(await isSymlink(file))) continue; // removed between readdir and read
        // The hash is the reason: the same refusal is logged once, not at every rescan.
        out.push({ file, hash: `refused:${err.reason}`, readProblem: { file, line: 1, col: 1, path: '(file)', message: err.reason } });
      }
    }
    return out;
  }

  private async apply(a: PlanAction): Promise<void> {
    switch (a.kind) {
      case 'refuse': {
        // One line per refused file; the problems never quote a file that is not a pod (config/pod-file.ts).
        const shown = a.problems.slice(0, MAX_LOGGED_PROBLEMS).map(formatProblem);
        this.log.error({ pod: a.running, file: a.file, problems: shown, ...(a.problems.length > shown.length ? { moreProblems: a.problems.length - shown.length } : {}) }, 'pod file refused');
        const entry = this.applied.get(a.file) ?? { file: a.file };
        entry.refusedHash = a.hash;
        this.applied.set(a.file, entry);
        this.refused.set(a.file, { file: a.file, running: a.running, problems: a.problems });
        this.record({
          pod: a.running,
          file: a.file,
          kind: 'refused',
          message: `${basename(a.file)} refused${a.running ? `; pod ${a.running} keeps running its previous version` : ''}: ${a.problems.map(formatProblem).join('; ')}`,
          fields: { problems: a.problems.map(formatProblem) },
        });
        return;
      }
      case 'forget':
        this.applied.delete(a.file);
        this.refused.delete(a.file);
        return;
      case 'stop': {
        this.applied.delete(a.file);
        this.refused.delete(a.file);
        const i = this.instances.get(a.name);
        this.record({ pod: a.name, file: a.file, kind: 'removed', message: `${basename(a.file)} removed: stopping pod ${a.name}` });
        this.log.info({ pod: a.name, file: a.file }, 'pod file removed; stopping its instance');
        await i?.stop('pod file removed');
        this.instances.delete(a.name);
        await this.opts.instanceLogs?.untrack(a.name);
        await this.dropNetns(a.name);
        return;
      }
      case 'start':
      case 'reload': {
        const pod = a.located.pod;
        this.refused.delete(a.file);
        if (a.kind === 'reload' && a.previous !== pod.name) {
          // Renamed: the old pod goes, a new one (own state directory) comes.
          this.record({ pod: a.previous, file: a.file, kind: 'removed', message: `renamed to ${pod.name}: stopping pod ${a.previous}` });
          await this.instances.get(a.previous)?.stop('pod renamed');
          this.instances.delete(a.previous);
          await this.opts.instanceLogs?.untrack(a.previous);
          await this.dropNetns(a.previous);
        }
        const launch = await this.prepare(pod, a.text, a.mode);
        this.applied.set(a.file, { file: a.file, running: { hash: a.hash, located: a.located } });
        const existing = this.instances.get(pod.name);
        if (existing) {
          existing.setLaunch(launch, a.file);
          this.record({ pod: pod.name, file: a.file, kind: 'reload', message: `${basename(a.file)} changed: reloading pod ${pod.name}` });
          // An instance the operator stopped stays stopped; it runs the new version when started.
          if (existing.state !== 'stopped') await existing.restart('pod file changed');
          return;
        }
        const inst = new PodInstanceProcess(pod.name, launch, this.log.child({ pod: pod.name }), this.timing, (e) => this.record({ pod: pod.name, ...e }), a.file, this.gate);
        this.instances.set(pod.name, inst);
        // Before its first start: the console shows the instance's lines from its first one.
        this.opts.instanceLogs?.track(pod.name, launch.logFile);
        this.record({ pod: pod.name, file: a.file, kind: 'added', message: `${basename(a.file)}: starting pod ${pod.name}` });
        inst.start();
        return;
      }
    }
  }

  /**
   * The instance runs from a copy of the file as validated, in its state
   * directory: a later broken edit can then never reach a running pod, not
   * even when it restarts after a crash.
   */
  private async prepare(config: PodConfig, text: string, sourceMode = 0o600): Promise<LaunchSpec> {
    const pod = config.name;
    const dir = join(this.opts.stateRoot, pod);
    await mkdir(dir, { recursive: true });
    const snapshot = join(dir, 'pod.yaml');
    const tmp = `${snapshot}.tmp`;
    // Created with its final mode (no window at 0644) and exclusively, so a leftover tmp is never reused.
    await unlink(tmp).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await writeFile(tmp, text, { mode: copyMode(sourceMode), flag: 'wx' });
    await rename(tmp, snapshot);
    if (this.opts.registerToken) await writeRegistrationToken(this.opts.stateRoot, pod, this.opts.registerToken(pod));
    // No --ca: the node issues the pod its certificate (prelaunch); the pod never opens the CA directory.
    const base = {
      command: this.opts.node,
      args: [...REQUIRED_INSTANCE_NODE_OPTIONS, ...(this.opts.nodeOptions ?? []), this.opts.cliScript, 'pod', 'run', snapshot, '--state', this.opts.stateRoot, ...(this.opts.podArgs ?? [])],
    };
    const node = this.opts.wrap ? this.opts.wrap(pod, base.command, base.args) : base;
    const confinement = this.confinement(pod, dir);
    confinement.configure(config);
    const iso = config.isolation;
    const ns = iso?.mode === 'netns' ? netnsName(pod) : undefined;
    return {
      ...node,
      logFile: join(dir, 'instance.log'),
      confinement,
      // Before every start, with no process of the pod running.
      prelaunch: async () => {
        if (iso?.mode === 'netns' && ns) {
          const want = JSON.stringify(iso);
          // Built unless it is still there as this config wants it.
          if (!(this.netns.get(pod) === want && existsSync(`/run/netns/${ns}`))) {
            this.netns.delete(pod);
            await setupNetns(
              pod,
              iso,
              config.subnets.map((s) => s.cidr),
            );
            this.netns.set(pod, want);
            this.log.info({ pod, netns: ns, provisioning: iso.provisioning, management: iso.management }, 'pod network namespace ready');
          }
        }
        confinement.prepare([snapshot, join(dir, REGISTER_TOKEN_FILE)]);
        await this.issuer?.ensure(config, dir, confinement.runAs());
        return confinement.wrap(node.command, node.args, ns);
      },
    };
  }

  /** The pod's confinement: its uid (allocated once, recorded in the state root) and its cgroups. */
  private confinement(pod: string, dir: string): PodConfinement {
    let c = this.confinements.get(pod);
    if (!c) {
      c = new PodConfinement({
        pod,
        stateDir: dir,
        user: this.unprivilegedPods ? podUser(this.opts.stateRoot, pod) : undefined,
        layout: this.layout,
        group: podsCgroupName(this.opts.stateRoot),
        noLimitsReason: this.noLimitsReason,
        code: this.code,
        log: this.log,
      });
      this.confinements.set(pod, c);
    }
    return c;
  }

  /** Rotates every instance log past the limit; public so an operator (or a test) need not wait. */
  async rotateLogs(): Promise<void> {
    const max = this.opts.logMaxBytes ?? 64 * 1024 * 1024;
    for (const pod of this.instances.keys()) {
      const file = join(this.opts.stateRoot, pod, 'instance.log');
      try {
        if (await rotateIfLarger(file, max)) this.log.info({ pod, file, maxBytes: max }, 'instance log rotated to instance.log.1');
      } catch (err) {
        this.log.warn({ pod, err: (err as Error).message }, 'instance log rotation failed');
      }
    }
  }

  private async sample(): Promise<void> {
    await Promise.all([...this.instances.values()].map((i) => i.refreshProc().catch(() => undefined)));
  }

  private record(e: Omit<SupervisorEvent, 'seq' | 'time'>): void {
    const ev: SupervisorEvent = { seq: ++this.seq, time: new Date().toISOString(), ...e };
    this.events.push(ev);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }
}

/** A dangling symlink reads as ENOENT, but unlike a removed file it is still there to refuse. */
async function isSymlink(file: string): Promise<boolean> {
  try {
    return (await lstat(file)).isSymbolicLink();
  } catch {
    return false;
  }
}
