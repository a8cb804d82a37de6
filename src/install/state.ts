// The install life of one server, as a pure transition table:
//   discovered → pxe → stage1 → stage2-fetched → verified → installing →
//   installed → booted-from-disk, and failed (with a reason) from any step
//   before installed. Once installed only the installed OS (node token) moves
//   the state on; only an operator's reinstall takes a server back.
import type { TokenScope } from './token.js';

export const INSTALL_STATES = ['discovered', 'pxe', 'stage1', 'stage2-fetched', 'verified', 'installing', 'installed', 'booted-from-disk', 'failed'] as const;
export type InstallStateName = (typeof INSTALL_STATES)[number];

/** What a client may report; `heartbeat` records liveness without a transition. */
export const REPORTABLE = ['stage1', 'stage2-fetched', 'verified', 'installing', 'installed', 'failed', 'booted-from-disk', 'heartbeat'] as const;
export type Report = (typeof REPORTABLE)[number];

export const FAILURE_REASONS = ['signature', 'digest', 'manifest', 'download', 'kickstart', 'install', 'other'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** States after which the server boots from its own disk and gets nothing to install. */
export const INSTALLED_STATES: ReadonlySet<string> = new Set(['installed', 'booted-from-disk']);

/** A server between stage1 and installed: a degraded pod still lets it finish (a reset mid-install may PXE-boot again). */
export const INSTALL_IN_PROGRESS: ReadonlySet<string> = new Set(['stage1', 'stage2-fetched', 'verified', 'installing']);

/** Before stage1 runs; an agent (re)starting from any of these, or mid-install after a reset, is a fresh stage1. */
const STAGE1_FROM: ReadonlySet<string | undefined> = new Set([undefined, 'discovered', 'pxe', 'stage1', 'stage2-fetched', 'verified', 'installing', 'failed']);

const NEXT_FROM: Record<Exclude<Report, 'stage1' | 'failed' | 'heartbeat' | 'booted-from-disk'>, ReadonlySet<string>> = {
  // A resumed download reports again.
  'stage2-fetched': new Set(['stage1', 'stage2-fetched']),
  verified: new Set(['stage2-fetched']),
  // From stage1 too: Anaconda (kickstart/rhel9.ks) checks its own repository and has no verified step of ours.
  installing: new Set(['verified', 'stage1']),
  installed: new Set(['installing']),
};

export type Transition = { ok: true; next: InstallStateName; changed: boolean } | { ok: false; reason: string };

export function reportTransition(current: string | undefined, report: Report, scope: TokenScope): Transition {
  const stay = (): Transition => ({ ok: true, next: current as InstallStateName, changed: false });
  if (scope === 'node') {
    // The installed OS: it may only say it booted, and keep saying it is alive.
    if (report === 'booted-from-disk') {
      if (current === 'installed') return { ok: true, next: 'booted-from-disk', changed: true };
      if (current === 'booted-from-disk') return stay();
    } else if (report === 'heartbeat' && current === 'booted-from-disk') {
      return stay();
    }
    return { ok: false, reason: `a node token cannot report ${report} in state ${current ?? 'none'}` };
  }
  if (current !== undefined && INSTALLED_STATES.has(current)) {
    // An install token for a server that is already installed: a stale agent or a rogue host with its MAC.
    return { ok: false, reason: `server is ${current}; only a reinstall starts a new install` };
  }
  switch (report) {
    case 'stage1':
      return STAGE1_FROM.has(current) ? { ok: true, next: 'stage1', changed: current !== 'stage1' } : { ok: false, reason: `stage1 from ${current}` };
    case 'failed':
      return { ok: true, next: 'failed', changed: true };
    case 'heartbeat':
      return current === undefined ? { ok: false, reason: 'heartbeat before stage1' } : stay();
    case 'booted-from-disk':
      return { ok: false, reason: 'booted-from-disk needs a node token' };
    default: {
      const from = NEXT_FROM[report];
      if (current !== undefined && from.has(current)) return { ok: true, next: report, changed: current !== report };
      return { ok: false, reason: `${report} is not allowed after ${current ?? 'nothing'}` };
    }
  }
}

/** DHCP's part: a network-boot client seen, then handed a boot file. Never moves a server backwards. */
export function dhcpTransition(current: string | undefined, seen: 'discovered' | 'pxe'): InstallStateName | undefined {
  if (current === undefined) return seen;
  if (current === 'discovered' && seen === 'pxe') return 'pxe';
  // A failed install that PXE-boots again is a new try.
  if (current === 'failed' && seen === 'pxe') return 'pxe';
  return undefined;
}
