// Tasks targeted by label (issue 16): `select` picks the servers of the pod
// file the pod runs whose labels match, joined with `targets` (each server
// once); a selector that matches nothing or does not parse is a 400 naming
// it, and every task keeps the selector it was submitted with.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { taskApi } from '../../../src/tasks/api.js';
import { parseSubmit, submitTasks, TaskRequestError } from '../../../src/tasks/central.js';

const root = mkdtempSync(join(tmpdir(), 'pb-task-select-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const POD = 'rack-s';
const WEB1 = '52:54:00:5e:00:01';
const WEB2 = '52:54:00:5e:00:02';
const DB1 = '52:54:00:5e:00:03';
const PLAIN = '52:54:00:5e:00:04';
/** seen by the pod, not in its file: a target by MAC, never selected */
const SEEN = '52:54:00:5e:00:99';

beforeAll(() => {
  const db = openPodDatabase(join(root, POD));
  new SqliteNodeStateStore(db).changeInstallState({ mac: SEEN, state: 'discovered', time: 1 });
  db.close();
  // The copy of its file the pod runs (STATE/<pod>/pod.yaml), where the labels come from.
  writeFileSync(
    join(root, POD, 'pod.yaml'),
    `apiVersion: podboot/v1
kind: Pod
metadata: { name: ${POD} }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.0.0.1]
  subnets: [{ cidr: 10.0.0.0/24, pool: 10.0.0.100-10.0.0.199 }]
  nodes:
    - { mac: "${WEB1}", hostname: web-1, labels: { role: web, rack: a } }
    - { mac: "${WEB2}", hostname: web-2, labels: { role: web, rack: b } }
    - { mac: "${DB1}", hostname: db-1, labels: { role: db, rack: a } }
    - { mac: "${PLAIN}" }
`,
  );
});

const submit = (body: Record<string, unknown>) => submitTasks(root, POD, parseSubmit({ template: 'hello', ...body }), 'test');
const refusal = (fn: () => unknown): { status: number; message: string } => {
  try {
    fn();
  } catch (err) {
    if (err instanceof TaskRequestError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('not refused');
};

describe('tasks by label', () => {
  it('select picks the pod file servers whose labels match, and each task records the selector', () => {
    const tasks = submit({ select: 'role=web' });
    expect(tasks.map((t) => [t.mac, t.hostname, t.selector])).toEqual([
      [WEB1, 'web-1', 'role=web'],
      [WEB2, 'web-2', 'role=web'],
    ]);
    expect(submit({ select: 'role=web, rack!=b' }).map((t) => [t.mac, t.selector])).toEqual([[WEB1, 'role=web, rack!=b']]);
    expect(submit({ select: 'rack=a' }).map((t) => t.mac)).toEqual([WEB1, DB1]);
    // "has not": the unlabelled server of the file too, never one it does not name.
    expect(submit({ select: '!role' }).map((t) => t.mac)).toEqual([PLAIN]);
    // Without a selector nothing is recorded.
    expect(submit({ targets: ['web-1'] })[0]!.selector).toBeUndefined();
  });

  it('targets and select together: the union, each server once, named ones first', () => {
    const tasks = submit({ targets: [DB1, 'WEB-2', SEEN], select: 'role=web' });
    expect(tasks.map((t) => t.mac)).toEqual([DB1, WEB2, SEEN, WEB1]);
    expect(new Set(tasks.map((t) => t.id)).size).toBe(4);
    expect(tasks.every((t) => t.selector === 'role=web')).toBe(true);
  });

  it('a selector that matches nothing, or does not parse, is a 400 naming it; neither targets nor select is one too', () => {
    expect(refusal(() => submit({ select: 'role=cache' }))).toEqual({
      status: 400,
      message: `pod ${POD}: no server matches the selector "role=cache" (labels from spec.nodes[].labels of its pod file)`,
    });
    expect(refusal(() => submit({ select: 'role=web,,rack=a' }))).toEqual({ status: 400, message: 'selector "role=web,,rack=a": an empty term (two commas, or a comma at an end)' });
    expect(refusal(() => submit({ select: '!role=web' })).message).toMatch(/^selector term "!role=web": ! goes only before a bare key/);
    expect(refusal(() => submit({ select: '  ' })).message).toMatch(/^select: an empty selector would pick every server/);
    expect(refusal(() => submit({ select: ['role=web'] })).message).toMatch(/^select: a label selector/);
    expect(refusal(() => submit({})).message).toMatch(/^targets or select:/);
    expect(refusal(() => submit({ targets: [] })).message).toMatch(/^targets or select:/);
    // A bad target still refuses the whole request, selector or not.
    expect(refusal(() => submit({ targets: ['nope'], select: 'role=web' })).message).toMatch(/^pod rack-s has no server nope/);
  });

  it('through the API routes: 201 with the selector on each task, 400 with the reason, and GET shows it', () => {
    const ok = taskApi({ kind: 'task-submit', pod: POD }, root, { template: 'hello', select: 'role=db' }, 'test');
    expect(ok.status).toBe(201);
    const [task] = (ok.body as { tasks: { id: string; mac: string; selector?: string }[] }).tasks;
    expect(task).toMatchObject({ mac: DB1, selector: 'role=db' });
    expect(taskApi({ kind: 'task', pod: POD, id: task!.id }, root, undefined, 'test').body).toMatchObject({ selector: 'role=db' });
    const bad = taskApi({ kind: 'task-submit', pod: POD }, root, { template: 'hello', select: 'role=' + 'x'.repeat(70) }, 'test');
    expect(bad.status).toBe(400);
    expect((bad.body as { error: string }).error).toMatch(/^selector term "role=x+": label value "x+" is not valid/);
    const none = taskApi({ kind: 'task-submit', pod: POD }, root, { template: 'hello', select: 'gpu' }, 'test');
    expect(none).toEqual({ status: 400, body: { error: `pod ${POD}: no server matches the selector "gpu" (labels from spec.nodes[].labels of its pod file)` } });
  });
});
