// Issue 15 in the lab: 1 rack × 3 QEMU VMs PXE-installed with lab-stage2@1.0,
// then rollouts through the central node's API, from the CLI, as an
// operator runs them. The versions come from a real artifact store (Debian's
// nginx) pulled into the central catalog; the rollout's start places them in
// the pod's cache. Asked in the answer to its next heartbeat, an installed VM
// reboots into the network boot and installs what the rollout assigns it.
//   1. 3.0, a signed file that is no disk image, with a canary of 1: the
//      lab kickstart refuses it, the canary fails, the rollout pauses by
//      itself; the other two are not touched.
//   2. rollback: the failed canary's stage1 is asked back, installs 1.0; all
//      three on 1.0, and nginx served 0 bytes meanwhile.
//   3. 2.0 with a canary of 1: only the canary is reinstalled; promote: the
//      other two, one batch at a time; all three on 2.0.
import { execFile } from 'node:child_process';
import Database from 'better-sqlite3';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PODBOOT } from '../../helpers/netns.js';
import { startNginx, type Nginx } from '../catalog/artifact-server.js';
import { downLeavesNothing, labBoot, labPids, labTestDir, podboot } from './rig.js';

const lab = labTestDir('rollout');
const { work, dir: DIR, prefix } = lab;
const STATE = join(DIR, 'state');
const CA = join(STATE, 'ca');
const POD = 'rack-1';
const MACS = ['52:54:00:9b:01:01', '52:54:00:9b:01:02', '52:54:00:9b:01:03'];
let nginx: Nginx | undefined;
afterAll(async () => nginx?.stop());

interface Node {
  state: string;
  attempt: number;
  updatedAt: number;
  image?: string;
}
interface Status {
  rollout: { id: string; phase: string; pausedFrom?: string; reason?: string; target: string };
  releases: { ref: string; role: string }[];
  servers: { mac: string; pass: string; canary: boolean; state: string; batch?: number; startedAt?: number; finishedAt?: number; detail?: string }[];
}

function runAsync(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI in the lab's central namespace, where the central node's API listens. */
const central = (args: string[], timeoutMs = 900_000) => runAsync('ip', ['netns', 'exec', `${prefix}-central`, process.execPath, PODBOOT, ...args, '--state', STATE], timeoutMs);

/** What an install changes (heartbeats move lastSeen on their own). */
async function node(mac: string): Promise<Node> {
  const r = await podboot(['nodes', 'show', mac, '--pod', POD, '--state', STATE, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const n = JSON.parse(r.stdout).node as Node & { updatedAt: number };
  return { state: n.state, attempt: n.attempt, updatedAt: n.updatedAt, ...(n.image ? { image: n.image } : {}) };
}
const nodes = () => Promise.all(MACS.map(node));

/** Bytes nginx sent for every request logged so far. */
const servedBytes = () => nginx!.accessLog().reduce((n, l) => n + Number(l.split(' ').pop()), 0);

/**
 * Publishes a signed image under the artifact store's /v/VERSION/ and pulls it
 * into the central catalog: `signed` as it is, or FILE signed as
 * lab-stage2@VERSION with the lab's signer.
 */
async function publish(version: string, from: { signed: string } | { file: string }): Promise<void> {
  let signed: string;
  if ('signed' in from) signed = from.signed;
  else {
    signed = join(work, `lab-stage2-${version}.img`);
    copyFileSync(from.file, signed);
    const sign = await podboot([
      'sign',
      signed,
      '--cert',
      join(CA, 'signers', 'lab.chain.pem'),
      '--key',
      join(CA, 'signers', 'lab.key'),
      '--name',
      'lab-stage2',
      '--version',
      version,
      '--pods',
      POD,
      '--not-after',
      '30d',
    ]);
    expect(sign.code, sign.stdout + sign.stderr).toBe(0);
  }
  const to = join(nginx!.root, 'v', version);
  mkdirSync(to, { recursive: true });
  for (const ext of ['', '.p7s', '.manifest.json', '.manifest.json.p7s']) copyFileSync(`${signed}${ext}`, join(to, `lab-stage2.img${ext}`));
  const pull = await podboot([
    'images',
    'pull',
    `https://127.0.0.1:${nginx!.port}/v/${version}/lab-stage2.img`,
    '--ca',
    join(CA, 'root.pem'),
    '--tls-ca',
    join(CA, 'root.pem'),
    '--catalog',
    join(STATE, 'catalog'),
  ]);
  expect(pull.code, pull.stdout + pull.stderr).toBe(0);
}

describe('podboot rollout: 1 rack × 3 VMs', () => {
  it('lab up and boot: three VMs on lab-stage2@1.0; the versions pulled from nginx into the central catalog', async () => {
    const up = await podboot(['lab', 'up', '--racks', '1', '--nodes-per-rack', '3', '--wan-rtt', '10ms', '--dir', DIR]);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const { boot } = await labBoot(lab, 'v1', ['--timeout', '600', '--keep-running']);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    for (const n of await nodes()) expect(n).toMatchObject({ state: 'booted-from-disk', image: 'lab-stage2@1.0' });

    const issued = await podboot(['ca', 'issue-server', 'artifacts', '--ca', CA, '--ip', '127.0.0.1']);
    expect(issued.code, issued.stderr).toBe(0);
    nginx = await startNginx(join(work, 'artifacts'), join(CA, 'servers', 'artifacts.chain.pem'), join(CA, 'servers', 'artifacts.key'));
    // 1.0 as `lab up` signed it (the copy the pod holds), 2.0 the same disk signed again
    const v1 = join(DIR, 'stage2', 'lab-stage2.img');
    await publish('1.0', { signed: v1 });
    await publish('2.0', { file: v1 });
    // signed and valid, but no disk image: the lab kickstart refuses it before it touches the disk
    const junk = join(work, 'junk.img');
    writeFileSync(junk, randomBytes(1 << 20));
    await publish('3.0', { file: junk });
  }, 1_200_000);

  it('a version whose kickstart fails: the canary fails, the rollout pauses by itself, the others keep 1.0 untouched', async () => {
    const before = await nodes();
    const r = await central(['rollout', 'start', 'lab-stage2@3.0', '--pod', POD, '--canary', '1', '--batch', '1', '--max-failures', '1', '--server-timeout', '600', '--wait', '--json']);
    // --wait ends at the pause, not where it was going: exit 1
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const s = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Status;
    expect(s.rollout).toMatchObject({ phase: 'paused', pausedFrom: 'canary' });
    expect(s.rollout.reason).toMatch(/--max-failures 1/);
    const canary = s.servers.find((x) => x.canary)!;
    expect(canary).toMatchObject({ state: 'failed', detail: 'install failed (install)' });
    expect(s.servers.filter((x) => x.state !== 'pending').map((x) => x.mac)).toEqual([canary.mac]);
    const after = await nodes();
    for (const [i, mac] of MACS.entries()) {
      if (mac === canary.mac) expect(after[i]).toMatchObject({ state: 'failed', attempt: before[i]!.attempt + 1 });
      else expect(after[i]).toEqual(before[i]);
    }
    // the pod says why, in its events: the server's, and the pod's own
    const shown = await podboot(['nodes', 'show', canary.mac, '--pod', POD, '--state', STATE, '--json']);
    expect(shown.stdout).toMatch(/rollout-server-failed/);
    const db = new Database(join(STATE, POD, 'pod.db'), { readonly: true });
    try {
      const paused = db.prepare("SELECT detail FROM events WHERE mac = '' AND kind = 'rollout-paused'").all() as { detail: string }[];
      expect(paused.map((e) => e.detail)).toEqual([expect.stringMatching(/to lab-stage2@3\.0: 1 server\(s\) failed/)]);
    } finally {
      db.close();
    }
  }, 900_000);

  it('rollback: the failed canary installs 1.0 again from the pod cache; nginx serves 0 bytes', async () => {
    const bytes = servedBytes();
    const r = await central(['rollout', 'rollback', '--pod', POD, '--why', 'kickstart refuses 3.0', '--wait', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Status;
    expect(s.rollout.phase).toBe('rolled-back');
    expect(s.servers.filter((x) => x.pass === 'back').map((x) => x.state)).toEqual(['done']);
    for (const n of await nodes()) expect(n).toMatchObject({ state: 'booted-from-disk', image: 'lab-stage2@1.0' });
    expect(s.releases.find((x) => x.role === 'active')?.ref).toBe('lab-stage2@1.0');
    expect(servedBytes() - bytes).toBe(0);
  }, 900_000);

  it('2.0 with a canary of 1: only the canary is reinstalled; promote: the other two one batch at a time', async () => {
    const before = await nodes();
    const r = await central(['rollout', 'start', 'lab-stage2@2.0', '--pod', POD, '--canary', '1', '--batch', '1', '--server-timeout', '600', '--wait', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Status;
    expect(s.rollout.phase).toBe('canary-passed');
    const canary = s.servers.find((x) => x.canary)!.mac;
    const mid = await nodes();
    for (const [i, mac] of MACS.entries()) {
      if (mac === canary) expect(mid[i]).toMatchObject({ state: 'booted-from-disk', image: 'lab-stage2@2.0', attempt: before[i]!.attempt + 1 });
      else expect(mid[i]).toEqual(before[i]);
    }

    const p = await central(['rollout', 'promote', '--pod', POD, '--wait', '--json']);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    const done = JSON.parse(p.stdout.slice(p.stdout.indexOf('{'))) as Status;
    expect(done.rollout.phase).toBe('completed');
    expect(done.releases.find((x) => x.role === 'active')?.ref).toBe('lab-stage2@2.0');
    expect(done.releases.find((x) => x.role === 'previous')?.ref).toBe('lab-stage2@1.0');
    for (const n of await nodes()) expect(n).toMatchObject({ state: 'booted-from-disk', image: 'lab-stage2@2.0' });
    // one batch at a time: the second was asked only after the first booted with 2.0
    const rest = done.servers.filter((x) => !x.canary).sort((a, b) => a.batch! - b.batch!);
    expect(rest.map((x) => x.batch)).toEqual([2, 3]);
    expect(rest[1]!.startedAt!).toBeGreaterThanOrEqual(rest[0]!.finishedAt!);
    // what `rollout status` prints for an operator
    const text = await central(['rollout', 'status', '--pod', POD], 60_000);
    expect(text.stdout).toMatch(/rollout [0-9a-f]{12} to lab-stage2@2\.0: completed/);
    expect(text.stdout).toMatch(/active lab-stage2@2\.0, previous lab-stage2@1\.0/);
  }, 1_200_000);

  it('lab down leaves nothing', async () => {
    await downLeavesNothing(lab, labPids(DIR, prefix));
    expect(readFileSync(join(work, 'junit-v1.xml'), 'utf8')).toMatch(/failures="0"/);
  }, 180_000);
});
