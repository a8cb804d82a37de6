// Issue 17 in the lab: 1 rack × 4 QEMU VMs behind a 50 ms RTT WAN capped at
// 20 Mbit/s, all installing the same streamed (zstd, 4 MiB chunks) image at
// once. The WAN link counts the bytes of the pod's HTTPS port that cross it
// toward the rack: the image's copies (the boot files go over plain HTTP).
//   1. rack sharing off: each VM pulls its own copy, ≈ 4 × the image;
//   2. sharing on: every VM installs and verifies, ≤ 1.5 × the image, the
//      chunks the VMs took from one another are on their consoles;
//   3. a hostile host on the rack LAN (a registered MAC with a DHCP lease, an
//      install token and session of its own) joins the swarm, claims every
//      chunk and serves garbage: refused by digest, struck, fetched elsewhere;
//      and one VM is powered off in the middle of the transfer: the other
//      three still install.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LISTEN_PORTS } from '../../../src/config/listen.js';
import { podDatabaseFile } from '../../../src/store/database.js';
import { placeStage2 } from '../../helpers/stage2.js';
import { downLeavesNothing, expectBootedInOrder, labBoot, labPids, labTestDir, podboot, type Timeline } from './rig.js';

const lab = labTestDir('share');
const { work, dir: DIR, prefix } = lab;
const STATE = join(DIR, 'state');
const POD = 'rack-1';
const POD_FILE = join(DIR, 'pods', `${POD}.yaml`);
const INSTANCE_LOG = join(STATE, POD, 'instance.log');
const CACHE = new URL('../../../.cache', import.meta.url).pathname;
const HTTPS = '443';
let imageBytes = 0;
/** 4 MiB: five chunks of the lab image, each a few seconds of the capped WAN */
const CHUNK_BYTES = 4 << 20;

/** How many times the pod instance has started: a reload starts it again. */
const starts = () => (readFileSync(INSTANCE_LOG, 'utf8').match(/http boot listening/g) ?? []).length;

/** The rack's pod file with imageSharing set, picked up by the central node (SIGHUP reads the pods directory at once). */
async function setSharing(peers: boolean): Promise<void> {
  const before = starts();
  const text = readFileSync(POD_FILE, 'utf8').replace(/\n {2}imageSharing:.*\n/, '\n');
  writeFileSync(POD_FILE, `${text.trimEnd()}\n  imageSharing: { peers: ${peers} }\n`);
  const central = (JSON.parse(readFileSync(join(DIR, 'lab-state.json'), 'utf8')) as { processes: { what: string; pid: number }[] }).processes.find((p) => p.what === 'central')!;
  process.kill(central.pid, 'SIGHUP');
  const deadline = Date.now() + 90_000;
  while (starts() === before) {
    if (Date.now() > deadline) throw new Error(`${POD} did not restart after its pod file changed`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** HTTPS bytes toward the rack during one `lab boot`, from the WAN link's counters in its timeline. */
function httpsDown(t: Timeline & { wan?: Record<string, { down: { tcpPorts: Record<string, number> } }> }): number {
  const bytes = t.wan?.[POD]?.down.tcpPorts[HTTPS];
  expect(bytes, 'the timeline carries the WAN counters').toBeTypeOf('number');
  return bytes!;
}

/** stage1 → installed per VM: what the image's transfer is part of (figures for docs/decisions.md). */
const installSeconds = (t: Timeline) => Object.values(t.vms).map((v) => Math.round((v.phases.installed ?? Number.NaN) - (v.phases.stage1 ?? 0)));

const consoles = () => ['r1-vm1', 'r1-vm2', 'r1-vm3', 'r1-vm4'].map((vm) => readFileSync(join(DIR, 'vms', `${vm}.console.log`), 'utf8'));

describe('rack sharing: 1 rack × 4 VMs, one image over a capped WAN', () => {
  it('lab up behind a 50 ms, 20 Mbit/s WAN; the rack installs lab-stage2@2.0, zstd in 4 MiB chunks', async () => {
    const up = await podboot(['lab', 'up', '--racks', '1', '--nodes-per-rack', '4', '--wan-rtt', '50ms', '--wan-rate', '20mbit', '--dir', DIR]);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const image = join(work, 'lab-stage2-2.0.img.zst');
    execFileSync('zstd', ['-q', '-3', '-f', join(CACHE, 'lab-stage2.img'), '-o', image]);
    const ca = join(STATE, 'ca', 'signers');
    const sign = await podboot([
      'sign',
      image,
      '--cert',
      join(ca, 'lab.chain.pem'),
      '--key',
      join(ca, 'lab.key'),
      '--name',
      'lab-stage2',
      '--version',
      '2.0',
      '--pods',
      POD,
      '--not-after',
      '7d',
      '--chunk-bytes',
      String(CHUNK_BYTES),
    ]);
    expect(sign.code, sign.stdout + sign.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(`${image}.manifest.json`, 'utf8')) as { size: number; chunkSha256: string[] };
    imageBytes = manifest.size;
    expect(manifest.chunkSha256.length).toBeGreaterThan(3);
    placeStage2(image, join(STATE, POD), 'lab-stage2@2.0');
    writeFileSync(POD_FILE, readFileSync(POD_FILE, 'utf8').replace('stage2: { image: lab-stage2, version: "1.0" }', 'stage2: { image: lab-stage2, version: "2.0" }'));
  }, 900_000);

  it('sharing off: every VM installs, and the WAN carries about four copies', async () => {
    await setSharing(false);
    const { boot, timeline } = await labBoot(lab, 'off', ['--timeout', '900', '--until', 'installed']);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    for (const vm of Object.values(timeline.vms)) expect(vm.result).toBe('installed');
    const copies = httpsDown(timeline) / imageBytes;
    console.log(`sharing off: ${httpsDown(timeline)} HTTPS bytes toward the rack, ${copies.toFixed(2)} × the ${imageBytes}-byte image; stage1 → installed ${installSeconds(timeline).join(', ')} s`);
    expect(copies).toBeGreaterThan(3.8);
    expect(copies).toBeLessThan(4.6);
    for (const c of consoles()) expect(c).toContain('rack sharing: off in this pod');
  }, 1_200_000);

  it('sharing on: every VM installs and verifies, and the WAN carries at most 1.5 copies', async () => {
    await setSharing(true);
    const { boot, timeline } = await labBoot(lab, 'on', ['--timeout', '900']);
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    for (const vm of Object.values(timeline.vms)) expectBootedInOrder(vm);
    const copies = httpsDown(timeline) / imageBytes;
    console.log(`sharing on: ${httpsDown(timeline)} HTTPS bytes toward the rack, ${copies.toFixed(2)} × the ${imageBytes}-byte image; stage1 → installed ${installSeconds(timeline).join(', ')} s`);
    expect(copies).toBeLessThanOrEqual(1.5);
    const counts = consoles().map((c) => {
      expect(c).toMatch(/verified lab-stage2 2\.0 sha256=[0-9a-f]{64}/);
      const m = /chunks from rack peers: (\d+), from the pod: (\d+)/.exec(c);
      expect(m, 'each VM says where its chunks came from').not.toBeNull();
      return { peers: Number(m![1]), pod: Number(m![2]) };
    });
    const chunks = counts[0]!.peers + counts[0]!.pod;
    for (const c of counts) expect(c.peers + c.pod).toBe(chunks);
    // the pod's copies summed over the rack: about one image's worth of chunks
    expect(counts.reduce((n, c) => n + c.pod, 0)).toBeLessThanOrEqual(Math.ceil(chunks * 1.5));
  }, 1_200_000);

  it('a peer that serves corrupt chunks is refused by digest and struck; a VM powered off mid-transfer: the other three install', async () => {
    const evil = await hostilePeer();
    try {
      const logAt = readFileSync(INSTANCE_LOG, 'utf8').length;
      const booting = labBoot(lab, 'hostile', ['--timeout', '900', '--until', 'installed']);
      // vm4 goes once it asks for its second chunk (the question says it holds the first): a peer that
      // holds a chunk, and is fetching or waiting for the next
      const deadline = Date.now() + 600_000;
      while (questions(logAt, '10.20.1.13') < 2) {
        if (Date.now() > deadline) throw new Error('r1-vm4 never asked for a second chunk');
        await new Promise((r) => setTimeout(r, 200));
      }
      const qemu = labProcesses().find((p) => p.what === 'qemu-r1-vm4')!;
      process.kill(qemu.pid, 'SIGKILL');
      const { boot, timeline } = await booting;
      expect(boot.code, 'vm4 did not finish: lab boot says so').not.toBe(0);
      expect(timeline.vms['r1-vm4']!.result).not.toBe('installed');
      for (const vm of ['r1-vm1', 'r1-vm2', 'r1-vm3']) expect(timeline.vms[vm]!.result, vm).toBe('installed');
      const c = consoles();
      for (const text of c.slice(0, 3)) expect(text).toMatch(/verified lab-stage2 2\.0 sha256=[0-9a-f]{64}/);
      expect(c.join('\n')).toMatch(/chunk \d+ from rack peer 10\.20\.1\.60 refused \(digest\): asking for another source/);
      const db = new Database(podDatabaseFile(join(STATE, POD)), { readonly: true });
      try {
        const events = db.prepare('SELECT kind, detail FROM events WHERE mac = ? AND kind = ?').all(EVIL_MAC, 'peer-chunk-corrupt') as { kind: string; detail: string }[];
        expect(events.length).toBeGreaterThan(0);
        expect(events[0]!.detail).toContain('struck from the rack');
      } finally {
        db.close();
      }
      // struck for good: after the first refusal it was never offered again, so each VM refused it at most once
      const refusals = (text: string) => (text.match(/from rack peer 10\.20\.1\.60 refused/g) ?? []).length;
      for (const text of c) expect(refusals(text)).toBeLessThanOrEqual(1);
    } finally {
      evil.stop();
    }
  }, 1_200_000);

  it('lab down leaves nothing behind', async () => {
    await downLeavesNothing(lab, labPids(DIR, prefix));
  }, 300_000);
});

const EVIL_MAC = '52:54:00:66:00:60';
const EVIL_ADDR = '10.20.1.60';
const EVIL_NS = 'pbsh-evil';
const HTTP_PORT = LISTEN_PORTS.find((p) => p.key === 'httpPort')!.default;
afterAll(() => {
  try {
    execFileSync('ip', ['netns', 'del', EVIL_NS], { stdio: 'ignore' });
  } catch {
    /* not made */
  }
});

const labProcesses = () => (JSON.parse(readFileSync(join(DIR, 'lab-state.json'), 'utf8')) as { processes: { what: string; pid: number }[] }).processes;

/** Questions for a chunk's source from `address` in the pod's log since byte `from`. */
function questions(from: number, address: string): number {
  return readFileSync(INSTANCE_LOG, 'utf8')
    .slice(from)
    .split('\n')
    .filter((l) => l.includes('"path":"/v1/share/source"') && l.includes(`"remote":"${address}"`)).length;
}

const inEvil = (cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', EVIL_NS, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });

/**
 * A host on the rack LAN that goes through the pod's front door: a MAC the
 * pod file lists, a lease through the rack's relay (ISC dhclient), the iPXE
 * script the pod gives that lease's address, its install token exchanged for
 * a session. With the swarm's key it serves random bytes as every chunk and
 * tells the pod it holds them all, again every 20 s.
 */
async function hostilePeer(): Promise<{ stop: () => void }> {
  const before = starts();
  const pod = readFileSync(POD_FILE, 'utf8');
  writeFileSync(POD_FILE, pod.replace('\n  unknownNodes:', `\n    - { mac: "${EVIL_MAC}", hostname: intruder, address: ${EVIL_ADDR} }\n  unknownNodes:`));
  process.kill(labProcesses().find((p) => p.what === 'central')!.pid, 'SIGHUP');
  while (starts() === before) await new Promise((r) => setTimeout(r, 250));
  const podAddress = /listen: \{ address: ([0-9.]+) \}/.exec(pod)![1]!;
  const evil = join(work, 'evil');
  mkdirSync(join(evil, 'www'), { recursive: true });
  execFileSync('ip', ['netns', 'add', EVIL_NS]);
  execFileSync('ip', ['link', 'add', 'pbsh-e0', 'netns', EVIL_NS, 'address', EVIL_MAC, 'type', 'veth', 'peer', 'name', 'pbsh-e1', 'netns', `${prefix}-tor1`]);
  execFileSync('ip', ['-n', `${prefix}-tor1`, 'link', 'set', 'pbsh-e1', 'master', 'br0', 'up']);
  inEvil('ip', ['link', 'set', 'lo', 'up']);
  inEvil('ip', ['link', 'set', 'pbsh-e0', 'up']);
  const leases = join(evil, 'dhclient.leases');
  const dhclient = spawn('ip', ['netns', 'exec', EVIL_NS, 'dhclient', '-4', '-d', '-1', '-sf', '/bin/true', '-lf', leases, '-pf', join(evil, 'dhclient.pid'), 'pbsh-e0'], { stdio: 'ignore' });
  const children: ChildProcess[] = [dhclient];
  const stop = () => {
    for (const c of children) c.kill('SIGKILL');
  };
  try {
    const deadline = Date.now() + 60_000;
    const leased = () => {
      try {
        return readFileSync(leases, 'utf8').includes(`fixed-address ${EVIL_ADDR};`);
      } catch {
        return false;
      }
    };
    while (!leased()) {
      if (Date.now() > deadline) throw new Error('the hostile host got no lease');
      await new Promise((r) => setTimeout(r, 250));
    }
    dhclient.kill('SIGKILL');
    inEvil('ip', ['addr', 'add', `${EVIL_ADDR}/24`, 'dev', 'pbsh-e0']);
    inEvil('ip', ['route', 'add', 'default', 'via', '10.20.1.1']);
    const script = inEvil('curl', ['-sS', '--fail', `http://${podAddress}:${HTTP_PORT}/ipxe/${EVIL_MAC.replaceAll(':', '-')}.ipxe`]);
    const token = /podboot\.token=([A-Za-z0-9._~+/=-]+)/.exec(script)?.[1];
    expect(token, 'the iPXE script carries an install token').toBeDefined();
    const rootCa = join(STATE, 'ca', 'root.pem');
    const api = (method: string, path: string, bearer: string) =>
      inEvil('curl', ['-sS', '--fail', '--cacert', rootCa, '-X', method, '-H', `Authorization: Bearer ${bearer}`, `https://${podAddress}:${HTTPS}${path}`]);
    const session = api('POST', '/v1/session', token!).trim();
    const key = api('GET', '/v1/share/key', session);
    const [head, ...pem] = key.split('\n');
    const [, port, path] = head!.split(' ');
    writeFileSync(join(evil, 'share.pem'), pem.join('\n'), { mode: 0o600 });
    mkdirSync(join(evil, 'www', path!), { recursive: true });
    const chunks = (JSON.parse(readFileSync(join(work, 'lab-stage2-2.0.img.zst.manifest.json'), 'utf8')) as { chunkSha256: string[] }).chunkSha256.length;
    for (let n = 1; n <= chunks; n++) writeFileSync(join(evil, 'www', path!, String(n)), randomBytes(CHUNK_BYTES));
    children.push(spawn('ip', ['netns', 'exec', EVIL_NS, 'openssl', 's_server', '-quiet', '-WWW', '-accept', port!, '-cert', join(evil, 'share.pem')], { cwd: join(evil, 'www'), stdio: 'ignore' }));
    const claim = () => api('POST', `/v1/share/have?from=1&to=${chunks}`, session);
    claim();
    const timer = setInterval(() => {
      try {
        claim();
      } catch {
        /* struck or the pod restarting: the next round tries again */
      }
    }, 20_000);
    return {
      stop: () => {
        clearInterval(timer);
        stop();
      },
    };
  } catch (err) {
    stop();
    throw err;
  }
}
