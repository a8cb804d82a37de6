// The central node's HTTPS server: the operator REST API (pods, instances,
// events, actions), the aggregated /metrics, each pod's metrics and the
// Prometheus HTTP service-discovery list, and the operator page. Every path
// but /healthz and the page's own files needs the operator token as a bearer
// token.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { CONTENT_TYPE } from '../metrics/exposition.js';
import type { MetricsAggregator } from '../metrics/aggregate.js';
import { supervisorFamilies } from '../metrics/supervisor-metrics.js';
import type { Supervisor } from '../pod-vm/supervisor.js';
import { tokenMatches, type ServerCredentials } from './credentials.js';
import { matchRoute } from './routes.js';
import { podNode, podNodeCounts, podNodes, reinstallNode } from './nodes.js';
import type { CacheCheckResult } from '../catalog/cache-verdict.js';
import { actOnRollout, parseAction, parseStart, RolloutRequestError, rolloutStatus, startRollout } from '../rollout/central.js';
import { sendUiAsset } from './ui.js';
import { sendPodLogs } from './logs.js';
import { taskApi } from '../tasks/api.js';
import { parseRegisterBody, type RegisterBody, type TargetRegistry } from './targets.js';
import type { Family } from '../metrics/exposition.js';
import { RefusalCounts } from '../metrics/refusals.js';
import { bearerToken } from '../net/http/auth.js';
import { readBody } from '../net/http/body.js';
import { closeServer, listen, tlsServerOptions } from '../net/http/listen.js';
import { HttpRefusals, pathOnly } from '../net/http/refusals.js';
import { sendJson, type JsonStyle } from '../net/http/reply.js';

export interface CentralApiOptions {
  address: string;
  port: number;
  credentials: ServerCredentials;
  token: string;
  supervisor: Supervisor;
  /** where each pod keeps its database (STATE/<pod>/pod.db) */
  stateRoot: string;
  metrics: MetricsAggregator;
  log: Logger;
  /** pods' own registrations as scrape targets (POST /api/v1/targets); /sd lists them */
  targets: TargetRegistry;
  /**
   * The same HTTPS service also on a unix socket (STATE/central/api.sock):
   * pods in a network namespace of their own reach it through the file system.
   */
  socketPath?: string;
  /** the operator token's file, named by the page's token prompt (absolute) */
  tokenFile?: string;
  /** more of the central node's own metrics for /metrics (the cached image check's) */
  ownFamilies?: () => Family[];
  /** a pod's cached copies of these name@version hashed again now, a missing one placed from the catalog (before a rollout starts) */
  checkImages?: (pod: string, refs: string[]) => Promise<CacheCheckResult[]>;
}

const MAX_BODY = 64 * 1024;
/** Every answer but /healthz is behind the token; a browser must not guess a type either. */
const JSON_STYLE: JsonStyle = { headers: { 'x-content-type-options': 'nosniff' } };

export interface CentralApiCounters {
  /** answers by status code */
  requests: Record<string, number>;
  /** every refusal (status >= 400, TLS handshakes, unparseable requests) by code and reason */
  refused: RefusalCounts;
}

export class CentralApi {
  readonly counters: CentralApiCounters = { requests: {}, refused: new RefusalCounts() };
  private server?: Server;
  private socketServer?: Server;
  private expiryTimer?: NodeJS.Timeout;
  /** every refusal counted by code and reason and logged at a bounded rate; what handlers throw answered */
  private readonly refusals: HttpRefusals;

  constructor(private readonly o: CentralApiOptions) {
    this.refusals = new HttpRefusals({
      log: o.log,
      counters: this.counters,
      refusedMsg: 'central API request refused',
      failedMsg: 'central API request failed',
      tls: { kind: 'tls', msg: 'central API TLS handshake failed', remote: false },
      remoteField: 'from',
      json: JSON_STYLE,
    });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.o.port;
  }

  async start(): Promise<void> {
    const server = this.tlsServer();
    this.server = server;
    await listen(server, { port: this.o.port, address: this.o.address });
    if (this.o.socketPath) await this.listenSocket(this.o.socketPath);
    // Registrations whose heartbeats stopped (a pod killed with -9, a host gone) leave /sd.
    this.o.targets.onExpire = (r) => this.o.log.warn({ pod: r.pod, pid: r.pid, lastSeen: new Date(r.lastSeen).toISOString() }, 'target registration expired (no heartbeat)');
    this.expiryTimer = setInterval(() => this.o.targets.expire(), 500);
    this.expiryTimer.unref();
    this.o.log.info({ address: this.o.address, port: this.port, socket: this.o.socketPath, selfIssued: this.o.credentials.selfIssued }, 'central API listening');
  }

  /**
   * Serves `credentials` to connections from now on (SIGHUP after a renewed
   * certificate); open connections keep the ones they were made with, and
   * nothing stops listening. Returns false when they are the ones in use.
   */
  updateCredentials(credentials: ServerCredentials): boolean {
    const now = this.o.credentials;
    if (credentials.cert === now.cert && credentials.key === now.key) return false;
    for (const s of [this.server, this.socketServer]) s?.setSecureContext(tlsServerOptions(credentials));
    this.o.credentials = credentials;
    return true;
  }

  /** The same TLS server for the TCP address and the unix socket. */
  private tlsServer(): ReturnType<typeof createServer> {
    const server = createServer(tlsServerOptions(this.o.credentials), (req, res) => {
      res.on('finish', () => this.refusals.finished(res, { from: req.socket.remoteAddress ?? 'unix socket', method: req.method, path: pathOnly(req.url), status: res.statusCode }));
      // The status a handler means is the status sent: only what nobody meant is a 500.
      this.handle(req, res).catch((err: unknown) => this.refusals.answerThrown(res, err, { url: pathOnly(req.url) }));
    });
    // A client that never finishes its TLS handshake or request must not hold a socket for long.
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.refusals.watch(server);
    return server;
  }

  /** The central API's own metrics, next to the supervisor's. */
  private families(): Family[] {
    return [
      {
        name: 'podboot_api_requests_total',
        help: 'central API answers, by status code',
        type: 'counter',
        samples: Object.entries(this.counters.requests).map(([code, value]) => ({ labels: { code }, value })),
      },
      this.counters.refused.family('podboot_api_refused_total', 'central API requests refused (status >= 400, TLS handshakes, unparseable requests), by code and reason'),
    ];
  }

  private async listenSocket(path: string): Promise<void> {
    const server = this.tlsServer();
    try {
      // (A socket file left by a killed node is removed first.)
      await listen(server, { path });
      this.socketServer = server;
    } catch (err) {
      // Pods on the node's network still reach the TCP address.
      this.o.log.error({ err: (err as Error).message, socket: path }, 'central API could not listen on its unix socket; pods in a network namespace cannot register');
    }
  }

  async stop(): Promise<void> {
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    // No grace: open connections are closed at once (the unix socket's file goes with its server).
    for (const s of [this.server, this.socketServer]) if (s) await closeServer(s, 0);
    // The floods still owed a summary line get it now.
    this.refusals.flush();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = matchRoute(req.method ?? 'GET', req.url ?? '/');
    if (route.kind === 'health') return send(res, 200, { ok: true });
    if (route.kind === 'ui') return sendUiAsset(res, route.asset, req.method === 'HEAD', { tokenFile: this.o.tokenFile });
    // One parser for both servers: the scheme is case-insensitive (RFC 7235).
    const presented = bearerToken(req.headers.authorization);
    if (route.kind === 'register' || route.kind === 'deregister') return this.registration(req, res, route, presented);
    if (!presented) {
      this.refusals.refusing(res, 'no-token', { logged: true });
      this.refusals.limited.warn('no-token', { from: req.socket.remoteAddress, url: pathOnly(req.url) }, 'central API request without a token');
      res.setHeader('www-authenticate', 'Bearer realm="podboot"');
      return send(res, 401, { error: 'operator token required (Authorization: Bearer …)' });
    }
    if (!tokenMatches(this.o.token, presented)) {
      this.refusals.refusing(res, 'bad-token', { logged: true });
      this.refusals.limited.warn('bad-token', { from: req.socket.remoteAddress, url: pathOnly(req.url) }, 'central API request with a wrong token');
      return send(res, 403, { error: 'token not accepted' });
    }
    const sup = this.o.supervisor;
    switch (route.kind) {
      case 'metrics': {
        const text = await this.o.metrics.scrape([...supervisorFamilies(sup.status()), ...this.families(), ...(this.o.ownFamilies?.() ?? [])]);
        res.writeHead(200, { 'content-type': CONTENT_TYPE });
        return void res.end(text);
      }
      case 'pod-metrics': {
        // A registered pod is scraped where it said; a supervised one that is not (yet) registered, where the supervisor runs it.
        const reg = this.o.targets.get(route.pod);
        if (!reg && !sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        const text = await this.o.metrics.scrapeOne({ pod: route.pod, socketPath: reg?.metricsSocket ?? sup.metricsSocket(route.pod) });
        if (text === undefined) return send(res, 503, { error: `pod ${route.pod} did not answer` });
        res.writeHead(200, { 'content-type': CONTENT_TYPE });
        return void res.end(text);
      }
      case 'sd': {
        // The pods that registered and still send heartbeats. Targets are this
        // node as the caller reached it: a pod's metrics are on a unix socket,
        // so every scrape goes through here (/pods/POD/metrics).
        const host = req.headers.host ?? `${this.o.address}:${this.port}`;
        return send(
          res,
          200,
          this.o.targets.live().map((r) => ({ targets: [host], labels: { ...r.labels, pod: r.pod, __metrics_path__: `/pods/${r.pod}/metrics` } })),
        );
      }
      case 'targets':
        return send(res, 200, {
          targets: this.o.targets.live().map((r) => ({
            pod: r.pod,
            metricsSocket: r.metricsSocket,
            labels: r.labels,
            pid: r.pid,
            intervalMs: r.intervalMs,
            registeredAt: new Date(r.registeredAt).toISOString(),
            lastSeen: new Date(r.lastSeen).toISOString(),
            expiresAt: new Date(r.expiresAt).toISOString(),
          })),
        });
      case 'pods':
        return send(res, 200, {
          pods: sup
            .status()
            .map((s) => ({ name: s.pod, file: s.file, state: s.state, pid: s.pid, restarts: s.restarts, degraded: s.degraded, leases: s.self?.leases, listeners: s.self?.listeners ?? [] })),
          refused: sup.refusedFiles().map((r) => ({ file: r.file, running: r.running, problems: r.problems })),
        });
      case 'pod':
      case 'instance': {
        const s = sup.instance(route.pod);
        return s ? send(res, 200, s) : send(res, 404, { error: `no pod ${route.pod}` });
      }
      case 'instances':
        return send(res, 200, { instances: sup.status() });
      case 'events':
        return send(res, 200, { events: sup.eventsSince(route.after, route.pod, route.limit) });
      case 'action': {
        const body = await readJson(req);
        const reason = typeof body?.reason === 'string' ? body.reason.slice(0, 200) : undefined;
        this.o.log.info({ pod: route.pod, action: route.action, reason }, 'operator action');
        const found = await sup.act(route.pod, route.action, reason);
        return found ? send(res, 200, sup.instance(route.pod)) : send(res, 404, { error: `no pod ${route.pod}` });
      }
      case 'logs':
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        if (route.query.invalid) return send(res, 400, { error: route.query.invalid });
        return sendPodLogs(req, res, { stateRoot: this.o.stateRoot, pod: route.pod, query: route.query, headers: { 'x-content-type-options': 'nosniff' } });
      case 'nodes':
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        return send(res, 200, { nodes: podNodes(this.o.stateRoot, route.pod) });
      case 'nodes-summary':
        return send(res, 200, {
          pods: podNodeCounts(
            this.o.stateRoot,
            sup.status().map((s) => s.pod),
          ),
        });
      case 'node': {
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        const n = podNode(this.o.stateRoot, route.pod, route.mac);
        return n.node ? send(res, 200, n) : send(res, 404, { error: `pod ${route.pod} has never seen ${route.mac}` });
      }
      case 'reinstall': {
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        const body = await readJson(req);
        const reason = typeof body?.reason === 'string' ? body.reason.slice(0, 200) : undefined;
        const node = reinstallNode(this.o.stateRoot, route.pod, route.mac, `operator via the central API${reason ? ` (${reason})` : ''}`);
        if (!node) return send(res, 404, { error: `pod ${route.pod} has no database yet` });
        this.o.log.info({ pod: route.pod, mac: route.mac, attempt: node.attempt, reason }, 'operator action: reinstall');
        return send(res, 200, node);
      }
      case 'task-templates':
      case 'tasks':
      case 'task-submit':
      case 'task':
      case 'task-logs':
      case 'task-cancel': {
        if (route.kind !== 'task-templates' && !sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        const body = route.kind === 'task-submit' || route.kind === 'task-cancel' ? await readJson(req) : undefined;
        // A cancel's reason goes where a reinstall's does: into who did it, which the task keeps as its reason.
        const reason = route.kind === 'task-cancel' && typeof body?.reason === 'string' && body.reason.trim() ? body.reason.trim().slice(0, 200) : undefined;
        const r = taskApi(route, this.o.stateRoot, route.kind === 'task-submit' ? body : undefined, `operator via the central API${reason ? ` (${reason})` : ''}`);
        // A selector is logged as given: the tasks record it too, but a refused one is only here.
        const select = route.kind === 'task-submit' && typeof body?.select === 'string' ? { select: body.select.slice(0, 200) } : {};
        if (route.kind === 'task-submit' || route.kind === 'task-cancel') this.o.log.info({ pod: route.pod, action: route.kind, status: r.status, ...select }, 'operator action: task');
        return send(res, r.status, r.body);
      }
      case 'rollout':
      case 'rollout-start':
      case 'rollout-action': {
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        const body = route.kind === 'rollout' ? undefined : await readJson(req);
        try {
          if (route.kind === 'rollout') return send(res, 200, rolloutStatus(this.o.stateRoot, route.pod));
          const by = 'operator via the central API';
          if (route.kind === 'rollout-start') {
            const check = this.o.checkImages;
            if (!check) return send(res, 503, { error: 'this central node has no image catalog to check the pod copies against' });
            const status = await startRollout({ stateRoot: this.o.stateRoot, pod: route.pod, req: parseStart(body), by, checkImages: (refs) => check(route.pod, refs) });
            this.o.log.info({ pod: route.pod, rollout: status.rollout?.id, target: status.rollout?.target, select: status.rollout?.selector }, 'operator action: rollout start');
            return send(res, 201, status);
          }
          const status = actOnRollout(this.o.stateRoot, route.pod, route.action, parseAction(body), by);
          this.o.log.info({ pod: route.pod, rollout: status.rollout?.id, action: route.action, phase: status.rollout?.phase }, 'operator action: rollout');
          return send(res, 200, status);
        } catch (err) {
          if (err instanceof RolloutRequestError) return send(res, err.status, { error: err.message });
          throw err;
        }
      }
      case 'rolling-restart': {
        const r = sup.rollingRestart();
        this.o.log.info({ pods: r.pods.length, started: r.started }, 'operator action: rolling restart');
        return r.started ? send(res, 202, r) : send(res, 409, { error: 'a rolling restart is already running' });
      }
      case 'method-not-allowed':
        res.setHeader('allow', route.allow);
        return send(res, 405, { error: `use ${route.allow}` });
      case 'not-found':
        return send(res, 404, { error: 'no such path' });
    }
  }

  /**
   * A pod's own registration (POST /api/v1/targets, its heartbeat too) or
   * deregistration (DELETE /api/v1/targets/POD). The token must be that pod's
   * registration token: a pod cannot register or remove another. The operator
   * token may also remove a registration. No token is ever logged.
   */
  private async registration(req: IncomingMessage, res: ServerResponse, route: { kind: 'register' } | { kind: 'deregister'; pod: string }, presented: string | undefined): Promise<void> {
    const from = req.socket.remoteAddress ?? 'unix socket';
    if (!presented) {
      // Refused before the body is even read.
      this.refusals.refusing(res, 'no-token', { logged: true });
      this.refusals.limited.warn('register-no-token', { from, pod: route.kind === 'deregister' ? route.pod : undefined, action: route.kind }, 'target registration without a token');
      res.setHeader('www-authenticate', 'Bearer realm="podboot"');
      return send(res, 401, { error: "the pod's registration token is required (Authorization: Bearer …)" });
    }
    let pod = route.kind === 'deregister' ? route.pod : '';
    let value: RegisterBody | undefined;
    let invalid: string | undefined;
    if (route.kind === 'register') {
      const parsed = parseRegisterBody(this.o.stateRoot, await readJson(req));
      // The claimed name decides which token is expected; a body without one cannot be checked.
      if (parsed.ok) {
        value = parsed.value;
        pod = value.pod;
      } else invalid = parsed.error;
    }
    if (invalid !== undefined) {
      this.refusals.refusing(res, 'bad-registration', { detail: invalid });
      return send(res, 400, { error: invalid });
    }
    const byPod = this.o.targets.accepts(pod, presented);
    const byOperator = route.kind === 'deregister' && tokenMatches(this.o.token, presented);
    if (!byPod && !byOperator) {
      this.refusals.refusing(res, 'bad-token', { logged: true });
      this.refusals.limited.warn('register-refused', { from, pod, action: route.kind }, 'target registration refused: not the registration token of this pod');
      return send(res, 403, { error: `token not accepted for pod ${pod}` });
    }
    if (!value) {
      const had = this.o.targets.deregister(pod);
      if (had) this.o.log.info({ pod, by: byPod ? 'pod' : 'operator' }, 'target deregistered');
      return send(res, 200, { pod, removed: had });
    }
    const done = this.o.targets.register(value);
    if (!done) return send(res, 503, { error: 'too many registered targets' });
    const r = done.registration;
    if (done.fresh) this.o.log.info({ pod, pid: r.pid, socket: r.metricsSocket, labels: r.labels, intervalMs: r.intervalMs }, 'target registered');
    return send(res, 200, { pod, expiresAt: new Date(r.expiresAt).toISOString(), intervalMs: r.intervalMs });
  }
}

/** A JSON answer, never kept by a browser or proxy (src/net/http/reply.ts). */
function send(res: ServerResponse, status: number, body: unknown): void {
  sendJson(res, status, body, JSON_STYLE);
}

/** A JSON object body, or undefined for none or not an object; BodyTooLarge (→ 413) past MAX_BODY. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const body = await readBody(req, MAX_BODY);
  if (!body.length) return undefined;
  try {
    const v = JSON.parse(body.toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
