// The pod instance's registration with the central node as a Prometheus
// target (issue 5, M2), from inside the pod's process: over HTTPS (TLS 1.2+,
// the node's root CA), with the pod's own registration token
// (src/pod-link/registration.ts; the node's side is src/api/targets.ts);
// again at every heartbeat, and a deregistration on a graceful stop. The central node finds it in
// STATE/central/api.json (its URL and CA); a unix socket STATE/central/api.sock,
// when there, is preferred: it also reaches the node from a pod's network
// namespace. Supervised or run by hand, a pod on the node's state root
// registers the same way.
import { request } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { CENTRAL_API_SOCKET, podRegistrationToken, registerTokenPath } from '../pod-link/registration.js';

export const ENV_REGISTER_INTERVAL_MS = 'PODBOOT_REGISTER_INTERVAL_MS';
const DEFAULT_INTERVAL_MS = 15_000;
const REQUEST_TIMEOUT_MS = 5_000;

export interface RegistrarOptions {
  pod: string;
  stateRoot: string;
  metricsSocket: string;
  labels?: Record<string, string>;
  log: Logger;
  intervalMs?: number;
}

export interface Registrar {
  /** whether the last registration was accepted */
  readonly registered: boolean;
  /** stops the heartbeat and deregisters (bounded); never throws */
  close(): Promise<void>;
}

interface Endpoint {
  /** HTTPS on the node's unix socket, or its URL */
  socketPath?: string;
  url?: string;
  ca: string;
}

function endpoint(stateRoot: string, pod: string): Endpoint | undefined {
  let info: { url?: string; ca?: string } = {};
  try {
    info = JSON.parse(readFileSync(join(stateRoot, 'central', 'api.json'), 'utf8'));
  } catch {
    /* no API (yet) */
  }
  // An unprivileged pod cannot read the CA directory (api.json's ca): it trusts
  // the root the central node handed it with its own certificate, the same root.
  const caFiles = [info.ca ?? join(stateRoot, 'ca', 'root.pem'), join(stateRoot, pod, 'tls', 'root.pem')];
  let ca: string | undefined;
  for (const f of caFiles) {
    try {
      ca = readFileSync(f, 'utf8');
      break;
    } catch {
      /* next */
    }
  }
  if (ca === undefined) return undefined;
  const socketPath = join(stateRoot, 'central', CENTRAL_API_SOCKET);
  if (existsSync(socketPath)) return { socketPath, url: info.url, ca };
  return info.url ? { url: info.url, ca } : undefined;
}

function call(ep: Endpoint, via: 'socket' | 'url', token: string, method: string, path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ status: number; text: string }> {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) };
    const common = { method, ca: ep.ca, minVersion: 'TLSv1.2' as const, headers, timeout: timeoutMs, agent: false as const };
    const done = (res: import('node:http').IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.length < 64 && chunks.push(d));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    // On the unix socket the certificate is checked against its DNS name localhost.
    const req = via === 'socket' ? request({ ...common, socketPath: ep.socketPath, path, servername: 'localhost', host: 'localhost' }, done) : request(new URL(path, ep.url), common, done);
    const t = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(t));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Tries the node's unix socket, then its URL. */
async function callCentral(ep: Endpoint, token: string, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<{ status: number; text: string; via: string }> {
  let first: Error | undefined;
  if (ep.socketPath) {
    try {
      return { ...(await call(ep, 'socket', token, method, path, body, timeoutMs)), via: ep.socketPath };
    } catch (err) {
      first = err as Error;
    }
  }
  if (ep.url) return { ...(await call(ep, 'url', token, method, path, body, timeoutMs)), via: ep.url };
  throw first ?? new Error('no central API endpoint');
}

export async function startRegistrar(o: RegistrarOptions): Promise<Registrar> {
  const intervalMs = o.intervalMs ?? Math.max(100, Number(process.env[ENV_REGISTER_INTERVAL_MS]) || DEFAULT_INTERVAL_MS);
  const token = await podRegistrationToken(o.stateRoot, o.pod).catch(() => undefined);
  if (!token) {
    o.log.info({ file: registerTokenPath(o.stateRoot, o.pod) }, 'no registration token: not registering as a scrape target with a central node');
    return { registered: false, close: async () => undefined };
  }
  const body = { pod: o.pod, metricsSocket: resolve(o.metricsSocket), labels: o.labels ?? {}, pid: process.pid, intervalMs };
  let registered = false;
  /** the last failure logged, so an outage gives one line, not one per heartbeat */
  let lastProblem: string | undefined;
  let closed = false;
  let inflight: Promise<void> = Promise.resolve();

  const attempt = async () => {
    const ep = endpoint(o.stateRoot, o.pod);
    let problem: string | undefined;
    try {
      if (!ep) throw new Error(`no central API found (${join(o.stateRoot, 'central', 'api.json')} and its CA)`);
      const r = await callCentral(ep, token, 'POST', '/api/v1/targets', body);
      if (r.status === 200) {
        if (!registered) o.log.info({ central: r.via, intervalMs }, 'registered as a scrape target with the central node');
        registered = true;
        lastProblem = undefined;
        return;
      }
      problem = r.status === 401 || r.status === 403 ? `refused (HTTP ${r.status}): the central node does not accept this pod's registration token` : `HTTP ${r.status}: ${r.text.slice(0, 200)}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    registered = false;
    if (problem !== lastProblem) o.log.warn({ problem, retryMs: intervalMs }, 'could not register as a scrape target with the central node');
    lastProblem = problem;
  };

  // In the background: the pod serves its racks whether or not the node answers.
  inflight = attempt();
  const timer = setInterval(() => {
    if (!closed) inflight = attempt();
  }, intervalMs);
  timer.unref();

  return {
    get registered() {
      return registered;
    },
    async close() {
      closed = true;
      clearInterval(timer);
      // Bounded: the whole stop must stay well inside the supervisor's 10 s.
      await Promise.race([inflight, new Promise((r) => setTimeout(r, 1000).unref())]);
      const ep = endpoint(o.stateRoot, o.pod);
      if (!ep) return;
      try {
        const r = await callCentral(ep, token, 'DELETE', `/api/v1/targets/${o.pod}`, undefined, 2000);
        if (r.status === 200) o.log.info('deregistered from the central node');
        else o.log.warn({ status: r.status }, 'deregistration refused by the central node');
      } catch (err) {
        o.log.warn({ err: (err as Error).message }, 'could not deregister from the central node; its registration expires');
      }
      registered = false;
    },
  };
}
