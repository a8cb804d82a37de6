// The node agent of the installed OS (images/debian/podboot-node-agent) run
// on the host, under dash (Debian's /bin/sh) and, when the stage1 build cached
// it, busybox sh with only its applets and curl on PATH, against a small HTTPS
// pod API on 127.0.0.1 whose certificate comes from a CA made by podboot's
// own CaDirectory. /proc is a directory of the test's making, so the figures
// a heartbeat carries are known. Its systemd unit is checked with
// systemd-analyze verify in a copy of this machine's unit tree.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaDirectory } from '../../../src/signing/index.js';

const REPO = new URL('../../../', import.meta.url).pathname;
const AGENT = join(REPO, 'images/debian/podboot-node-agent');
const UNIT = join(REPO, 'images/debian/podboot-node-agent.service');
const TOKEN = 'pb1.node.525400aa0001.1.1999999999.Zm9vYmFy-_x';
const tmp = mkdtempSync(join(tmpdir(), 'node-agent-test-'));

interface Posted {
  body: Record<string, unknown>;
  auth: string | undefined;
  type: string | undefined;
}

/** Every POST /v1/events, in order; the answer to each is the next status of `answers` (200 once they run out). */
const posted: Posted[] = [];
let answers: number[] = [];
let server: Server;
let port = 0;
let goodCa = '';
let otherCa = '';
/** Answers /v1/tasks/… when a test sets it (the agent's task loop); else 404, as a pod without tasks. */
let tasks: ((method: string, url: string, body: Buffer, res: import('node:http').ServerResponse) => void) | undefined;

beforeAll(async () => {
  const ca = await CaDirectory.init(join(tmp, 'ca'), { organization: 'Node Agent Test' });
  const issued = await ca.issueServer('rack-n', { ip: ['127.0.0.1'] });
  goodCa = ca.paths.rootCert;
  otherCa = (await CaDirectory.init(join(tmp, 'other-ca'), { organization: 'Someone Else' })).paths.rootCert;
  server = createServer({ key: readFileSync(issued.key), cert: readFileSync(issued.chain) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (tasks && req.url?.startsWith('/v1/tasks/')) return tasks(req.method ?? '', req.url, Buffer.concat(chunks), res);
      if (req.method !== 'POST' || req.url !== '/v1/events') return res.writeHead(404).end();
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      posted.push({ body, auth: req.headers.authorization, type: req.headers['content-type'] });
      const status = answers.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? JSON.stringify({ state: 'booted-from-disk' }) : '{"error":"no"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

interface Shell {
  name: string;
  sh: string;
  path: string;
}

/** dash, and (when the stage1 build cached it) Debian's busybox-static with nothing but its applets and curl. */
function shells(): Shell[] {
  const list: Shell[] = [{ name: 'dash', sh: 'dash', path: process.env.PATH ?? '/usr/bin:/bin' }];
  const x = join(REPO, '.cache', 'debs', 'x');
  const pkg = existsSync(x) ? readdirSync(x).find((d) => d.startsWith('busybox-static_')) : undefined;
  if (pkg) {
    const busybox = join(x, pkg, 'bin', 'busybox');
    const bin = join(tmp, 'bb-bin');
    mkdirSync(bin, { recursive: true });
    for (const applet of spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) symlinkSync(busybox, join(bin, applet));
    rmSync(join(bin, 'curl'), { force: true });
    symlinkSync('/usr/bin/curl', join(bin, 'curl'));
    list.push({ name: 'busybox', sh: join(bin, 'sh'), path: bin });
  }
  return list;
}

const PROC = {
  uptime: '12345.67 23456.10\n',
  loadavg: '0.52 0.40 0.31 2/187 4242\n',
  meminfo: 'MemTotal:        2048000 kB\nMemFree:          512000 kB\nMemAvailable:    1024000 kB\nBuffers:           10000 kB\n',
  hostname: 'node-a1\n',
};

let n = 0;
/** A fresh directory: node.env (mode 0600, as cloud-init writes it), a fake /proc, a run directory. */
function world(envLines?: string[], heartbeat = 1): { dir: string; env: Record<string, string> } {
  const dir = join(tmp, `w${++n}`);
  mkdirSync(join(dir, 'proc', 'sys', 'kernel'), { recursive: true });
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'proc', 'uptime'), PROC.uptime);
  writeFileSync(join(dir, 'proc', 'loadavg'), PROC.loadavg);
  writeFileSync(join(dir, 'proc', 'meminfo'), PROC.meminfo);
  writeFileSync(join(dir, 'proc', 'sys', 'kernel', 'hostname'), PROC.hostname);
  const lines = envLines ?? [
    'PODBOOT_SERVER=127.0.0.1',
    `PODBOOT_HTTPS=${port}`,
    'PODBOOT_POD=rack-n',
    'PODBOOT_MAC=52:54:00:aa:00:01',
    `PODBOOT_NODE_TOKEN=${TOKEN}`,
    `PODBOOT_HEARTBEAT_SECONDS=${heartbeat}`,
  ];
  writeFileSync(join(dir, 'node.env'), `${lines.join('\n')}\n`, { mode: 0o600 });
  chmodSync(join(dir, 'node.env'), 0o600);
  return {
    dir,
    env: {
      PODBOOT_ENV_FILE: join(dir, 'node.env'),
      PODBOOT_CA_FILE: goodCa,
      PODBOOT_PROC: join(dir, 'proc'),
      PODBOOT_ROOTFS: dir,
      PODBOOT_RUN_DIR: join(dir, 'run'),
    },
  };
}

interface Running {
  p: ChildProcess;
  out: () => string;
  /** waits (at most ms) until the output matches */
  until: (re: RegExp, ms?: number) => Promise<void>;
  exited: Promise<number | null>;
}

function start(shell: Shell, env: Record<string, string>): Running {
  const p = spawn(shell.sh, [AGENT], { env: { PATH: shell.path, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  const kill = setTimeout(() => p.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(kill));
  const until = async (re: RegExp, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > end || p.exitCode !== null) throw new Error(`no ${re} in:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { p, out: () => out, until, exited };
}

/** SIGTERM, as systemd stops the unit: the agent must be gone at once, with exit 0. */
async function stop(r: Running): Promise<void> {
  const t = Date.now();
  r.p.kill('SIGTERM');
  expect(await r.exited, r.out()).toBe(0);
  expect(Date.now() - t).toBeLessThan(5000);
  expect(r.out()).toMatch(/podboot-node-agent: stopped\n$/);
}

function reset(statuses: number[] = []): void {
  posted.length = 0;
  answers = statuses;
}

const states = () => posted.map((p) => p.body.state);

/** Processes whose command line is exactly `sleep SECONDS`. */
function sleepers(seconds: number): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\0${seconds}\0`) found.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

for (const shell of shells())
  describe(`node agent (${shell.name})`, () => {
    it('reports booted-from-disk, then heartbeats with the figures of /proc and the root filesystem; says "ok" once', async () => {
      reset();
      const w = world();
      const r = start(shell, w.env);
      await r.until(/booted-from-disk reported host=node-a1\n/);
      // Three heartbeats at 1 s: a line for the first only.
      const end = Date.now() + 15_000;
      while (posted.length < 4 && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
      await stop(r);
      expect(states().slice(0, 4)).toEqual(['booted-from-disk', 'heartbeat', 'heartbeat', 'heartbeat']);
      expect(posted[0]!.body).toEqual({ state: 'booted-from-disk', detail: 'host=node-a1' });
      const fs = statfsSync(w.dir);
      const beat = posted[1]!.body;
      expect(beat).toMatchObject({
        state: 'heartbeat',
        uptime: 12345,
        load1: 0.52,
        load5: 0.4,
        load15: 0.31,
        memTotal: 2048000 * 1024,
        memAvailable: 1024000 * 1024,
        diskSize: fs.blocks * fs.bsize,
      });
      expect(Object.keys(beat).sort()).toEqual(['diskSize', 'diskUsed', 'load1', 'load15', 'load5', 'memAvailable', 'memTotal', 'state', 'uptime']);
      // Used as df counts it; other tests write meanwhile, so within a margin.
      expect(Math.abs((beat.diskUsed as number) - (fs.blocks - fs.bfree) * fs.bsize)).toBeLessThan(0.01 * (beat.diskSize as number));
      expect(posted.every((p) => p.auth === `Bearer ${TOKEN}` && p.type === 'application/json')).toBe(true);
      const out = r.out();
      expect(out).toMatch(/^podboot-node-agent: starting pod=rack-n mac=52:54:00:aa:00:01 server=127\.0\.0\.1:\d+ heartbeat=1s\n/);
      expect(out.match(/heartbeat ok/g)).toHaveLength(1);
      expect(out).not.toContain(TOKEN);
      // Nothing left behind in its run directory.
      expect(readdirSync(join(w.dir, 'run'))).toEqual([]);
    });

    it('under systemd reads node.env and the root CA from $CREDENTIALS_DIRECTORY', async () => {
      reset();
      const w = world();
      const creds = join(w.dir, 'credentials');
      mkdirSync(creds);
      cpSync(join(w.dir, 'node.env'), join(creds, 'node.env'));
      cpSync(goodCa, join(creds, 'root.pem'));
      const { PODBOOT_ENV_FILE: _e, PODBOOT_CA_FILE: _c, ...rest } = w.env;
      const r = start(shell, { ...rest, CREDENTIALS_DIRECTORY: creds });
      await r.until(/booted-from-disk reported host=node-a1\n/);
      await stop(r);
      expect(states()[0]).toBe('booted-from-disk');
    });

    it('a corrupt /proc value never reaches the JSON: the figure is left out', async () => {
      reset();
      const w = world();
      writeFileSync(join(w.dir, 'proc', 'loadavg'), '0.52 1e3,"x":1 0x1f 2/187 4242\n');
      writeFileSync(join(w.dir, 'proc', 'uptime'), 'abc 1\n');
      const r = start(shell, w.env);
      await r.until(/heartbeat ok/);
      await stop(r);
      const beat = posted.find((p) => p.body.state === 'heartbeat')!.body;
      expect(beat.load1).toBe(0.52);
      expect(beat).not.toHaveProperty('load5');
      expect(beat).not.toHaveProperty('load15');
      expect(beat).not.toHaveProperty('uptime');
      expect(beat).not.toHaveProperty('x');
    });

    it('refuses a pod whose certificate is not from its root CA: nothing is reported, the reason is said', async () => {
      reset();
      const w = world();
      const r = start(shell, { ...w.env, PODBOOT_CA_FILE: otherCa });
      await r.until(/could not report booted-from-disk: .*SSL certificate problem.*retrying in 1 s\n/);
      await r.until(/retrying in 2 s\n/);
      await stop(r);
      expect(posted).toEqual([]);
    });

    it('takes only PODBOOT_NAME=value lines of node.env: nothing in it runs', async () => {
      reset();
      const marker = (k: string) => join(tmp, `injected-${shell.name}-${k}`);
      const w = world([
        `PODBOOT_SERVER=$(touch ${marker('subst')})`,
        `PODBOOT_POD=rack;touch ${marker('semi')}`,
        `PODBOOT_MAC=\`touch ${marker('tick')}\``,
        `touch ${marker('bare')}`,
        `PATH=/nonexistent`,
        'PODBOOT_SERVER=127.0.0.1',
        `PODBOOT_HTTPS=${port}`,
        `PODBOOT_NODE_TOKEN=${TOKEN}`,
        'PODBOOT_HEARTBEAT_SECONDS=1',
        `PODBOOT_HEARTBEAT_SECONDS=5 touch ${marker('space')}`,
      ]);
      const r = start(shell, w.env);
      await r.until(/heartbeat ok/);
      await stop(r);
      for (const k of ['subst', 'semi', 'tick', 'bare', 'space']) expect(existsSync(marker(k)), k).toBe(false);
      expect(r.out()).toContain(`ignored 6 line(s) of ${w.env.PODBOOT_ENV_FILE} that are not PODBOOT_NAME=value with plain characters`);
      expect(r.out()).toMatch(/starting pod=\? mac=\? server=127\.0\.0\.1:\d+ heartbeat=1s/);
      expect(states().slice(0, 2)).toEqual(['booted-from-disk', 'heartbeat']);
    });

    it('node.env without a usable server or token: exit 78 (the unit does not restart), nothing sent', async () => {
      reset();
      const marker = join(tmp, `injected-${shell.name}-only`);
      const r = start(shell, world([`PODBOOT_SERVER=$(touch ${marker})`, `PODBOOT_NODE_TOKEN=${TOKEN}`]).env);
      expect(await r.exited).toBe(78);
      expect(r.out()).toMatch(/PODBOOT_SERVER missing or not an address\n$/);
      expect(existsSync(marker)).toBe(false);
      const t = start(shell, world(['PODBOOT_SERVER=127.0.0.1']).env);
      expect(await t.exited).toBe(78);
      expect(t.out()).toMatch(/PODBOOT_NODE_TOKEN missing\n$/);
      expect(posted).toEqual([]);
    });

    it('retries booted-from-disk after a 503 and a 429, with backoff', async () => {
      reset([503, 429]);
      const r = start(shell, world().env);
      await r.until(/booted-from-disk reported host=node-a1\n/);
      await stop(r);
      expect(states().slice(0, 3)).toEqual(['booted-from-disk', 'booted-from-disk', 'booted-from-disk']);
      expect(r.out()).toContain('could not report booted-from-disk: HTTP 503; retrying in 1 s\n');
      expect(r.out()).toContain('could not report booted-from-disk: HTTP 429; retrying in 2 s\n');
    });

    it('a refusal (403) is said and retried slowly, never in a tight loop; SIGTERM ends the wait at once', async () => {
      // A pause no other test uses, to find its sleep among the host's processes.
      const slow = 7000 + Math.floor(Math.random() * 900) + (shell.name === 'dash' ? 0 : 1000);
      reset([403]);
      const r = start(shell, { ...world().env, PODBOOT_SLOW_RETRY_SECONDS: String(slow) });
      await r.until(new RegExp(`the pod refused booted-from-disk: HTTP 403 .*podboot nodes show 52:54:00:aa:00:01\\); retrying in ${slow} s\\n`));
      await new Promise((res) => setTimeout(res, 1500));
      expect(posted).toHaveLength(1);
      expect(sleepers(slow)).toHaveLength(1);
      await stop(r);
      // Its sleep went with it.
      const end = Date.now() + 3000;
      while (sleepers(slow).length && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
      expect(sleepers(slow)).toEqual([]);
    });

    it('heartbeats that fail are said once, and their recovery once', async () => {
      // booted-from-disk, a heartbeat, two failing ones, one that gets through
      reset([200, 200, 503, 503, 200]);
      const r = start(shell, world().env);
      const end = Date.now() + 20_000;
      while (posted.length < 5 && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
      await r.until(/heartbeat ok\n.*heartbeat failed: HTTP 503\n.*heartbeat ok\n/s);
      await stop(r);
      const lines = r
        .out()
        .split('\n')
        .filter((l) => l.includes('heartbeat '));
      expect(lines).toEqual(['podboot-node-agent: heartbeat ok', 'podboot-node-agent: heartbeat failed: HTTP 503', 'podboot-node-agent: heartbeat ok']);
    });
  });

// The task loop against a pod of the test's making: the script checked
// against its sha256 before it runs, output sent by offset (a lost answer's
// chunk sent again, a gap answered with the length the pod has), the exit
// code reported; a task the pod ended (410) has its script stopped.
describe('node agent task loop (dash)', () => {
  const dash: Shell = { name: 'dash', sh: 'dash', path: process.env.PATH ?? '/usr/bin:/bin' };
  const ID = '0123456789abcdef';
  const sha = (t: string) => createHash('sha256').update(t).digest('hex');

  interface Pod {
    script: string;
    sha256: string;
    stored: { stdout: Buffer; stderr: Buffer };
    calls: string[];
    exit?: string;
    /** 410 to every output post from this one on */
    endAfter?: number;
    /** the first output post with bytes is stored but its answer lost (the connection cut) */
    cutFirst?: boolean;
    handed: boolean;
  }

  function pod(p: Pod) {
    let outputs = 0;
    tasks = (method, url, body, res) => {
      const u = new URL(url, 'https://pod');
      p.calls.push(`${method} ${u.pathname}${u.search}`);
      if (u.pathname === '/v1/tasks/next') {
        if (p.handed) return res.writeHead(204).end();
        p.handed = true;
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: ID }));
      }
      if (u.pathname === `/v1/tasks/${ID}/script`) return res.writeHead(200, { 'x-podboot-task-sha256': p.sha256, 'x-podboot-task-seconds': '30' }).end(p.script);
      if (u.pathname === `/v1/tasks/${ID}/start`) return res.writeHead(200).end('{"state":"running"}');
      if (u.pathname === `/v1/tasks/${ID}/exit`) {
        p.exit = body.toString();
        return res.writeHead(200).end('{"state":"succeeded"}');
      }
      if (u.pathname === `/v1/tasks/${ID}/output`) {
        outputs++;
        if (p.endAfter !== undefined && outputs >= p.endAfter) return res.writeHead(410).end('{"error":"task is cancelled","state":"cancelled"}');
        const stream = u.searchParams.get('stream') as 'stdout' | 'stderr';
        const offset = Number(u.searchParams.get('offset'));
        const have = p.stored[stream];
        if (offset > have.length) return res.writeHead(409).end(JSON.stringify({ error: 'gap', length: have.length }));
        const tail = body.subarray(Math.max(have.length - offset, 0));
        if (offset + body.length > have.length) p.stored[stream] = Buffer.concat([have, tail]);
        if (p.cutFirst && body.length) {
          p.cutFirst = false;
          return res.socket?.destroy();
        }
        return res.writeHead(200).end(JSON.stringify({ length: p.stored[stream].length, state: 'running' }));
      }
      res.writeHead(404).end();
    };
  }

  const fresh = (script: string, over: Partial<Pod> = {}): Pod => ({ script, sha256: sha(script), stored: { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }, calls: [], handed: false, ...over });

  afterAll(() => {
    tasks = undefined;
  });

  it('runs the script, sends both streams whole (a chunk whose answer was lost sent again, stored once), reports the exit code', async () => {
    reset();
    const p = fresh('echo one\necho two >&2\nsleep 1\necho three\nexit 3\n', { cutFirst: true });
    pod(p);
    const w = world();
    const r = start(dash, { ...w.env, PODBOOT_TASK_WAIT_SECONDS: '1' });
    await r.until(new RegExp(`task ${ID}: exit 3, reported`), 30_000);
    await stop(r);
    expect(p.stored.stdout.toString()).toBe('one\nthree\n');
    expect(p.stored.stderr.toString()).toBe('two\n');
    expect(JSON.parse(p.exit!)).toEqual({ code: 3 });
    expect(p.calls.slice(0, 3)).toEqual(['GET /v1/tasks/next?wait=1', `GET /v1/tasks/${ID}/script`, `POST /v1/tasks/${ID}/start`]);
    expect(readdirSync(join(w.dir, 'run'))).toEqual([]);
  });

  it('a script that does not match its sha256 is not run; the pod is told', async () => {
    reset();
    const marker = join(tmp, 'task-ran');
    const p = fresh(`touch ${marker}\n`, { sha256: sha('something else') });
    pod(p);
    const r = start(dash, { ...world().env, PODBOOT_TASK_WAIT_SECONDS: '1' });
    await r.until(/does not match its sha256; not run/, 30_000);
    const end = Date.now() + 5000;
    while (!p.exit && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    await stop(r);
    expect(existsSync(marker)).toBe(false);
    expect(JSON.parse(p.exit!)).toEqual({ error: 'sha256 mismatch' });
    expect(p.calls).not.toContain(`POST /v1/tasks/${ID}/start`);
  });

  it('a task the pod ended (410) has its script and what it started stopped; no exit is reported', async () => {
    reset();
    const p = fresh('echo started\nsleep 7321\necho never\n', { endAfter: 2 });
    pod(p);
    const r = start(dash, { ...world().env, PODBOOT_TASK_WAIT_SECONDS: '1' });
    await r.until(new RegExp(`task ${ID}: cancelled on the pod; its script was stopped`), 30_000);
    await stop(r);
    expect(sleepers(7321)).toEqual([]);
    expect(p.exit).toBeUndefined();
    expect(p.stored.stdout.toString()).toBe('started\n');
  });
});

// The unit as systemd reads it, in a root holding this machine's units and the
// agent at the path the image builder puts it.
describe('podboot-node-agent.service', () => {
  const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
  it.skipIf(!analyze)('passes systemd-analyze verify without a warning', () => {
    const root = join(tmp, 'unit-root');
    mkdirSync(join(root, 'usr/lib/podboot'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    cpSync(UNIT, join(root, 'usr/lib/systemd/system/podboot-node-agent.service'));
    cpSync(AGENT, join(root, 'usr/lib/podboot/podboot-node-agent'));
    chmodSync(join(root, 'usr/lib/podboot/podboot-node-agent'), 0o755);
    const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, 'podboot-node-agent.service'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toBe('');
  });

  it('runs the agent where the image builder installs it, with the settings the contract names', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of [
      'ExecStart=/usr/lib/podboot/podboot-node-agent',
      'After=network-online.target cloud-init.service',
      'Wants=network-online.target',
      'ConditionPathExists=/etc/podboot/node.env',
      'Restart=always',
      'RestartSec=5',
      'StandardOutput=journal+console',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'LoadCredential=node.env:/etc/podboot/node.env',
      'WantedBy=multi-user.target',
    ])
      expect(unit.split('\n'), line).toContain(line);
    // ProcSubset=pid would hide /proc/uptime, loadavg and meminfo.
    expect(unit).not.toMatch(/^ProcSubset=/m);
  });
});
