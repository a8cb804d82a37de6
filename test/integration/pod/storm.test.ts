// A rack powered on at once, without QEMU: 24 simulated servers walk the
// whole chain against one real pod at the same time (relayed PXE DHCP → TFTP
// → iPXE DHCP → HTTP kernel + initrd → HTTPS events, signed stage2 with its
// digest checked, kickstart → installed → PXE refused). The same code as
// `npm run bench -- storm` (bench/storm.ts, run from the build); here only
// outcomes are asserted, never times.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type * as Storm from '../../../bench/storm.js';
import { writeRandomFile } from '../../../bench/lib.js';
import { requireBuild } from '../../helpers/netns.js';

const BUILT = new URL('../../../dist/bench/storm.js', import.meta.url).pathname;

describe('boot storm on one pod', () => {
  const work = mkdtempSync(join(tmpdir(), 'pb-storm-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('24 servers at once: every one installed, in the pod database too, and none offered PXE again', async () => {
    requireBuild();
    const { stormRound, ensureStage1 } = (await import(BUILT)) as typeof Storm;
    ensureStage1();
    chmodSync(work, 0o755);
    const stage2 = join(work, 'stage2.img');
    writeRandomFile(stage2, 4 * 1024 * 1024);
    const r = await stormRound({ work, name: 'test', servers: 24, spreadMs: 200, stage2 });
    const failed = r.results.filter((s) => !s.ok).map((s) => `${s.mac} at ${s.failedAt}: ${s.error}`);
    expect(failed).toEqual([]);
    expect(r.results).toHaveLength(24);
    expect(new Set(r.results.map((s) => s.mac)).size).toBe(24);
    // Every server walked every step, the last one being the refused PXE boot.
    for (const s of r.results) expect(Object.keys(s.phases).sort()).toEqual(['dhcp-ipxe', 'dhcp-pxe', 'http', 'https', 'installed-dhcp', 'tftp']);
    // The image (4 MiB) and the stage1 kernel + initrd reached each of them.
    for (const s of r.results) expect(s.bytes).toBeGreaterThan(4 * 1024 * 1024 + 10_000_000);
    expect(r.installed).toBe(24);
    expect(r.podErrors).toEqual([]);
  }, 240_000);
});
