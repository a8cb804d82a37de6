// One pod's instance as the supervisor sees it: a child process running
// `podboot pod run`, its lifecycle (start, ready, heartbeat, exit, backoff,
// crash loop, stop; every state change goes through the transition table in
// lifecycle.ts) and the last things it reported. Owns nothing of the pod's
// own state: leases live in the pod's database in its state directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, fstatSync } from 'node:fs';
import { exitLogLine } from './exit-line.js';
import type { Logger } from 'pino';
import { DEFAULT_BACKOFF, nextRestart, type BackoffPolicy } from './backoff.js';
import { ENV_HEARTBEAT_MS, isChildMessage, type MetricsSnapshot, type ParentMessage, type PodSelfStatus } from '../pod-link/ipc.js';
import { cpuPercent, cpuSeconds, sampleProcess, type ProcSample } from './proc.js';
import type { InstanceConfinement } from './confine.js';
import type { LimitsStatus } from './cgroup.js';
import { next, type InstanceState, type LifecycleEvent, type LifecycleState } from './lifecycle.js';

export type { InstanceState, LifecycleState } from './lifecycle.js';

export interface LaunchSpec {
  /** argv[0] and the rest: e.g. node, [main.js, 'pod', 'run', file, '--state', dir] */
  command: string;
  args: string[];
  /** the child's JSON log lines go here (appended) */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Runs before every start (building the pod's network namespace, its
   * cgroups, its certificate); a failure counts as a failed start. It may
   * return the command to run this time (e.g. entering the cgroups it made).
   */
  prelaunch?: () => Promise<undefined | { command: string; args: string[] }>;
  /** the user and resource limits the instance runs under */
  confinement?: InstanceConfinement;
}

export interface InstanceTiming {
  heartbeatMs: number;
  /** no heartbeat for this long: the instance is hung and is killed */
  heartbeatTimeoutMs: number;
  /** from spawn to "ready" */
  readyTimeoutMs: number;
  /** SIGTERM → SIGKILL */
  stopTimeoutMs: number;
  backoff: BackoffPolicy;
}

export const DEFAULT_TIMING: InstanceTiming = { heartbeatMs: 1000, heartbeatTimeoutMs: 15_000, readyTimeoutMs: 60_000, stopTimeoutMs: 10_000, backoff: DEFAULT_BACKOFF };

export interface ExitInfo {
  at: string;
  code: number | null;
  signal: string | null;
  reason: string;
  /** the last line the instance wrote, when it explains more than the exit code */
  lastLog?: string;
}

export interface InstanceStatus {
  pod: string;
  file: string;
  state: InstanceState;
  pid?: number;
  cpuPercent?: number;
  cpuSeconds?: number;
  rssBytes?: number;
  threads?: number;
  fds?: number;
  io?: { readBytes: number; writeBytes: number; rchar: number; wchar: number };
  priority?: number;
  nice?: number;
  startedAt?: string;
  uptimeSec?: number;
  /** time run over every start, this one included */
  totalRunSec: number;
  restarts: number;
  lastExit?: ExitInfo;
  nextStartAt?: string;
  degraded: boolean;
  degradeReason?: string;
  self?: PodSelfStatus;
  metrics?: MetricsSnapshot;
  lastHeartbeatAt?: string;
  /** the uid/gid the instance runs as (0 = root) */
  runAs?: { uid: number; gid: number };
  /** its resource limits and whether they are enforced (and if not, why) */
  limits?: LimitsStatus;
}

export type InstanceEvent = { kind: string; message: string; fields?: Record<string, unknown> };

/** Limits how many instances start at once; a slot is held from spawn until ready or exit. */
export interface StartGate {
  acquire(): Promise<() => void>;
  /** resolves once no instance holds or waits for a slot */
  idle(): Promise<void>;
}

/**
 * A hundred Node processes starting together on two cores would each take
 * longer than the ready timeout; started a few at a time, each is quick.
 */
export class StartLimiter implements StartGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly max: number) {}

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.active++;
        let done = false;
        resolve(() => {
          if (done) return;
          done = true;
          this.active--;
          this.waiting.shift()?.();
          if (this.active === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            for (const w of waiters) w();
          }
        });
      };
      if (this.active < this.max) grant();
      else this.waiting.push(grant);
    });
  }

  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** CPU % of one core over the last sampling period above which a running instance shows as busy. */
const BUSY_CPU_PERCENT = 90;

const UNLIMITED: StartGate = { acquire: async () => () => undefined, idle: async () => undefined };

export class PodInstanceProcess {
  private lifecycle: LifecycleState = 'stopped';
  private child?: ChildProcess;
  private startedAt?: number;
  /** Size of the log file when the running child was spawned: its lines come after. */
  private logFrom = 0;
  private totalRunMs = 0;
  private restarts = 0;
  private streak = 0;
  private lastExit?: ExitInfo;
  private restartTimer?: NodeJS.Timeout;
  private nextStartAt?: number;
  private watchdog?: NodeJS.Timeout;
  private lastHeartbeat?: number;
  private self?: PodSelfStatus;
  private metrics?: MetricsSnapshot;
  private wantDegraded = false;
  private degradeReason?: string;
  /** why the current child is being ended, when the supervisor ended it */
  private ending?: { reason: string; after: 'stop' | 'restart' | 'backoff' };
  private prevSample?: ProcSample;
  private sample?: ProcSample;
  private cpu?: number;
  private exited?: Promise<void>;
  /** waiting for a start slot; a stop in the meantime bumps launchToken to cancel it */
  private launching = false;
  private launchToken = 0;
  private releaseSlot?: () => void;
  /** listeners whose last self-probe failed, as reported */
  private failingProbes = '';
  /** being restarted onto a new build by a rolling restart */
  private upgrading = false;

  constructor(
    readonly pod: string,
    private spec: LaunchSpec,
    private readonly log: Logger,
    private readonly timing: InstanceTiming,
    private readonly onEvent: (e: InstanceEvent) => void,
    /** the pods file this instance was started from (for status) */
    public file: string,
    private readonly gate: StartGate = UNLIMITED,
  ) {}

  /** A new launch spec (a reloaded file) takes effect at the next start. */
  setLaunch(spec: LaunchSpec, file: string): void {
    this.spec = spec;
    this.file = file;
  }

  /** The lifecycle state (status() adds the display states busy, error, upgrading). */
  get state(): LifecycleState {
    return this.lifecycle;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  start(): void {
    if (this.child) return;
    this.clearRestartTimer();
    this.launch();
  }

  /** Graceful stop: SIGTERM, SIGKILL after the stop timeout. Resolves when the child is gone. */
  async stop(reason = 'stop requested'): Promise<void> {
    this.clearRestartTimer();
    if (this.launching) {
      this.launchToken++;
      this.launching = false;
    }
    if (!this.child) {
      this.move({ type: 'cancel' });
      return;
    }
    await this.endChild(reason, 'stop');
  }

  /** Stop (gracefully) and start again at once, without backoff: reloads and operator restarts. */
  async restart(reason = 'restart requested'): Promise<void> {
    this.clearRestartTimer();
    if (!this.child) {
      this.launch();
      return;
    }
    await this.endChild(reason, 'restart');
  }

  /**
   * Restarts onto whatever build is on disk now and waits until the new
   * process is ready; `ok: false` when it crashed or was not ready in time.
   */
  async upgrade(timeoutMs: number): Promise<{ ok: boolean; reason?: string }> {
    this.upgrading = true;
    try {
      const restartsBefore = this.restarts;
      await this.restart('rolling restart onto the current build');
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (this.state === 'running' || this.state === 'degraded') return { ok: true };
        if (this.state === 'stopped') return { ok: false, reason: 'stopped during the rolling restart' };
        if (this.restarts > restartsBefore + 1) return { ok: false, reason: `the new instance ended: ${this.lastExit?.reason ?? 'unknown'}` };
        if (Date.now() > deadline) return { ok: false, reason: `not ready within ${timeoutMs} ms` };
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      this.upgrading = false;
    }
  }

  degrade(on: boolean, reason?: string): void {
    this.wantDegraded = on;
    this.degradeReason = on ? reason : undefined;
    this.sendDegrade();
    this.onEvent({ kind: on ? 'degraded' : 'undegraded', message: on ? `new installs stopped${reason ? `: ${reason}` : ''}` : 'new installs allowed again' });
  }

  /** Reads /proc for the running child; the supervisor calls it periodically. */
  async refreshProc(): Promise<void> {
    const pid = this.child?.pid;
    if (!pid) return;
    const s = await sampleProcess(pid);
    if (!s || this.child?.pid !== pid) return;
    this.prevSample = this.sample?.pid === pid ? this.sample : undefined;
    this.sample = s;
    // The first sample of a process has no predecessor: its average since it started.
    const sinceStart = this.startedAt !== undefined ? (s.at - this.startedAt) / 1000 : 0;
    this.cpu = cpuPercent(this.prevSample, s) ?? (sinceStart > 0 ? (cpuSeconds(s.stat) / sinceStart) * 100 : undefined);
  }

  status(now = Date.now()): InstanceStatus {
    const live = this.child && this.sample?.pid === this.child.pid ? this.sample : undefined;
    const runMs = this.startedAt !== undefined && this.child ? now - this.startedAt : 0;
    return {
      pod: this.pod,
      file: this.file,
      state: this.displayState(live !== undefined),
      pid: this.child?.pid,
      cpuPercent: live ? this.cpu : undefined,
      cpuSeconds: live ? cpuSeconds(live.stat) : undefined,
      rssBytes: live?.stat.rssBytes,
      threads: live?.stat.threads,
      fds: live?.fds,
      io: live?.io,
      priority: live?.stat.priority,
      nice: live?.stat.nice,
      startedAt: this.startedAt !== undefined && this.child ? new Date(this.startedAt).toISOString() : undefined,
      uptimeSec: this.child ? Math.round(runMs / 1000) : undefined,
      totalRunSec: Math.round((this.totalRunMs + runMs) / 1000),
      restarts: this.restarts,
      lastExit: this.lastExit,
      nextStartAt: this.nextStartAt !== undefined ? new Date(this.nextStartAt).toISOString() : undefined,
      degraded: this.wantDegraded,
      degradeReason: this.degradeReason,
      self: this.self,
      metrics: this.metrics,
      lastHeartbeatAt: this.lastHeartbeat !== undefined ? new Date(this.lastHeartbeat).toISOString() : undefined,
      runAs: this.spec.confinement?.runAs(),
      limits: this.spec.confinement?.limits(),
    };
  }

  /** busy: running but using (nearly) a whole core, e.g. under a DHCP storm or a flood. */
  private displayState(sampled: boolean): InstanceState {
    if (this.upgrading && (this.state === 'starting' || this.state === 'stopping')) return 'upgrading';
    // error: running, but one of its listeners does not answer its self-probe.
    if ((this.state === 'running' || this.state === 'degraded') && this.failingProbes) return 'error';
    if (sampled && this.prevSample && (this.state === 'running' || this.state === 'degraded') && (this.cpu ?? 0) >= BUSY_CPU_PERCENT) return 'busy';
    return this.state;
  }

  /**
   * Every start goes through here: `start` from stopped, crashed or
   * crash-loop; `exited (restart)` when the ending child of a restart is gone.
   */
  private launch(event: LifecycleEvent = { type: 'start' }): void {
    if (this.child || this.launching) return;
    this.launching = true;
    this.move(event);
    const token = ++this.launchToken;
    void this.gate.acquire().then(async (release) => {
      if (token !== this.launchToken) return release();
      let command: { command: string; args: string[] } | undefined;
      try {
        command = await this.spec.prelaunch?.();
      } catch (err) {
        release();
        if (token !== this.launchToken) return;
        this.launching = false;
        return this.failedStart((err as Error).message);
      }
      if (token !== this.launchToken) return release();
      this.launching = false;
      this.releaseSlot = release;
      this.spawnChild(command ?? undefined);
    });
  }

  /** A start that failed before any process ran: backoff as for a crash. */
  private failedStart(reason: string): void {
    this.lastExit = { at: new Date().toISOString(), code: null, signal: null, reason };
    this.scheduleRestart(reason, 0, 'start-failed');
  }

  private freeSlot(): void {
    this.releaseSlot?.();
    this.releaseSlot = undefined;
  }

  private spawnChild(command?: { command: string; args: string[] }): void {
    // O_NOFOLLOW: the log sits in the pod's own directory, where a compromised
    // pod could have put a symlink to a file of root's in its place.
    const fd = openSync(this.spec.logFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o640);
    this.logFrom = fstatSync(fd).size;
    let child: ChildProcess;
    try {
      // The child's stdout and stderr go straight to its log file: the
      // supervisor never copies a busy pod's log lines through its own loop.
      const cmd = command ?? this.spec;
      child = spawn(cmd.command, cmd.args, {
        stdio: ['ignore', fd, fd, 'ipc'],
        env: { ...process.env, ...this.spec.env, [ENV_HEARTBEAT_MS]: String(this.timing.heartbeatMs) },
        serialization: 'json',
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.startedAt = Date.now();
    this.nextStartAt = undefined;
    this.self = undefined;
    this.failingProbes = '';
    this.lastHeartbeat = undefined;
    this.move({ type: 'spawned' });
    this.ending = undefined;
    this.log.info({ pid: child.pid, restarts: this.restarts }, 'pod instance starting');
    this.onEvent({ kind: 'starting', message: `instance starting (pid ${child.pid})`, fields: { pid: child.pid } });
    this.armWatchdog(this.timing.readyTimeoutMs, `not ready within ${this.timing.readyTimeoutMs} ms`);
    child.on('message', (m) => this.onMessage(child, m));
    // Writing to a channel whose child just died raises here, not at send().
    child.on('error', (err) => {
      this.log.warn({ err: err.message }, 'pod instance process error');
      // A command that could not be run at all (ENOENT) never emits 'exit'.
      if (child.pid === undefined) this.onExit(child, 127, null);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.onExit(child, code, signal);
        resolve();
      });
    });
  }

  private onMessage(child: ChildProcess, m: unknown): void {
    if (child !== this.child || !isChildMessage(m)) return;
    this.lastHeartbeat = Date.now();
    this.self = m.status;
    if (m.type === 'heartbeat') this.metrics = m.metrics;
    if (m.type === 'ready') {
      this.freeSlot();
      this.log.info({ pid: child.pid, listeners: m.status.listeners, leases: m.status.leases }, 'pod instance ready');
      this.onEvent({ kind: 'ready', message: `instance ready (pid ${child.pid})`, fields: { listeners: m.status.listeners } });
      // A restarted instance starts undegraded: tell it again what the operator asked.
      if (this.wantDegraded) this.sendDegrade();
      // Warming up is half of a start's CPU: it waits until every instance
      // that is starting has started, so a hundred pods all serve sooner.
      void this.gate.idle().then(() => {
        if (this.child === child) this.sendToChild({ type: 'warm-up' });
      });
    }
    this.move({ type: 'reported', degraded: m.status.degraded });
    const failing = (m.status.probes ?? [])
      .filter((p) => !p.ok)
      .map((p) => p.listener)
      .join(', ');
    if (failing !== this.failingProbes) {
      this.onEvent(
        failing
          ? { kind: 'probe-failed', message: `listener self-probe failed: ${failing}`, fields: { probes: m.status.probes } }
          : { kind: 'probe-ok', message: 'every listener answers its self-probe again' },
      );
      this.failingProbes = failing;
    }
    this.armWatchdog(this.timing.heartbeatTimeoutMs, `no heartbeat for ${this.timing.heartbeatTimeoutMs} ms`);
  }

  private armWatchdog(ms: number, reason: string): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (!this.child || this.ending) return;
      // A hung instance cannot be asked to stop; it is killed and restarted with backoff.
      this.log.error({ pid: this.child.pid, reason }, 'pod instance unresponsive; killing it');
      this.ending = { reason, after: 'backoff' };
      this.child.kill('SIGKILL');
    }, ms);
    this.watchdog.unref();
  }

  private sendDegrade(): void {
    this.sendToChild({ type: 'degrade', on: this.wantDegraded, reason: this.degradeReason });
  }

  private sendToChild(msg: ParentMessage): void {
    const c = this.child;
    if (!c?.connected) return;
    c.send(msg, (err) => {
      if (err) this.log.warn({ err: err.message, message: msg.type }, 'could not send a message to the instance');
    });
  }

  private async endChild(reason: string, after: 'stop' | 'restart'): Promise<void> {
    const child = this.child!;
    this.ending = { reason, after };
    this.move({ type: 'end' });
    if (this.watchdog) clearTimeout(this.watchdog);
    child.kill('SIGTERM');
    const kill = setTimeout(() => {
      this.log.warn({ pid: child.pid, ms: this.timing.stopTimeoutMs }, 'pod instance did not stop in time; killing it');
      child.kill('SIGKILL');
    }, this.timing.stopTimeoutMs);
    await this.exited;
    clearTimeout(kill);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.freeSlot();
    if (this.watchdog) clearTimeout(this.watchdog);
    const ranMs = Date.now() - (this.startedAt ?? Date.now());
    this.totalRunMs += ranMs;
    this.child = undefined;
    this.sample = this.prevSample = undefined;
    const ending = this.ending;
    this.ending = undefined;
    // Whatever it left running in its cgroups ends with it.
    this.spec.confinement?.afterExit();
    const oom = signal === 'SIGKILL' ? this.spec.confinement?.exitReason() : undefined;
    const what = oom ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
    const reason = ending ? `${ending.reason} (${what})` : what;
    this.lastExit = { at: new Date().toISOString(), code, signal, reason, lastLog: ending?.after === 'stop' || ending?.after === 'restart' ? undefined : exitLogLine(this.spec.logFile, this.logFrom) };
    if (ending?.after === 'stop') {
      this.move({ type: 'exited', after: 'stop' });
      this.log.info({ reason }, 'pod instance stopped');
      this.onEvent({ kind: 'stopped', message: `instance stopped: ${reason}` });
      return;
    }
    if (ending?.after === 'restart') {
      this.restarts++;
      this.log.info({ reason }, 'pod instance restarting');
      this.onEvent({ kind: 'restarting', message: `instance restarting: ${reason}` });
      this.launch({ type: 'exited', after: 'restart' });
      return;
    }
    this.scheduleRestart(reason, ranMs, 'exited');
  }

  private scheduleRestart(reason: string, ranMs: number, cause: 'exited' | 'start-failed'): void {
    const d = nextRestart(this.timing.backoff, this.streak, ranMs);
    this.streak = d.streak;
    this.restarts++;
    this.move(cause === 'exited' ? { type: 'exited', after: 'backoff', crashLoop: d.crashLoop } : { type: 'start-failed', crashLoop: d.crashLoop });
    this.nextStartAt = Date.now() + d.delayMs;
    this.log.error(
      { reason, ranMs, delayMs: d.delayMs, streak: d.streak, lastLog: this.lastExit?.lastLog },
      d.crashLoop ? 'pod instance in a crash loop' : 'pod instance exited; restarting after backoff',
    );
    this.onEvent({ kind: d.crashLoop ? 'crash-loop' : 'crashed', message: `instance ended: ${reason}; next start in ${d.delayMs} ms`, fields: { streak: d.streak } });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.launch();
    }, d.delayMs);
  }

  /** The one place the lifecycle state changes: through the table, never around it. */
  private move(event: LifecycleEvent): void {
    const t = next(this.lifecycle, event);
    if (t.ok) this.lifecycle = t.next;
    // Not reachable by the table's own account; if it ever is, the state stays and it is said loudly.
    else this.log.error({ state: this.lifecycle, event: event.type, reason: t.reason }, 'pod instance lifecycle: transition refused');
  }

  private clearRestartTimer(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.nextStartAt = undefined;
  }
}
