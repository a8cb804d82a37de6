// decideInstallRecords: what DHCP records about a network-boot client's
// install life, to be committed with the leases. One row per case.
import { describe, expect, it } from 'vitest';
import type { BootDecision } from '../../../../src/dhcp/policy/boot.js';
import { decideInstallRecords } from '../../../../src/dhcp/policy/install.js';
import type { NodeWrites } from '../../../../src/store/types.js';

const MAC = '52:54:00:00:11:01';
const NOW = 1_700_000_000;
const BOOT: BootDecision = { kind: 'boot', file: 'undionly.kpxe', via: 'bios', vendorClass: 'PXEClient' };
const INSTALLED: BootDecision = { kind: 'none', reason: 'installed', detail: 'installed' };
const DEGRADED: BootDecision = { kind: 'none', reason: 'degraded' };
const change = (state: string, detail?: string) => ({ changes: [{ mac: MAC, state, time: NOW, ...(detail ? { detail } : {}) }], events: [] });

describe('decideInstallRecords', () => {
  it.each<[string, string | undefined, BootDecision, boolean, NodeWrites | undefined]>([
    ['first DISCOVER: discovered, with the boot file it was offered', undefined, BOOT, true, change('discovered', 'undionly.kpxe')],
    ['first DISCOVER while degraded: discovered, no file', undefined, DEGRADED, true, change('discovered')],
    ['DISCOVER again: nothing new', 'discovered', BOOT, true, undefined],
    ['ACK with a boot file: pxe', 'discovered', BOOT, false, change('pxe', 'undionly.kpxe')],
    ['ACK first seen (no DISCOVER recorded): straight to pxe', undefined, BOOT, false, change('pxe', 'undionly.kpxe')],
    ['ACK without a boot file (degraded), never seen: discovered', undefined, DEGRADED, false, change('discovered')],
    ['ACK without a boot file, already discovered: nothing', 'discovered', DEGRADED, false, undefined],
    ['ACK again in pxe: nothing', 'pxe', BOOT, false, undefined],
    ['failed install PXE-boots again: a new try', 'failed', BOOT, false, change('pxe', 'undionly.kpxe')],
    ['mid-install reset: never moved backwards', 'installing', BOOT, false, undefined],
    ['installed server DISCOVERs: an event, no change', 'installed', INSTALLED, true, { changes: [], events: [{ time: NOW, mac: MAC, kind: 'pxe-after-install', detail: 'install state installed' }] }],
    ['installed server REQUESTs: nothing more', 'installed', INSTALLED, false, undefined],
  ])('%s', (_name, state, decision, discover, expected) => {
    expect(decideInstallRecords(MAC, state, decision, discover, NOW)).toEqual(expected);
  });
});
