// The pod instance's side of supervision (runs inside the pod's process; the
// supervisor's side is src/pod-vm/instance.ts): its metrics endpoint (HTTP on
// a unix socket in its state directory, reachable from the central node even
// when the instance runs in another network namespace) and, when started by
// the supervisor, the IPC channel (ready, heartbeat, degrade; the messages
// are in src/pod-link/ipc.ts).
import { createServer, type Server } from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PodInstance } from './instance.js';
import { CONTENT_TYPE, render } from '../metrics/exposition.js';
import { livenessCounts, podFamilies, poolAddresses, type PodMetricsSource } from '../metrics/pod-metrics.js';
import { probeListeners, type ProbeResult } from './probe.js';
import { tlsPaths } from '../pod-link/tls.js';
import { ENV_HEARTBEAT_MS, isParentMessage, type ChildMessage, type MetricsSnapshot, type PodSelfStatus } from '../pod-link/ipc.js';

export const METRICS_SOCKET = 'metrics.sock';

function certNotAfter(file: string, log: Logger): number | undefined {
  try {
    return Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000;
  } catch (err) {
    log.warn({ err: (err as Error).message, file }, 'TLS certificate expiry not readable: no expiry metric');
    return undefined;
  }
}
const PROBE_INTERVAL_MS = 10_000;

export interface InstanceChannels {
  readonly degraded: boolean;
  readonly metricsSocket: string;
  /** called whenever the operator turns degrade on or off (the install policy hooks in here) */
  onDegrade(cb: (on: boolean, reason?: string) => void): void;
  /**
   * Calls cb once, when the DHCP warm-up should run: at once for a pod run by
   * hand, when the supervisor says so for a supervised one.
   */
  onWarmUp(cb: () => void): void;
  /** Waits (at most maxMs) for running TFTP transfers to end, so a stop does not cut a booting server off. */
  drain(maxMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function attachInstanceChannels(instance: PodInstance, log: Logger, stateDir: string): Promise<InstanceChannels> {
  let degraded = false;
  let degradeReason: string | undefined;
  const degradeListeners: ((on: boolean, reason?: string) => void)[] = [];
  const startTimeSec = Math.floor(Date.now() / 1000 - process.uptime());
  const cfg = instance.config;
  const pool = poolAddresses(cfg.subnets);
  const listeners = [`dhcp ${cfg.listen.address}:${cfg.listen.dhcpPort}`, `tftp ${cfg.listen.address}:${cfg.listen.tftpPort}`];
  // The certificate is issued before the pod starts and does not change while it runs.
  const tlsNotAfterSec = certNotAfter(tlsPaths(stateDir).cert, log);

  // Counters are plain numbers kept by the servers: read at each scrape, never copied.
  const tftp = () => instance.tftp?.counters;
  const source = (): PodMetricsSource => {
    const nodesByState: Record<string, number> = {};
    const nodes = instance.nodeState.nodes();
    for (const n of nodes) nodesByState[n.state] = (nodesByState[n.state] ?? 0) + 1;
    const mem = process.memoryUsage();
    return {
      dhcp: instance.dhcp.counters,
      leases: instance.dhcp.leaseCount,
      poolAddresses: pool,
      tftp: tftp(),
      http: instance.http?.counters,
      nodesByState,
      nodesByLiveness: livenessCounts(nodes),
      degraded,
      startTimeSec,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      fleet: { nodes, leases: instance.dhcp.leaseCount, poolAddresses: pool, tlsNotAfterSec, nowSec: Date.now() / 1000 },
      share: instance.share.stats(),
    };
  };
  let probes: ProbeResult[] | undefined;
  const selfStatus = (): PodSelfStatus => ({ degraded, degradeReason, leases: instance.dhcp.leaseCount, listeners, probes });
  const probe = async () => {
    const http = instance.http;
    const next = await probeListeners({ ...cfg.listen, httpPort: http?.httpPort || undefined, httpsPort: http?.httpsPort || undefined }).catch((err) => [
      { listener: 'probe', ok: false, detail: (err as Error).message },
    ]);
    for (const r of next) {
      const before = probes?.find((p) => p.listener === r.listener);
      // One line per change, not per probe.
      if (!r.ok && before?.ok !== false) log.error({ listener: r.listener, detail: r.detail }, 'listener self-probe failed');
      if (r.ok && before?.ok === false) log.info({ listener: r.listener }, 'listener self-probe ok again');
    }
    probes = next;
  };
  await probe();
  const probeTimer = setInterval(() => void probe(), PROBE_INTERVAL_MS);
  probeTimer.unref();
  const snapshot = (): MetricsSnapshot => {
    const c = instance.dhcp.counters;
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    const t = tftp();
    return { dhcpReceived: sum(c.received), dhcpSent: sum(c.sent), dhcpDropped: sum(c.dropped), tftpRequests: t?.rrq ?? 0, tftpBytesSent: t?.bytesSent ?? 0 };
  };

  const socketPath = join(stateDir, METRICS_SOCKET);
  const server: Server = createServer((req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/metrics') {
        res.writeHead(200, { 'content-type': CONTENT_TYPE });
        res.end(render(podFamilies(source())));
      } else if (req.method === 'GET' && req.url === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(selfStatus()));
      } else {
        res.writeHead(404).end();
      }
    } catch (err) {
      log.error({ err }, 'metrics endpoint failed');
      res.writeHead(500).end();
    }
  });
  // A socket left by a killed instance would make listen() fail with EADDRINUSE.
  rmSync(socketPath, { force: true });
  let listening = false;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    listening = true;
    log.info({ socket: socketPath }, 'metrics endpoint listening');
  } catch (err) {
    // Metrics are not worth the pod: it serves its racks without them (e.g. a
    // state path longer than the 107 bytes a unix socket name may have).
    log.error({ err: (err as Error).message, socket: socketPath }, 'metrics endpoint could not listen; serving without it');
  }

  const send = (m: ChildMessage) => {
    if (process.connected) process.send!(m, undefined, undefined, () => undefined);
  };
  let heartbeat: NodeJS.Timeout | undefined;
  let warmUp: (() => void) | undefined;
  let warmUpAsked = !process.send;
  const onMessage = (m: unknown) => {
    if (!isParentMessage(m)) return;
    if (m.type === 'warm-up') {
      warmUpAsked = true;
      warmUp?.();
      warmUp = undefined;
      return;
    }
    if (m.on === degraded) return;
    degraded = m.on;
    degradeReason = m.on ? m.reason : undefined;
    log.warn({ degraded, reason: m.reason }, degraded ? 'pod degraded: no new installs, leases still served' : 'pod no longer degraded');
    for (const cb of degradeListeners) cb(degraded, degradeReason);
  };
  const onDisconnect = () => {
    // The supervisor is gone: a new one will start this pod again and needs its sockets.
    log.warn('supervisor channel closed; stopping');
    process.kill(process.pid, 'SIGTERM');
  };
  if (process.send) {
    const every = Math.max(100, Number(process.env[ENV_HEARTBEAT_MS]) || 1000);
    let seq = 0;
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    send({ type: 'ready', pid: process.pid, status: selfStatus(), metricsSocket: socketPath });
    heartbeat = setInterval(() => send({ type: 'heartbeat', seq: ++seq, status: selfStatus(), metrics: snapshot() }), every);
    heartbeat.unref();
  }

  return {
    get degraded() {
      return degraded;
    },
    metricsSocket: socketPath,
    onDegrade: (cb) => void degradeListeners.push(cb),
    onWarmUp(cb) {
      if (warmUpAsked) cb();
      else warmUp = cb;
    },
    async drain(maxMs) {
      const active = () => tftp()?.active ?? 0;
      if (active() === 0) return;
      const started = Date.now();
      log.info({ transfers: active(), maxMs }, 'draining running transfers before stopping');
      while (active() > 0 && Date.now() - started < maxMs) await new Promise((r) => setTimeout(r, 50));
      if (active() > 0) log.warn({ transfers: active(), ms: Date.now() - started }, 'transfers still running at the drain limit; they are aborted');
      else log.info({ ms: Date.now() - started }, 'transfers drained');
    },
    async close() {
      if (heartbeat) clearInterval(heartbeat);
      clearInterval(probeTimer);
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      if (listening) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        rmSync(socketPath, { force: true });
      }
      // Let the event loop end once the instance has stopped.
      if (process.connected) process.disconnect();
    },
  };
}
