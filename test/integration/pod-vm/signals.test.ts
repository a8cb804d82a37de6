// `podboot serve` and its signals (issue 20): a stale api.sock left by a
// killed node is replaced at start; SIGHUP reloads a pod whose file changed
// and the central API's certificate, with the node still running and a lease
// taken before still in the pod's database; SIGTERM stops it cleanly.
// The central node runs in a namespace of its own, its one rack in another.
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIPv4 } from '../../../src/net/ipv4.js';
import { openPodState } from '../../../src/store/pod-state.js';
import { type Rack, rackPodYaml, wireRack } from '../../helpers/rack-pods.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const RACK: Rack = { pod: 'rack-h', ns: 'r', server: '10.99.0.1', relay: '10.31.0.1', octet: 31 };
const MAC = '52:54:00:20:00:01';

async function until(what: string, fn: () => boolean, detail: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SHA-256 fingerprint of the certificate the API serves on its unix socket. */
function servedFingerprint(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: socketPath, rejectUnauthorized: false, servername: 'localhost' }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

describe('podboot serve: signals', () => {
  const lab = new Lab('h20');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  const socketPath = join(stateDir, 'central', 'api.sock');
  // A second name for the pod file, outside the watched directory: writes
  // through it are invisible to the directory watch, so only SIGHUP (or the
  // 5 s safety rescan, far later) can make the node see them.
  const sideDoor = join(lab.dir, `${RACK.pod}.yaml`);
  let central: Daemon;

  const log = () => central.log();
  const alive = () => central.proc.exitCode === null && central.proc.signalCode === null;
  const wait = (what: string, fn: () => boolean, timeoutMs?: number) =>
    until(
      what,
      () => {
        if (!alive()) throw new Error(`central node exited (${central.proc.exitCode ?? central.proc.signalCode}) waiting for ${what}:\n${log().slice(-4000)}`);
        return fn();
      },
      log,
      timeoutMs,
    );
  const count = (re: RegExp) => [...log().matchAll(new RegExp(re.source, 'g'))].length;
  const readyCount = () => count(new RegExp(`"pod":"${RACK.pod}","pid":\\d+,"listeners":[^\\n]*"msg":"pod instance ready"`));

  /** A PXE client's exchange (--arch): the pod records the server as well as its lease. */
  function probe(mac: string): string | undefined {
    const out = lab.exec(RACK.ns, process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', `${RACK.server}:67`, '--relay', `${RACK.relay}:67`, '--mac', mac, '--arch', '0', '--timeout', '3000'], {
      allowFail: true,
    });
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; yiaddr: string })
      .find((p) => p.type === 'ACK')?.yiaddr;
  }

  /** The pod's bound leases, read from its database as the API reads them. */
  function leases(): Record<string, string | undefined> {
    const state = openPodState(join(stateDir, RACK.pod), { readonly: true });
    if (!state) return {};
    try {
      return Object.fromEntries(state.nodesWithLeases(Math.floor(Date.now() / 1000)).map((n) => [n.mac, n.address === undefined ? undefined : formatIPv4(n.address)]));
    } finally {
      state.close();
    }
  }

  beforeAll(async () => {
    requireBuild();
    wireRack(lab, RACK, podsDir);
    linkSync(join(podsDir, `${RACK.pod}.yaml`), sideDoor);
    // What a node killed with -9 leaves: a socket file nobody listens on.
    mkdirSync(join(stateDir, 'central'), { recursive: true });
    const killed = spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(killed.signal).toBe('SIGKILL');
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    central = lab.spawn('c', process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0'], 'central');
    await wait('the pod ready', () => readyCount() === 1, 30_000);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it('a stale api.sock from a killed node is replaced: the new node answers on it', async () => {
    expect(log()).not.toContain('could not listen on its unix socket');
    expect(await servedFingerprint(socketPath)).toMatch(/^[0-9A-F:]{95}$/);
  });

  it('SIGHUP reloads a changed pod file and the API certificate; the node keeps running and the lease stays', async () => {
    const address = probe(MAC);
    expect(address).toMatch(/^10\.31\.1\./);
    expect(leases()[MAC]).toBe(address);
    const certBefore = await servedFingerprint(socketPath);
    // A renewed certificate: the files go and the node issues new ones when told to look.
    for (const f of ['central.key', 'central.chain.pem', 'central.pem']) rmSync(join(stateDir, 'ca', 'servers', f), { force: true });
    const restartsBefore = count(/"reason":"pod file changed[^"]*","msg":"pod instance restarting"/);
    writeFileSync(sideDoor, rackPodYaml(RACK, '10.31.250.250'));
    central.proc.kill('SIGHUP');
    await wait('the reload done', () => log().includes('"msg":"reload done"'));
    await wait('the pod ready again', () => readyCount() === 2);
    // The SIGHUP made the reload (the watch never saw the write), in its order.
    const text = log();
    const requested = text.indexOf('"msg":"reload requested (SIGHUP)"');
    const restarted = text.indexOf('"msg":"pod instance restarting"', requested);
    expect(requested).toBeGreaterThan(0);
    expect(restarted).toBeGreaterThan(requested);
    expect(restarted).toBeLessThan(text.indexOf('"msg":"reload done"'));
    expect(count(/"reason":"pod file changed[^"]*","msg":"pod instance restarting"/)).toBe(restartsBefore + 1);
    expect(text).toContain('"msg":"central API certificate reloaded"');
    expect(await servedFingerprint(socketPath)).not.toBe(certBefore);
    expect(alive()).toBe(true);
    // The lease taken before the reload is in the database and served again.
    expect(leases()[MAC]).toBe(address);
    expect(probe(MAC)).toBe(address);
    // A second SIGHUP with nothing changed restarts nothing.
    central.proc.kill('SIGHUP');
    await wait('the second reload done', () => count(/"msg":"reload done"/) === 2);
    expect(readyCount()).toBe(2);
    expect(count(/"msg":"central API certificate reloaded"/)).toBe(1);
  }, 60_000);

  it('SIGTERM stops every pod and then the node, exit 0, its socket gone', async () => {
    expect(await central.stop('SIGTERM')).toBe(0);
    expect(log()).toContain('"msg":"central node stopped"');
    expect(existsSync(socketPath)).toBe(false);
  }, 30_000);
});
