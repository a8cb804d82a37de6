// What DHCP records about a network-boot client's install life. Pure: the
// client's MAC, whether it asked for an offer, the boot decision and its
// stored install state go in; the rows to commit with the leases come out.
// The install life starts here: seen (DISCOVER), then handed a boot file (ACK).
import { dhcpTransition } from '../../install/state.js';
import type { InstallStateChange, NodeEvent, NodeWrites } from '../../store/types.js';
import type { BootDecision } from './boot.js';

const NO_CHANGES: readonly InstallStateChange[] = [];
const NO_EVENTS: readonly NodeEvent[] = [];

/** For a network-boot client only; undefined when there is nothing to record. */
export function decideInstallRecords(mac: string, installState: string | undefined, decision: BootDecision, discover: boolean, now: number): NodeWrites | undefined {
  const next = dhcpTransition(installState, discover ? 'discovered' : decision.kind === 'boot' ? 'pxe' : 'discovered');
  const changes: readonly InstallStateChange[] = next && next !== installState ? [{ mac, state: next, time: now, ...(decision.kind === 'boot' ? { detail: decision.file } : {}) }] : NO_CHANGES;
  // An installed server should boot from disk; a PXE attempt is a reboot
  // loop, a firmware reset or a rogue host using its MAC: an event says so.
  const events: readonly NodeEvent[] =
    decision.kind === 'none' && decision.reason === 'installed' && discover ? [{ time: now, mac, kind: 'pxe-after-install', detail: `install state ${installState}` }] : NO_EVENTS;
  return changes.length || events.length ? { changes, events } : undefined;
}
