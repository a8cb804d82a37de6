// The lab's WAN rate cap and byte counters, without a network: --wan-rate
// parsing, the counters file reader, the boot's share of the counts (a
// difference of two readings) and how the timeline and JUnit carry them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OptionError, parseLabOptions, parseRate } from '../../../src/lab/plan.js';
import { consoleFacts, junitXml, newProgress, observe, timeline, wanLines } from '../../../src/lab/report.js';
import { LAB_HTTPS_PORT, readWanCounters, wanCountersFile, wanSnapshot, wanUsage, wanUsageSince, type WanCounters, type WanDirectionCounters } from '../../../src/lab/wan-counters.js';

function direction(from: string, to: string, frames: number, bytes: number, https: number, dropped = 0): WanDirectionCounters {
  return { from, to, frames, bytes, dropped, received: frames + dropped, lost: dropped, queueFull: 0, sendErrors: 0, queuedBytes: 0, peakQueuedBytes: 0, tcpPorts: { '443': https } };
}

function counters(time: number, pid: number, down: [number, number, number], up: [number, number, number]): WanCounters {
  return { time, pid, rateBps: 10e6, delayMs: 25, down: direction('c1', 't1', ...down), up: direction('t1', 'c1', ...up) };
}

describe('--wan-rate', () => {
  it('bits per second with decimal prefixes; 0 is no cap', () => {
    expect(parseRate('10mbit')).toBe(10_000_000);
    expect(parseRate('500kbit')).toBe(500_000);
    expect(parseRate('1gbit')).toBe(1_000_000_000);
    expect(parseRate('2.5Mbit')).toBe(2_500_000);
    expect(parseRate('2000000')).toBe(2_000_000);
    expect(parseRate('64000bit')).toBe(64_000);
    expect(parseRate('0')).toBe(0);
  });

  it('refuses what it cannot read, byte units and rates out of range, naming the option', () => {
    for (const bad of ['fast', '10 mb', '10mbps', '1MB', '-5mbit', '1e6', '']) expect(() => parseRate(bad), bad).toThrow(OptionError);
    expect(() => parseRate('10mbps')).toThrow(/--wan-rate 10mbps: expected bits per second such as 10mbit/);
    expect(() => parseRate('999')).toThrow(/between 1kbit and 100gbit/);
    expect(() => parseRate('200gbit')).toThrow(/between 1kbit and 100gbit/);
  });

  it('in the lab options (recorded in the state with them); absent: none', () => {
    expect(parseLabOptions({}).wanRateBps).toBe(0);
    expect(parseLabOptions({ 'wan-rate': '20mbit', 'wan-rtt': '50ms' })).toMatchObject({ wanRateBps: 20_000_000, wanRttMs: 50 });
    expect(() => parseLabOptions({ 'wan-rate': 'lots' })).toThrow(OptionError);
  });
});

describe('WAN counters', () => {
  it("the lab counts its pods' HTTPS port", () => {
    expect(LAB_HTTPS_PORT).toBe(443);
  });

  it('reads a rack file; missing or torn files read as none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-wan-'));
    try {
      expect(readWanCounters(dir, 1)).toBeUndefined();
      mkdirSync(join(dir, 'wan'));
      const c = counters(100, 7, [10, 15000, 12000], [8, 800, 600]);
      writeFileSync(wanCountersFile(dir, 1), JSON.stringify(c));
      writeFileSync(wanCountersFile(dir, 2), '{"time": 1, "down": {');
      expect(wanCountersFile(dir, 1)).toBe(join(dir, 'wan', 'rack-1.json'));
      expect(readWanCounters(dir, 1)).toEqual(c);
      expect(readWanCounters(dir, 2)).toBeUndefined();
      expect([
        ...wanSnapshot(dir, [
          { index: 1, pod: 'rack-1' },
          { index: 2, pod: 'rack-2' },
        ]).keys(),
      ]).toEqual([1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a run's share is after − before; a restarted link (another pid) counted from zero", () => {
    const before = counters(100, 7, [10, 15000, 12000], [8, 800, 600]);
    const after = counters(160, 7, [1010, 1_515_000, 1_512_000], [508, 40_800, 30_600]);
    expect(wanUsage(before, after)).toEqual({
      down: { frames: 1000, bytes: 1_500_000, dropped: 0, tcpPorts: { '443': 1_500_000 } },
      up: { frames: 500, bytes: 40_000, dropped: 0, tcpPorts: { '443': 30_000 } },
    });
    expect(wanUsage(before, { ...after, pid: 8 }).down.bytes).toBe(1_515_000);
    expect(wanUsage(undefined, after).up.frames).toBe(508);
  });

  it('waits for a file written after the run ended, within a bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-wan-'));
    try {
      mkdirSync(join(dir, 'wan'));
      const racks = [{ index: 1, pod: 'rack-1' }];
      const before = counters(Date.now() / 1000 - 60, 7, [0, 0, 0], [0, 0, 0]);
      writeFileSync(wanCountersFile(dir, 1), JSON.stringify(before));
      // the link writes its next file a moment later, as it does once a second
      setTimeout(() => writeFileSync(wanCountersFile(dir, 1), JSON.stringify(counters(Date.now() / 1000 + 1, 7, [5, 5000, 4000], [3, 300, 200]))), 300);
      const got = await wanUsageSince(dir, racks, new Map([[1, before]]), 3000);
      expect(got?.['rack-1']?.down.bytes).toBe(5000);
      // a link that stopped writing: its last file, after the bound
      const stale = await wanUsageSince(dir, racks, new Map(), 300);
      expect(stale?.['rack-1']?.up.tcpPorts['443']).toBe(200);
      expect(await wanUsageSince(dir, [{ index: 3, pod: 'rack-3' }], new Map(), 100)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('timeline and JUnit carry each rack and direction, total and per counted port', () => {
    const vm = observe(newProgress('r1-vm1', 'rack-1', 'm1'), 41, consoleFacts('podboot-stage2: booted-from-disk\n'), { state: 'booted-from-disk' });
    const wan = { 'rack-1': wanUsage(undefined, counters(1, 1, [2000, 3 << 20, 3_000_000], [1000, 70_000, 65_000])) };
    const tl = timeline([vm], '2026-01-01T00:00:00.000Z', 45, wan);
    expect(tl.wan?.['rack-1']).toEqual({
      down: { frames: 2000, bytes: 3 << 20, dropped: 0, tcpPorts: { '443': 3_000_000 } },
      up: { frames: 1000, bytes: 70_000, dropped: 0, tcpPorts: { '443': 65_000 } },
    });
    expect(timeline([vm], '2026-01-01T00:00:00.000Z', 45).wan).toBeUndefined();
    const xml = junitXml([vm], 45, {}, wan);
    expect(xml).toContain('<property name="wan.rack-1.down.bytes" value="3145728"/>');
    expect(xml).toContain('<property name="wan.rack-1.down.tcp443.bytes" value="3000000"/>');
    expect(xml).toContain('<property name="wan.rack-1.up.bytes" value="70000"/>');
    expect(xml).toContain('<property name="wan.rack-1.up.tcp443.bytes" value="65000"/>');
    // properties come first in a testsuite, its own output after the testcases
    expect(xml.indexOf('<properties>')).toBeLessThan(xml.indexOf('<testcase '));
    expect(xml).toMatch(/<\/testcase>\n {4}<system-out>WAN rack-1: down \(central → rack\) 3\.0 MiB in 2000 frames, tcp\/443 2\.9 MiB; up/);
    expect(junitXml([vm], 45)).not.toContain('<properties>');
    expect(wanLines(wan)[0]).toBe('WAN rack-1: down (central → rack) 3.0 MiB in 2000 frames, tcp/443 2.9 MiB; up (rack → central) 0.1 MiB in 1000 frames, tcp/443 0.1 MiB');
  });
});
