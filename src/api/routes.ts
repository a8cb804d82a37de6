// The central API's routes, matched by a pure function so the table can be
// read (and tested) in one place. docs/openapi.yaml describes the same set.
import type { PodAction } from '../pod-vm/supervisor.js';
import { type LogsQuery, parseLogsQuery } from './logs-query.js';
import { TASK_ID_PATTERN, type TaskRoute } from '../tasks/api.js';
import { ROLLOUT_ACTIONS, type RolloutAction } from '../rollout/central.js';

export type Route =
  | { kind: 'health' }
  | { kind: 'ui'; asset: UiAsset }
  | { kind: 'metrics' }
  | { kind: 'pod-metrics'; pod: string }
  | { kind: 'sd' }
  | { kind: 'register' }
  | { kind: 'targets' }
  | { kind: 'deregister'; pod: string }
  | { kind: 'pods' }
  | { kind: 'pod'; pod: string }
  | { kind: 'instances' }
  | { kind: 'instance'; pod: string }
  | { kind: 'events'; after: number; pod?: string; limit: number }
  | { kind: 'action'; pod: string; action: PodAction }
  | { kind: 'rolling-restart' }
  | { kind: 'nodes'; pod: string }
  | { kind: 'logs'; pod: string; query: LogsQuery }
  | { kind: 'nodes-summary' }
  | { kind: 'node'; pod: string; mac: string }
  | { kind: 'reinstall'; pod: string; mac: string }
  | { kind: 'rollout'; pod: string }
  | { kind: 'rollout-start'; pod: string }
  | { kind: 'rollout-action'; pod: string; action: RolloutAction }
  | TaskRoute
  | { kind: 'method-not-allowed'; allow: string }
  | { kind: 'not-found' };

/** The operator page's files (ui/ in the package); they hold no data, so no token. */
export type UiAsset = 'index.html' | 'app.js' | 'app.css' | 'icon.svg';
const UI_PATHS: ReadonlyMap<string, UiAsset> = new Map([
  ['/', 'index.html'],
  ['/ui', 'index.html'],
  ['/ui/index.html', 'index.html'],
  ['/ui/app.js', 'app.js'],
  ['/ui/app.css', 'app.css'],
  ['/ui/icon.svg', 'icon.svg'],
]);

const ACTIONS: readonly PodAction[] = ['start', 'stop', 'restart', 'degrade', 'undegrade'];
const POD = '([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)';

export function matchRoute(method: string, url: string): Route {
  const u = new URL(url, 'https://central.invalid');
  const path = u.pathname.replace(/\/+$/, '') || '/';
  const get = (r: Route): Route => (method === 'GET' || method === 'HEAD' ? r : { kind: 'method-not-allowed', allow: 'GET' });
  let m: RegExpMatchArray | null;
  if (path === '/healthz') return get({ kind: 'health' });
  const asset = UI_PATHS.get(path);
  if (asset) return get({ kind: 'ui', asset });
  if (path === '/metrics') return get({ kind: 'metrics' });
  if (path === '/sd' || path === '/api/v1/sd') return get({ kind: 'sd' });
  if (path === '/api/v1/targets') {
    if (method === 'POST') return { kind: 'register' };
    return method === 'GET' || method === 'HEAD' ? { kind: 'targets' } : { kind: 'method-not-allowed', allow: 'GET, POST' };
  }
  if ((m = path.match(new RegExp(`^/api/v1/targets/${POD}$`)))) return method === 'DELETE' ? { kind: 'deregister', pod: m[1]! } : { kind: 'method-not-allowed', allow: 'DELETE' };
  if ((m = path.match(new RegExp(`^/pods/${POD}/metrics$`)))) return get({ kind: 'pod-metrics', pod: m[1]! });
  if (path === '/api/v1/pods') return get({ kind: 'pods' });
  if (path === '/api/v1/instances') return get({ kind: 'instances' });
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}$`)))) return get({ kind: 'pod', pod: m[1]! });
  if ((m = path.match(new RegExp(`^/api/v1/instances/${POD}$`)))) return get({ kind: 'instance', pod: m[1]! });
  if (path === '/api/v1/events') {
    const num = (k: string, d: number) => {
      const v = Number(u.searchParams.get(k) ?? d);
      return Number.isFinite(v) && v >= 0 ? Math.floor(v) : d;
    };
    return get({ kind: 'events', after: num('after', 0), pod: u.searchParams.get('pod') ?? undefined, limit: Math.min(num('limit', 500), 2000) });
  }
  if (path === '/api/v1/nodes/summary') return get({ kind: 'nodes-summary' });
  const MAC = '((?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2})';
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/nodes$`)))) return get({ kind: 'nodes', pod: m[1]! });
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/nodes/${MAC}$`)))) return get({ kind: 'node', pod: m[1]!, mac: m[2]!.toLowerCase().replace(/-/g, ':') });
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/nodes/${MAC}/reinstall$`)))) {
    return method === 'POST' ? { kind: 'reinstall', pod: m[1]!, mac: m[2]!.toLowerCase().replace(/-/g, ':') } : { kind: 'method-not-allowed', allow: 'POST' };
  }
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/rollout$`)))) {
    if (method === 'POST') return { kind: 'rollout-start', pod: m[1]! };
    return get({ kind: 'rollout', pod: m[1]! });
  }
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/rollout/([a-z]+)$`))) && (ROLLOUT_ACTIONS as readonly string[]).includes(m[2]!)) {
    return method === 'POST' ? { kind: 'rollout-action', pod: m[1]!, action: m[2] as RolloutAction } : { kind: 'method-not-allowed', allow: 'POST' };
  }
  if (path === '/api/v1/task-templates') return get({ kind: 'task-templates' });
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/tasks$`)))) {
    if (method === 'POST') return { kind: 'task-submit', pod: m[1]! };
    const mac = u.searchParams.get('mac') ?? undefined;
    return get({ kind: 'tasks', pod: m[1]!, ...(mac ? { mac: mac.toLowerCase().replace(/-/g, ':') } : {}) });
  }
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/tasks/${TASK_ID_PATTERN}$`)))) return get({ kind: 'task', pod: m[1]!, id: m[2]! });
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/tasks/${TASK_ID_PATTERN}/logs$`)))) {
    const stream = u.searchParams.get('stream');
    return get({ kind: 'task-logs', pod: m[1]!, id: m[2]!, ...(stream === 'stdout' || stream === 'stderr' ? { stream } : {}) });
  }
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/tasks/${TASK_ID_PATTERN}/cancel$`)))) {
    return method === 'POST' ? { kind: 'task-cancel', pod: m[1]!, id: m[2]! } : { kind: 'method-not-allowed', allow: 'POST' };
  }
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/logs$`)))) return get({ kind: 'logs', pod: m[1]!, query: parseLogsQuery(u.searchParams) });
  if (path === '/api/v1/rolling-restart') return method === 'POST' ? { kind: 'rolling-restart' } : { kind: 'method-not-allowed', allow: 'POST' };
  if ((m = path.match(new RegExp(`^/api/v1/pods/${POD}/([a-z]+)$`))) && (ACTIONS as readonly string[]).includes(m[2]!)) {
    return method === 'POST' ? { kind: 'action', pod: m[1]!, action: m[2] as PodAction } : { kind: 'method-not-allowed', allow: 'POST' };
  }
  return { kind: 'not-found' };
}
