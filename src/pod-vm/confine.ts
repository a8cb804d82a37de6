// How one pod instance is confined: the user it runs as (src/pod-vm/pod-user.ts)
// and its resource limits (src/pod-vm/cgroup.ts). Prepared before every start
// (state directory ownership, cgroups, TLS), wraps the pod's command, and says
// afterwards whether the memory limit is what killed it.
import { chmodSync, lchownSync, lstatSync, type Stats, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { DEFAULT_LIMITS, type PodConfig, type PodLimits } from '../config/types.js';
import { applyCgroupPlan, cgroupPlan, describeLimits, killLeftovers, oomKills, removeCgroups, type CgroupLayout, type CgroupPlan, type LimitsStatus } from './cgroup.js';
import { asUser, blockedAncestor, chownTree, inCgroups, withCodeMount, type CodeMount, type PodUser } from './pod-user.js';

/** What the supervisor's instance shows and asks of a confinement. */
export interface InstanceConfinement {
  /** the uid/gid the instance runs as */
  runAs(): PodUser;
  limits(): LimitsStatus;
  /** after a SIGKILL: 'killed by the memory limit (…)' when the cgroup counted an OOM kill during this run */
  exitReason(): string | undefined;
  /** after any exit: ends whatever the instance left running in its cgroups */
  afterExit(): void;
}

export interface ConfineOptions {
  pod: string;
  stateDir: string;
  /** undefined: runs as root (serve --pod-user root, or serve not run as root) */
  user?: PodUser;
  /** undefined: no cgroup hierarchy found or limits turned off; `reason` says why */
  layout?: CgroupLayout;
  /** the node's group directory in each hierarchy (podsCgroupName) */
  group: string;
  noLimitsReason?: string;
  /** podboot's code, bound where the pod's user can read it (unprivileged pods only) */
  code?: CodeMount;
  log: Logger;
}

export class PodConfinement implements InstanceConfinement {
  private limitsConfig: PodLimits = DEFAULT_LIMITS;
  private plan?: CgroupPlan;
  private status: LimitsStatus = { enforced: false, ...DEFAULT_LIMITS, reason: 'not started yet' };
  private oomBefore?: number;

  constructor(private readonly o: ConfineOptions) {}

  /** The limits for the next start (a reloaded pod file may change them). */
  configure(config: PodConfig): void {
    this.limitsConfig = config.limits ?? DEFAULT_LIMITS;
  }

  runAs(): PodUser {
    return this.o.user ?? { uid: 0, gid: 0 };
  }

  limits(): LimitsStatus {
    return this.status;
  }

  /**
   * Before every start, with no process of the pod running: the state
   * directory (0700, the pod's own), the files the node put there for it to
   * read (handed to its user, modes kept), and the cgroups.
   */
  prepare(readOnly: string[]): void {
    const { user, stateDir, log, pod } = this.o;
    if (user) {
      const blocked = blockedAncestor(stateDir, user.uid);
      if (blocked) throw new Error(`pod user ${user.uid} cannot reach ${stateDir}: ${blocked.dir} is mode ${blocked.mode.toString(8)} (chmod o+x it, or run serve --pod-user root)`);
      if (statSync(stateDir).uid !== user.uid) {
        // Written by root before (an older podboot, --pod-user root, a lab): hand it over once.
        const n = chownTree(stateDir, user);
        log.info({ pod, uid: user.uid, files: n }, 'state directory handed to the pod user');
      }
      lchownSync(stateDir, user.uid, user.gid);
      chmodSync(stateDir, 0o700);
      for (const f of readOnly) {
        let st: Stats;
        try {
          st = lstatSync(f);
        } catch {
          continue;
        }
        // The pod's own to read, with the mode the node gave it (0600 for the token, the
        // pod file's own or stricter). Owning it gives a pod nothing: it owns the directory.
        if (st.isFile()) lchownSync(f, user.uid, user.gid);
      }
    }
    this.applyLimits();
  }

  private applyLimits(): void {
    const { layout, log, pod } = this.o;
    const limits = this.limitsConfig;
    this.plan = undefined;
    this.oomBefore = undefined;
    if (!layout) {
      this.status = { enforced: false, ...limits, reason: this.o.noLimitsReason ?? 'limits turned off' };
      return;
    }
    const plan = cgroupPlan(layout, this.o.group, pod, limits);
    if (!plan) {
      this.status = { enforced: false, ...limits, reason: 'no cgroup hierarchy with the memory or pids controller is mounted' };
      log.warn({ pod, limits }, 'resource limits not enforced: no usable cgroup hierarchy');
      return;
    }
    try {
      applyCgroupPlan(plan);
    } catch (err) {
      this.status = { enforced: false, ...limits, reason: (err as Error).message };
      log.warn({ pod, err: (err as Error).message }, 'resource limits not enforced: cgroups cannot be written');
      return;
    }
    this.plan = plan;
    this.oomBefore = oomKills(plan);
    this.status = { enforced: true, via: `cgroup${plan.version}`, ...limits, ...(plan.missing.length ? { reason: `not enforced: ${plan.missing.join('; ')}` } : {}), cgroups: plan.names };
    log.info({ pod, via: this.status.via, limits: describeLimits(limits), cgroups: plan.names, missing: plan.missing }, 'resource limits in place');
  }

  /** node … → sh (enter cgroups) → unshare + mount (the code) → [ip netns exec NS] → setpriv (the pod's user) → node …, one process throughout. */
  wrap(command: string, args: string[], netns?: string): { command: string; args: string[] } {
    let cmd = this.o.user ? asUser(this.o.user, command, args) : { command, args };
    if (netns) cmd = { command: 'ip', args: ['netns', 'exec', netns, cmd.command, ...cmd.args] };
    // Before `ip netns exec`, whose own mount namespace is a copy of this one and so keeps the binding.
    if (this.o.user && this.o.code) cmd = withCodeMount(this.o.code, cmd.command, cmd.args);
    return inCgroups(this.plan?.procs ?? [], cmd.command, cmd.args);
  }

  exitReason(): string | undefined {
    if (!this.plan) return undefined;
    const after = oomKills(this.plan);
    if (after === undefined || after <= (this.oomBefore ?? 0)) return undefined;
    this.oomBefore = after;
    return `killed by the memory limit (${Math.round(this.plan.limits.memoryBytes / 1024 / 1024)} MiB; SIGKILL from the kernel's OOM killer)`;
  }

  afterExit(): void {
    if (!this.plan) return;
    const n = killLeftovers(this.plan);
    if (n) this.o.log.warn({ pod: this.o.pod, processes: n }, 'killed processes the instance left in its cgroups');
  }

  /** The pod stops for good: its cgroups go. */
  async remove(): Promise<void> {
    const plan = this.plan ?? (this.o.layout ? cgroupPlan(this.o.layout, this.o.group, this.o.pod, this.limitsConfig) : undefined);
    this.plan = undefined;
    if (plan) await removeCgroups(plan);
  }
}
