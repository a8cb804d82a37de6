// `podboot tasks list|show|logs --state DIR` (issue 16): with no central node
// running, the CLI reads the pod's database read-only and its output files
// under DIR/<pod>/tasks/, and prints what the API would have answered, by the
// same code.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPodDatabase, podDatabaseFile } from '../../../src/store/database.js';
import { taskApi } from '../../../src/tasks/api.js';
import { parseRuleText } from '../../../src/tasks/rules.js';
import { SqliteTaskStore, taskOutputFile } from '../../../src/tasks/store.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

const root = mkdtempSync(join(tmpdir(), 'pb-tasks-state-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const POD = 'rack-t';
const T = 1_736_336_433; // 2025-01-08T11:40:33Z
const DONE = '9f3c0a1e5b7d2c44';
const QUEUED = '0b1d2e3f4a5b6c7d';
const base = { template: 'greet', params: { who: 'you' }, rules: [parseRuleText('stdout capture=version ^version (\\S+)$')] };

beforeAll(() => {
  const dir = join(root, POD);
  const db = openPodDatabase(dir);
  const store = new SqliteTaskStore(db);
  store.insert([
    { ...base, id: DONE, mac: '52:54:00:20:00:10', hostname: 'r1-n10', script: 'echo start\n', sha256: 'a'.repeat(64), createdAt: T, deadline: T + 120, submittedBy: 'test', selector: 'role=web' },
    { ...base, id: QUEUED, mac: '52:54:00:20:00:11', script: 'echo start\n', sha256: 'b'.repeat(64), createdAt: T + 1, deadline: T + 121 },
  ]);
  store.transition(DONE, 'queued', 'running', T + 2, { startedAt: T + 2 });
  // Output as the pod keeps it: appended to a file per stream, indexed chunk by chunk in arrival order.
  mkdirSync(join(dir, 'tasks'), { recursive: true });
  const chunk = (stream: 'stdout' | 'stderr', text: string, time: number) => {
    const file = taskOutputFile(dir, DONE, stream);
    const offset = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    appendFileSync(file, text);
    store.addOutput(DONE, stream, offset, Buffer.byteLength(text), time);
  };
  chunk('stdout', 'start\n', T + 3);
  chunk('stderr', 'to-stderr\n', T + 3);
  chunk('stdout', 'version 4.2\n', T + 4);
  store.setCaptures(DONE, { version: '4.2' });
  store.transition(DONE, 'running', 'succeeded', T + 5, { finishedAt: T + 5, exitCode: 0 });
  db.close();
});

const podboot = (...args: string[]) => spawnSync(process.execPath, [PODBOOT, 'tasks', ...args], { encoding: 'utf8', env: { ...process.env, PODBOOT_STATE: join(root, 'nowhere') } });

describe('tasks --state: no central node', () => {
  it('list: the table and --json, newest first, as the API gives them', () => {
    requireBuild();
    const text = podboot('list', '--pod', POD, '--state', root);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toBe(
      [
        'ID                NODE               HOSTNAME  TEMPLATE  STATE      EXIT  CREATED               DEADLINE',
        `${QUEUED}  52:54:00:20:00:11  -         greet     queued     -     2025-01-08T11:40:34Z  2025-01-08T11:42:34Z`,
        `${DONE}  52:54:00:20:00:10  r1-n10    greet     succeeded  0     2025-01-08T11:40:33Z  2025-01-08T11:42:33Z`,
        '',
      ].join('\n'),
    );
    const json = podboot('list', '--pod', POD, '--state', root, '--json');
    expect(json.status, json.stderr).toBe(0);
    // What the central API answers for the same pod, from the same function.
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify((taskApi({ kind: 'tasks', pod: POD }, root, undefined, 'test').body as { tasks: unknown[] }).tasks)));
    const one = JSON.parse(podboot('list', '--pod', POD, '--state', root, '--node', '52-54-00-20-00-10', '--json').stdout) as { id: string }[];
    expect(one.map((t) => t.id)).toEqual([DONE]);
  });

  it('show: state, exit, the selector it was submitted with, captures; --json with its script', () => {
    const text = podboot('show', DONE, '--pod', POD, '--state', root);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.split('\n')).toEqual([
      DONE,
      '  node       52:54:00:20:00:10 (r1-n10)',
      '  template   greet',
      '  selector   role=web',
      '  state      succeeded  exit 0',
      '  created    2025-01-08T11:40:33Z  deadline 2025-01-08T11:42:33Z',
      '  started    2025-01-08T11:40:35Z  finished 2025-01-08T11:40:38Z',
      `  sha256     ${'a'.repeat(64)}`,
      '  output     stdout 18 bytes, stderr 10 bytes',
      '  param      who="you"',
      '  rule       stdout capture=version ^version (\\S+)$',
      '  captured   version="4.2"',
      '',
    ]);
    // Submitted by name only: no selector line.
    expect(podboot('show', QUEUED, '--pod', POD, '--state', root).stdout).not.toContain('selector');
    const json = JSON.parse(podboot('show', DONE, '--pod', POD, '--state', root, '--json').stdout) as Record<string, unknown>;
    expect(json).toEqual(JSON.parse(JSON.stringify(taskApi({ kind: 'task', pod: POD, id: DONE }, root, undefined, 'test').body)));
    expect(json).toMatchObject({ selector: 'role=web', script: 'echo start\n', captures: { version: '4.2' } });
  });

  it('logs: both streams in the order they reached the pod, or one; --json the chunks', () => {
    expect(podboot('logs', DONE, '--pod', POD, '--state', root)).toMatchObject({ status: 0, stdout: 'start\nto-stderr\nversion 4.2\n' });
    expect(podboot('logs', DONE, '--pod', POD, '--state', root, '--stream', 'stdout').stdout).toBe('start\nversion 4.2\n');
    expect(podboot('logs', DONE, '--pod', POD, '--state', root, '--stream', 'stderr').stdout).toBe('to-stderr\n');
    const chunks = JSON.parse(podboot('logs', DONE, '--pod', POD, '--state', root, '--json').stdout) as { stream: string; offset: number; time: number }[];
    expect(chunks.map((c) => [c.stream, c.offset, c.time])).toEqual([
      ['stdout', 0, T + 3],
      ['stderr', 0, T + 3],
      ['stdout', 6, T + 4],
    ]);
  });

  it('read-only: nothing under the pod changes; an unknown pod or task is exit 1 naming it; --state with --url is wrong usage', () => {
    const dir = join(root, POD);
    const before = readdirSync(dir).sort();
    const db = statSync(podDatabaseFile(dir)).mtimeMs;
    podboot('list', '--pod', POD, '--state', root);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(statSync(podDatabaseFile(dir)).mtimeMs).toBe(db);

    const noPod = podboot('list', '--pod', 'rack-zz', '--state', root);
    expect(noPod.status).toBe(1);
    expect(noPod.stderr).toBe(`podboot tasks list: no pod rack-zz under ${root} (no ${join(root, 'rack-zz', 'pod.db')})\n`);
    const noTask = podboot('show', 'ffffffffffffffff', '--pod', POD, '--state', root);
    expect(noTask.status).toBe(1);
    expect(noTask.stderr).toBe(`podboot tasks show: pod ${POD} has no task ffffffffffffffff (under ${root})\n`);
    expect(podboot('logs', 'ffffffffffffffff', '--pod', POD, '--state', root).stderr).toContain(`pod ${POD} has no task ffffffffffffffff`);
    const both = podboot('list', '--pod', POD, '--state', root, '--url', 'https://127.0.0.1:1');
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/^podboot tasks list: --state reads a state directory without a central node/);
    // Without --state, no node found: where it looked, and the way without one.
    const none = podboot('list', '--pod', POD);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('(--state DIR reads a state directory without a central node)');
  });
});
