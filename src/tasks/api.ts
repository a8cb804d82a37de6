// The central API's task routes (src/api/routes.ts matches them): answers
// as {status, body}, so src/api/server.ts only passes requests through.
import { libraryDirs, readLibrary } from './library.js';
import { cancelTask, getTask, listTasks, parseSubmit, submitTasks, TaskRequestError, taskJson, taskLogs, taskSummary } from './central.js';
import type { Stream } from './rules.js';
import { ruleJson } from './rules.js';

export type TaskRoute =
  | { kind: 'task-templates' }
  | { kind: 'tasks'; pod: string; mac?: string }
  | { kind: 'task-submit'; pod: string }
  | { kind: 'task'; pod: string; id: string }
  | { kind: 'task-logs'; pod: string; id: string; stream?: Stream }
  | { kind: 'task-cancel'; pod: string; id: string };

export const TASK_ID_PATTERN = '([0-9a-f]{16})';

export function taskApi(route: TaskRoute, stateRoot: string, body: Record<string, unknown> | undefined, by: string): { status: number; body: unknown } {
  try {
    switch (route.kind) {
      case 'task-templates':
        return {
          status: 200,
          body: {
            templates: readLibrary(libraryDirs(stateRoot)).map((e) => ({
              name: e.name,
              source: e.source,
              file: e.file,
              ...(e.template
                ? { description: e.template.description, params: e.template.params, rules: e.template.rules.map(ruleJson), timeoutSeconds: e.template.timeoutSeconds }
                : { error: e.error }),
            })),
          },
        };
      case 'tasks':
        return { status: 200, body: { tasks: listTasks(stateRoot, route.pod, { mac: route.mac }).map(taskSummary) } };
      case 'task-submit':
        return { status: 201, body: { tasks: submitTasks(stateRoot, route.pod, parseSubmit(body), by).map(taskSummary) } };
      case 'task': {
        const t = getTask(stateRoot, route.pod, route.id);
        return t ? { status: 200, body: taskJson(t, true) } : { status: 404, body: { error: `pod ${route.pod} has no task ${route.id}` } };
      }
      case 'task-logs': {
        const l = taskLogs(stateRoot, route.pod, route.id, route.stream);
        return l ? { status: 200, body: { task: taskSummary(l.task), chunks: l.chunks } } : { status: 404, body: { error: `pod ${route.pod} has no task ${route.id}` } };
      }
      case 'task-cancel': {
        const t = cancelTask(stateRoot, route.pod, route.id, by);
        return t ? { status: 200, body: taskSummary(t) } : { status: 404, body: { error: `pod ${route.pod} has no task ${route.id}` } };
      }
    }
  } catch (err) {
    if (err instanceof TaskRequestError) return { status: err.status, body: { error: err.message } };
    throw err;
  }
}
