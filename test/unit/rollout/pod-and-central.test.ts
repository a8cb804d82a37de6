// Releases and a rollout through their two writers, on a real pod database:
// the central node's start, promote and rollback (src/rollout/central.ts)
// and the pod's driver (src/rollout/pod-driver.ts), which steps the rollout,
// answers a server's report with a reboot and says which image it installs.
// The servers' installs are written as the pod records them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePod } from '../../../src/config/pod-file.js';
import { PodRollouts } from '../../../src/rollout/pod-driver.js';
import { actOnRollout, parseStart, RolloutRequestError, rolloutStatus, startRollout } from '../../../src/rollout/central.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import type { CacheCheckResult } from '../../../src/catalog/cache-verdict.js';

const root = mkdtempSync(join(tmpdir(), 'rollout-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03', '52:54:00:00:00:04'];
const PINNED = '52:54:00:00:00:09';

const POD_YAML = `apiVersion: podboot/v1
kind: Pod
metadata: { name: r1 }
spec:
  listen: { address: 127.0.0.1 }
  relays: [10.1.0.1]
  subnets: [{ cidr: 10.1.0.0/24, pool: 10.1.0.100-10.1.0.199 }]
  stage2: { image: lab, version: "1" }
  nodes:
    - { mac: "${MACS[0]}", hostname: w1, labels: { role: web } }
    - { mac: "${MACS[1]}", hostname: w2, labels: { role: web } }
    - { mac: "${MACS[2]}", hostname: w3, labels: { role: web } }
    - { mac: "${MACS[3]}", hostname: d1, labels: { role: db } }
    - { mac: "${PINNED}", hostname: w9, labels: { role: web }, stage2: { image: lab, version: "0.9" } }
`;

/** What the central image check answers: every copy asked for is fine, unless told otherwise. */
let copies: (refs: string[]) => CacheCheckResult[] = (refs) => refs.map((ref) => ({ pod: 'r1', ref, status: 'ok' }) as CacheCheckResult);
let now = 1000;
let state: string;
let driver: PodRollouts;
let nodes: SqliteNodeStateStore;

beforeEach(() => {
  state = mkdtempSync(join(root, 's-'));
  mkdirSync(join(state, 'r1'));
  writeFileSync(join(state, 'r1', 'pod.yaml'), POD_YAML);
  const db = openPodDatabase(join(state, 'r1'));
  nodes = new SqliteNodeStateStore(db);
  const pod = parsePod(POD_YAML, 'r1.yaml').pod!;
  driver = new PodRollouts(db, nodes, pod, log);
  driver.syncPodFile(now);
  // Every server installed with lab@1 and on its disk.
  for (const mac of MACS) install(mac, 'lab@1');
});

function install(mac: string, image: string): void {
  for (const s of ['stage1', 'installing']) nodes.changeInstallState({ mac, state: s, time: now });
  nodes.changeInstallState({ mac, state: 'installed', time: now, image });
  nodes.changeInstallState({ mac, state: 'booted-from-disk', time: now });
}

const start = (body: Record<string, unknown>) => startRollout({ stateRoot: state, pod: 'r1', req: parseStart(body), by: 'test', checkImages: async (refs) => copies(refs), now });

/** The pod's side for one server until it is back on its disk with what it was assigned. */
function reinstallWhenAsked(mac: string): string | undefined {
  const answer = driver.onReport(mac, 'node', nodes.node(mac), now);
  if (answer !== 'reboot') return undefined;
  now += 5;
  const image = driver.assigned(mac)!;
  install(mac, image);
  return image;
}

describe('releases and rollouts in a pod database', () => {
  it('the pod file gives the first active release; an unpinned server installs it', () => {
    expect(driver.store.release('active')).toBe('lab@1');
    expect(driver.assigned(MACS[0]!)).toBe('lab@1');
    // a pinned server installs its pin, whatever the release
    expect(driver.assigned(PINNED)).toBe('lab@0.9');
  });

  it('canary of 1 among role=web: only that server is asked to reboot and installs v2; promote takes the rest one batch at a time; rollback returns all', async () => {
    const started = await start({ target: 'lab@2', select: 'role=web', canary: 1, batch: 1, maxFailures: 1 });
    expect(started.rollout).toMatchObject({ phase: 'canary', target: 'lab@2', previous: 'lab@1' });
    expect(started.servers.map((s) => s.mac).sort()).toEqual(MACS.slice(0, 3));
    expect(started.releases.find((r) => r.role === 'canary')?.ref).toBe('lab@2');
    const canary = started.servers.find((s) => s.canary)!.mac;
    const others = started.servers.filter((s) => !s.canary).map((s) => s.mac);

    // Before the step nobody is asked; after it only the canary.
    expect(MACS.map((m) => driver.onReport(m, 'node', nodes.node(m), now))).toEqual([undefined, undefined, undefined, undefined]);
    driver.tick(++now);
    for (const m of [...others, MACS[3]!]) expect(driver.onReport(m, 'node', nodes.node(m), now)).toBeUndefined();
    expect(reinstallWhenAsked(canary)).toBe('lab@2');
    // the reinstall went through the pod's record: a new attempt, an event naming the rollout
    expect(nodes.node(canary)!.attempt).toBe(2);
    expect(nodes.events(canary).some((e) => e.kind === 'reinstall' && /rollout/.test(e.detail ?? ''))).toBe(true);
    // servers not selected still install v1
    expect(driver.assigned(others[0]!)).toBe('lab@1');
    expect(driver.assigned(MACS[3]!)).toBe('lab@1');

    driver.tick(++now);
    expect(rolloutStatus(state, 'r1').rollout!.phase).toBe('canary-passed');
    expect(() => actOnRollout(state, 'r1', 'rollback', {}, 'test', now) && actOnRollout(state, 'r1', 'promote', {}, 'test', now)).toThrow(RolloutRequestError);
  });

  it('promote: the others one at a time; rollback: everyone the rollout touched, back to v1', async () => {
    await start({ target: 'lab@2', select: 'role=web', canary: 1 });
    driver.tick(++now);
    const canary = rolloutStatus(state, 'r1').servers.find((s) => s.state === 'requested')!.mac;
    reinstallWhenAsked(canary);
    driver.tick(++now);
    expect(() => actOnRollout(state, 'r1', 'resume', {}, 'test', now)).toThrow(/only a paused rollout resumes/);
    const promoted = actOnRollout(state, 'r1', 'promote', { why: 'canary fine' }, 'test', ++now);
    expect(promoted.rollout!.phase).toBe('promoting');
    expect(driver.store.release('active')).toBe('lab@2');
    expect(driver.store.release('previous')).toBe('lab@1');

    const order: string[] = [];
    for (let i = 0; i < 6 && rolloutStatus(state, 'r1').rollout!.phase === 'promoting'; i++) {
      driver.tick(++now);
      const asked = rolloutStatus(state, 'r1').servers.filter((s) => s.state === 'requested');
      // one batch of one at a time
      expect(asked.length).toBeLessThanOrEqual(1);
      for (const s of asked) {
        order.push(s.mac);
        expect(reinstallWhenAsked(s.mac)).toBe('lab@2');
      }
    }
    expect(order).toHaveLength(2);
    expect(rolloutStatus(state, 'r1').rollout!.phase).toBe('completed');
    expect(MACS.slice(0, 3).map((m) => nodes.node(m)!.image)).toEqual(['lab@2', 'lab@2', 'lab@2']);
    expect(nodes.node(MACS[3]!)!.image).toBe('lab@1');

    const back = actOnRollout(state, 'r1', 'rollback', { batch: 3 }, 'test', ++now);
    expect(back.rollout!.phase).toBe('rolling-back');
    expect(driver.store.release('active')).toBe('lab@1');
    driver.tick(++now);
    for (const m of MACS.slice(0, 3)) expect(reinstallWhenAsked(m)).toBe('lab@1');
    driver.tick(++now);
    expect(rolloutStatus(state, 'r1').rollout!.phase).toBe('rolled-back');
    expect(MACS.map((m) => nodes.node(m)!.image)).toEqual(['lab@1', 'lab@1', 'lab@1', 'lab@1']);
    expect(driver.assigned(MACS[0]!)).toBe('lab@1');
  });

  it('a failing canary pauses it; rollback asks the failed server back through its stage1 heartbeat', async () => {
    await start({ target: 'lab@3', canary: 1, maxFailures: 1 });
    driver.tick(++now);
    const canary = rolloutStatus(state, 'r1').servers.find((s) => s.state === 'requested')!.mac;
    expect(driver.onReport(canary, 'node', nodes.node(canary), now)).toBe('reboot');
    now += 5;
    nodes.changeInstallState({ mac: canary, state: 'stage1', time: now });
    nodes.changeInstallState({ mac: canary, state: 'failed', time: now, reason: 'install' });
    driver.tick(++now);
    const paused = rolloutStatus(state, 'r1');
    expect(paused.rollout).toMatchObject({ phase: 'paused', pausedFrom: 'canary', reason: expect.stringContaining('--max-failures 1') });
    // paused: nothing more is asked of anyone, whatever reports
    driver.tick(++now);
    for (const m of MACS) expect(driver.onReport(m, 'node', nodes.node(m), now)).toBeUndefined();
    expect(nodes.events().some((e) => e.kind === 'rollout-paused' && e.mac === '')).toBe(true);

    actOnRollout(state, 'r1', 'rollback', {}, 'test', ++now);
    driver.tick(++now);
    // the failed stage1's heartbeat (install scope) gets the reboot; its install is v1 again
    expect(driver.onReport(canary, 'install', nodes.node(canary), now)).toBe('reboot');
    expect(driver.assigned(canary)).toBe('lab@1');
    now += 5;
    install(canary, 'lab@1');
    driver.tick(++now);
    expect(rolloutStatus(state, 'r1').rollout!.phase).toBe('rolled-back');
  });

  it('refuses what it cannot do, naming why', async () => {
    await expect(start({ target: 'lab@1' })).rejects.toThrow(/already the pod's active release/);
    await expect(start({ target: 'lab@2', select: 'role=cache' })).rejects.toThrow(/picks none of the pod's 5 server\(s\) \(1 pinned, never rolled\)/);
    copies = (refs) => refs.map((ref) => ({ pod: 'r1', ref, status: ref === 'lab@2' ? 'unrepairable' : 'ok', detail: 'catalog blob corrupt' }) as CacheCheckResult);
    await expect(start({ target: 'lab@2' })).rejects.toThrow(/copy of lab@2 is unrepairable: catalog blob corrupt; nothing was started/);
    copies = (refs) => refs.map((ref) => ({ pod: 'r1', ref, status: 'ok' }) as CacheCheckResult);
    await start({ target: 'lab@2', canary: 1 });
    await expect(start({ target: 'lab@3' })).rejects.toThrow(/is canary: let it complete or roll it back first/);
    expect(() => parseStart({ target: 'lab' })).toThrow(/name@version/);
    expect(() => parseStart({ target: 'lab@2', canary: 'many' })).toThrow(/a count/);
    expect(() => parseStart({ target: 'lab@2', select: 'a=b=c d' })).toThrow(/label value/);
  });
});
