// The central node's HTTPS server: the operator REST API (pods, instances,
// events, actions), the aggregated /metrics, each pod's metrics and the
// Prometheus HTTP service-discovery list. Every path but /healthz needs the
// operator token as a bearer token.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log-limit.js';
import { CONTENT_TYPE } from '../metrics/exposition.js';
import type { MetricsAggregator } from '../metrics/aggregate.js';
import { supervisorFamilies } from '../metrics/supervisor-metrics.js';
import type { Supervisor } from '../pod-vm/supervisor.js';
import { tokenMatches, type ServerCredentials } from './credentials.js';
import { matchRoute } from './routes.js';
import { podNode, podNodes, reinstallNode } from './nodes.js';

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
}

const MAX_BODY = 64 * 1024;

export class CentralApi {
  private server?: Server;
  private readonly limited: RateLimitedLog;

  constructor(private readonly o: CentralApiOptions) {
    this.limited = new RateLimitedLog(o.log);
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.o.port;
  }

  async start(): Promise<void> {
    const server = createServer({ key: this.o.credentials.key, cert: this.o.credentials.cert, minVersion: 'TLSv1.2' }, (req, res) => {
      this.handle(req, res).catch((err) => {
        this.o.log.error({ err, url: req.url }, 'central API request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    // A client that never finishes its TLS handshake or request must not hold a socket for long.
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.on('tlsClientError', (err) => this.limited.warn('tls', { err: err.message }, 'central API TLS handshake failed'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.o.log.info({ address: this.o.address, port: this.port, selfIssued: this.o.credentials.selfIssued }, 'central API listening');
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = matchRoute(req.method ?? 'GET', req.url ?? '/');
    if (route.kind === 'health') return send(res, 200, { ok: true });
    const auth = req.headers.authorization;
    const presented = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    if (!presented) {
      this.limited.warn('no-token', { from: req.socket.remoteAddress, url: req.url }, 'central API request without a token');
      res.setHeader('www-authenticate', 'Bearer realm="podboot"');
      return send(res, 401, { error: 'operator token required (Authorization: Bearer …)' });
    }
    if (!tokenMatches(this.o.token, presented)) {
      this.limited.warn('bad-token', { from: req.socket.remoteAddress, url: req.url }, 'central API request with a wrong token');
      return send(res, 403, { error: 'token not accepted' });
    }
    const sup = this.o.supervisor;
    switch (route.kind) {
      case 'metrics': {
        const text = await this.o.metrics.scrape(supervisorFamilies(sup.status()));
        res.writeHead(200, { 'content-type': CONTENT_TYPE });
        return void res.end(text);
      }
      case 'pod-metrics': {
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        const text = await this.o.metrics.scrapeOne({ pod: route.pod, socketPath: sup.metricsSocket(route.pod) });
        if (text === undefined) return send(res, 503, { error: `pod ${route.pod} did not answer` });
        res.writeHead(200, { 'content-type': CONTENT_TYPE });
        return void res.end(text);
      }
      case 'sd': {
        // Targets are this node as the caller reached it: every pod's metrics go through here.
        const host = req.headers.host ?? `${this.o.address}:${this.port}`;
        return send(
          res,
          200,
          sup.pods().map((pod) => ({ targets: [host], labels: { pod, __metrics_path__: `/pods/${pod}/metrics` } })),
        );
      }
      case 'pods':
        return send(res, 200, {
          pods: sup.status().map((s) => ({ name: s.pod, file: s.file, state: s.state, pid: s.pid, restarts: s.restarts, degraded: s.degraded, leases: s.self?.leases, listeners: s.self?.listeners ?? [] })),
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
      case 'nodes':
        if (!sup.instance(route.pod)) return send(res, 404, { error: `no pod ${route.pod}` });
        return send(res, 200, { nodes: podNodes(this.o.stateRoot, route.pod) });
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
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(c as Buffer);
  }
  if (!size) return undefined;
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
