// Remote tasks end to end without QEMU (issue 16, T1 and log rules): a real
// `podboot serve` supervising one pod, in a network namespace of its own
// (prefix pbtk), two installed servers whose node agents are the real
// images/debian/podboot-node-agent run under dash against the pod's HTTPS
// with its root CA and node tokens, and a third server whose agent never
// runs. Tasks go in through `podboot tasks run` (the central API), come back
// through `podboot tasks logs|show`; a rule on ERROR fails a task and calls
// a real local webhook receiver; a catastrophic pattern on a hostile line
// leaves the pod answering DHCP.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../../src/install/token.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const REPO = new URL('../../../', import.meta.url).pathname;
const AGENT = join(REPO, 'images/debian/podboot-node-agent');
const POD = 'rack-k';
const A = '52:54:00:6b:00:01';
const B = '52:54:00:6b:00:02';
const C = '52:54:00:6b:00:03';
const RELAY = '127.89.0.1';
const HTTPS = 10443;
const WEBHOOK = 18080;

const POD_YAML = `apiVersion: podboot/v1
kind: Pod
metadata: { name: ${POD} }
spec:
  listen: { address: 127.0.0.1, dhcpPort: 10067, tftpPort: 10069, httpPort: 10080, httpsPort: ${HTTPS} }
  relays: [${RELAY}]
  subnets:
    - { cidr: 127.89.0.0/24, gateway: ${RELAY}, pool: 127.89.0.100-127.89.0.199, leaseTime: 10m }
  nodes:
    - { mac: "${A}", hostname: n-a, labels: { role: web } }
    - { mac: "${B}", hostname: n-b, labels: { role: web } }
    - { mac: "${C}", hostname: n-c, labels: { role: db } }
    - { mac: "52:54:00:6b:00:10", hostname: n-probe }
`;

// An operator's own template (STATE/central/tasks/): both streams, a
// parameter that would be code if it were not quoted, an exit code chosen.
const GREET = `#!/bin/sh
#% description test: both streams, a hostile parameter, an exit code
#% param mark=ok
#% param code=0
#% timeout 60
echo start
printf 'hello %s\\n' {{who}}
echo to-stderr >&2
mark={{mark}}
if [ "$mark" = bad ]; then echo "ERROR: something broke"; fi
echo "version 4.2"
exit {{code}}
`;

// 200 lines of 5,000 a's then "!", as fast as the shell writes them.
const FLOOD = `#!/bin/sh
#% description test: hostile lines for a catastrophic pattern
#% param lines=200
line=$(head -c 5000 /dev/zero | tr '\\0' a)
i=0
n={{lines}}
while [ "$i" -lt "$n" ]; do printf '%s!\\n' "$line"; i=$((i + 1)); done
echo done
`;

// A receiver for webhook posts: each body as one line of its log.
const RECEIVER = `
const http = require('node:http');
http.createServer((req, res) => {
  let b = '';
  req.on('data', (d) => (b += d));
  req.on('end', () => { console.log('HOOK ' + req.method + ' ' + req.url + ' ' + req.headers['content-type'] + ' ' + b); res.end('ok'); });
}).listen(${WEBHOOK}, '127.0.0.1', () => console.log('listening'));
`;

interface Task {
  id: string;
  mac: string;
  hostname?: string;
  state: string;
  exitCode?: number;
  reason?: string;
  captures: Record<string, string>;
  params: Record<string, string>;
  script?: string;
  sha256?: string;
  selector?: string;
}

describe('remote tasks through a real pod and real node agents', () => {
  const lab = new Lab('pbtk');
  const state = join(lab.dir, 'state');
  let central: Daemon;
  let receiver: Daemon;
  const agents: Daemon[] = [];

  /** The CLI inside the namespace, finding the node by PODBOOT_STATE as an operator's shell would. */
  const podboot = (...args: string[]) => {
    const r = spawnSync('ip', ['netns', 'exec', lab.ns('k'), process.execPath, PODBOOT, ...args], {
      cwd: lab.dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PODBOOT_STATE: state },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = <T>(...args: string[]): T => {
    const r = podboot(...args, '--json');
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const show = (id: string) => json<Task>('tasks', 'show', id, '--pod', POD);

  /** Polls (at most 30 s) until the task's state is final. */
  async function ended(id: string): Promise<Task> {
    const end = Date.now() + 30_000;
    for (;;) {
      const t = show(id);
      if (['succeeded', 'failed', 'timed-out', 'cancelled'].includes(t.state)) return t;
      if (Date.now() > end) throw new Error(`task ${id} still ${t.state} after 30 s\n${agents.map((a) => a.log()).join('\n')}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  function probe(mac: string): { status: number | null; stdout: string; stderr: string } {
    return podboot('dhcp', 'probe', '--server', '127.0.0.1:10067', '--relay', `${RELAY}:10068`, '--mac', mac, '--arch', '0', '--timeout', '3000', '--json');
  }

  function startAgent(mac: string, label: string, secret: Buffer): Daemon {
    const dir = join(lab.dir, label);
    mkdirSync(join(dir, 'run'), { recursive: true });
    const token = issueToken(secret, { scope: 'node', mac, attempt: 1, expires: Math.floor(Date.now() / 1000) + 3600 });
    writeFileSync(
      join(dir, 'node.env'),
      ['PODBOOT_SERVER=127.0.0.1', `PODBOOT_HTTPS=${HTTPS}`, `PODBOOT_POD=${POD}`, `PODBOOT_MAC=${mac}`, `PODBOOT_NODE_TOKEN=${token}`, 'PODBOOT_HEARTBEAT_SECONDS=5', ''].join('\n'),
      { mode: 0o600 },
    );
    const d = lab.spawn('k', 'dash', [AGENT], label, {
      PODBOOT_ENV_FILE: join(dir, 'node.env'),
      PODBOOT_CA_FILE: join(state, POD, 'tls', 'root.pem'),
      PODBOOT_RUN_DIR: join(dir, 'run'),
      PODBOOT_TASK_WAIT_SECONDS: '2',
      PODBOOT_SLOW_RETRY_SECONDS: '5',
    });
    agents.push(d);
    return d;
  }

  beforeAll(async () => {
    requireBuild();
    lab.addNs('k');
    const pods = join(lab.dir, 'pods');
    mkdirSync(pods);
    writeFileSync(join(pods, `${POD}.yaml`), POD_YAML);
    // Installed and booted from their disks before this start: the install is the boot tests' business.
    const db = openPodDatabase(join(state, POD));
    const nodes = new SqliteNodeStateStore(db);
    const now = Math.floor(Date.now() / 1000);
    for (const mac of [A, B, C]) {
      nodes.changeInstallState({ mac, state: 'installed', time: now - 60 });
      nodes.changeInstallState({ mac, state: 'booted-from-disk', time: now - 30 });
    }
    db.close();
    mkdirSync(join(state, 'central', 'tasks'), { recursive: true });
    writeFileSync(join(state, 'central', 'tasks', 'greet.sh'), GREET);
    writeFileSync(join(state, 'central', 'tasks', 'flood.sh'), FLOOD);
    receiver = lab.spawn('k', process.execPath, ['-e', RECEIVER], 'receiver');
    await receiver.waitFor(/listening/);
    central = lab.spawn('k', process.execPath, [PODBOOT, 'serve', '--pods', pods, '--state', state, '--api', '127.0.0.1:0', '--pod-user', 'root', '--no-limits'], 'central');
    await central.waitFor(/pod instance ready/, 60_000);
    const secret = readFileSync(join(state, POD, 'token.key'));
    const a = startAgent(A, 'agent-a', secret);
    const b = startAgent(B, 'agent-b', secret);
    // C's agent never runs: its tasks are never picked up.
    await a.waitFor(/booted-from-disk reported/, 20_000);
    await b.waitFor(/booted-from-disk reported/, 20_000);
  }, 120_000);

  afterAll(() => lab.cleanup());

  it('the pod process runs with the linear-time RegExp engine', () => {
    const snapshot = join(state, POD, 'pod.yaml');
    const pods = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        } catch {
          return [];
        }
      })
      .filter((argv) => argv.includes('run') && argv.includes(snapshot));
    expect(pods).toHaveLength(1);
    expect(pods[0]).toContain('--enable-experimental-regexp-engine');
  });

  it('a task to two servers: rendered with its parameters, run by each agent, logs in order, exit codes and captures recorded', async () => {
    const who = `it's $(touch ${join(lab.dir, 'pwned')}) "you"`;
    const created = json<Task[]>('tasks', 'run', 'greet', '--pod', POD, '--target', 'n-a', '--target', B, '--param', `who=${who}`, '--rule', 'stdout capture=version ^version (\\S+)$');
    expect(created.map((t) => [t.mac, t.hostname, t.state])).toEqual([
      [A, 'n-a', 'queued'],
      [B, 'n-b', 'queued'],
    ]);
    for (const c of created) {
      const t = await ended(c.id);
      expect(t).toMatchObject({ state: 'succeeded', exitCode: 0, captures: { version: '4.2' }, params: { who, mark: 'ok', code: '0' } });
      expect(t.script).toContain(`printf 'hello %s\\n' 'it'\\''s $(touch`);
      const out = podboot('tasks', 'logs', c.id, '--pod', POD);
      expect(out.status, out.stderr).toBe(0);
      // Both streams, in the order they reached the pod (stderr's line may come in its own chunk, before or after).
      const lines = out.stdout.split('\n').filter(Boolean);
      expect(lines.filter((l) => l !== 'to-stderr')).toEqual(['start', `hello ${who}`, 'version 4.2']);
      expect(lines).toContain('to-stderr');
      expect(podboot('tasks', 'logs', c.id, '--pod', POD, '--stream', 'stdout').stdout).toBe(`start\nhello ${who}\nversion 4.2\n`);
      expect(podboot('tasks', 'logs', c.id, '--pod', POD, '--stream', 'stderr').stdout).toBe('to-stderr\n');
    }
    // The parameter stayed a string: nothing it held ran.
    expect(readdirSync(lab.dir)).not.toContain('pwned');
    const table = podboot('tasks', 'list', '--pod', POD);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NODE\s+HOSTNAME\s+TEMPLATE\s+STATE\s+EXIT\s+CREATED\s+DEADLINE$/);
    for (const c of created) expect(table.stdout).toMatch(new RegExp(`^${c.id}\\s+${c.mac}\\s+n-[ab]\\s+greet\\s+succeeded\\s+0\\s`, 'm'));
    // The agent's own lines, and no token in them.
    // The agent says so once the pod has answered its exit report, which may be after the pod shows the task ended.
    await agents[0]!.waitFor(new RegExp(`task ${created[0]!.id}: exit 0, reported`), 10_000);
    const token = readFileSync(join(lab.dir, 'agent-a', 'node.env'), 'utf8').match(/TOKEN=(\S+)/)![1]!;
    expect(agents[0]!.log() + central.log()).not.toContain(token);
  });

  it('--select role=web: the servers of the pod file with that label, the selector kept with each task; no match and a bad selector are 400s', async () => {
    const created = json<Task[]>('tasks', 'run', 'greet', '--pod', POD, '--select', 'role=web', '--param', 'who=web');
    expect(created.map((t) => [t.mac, t.hostname, t.selector])).toEqual([
      [A, 'n-a', 'role=web'],
      [B, 'n-b', 'role=web'],
    ]);
    for (const c of created) expect(await ended(c.id)).toMatchObject({ state: 'succeeded', selector: 'role=web' });
    expect(podboot('tasks', 'show', created[0]!.id, '--pod', POD).stdout).toMatch(/^ {2}selector {3}role=web$/m);
    const none = podboot('tasks', 'run', 'greet', '--pod', POD, '--select', 'role=cache', '--param', 'who=x');
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('HTTP 400: pod rack-k: no server matches the selector "role=cache"');
    // Refused by the CLI before anything is sent, and by the API itself.
    expect(podboot('tasks', 'run', 'greet', '--pod', POD, '--select', 'role=web,', '--param', 'who=x')).toMatchObject({ status: 2, stderr: expect.stringContaining('an empty term') });
    const script = `
      const { callApi, resolveTarget } = await import(${JSON.stringify(join(REPO, 'dist/src/api/client.js'))});
      const t = resolveTarget({ state: ${JSON.stringify(state)} });
      const r = await callApi(t, 'POST', '/api/v1/pods/${POD}/tasks', { template: 'greet', params: { who: 'x' }, select: '!role=web' });
      console.log(JSON.stringify(r));`;
    const r = spawnSync('ip', ['netns', 'exec', lab.ns('k'), process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(r.stdout)).toEqual({ status: 400, body: { error: 'selector term "!role=web": ! goes only before a bare key (!key)' } });
  });

  it('list, show and logs with --state read the pod themselves and print what the API gives, byte for byte', () => {
    const ids = json<Task[]>('tasks', 'list', '--pod', POD)
      .filter((t) => t.state === 'succeeded')
      .map((t) => t.id);
    expect(ids.length).toBeGreaterThan(1);
    const same = (...args: string[]) => {
      const viaApi = podboot(...args);
      const offline = podboot(...args, '--state', state);
      expect(viaApi.status, viaApi.stderr).toBe(0);
      expect(offline.status, offline.stderr).toBe(0);
      expect(offline.stdout).toBe(viaApi.stdout);
    };
    same('tasks', 'list', '--pod', POD);
    same('tasks', 'list', '--pod', POD, '--json');
    for (const id of ids.slice(0, 2)) {
      same('tasks', 'show', id, '--pod', POD);
      same('tasks', 'show', id, '--pod', POD, '--json');
      same('tasks', 'logs', id, '--pod', POD);
      same('tasks', 'logs', id, '--pod', POD, '--json');
    }
  });

  it('a rule on ERROR fails the task (exit 0 notwithstanding) and posts the line to a real webhook; another exit code is recorded', async () => {
    const [bad] = json<Task[]>(
      'tasks',
      'run',
      'greet',
      '--pod',
      POD,
      '--target',
      'n-b',
      '--param',
      'who=b',
      '--param',
      'mark=bad',
      '--rule',
      'stdout fail ERROR',
      '--rule',
      `stdout webhook=http://127.0.0.1:${WEBHOOK}/hook ERROR`,
    );
    const [coded] = json<Task[]>('tasks', 'run', 'greet', '--pod', POD, '--target', 'n-a', '--param', 'who=a', '--param', 'code=7');
    const t = await ended(bad!.id);
    expect(t).toMatchObject({ state: 'failed', exitCode: 0, reason: 'rule: stdout /ERROR/ matched' });
    expect(await ended(coded!.id)).toMatchObject({ state: 'failed', exitCode: 7, reason: 'exit code 7' });
    const line = await receiver.waitFor(/HOOK .*\n/, 10_000);
    const [, method, path, type, body] = /^HOOK (\S+) (\S+) (\S+) (.*)$/.exec(line.trim())!;
    expect([method, path, type]).toEqual(['POST', '/hook', 'application/json']);
    expect(JSON.parse(body!)).toMatchObject({ pod: POD, task: bad!.id, mac: B, hostname: 'n-b', template: 'greet', stream: 'stdout', pattern: 'ERROR', line: 'ERROR: something broke' });
    const shown = podboot('tasks', 'show', bad!.id, '--pod', POD).stdout;
    expect(shown).toMatch(/^ {2}state {6}failed {2}exit 0 {2}\(rule: stdout \/ERROR\/ matched\)$/m);
  });

  it('a task its server never picks up times out at its deadline; a submitted one can be cancelled', async () => {
    const [never] = json<Task[]>('tasks', 'run', 'greet', '--pod', POD, '--target', C, '--param', 'who=c', '--timeout', '2');
    const t = await ended(never!.id);
    expect(t.state).toBe('timed-out');
    expect(t.reason).toMatch(/^deadline \S+ passed while queued$/);
    const [queued] = json<Task[]>('tasks', 'run', 'greet', '--pod', POD, '--target', C, '--param', 'who=c');
    const r = podboot('tasks', 'cancel', queued!.id, '--pod', POD);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${queued!.id}: cancelled\n`);
    expect(podboot('tasks', 'cancel', queued!.id, '--pod', POD)).toMatchObject({ status: 1, stderr: expect.stringContaining('is already cancelled') });
  });

  it('a pattern the linear engine refuses is refused at submit, by the CLI and by the API, saying why', () => {
    const cli = podboot('tasks', 'run', 'greet', '--pod', POD, '--target', 'n-a', '--param', 'who=x', '--rule', 'stdout fail (a)\\1');
    expect(cli.status).toBe(2);
    expect(cli.stderr).toContain('cannot be matched in linear time');
    // The API itself, as another client would call it.
    const script = `
      const { callApi, resolveTarget } = await import(${JSON.stringify(join(REPO, 'dist/src/api/client.js'))});
      const t = resolveTarget({ state: ${JSON.stringify(state)} });
      const r = await callApi(t, 'POST', '/api/v1/pods/${POD}/tasks', { template: 'greet', params: { who: 'x' }, targets: ['n-a'], rules: [{ stream: 'stdout', pattern: '(?<=a)b', action: 'fail' }] });
      console.log(JSON.stringify(r));`;
    const r = spawnSync('ip', ['netns', 'exec', lab.ns('k'), process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    const answer = JSON.parse(r.stdout) as { status: number; body: { error: string } };
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(/pattern "\(\?<=a\)b" cannot be matched in linear time/);
    const unknown = podboot('tasks', 'run', 'greet', '--pod', POD, '--target', 'n-zz', '--param', 'who=x');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('pod rack-k has no server n-zz');
    const missing = podboot('tasks', 'run', 'greet', '--pod', POD, '--target', 'n-a');
    expect(missing.stderr).toContain('missing parameter who');
  });

  it('must-show 2: (a+)+$ against lines of 5,000 a\'s then "!" does not stall the pod: DHCP answers while they are checked', async () => {
    const [flood] = json<Task[]>('tasks', 'run', 'flood', '--pod', POD, '--target', 'n-a', '--rule', 'stdout fail (a+)+$', '--rule', 'stdout capture=last ^(done)$');
    // Probes while the task runs and its output is checked, and after.
    let answered = 0;
    let state = 'queued';
    const end = Date.now() + 30_000;
    for (let i = 0; i < 40 && Date.now() < end; i++) {
      const p = probe(`52:54:00:6b:00:${(0x10 + (i % 2)).toString(16)}`);
      expect(p.status, p.stderr).toBe(0);
      expect(p.stdout).toMatch(/"type":"ACK"/);
      answered++;
      state = show(flood!.id).state;
      if (['succeeded', 'failed', 'timed-out'].includes(state)) break;
    }
    expect(answered).toBeGreaterThan(0);
    const t = await ended(flood!.id);
    // No line ends in a's: the rule never matched, and every line was checked to the last.
    expect(t).toMatchObject({ state: 'succeeded', exitCode: 0, captures: { last: 'done' } });
    const p = probe('52:54:00:6b:00:10');
    expect(p.status, p.stderr).toBe(0);
    const logs = podboot('tasks', 'logs', flood!.id, '--pod', POD, '--stream', 'stdout').stdout.split('\n');
    expect(logs.filter((l) => l.length === 5001)).toHaveLength(200);
  });
});
