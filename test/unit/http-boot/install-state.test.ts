import { describe, expect, it } from 'vitest';
import { dhcpTransition, reportTransition } from '../../../src/install/state.js';

describe('install state transitions', () => {
  it('walks the agent path in order and nowhere else', () => {
    let s: string | undefined = 'pxe';
    for (const r of ['stage1', 'stage2-fetched', 'verified', 'installing', 'installed'] as const) {
      const t = reportTransition(s, r, 'install');
      expect(t).toEqual({ ok: true, next: r, changed: true });
      s = r;
    }
    expect(reportTransition('stage1', 'verified', 'install').ok).toBe(false);
    expect(reportTransition('stage2-fetched', 'installed', 'install').ok).toBe(false);
    expect(reportTransition(undefined, 'stage2-fetched', 'install').ok).toBe(false);
  });

  it('lets an agent that restarts mid-install start over, and a failure happen at any step before installed', () => {
    expect(reportTransition('installing', 'stage1', 'install')).toEqual({ ok: true, next: 'stage1', changed: true });
    expect(reportTransition('stage1', 'stage1', 'install')).toEqual({ ok: true, next: 'stage1', changed: false });
    expect(reportTransition('verified', 'failed', 'install')).toEqual({ ok: true, next: 'failed', changed: true });
    expect(reportTransition('failed', 'stage1', 'install').ok).toBe(true);
  });

  it('an install token cannot move an installed server; only the node token reports booting', () => {
    for (const st of ['installed', 'booted-from-disk']) {
      for (const r of ['stage1', 'failed', 'installed', 'heartbeat'] as const) expect(reportTransition(st, r, 'install').ok).toBe(false);
    }
    expect(reportTransition('installed', 'booted-from-disk', 'install').ok).toBe(false);
    expect(reportTransition('installed', 'booted-from-disk', 'node')).toEqual({ ok: true, next: 'booted-from-disk', changed: true });
    expect(reportTransition('booted-from-disk', 'heartbeat', 'node')).toEqual({ ok: true, next: 'booted-from-disk', changed: false });
    expect(reportTransition('installing', 'booted-from-disk', 'node').ok).toBe(false);
    expect(reportTransition('pxe', 'stage1', 'node').ok).toBe(false);
  });

  it('DHCP starts the life and never moves a server backwards', () => {
    expect(dhcpTransition(undefined, 'discovered')).toBe('discovered');
    expect(dhcpTransition('discovered', 'pxe')).toBe('pxe');
    expect(dhcpTransition('failed', 'pxe')).toBe('pxe');
    for (const s of ['stage1', 'installing', 'installed', 'booted-from-disk']) expect(dhcpTransition(s, 'pxe')).toBeUndefined();
  });
});
