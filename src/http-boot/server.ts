// The pod's HTTP(S) boot server. HTTPS (TLS 1.2+) carries everything that is
// per server: the signed stage2, the kickstart and the install callbacks, each
// behind a token bound to that server. Plain HTTP carries only what Debian's
// iPXE must fetch without TLS (its script, the stage1 kernel and initrd): files
// with no secret in them beyond the install token the iPXE script hands to
// stage1, exactly as the TFTP path does.
import { read } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { parseIPv4 } from '../net/ipv4.js';
import type { NodeRecord, NodeStateStore } from '../store/types.js';
import type { FileResolver } from '../tftp/resolver.js';
import { FAILURE_REASONS, INSTALLED_STATES, REPORTABLE, reportTransition, type Report } from '../install/state.js';
import { applyLiveness, heartbeatMetrics, livenessOnReport } from '../install/liveness.js';
import { decideRange, ifNoneMatchHits, type Validators } from './range.js';
import { endsWithLastByte, ImageStreamAdmission, type AdmissionCounts, type AdmissionLimits } from './admission.js';
import { STAGE2_FILES, type Stage2File, type Stage2FileName, type Stage2Set } from './stage2-files.js';
import { tokenFromRequest } from '../install/token.js';
import { newHistogram, observe, type HistogramData } from '../metrics/histogram.js';
import type { TokenAuthority } from '../install/tokens.js';
import { SESSION_ROUTE, type InstallCredentials } from '../install/credentials.js';
import { RefusalCounts } from '../metrics/refusals.js';
import { BodyTooLarge, readBody } from '../net/http/body.js';
import { HttpError } from '../net/http/errors.js';
import { closeServer, listen, tlsServerOptions } from '../net/http/listen.js';
import { HttpRefusals, pathOnly } from '../net/http/refusals.js';
import { sendJson, type JsonStyle } from '../net/http/reply.js';
import { patchSlice } from '../vmedia/block.js';
import type { VmediaIsoSource } from '../vmedia/iso-source.js';
import { ShareError, ShareService } from '../share/service.js';

export interface HttpBootConfig {
  address: string;
  /** 0: an ephemeral port (tests); undefined: no plain-HTTP listener */
  httpPort?: number;
  httpsPort: number;
  tls: { cert: Buffer; key: Buffer };
  /** only clients for which this is true are served (the pod's subnets and its own address) */
  allowSource: (address: number) => boolean;
  /** boot-storm admission of `GET /v1/stage2/image` (src/http-boot/admission.ts); absent: every stream admitted */
  imageStreams?: AdmissionLimits & { rackOf: (address: number) => string | undefined };
}

export interface HttpBootDeps {
  pod: string;
  log: Logger;
  nodes: NodeStateStore;
  tokens: TokenAuthority;
  /** install token → session exchange, and the session check for every install call */
  credentials: InstallCredentials;
  /** iPXE scripts (`ipxe/<mac>.ipxe`) and the boot tree, named as over TFTP */
  bootFiles: FileResolver;
  /** the stage2 this server installs (its pin, a rollout's, the pod's release), when the pod holds it */
  stage2: (mac: string) => Stage2Set | undefined;
  /** name@version of the copy the pod holds with this image sha256 (any version, not only the assigned one) */
  imageRef?: (sha256: string) => string | undefined;
  /** a rollout that wants this server back: the answer to its report tells its agent to reboot (src/rollout/pod-driver.ts) */
  rollouts?: { onReport(mac: string, scope: 'install' | 'node', node: NodeRecord | undefined, now: number): 'reboot' | undefined };
  /** the kickstart for one server; throws when it cannot be rendered */
  kickstart: (mac: string) => string;
  /** the cloud-init seed (FAT image) for one server; rejects with what failed */
  seed: (mac: string) => Promise<Buffer>;
  /** unix milliseconds */
  clock?: () => number;
  /** the node agent's task endpoints (/v1/tasks/…, src/tasks/pod-service.ts) */
  tasks?: { handle(req: IncomingMessage, res: ServerResponse, method: string, url: URL, mac: string): Promise<void> };
  /** the stage1 ISO with each server's config block filled in (GET /vmedia/<mac>.iso, src/vmedia/) */
  vmedia?: VmediaIsoSource;
  /** rack peers sharing image chunks (/v1/share/…, src/share/) */
  share?: ShareService;
}

export interface HttpBootCounters {
  requests: Record<string, number>;
  bytesSent: number;
  /** every refusal (status >= 400, TLS handshakes, unparseable requests) by code and reason */
  refused: RefusalCounts;
  events: Record<string, number>;
  /** request received → response finished, seconds (a whole stage2 download is one observation) */
  requestSeconds: HistogramData;
  /** image streams now, at peak and refused (boot-storm admission); absent without admission */
  imageStreams?: () => AdmissionCounts;
}

const MAX_EVENT_BODY = 4096;
const STREAM_CHUNK = 512 * 1024;
/** Answers are read by stage1's shell scripts: one line each. */
const JSON_STYLE: JsonStyle = { newline: true };
/** How long stop() lets a download run before cutting it. */
const CLOSE_GRACE_MS = 2000;

/** A refusal about one server, when it is known: its MAC goes into the request's log line. */
class BootHttpError extends HttpError {
  constructor(
    status: number,
    message: string,
    readonly mac?: string,
    /** a fixed word for metrics and the log's kind; the status's own word when absent */
    reason?: string,
  ) {
    super(status, message, reason);
  }
}

function remoteV4(req: IncomingMessage): { text: string; value?: number } {
  const text = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  return { text, value: parseIPv4(text) };
}

export class HttpBootServer {
  readonly counters: HttpBootCounters = { requests: {}, bytesSent: 0, refused: new RefusalCounts(), events: {}, requestSeconds: newHistogram() };
  private http?: Server;
  private https?: Server;
  private readonly clock: () => number;
  /** refusals are counted and logged at a bounded rate: a flood of bad requests must not fill the disk */
  private readonly refusals: HttpRefusals;
  private readonly admission?: ImageStreamAdmission;

  constructor(
    private readonly cfg: HttpBootConfig,
    private readonly deps: HttpBootDeps,
  ) {
    this.clock = deps.clock ?? Date.now;
    this.refusals = new HttpRefusals({
      log: deps.log,
      clock: this.clock,
      counters: this.counters,
      refusedMsg: 'http request refused',
      failedMsg: 'http handler failed',
      tls: { kind: 'refused:tls', msg: 'TLS handshake refused', remote: true },
      remoteField: 'remote',
      json: JSON_STYLE,
    });
    if (cfg.imageStreams) {
      const admission = new ImageStreamAdmission(cfg.imageStreams);
      this.admission = admission;
      this.counters.imageStreams = () => admission.counts(this.clock());
    }
  }

  get httpsPort(): number {
    return (this.https?.address() as AddressInfo | null)?.port ?? 0;
  }

  get httpPort(): number {
    return (this.http?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    this.https = createHttpsServer(tlsServerOptions(this.cfg.tls), (req, res) => void this.handle(req, res, true));
    this.refusals.watch(this.https, { tls: true });
    await listen(this.https, { port: this.cfg.httpsPort, address: this.cfg.address });
    if (this.cfg.httpPort !== undefined) {
      this.http = createHttpServer((req, res) => void this.handle(req, res, false));
      this.refusals.watch(this.http, { tls: false });
      await listen(this.http, { port: this.cfg.httpPort, address: this.cfg.address });
    }
    this.deps.log.info({ address: this.cfg.address, httpsPort: this.httpsPort, httpPort: this.http ? this.httpPort : undefined }, 'http boot listening');
  }

  async stop(): Promise<void> {
    // Bounded: a stalled download must not hold a pod's shutdown for ever.
    for (const s of [this.http, this.https]) if (s) await closeServer(s, CLOSE_GRACE_MS);
    // The floods still owed a summary line get it now.
    this.refusals.flush();
  }

  private count(group: 'events', key: string): void {
    const c = this.counters[group];
    c[key] = (c[key] ?? 0) + 1;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    const started = this.clock();
    const path = pathOnly(req.url);
    const remote = remoteV4(req);
    let mac: string | undefined;
    res.on('finish', () => {
      observe(this.counters.requestSeconds, (this.clock() - started) / 1000);
      const fields = { mac, method: req.method, path, status: res.statusCode, remote: remote.text, ms: this.clock() - started, tls: secure };
      // Every answer is counted; a refusal by code and reason, its line rate-limited per status and reason.
      if (!this.refusals.finished(res, fields)) this.deps.log.info(fields, 'http request');
    });
    try {
      if (remote.value === undefined || !this.cfg.allowSource(remote.value)) throw new BootHttpError(403, `source ${remote.text} is not in this pod`, undefined, 'not-in-pod');
      // URL parsing would quietly resolve `..` (even as %2e%2e); a client that sends one is refused, not redirected.
      if (/(^|\/)(\.|%2e){2}(\/|$)/i.test(path)) throw new BootHttpError(400, 'path with a .. segment');
      const url = new URL(req.url ?? '/', 'http://pod');
      const method = req.method ?? 'GET';
      if (url.pathname === '/v1/health' && secure) {
        // Liveness for the supervisor's self-probe and for operators: no token, nothing about servers.
        return sendJson(res, 200, { pod: this.deps.pod, ok: true }, JSON_STYLE);
      }
      if (url.pathname.startsWith('/v1/')) {
        if (!secure) throw new BootHttpError(403, 'the API is served over HTTPS only');
        mac = await this.api(req, res, url, method);
        return;
      }
      if (method !== 'GET' && method !== 'HEAD') throw new BootHttpError(405, `${method} not allowed`);
      const iso = /^\/vmedia\/([0-9a-f]{12})\.iso$/.exec(url.pathname);
      if (iso && this.deps.vmedia) {
        mac = await this.vmediaIso(req, res, iso[1]!, tokenFromRequest(req.headers.authorization, url.searchParams), secure);
        return;
      }
      const ipxe = /^\/ipxe\/([0-9A-Fa-f:-]{12,17})\.ipxe$/.exec(url.pathname);
      if (ipxe) return await this.resolved(req, res, `ipxe/${ipxe[1]}.ipxe`, 'text/plain; charset=utf-8');
      if (url.pathname.startsWith('/boot/')) return await this.resolved(req, res, decodePath(url.pathname.slice('/boot/'.length)), 'application/octet-stream');
      throw new BootHttpError(404, 'not found');
    } catch (err) {
      if (err instanceof BootHttpError) mac ??= err.mac;
      // The status a handler means is the status sent: only what nobody meant is a 500.
      this.refusals.answerThrown(res, err, { path });
    }
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<string | undefined> {
    const now = Math.floor(this.clock() / 1000);
    const route = `${method} ${url.pathname}`;
    const token = tokenFromRequest(req.headers.authorization, url.searchParams);
    const source = remoteV4(req).text;
    // The install token from the boot config is good here only, once (src/install/credentials.ts).
    if (route === SESSION_ROUTE) return this.exchange(res, token, source, now);
    const auth = this.deps.credentials.authorize(token, source, now);
    if (!auth.ok) throw new BootHttpError(auth.status, auth.reason, auth.mac);
    const { claims, node } = auth;
    const mac = claims.mac;

    if (route === 'POST /v1/events') {
      await this.report(req, res, claims.scope, mac, node, now);
      return mac;
    }
    if (url.pathname.startsWith('/v1/tasks/')) {
      // Tasks run in the installed OS: its node token only, never an install session.
      if (claims.scope !== 'node') throw new BootHttpError(403, `a ${claims.scope} token cannot ${route}`, mac);
      if (!this.deps.tasks) throw new BootHttpError(404, 'this pod runs no tasks', mac);
      await this.deps.tasks.handle(req, res, method, url, mac);
      return mac;
    }
    if (claims.scope !== 'install') throw new BootHttpError(403, `a ${claims.scope} token cannot ${route}`, mac);
    // A server that is installed gets nothing to install, whoever holds its MAC.
    if (node && INSTALLED_STATES.has(node.state)) {
      this.deps.nodes.addEvent({ time: now, mac, kind: 'install-request-after-install', detail: `${route} refused: server is ${node.state}` });
      throw new BootHttpError(403, `server is ${node.state}; an operator must ask for a reinstall`, mac);
    }
    if (this.deps.share && ShareService.owns(url.pathname)) {
      await this.shareRoute(res, method, url, mac, source);
      return mac;
    }
    const stage2 = /^\/v1\/stage2\/([a-z0-9.]+)$/.exec(url.pathname);
    if (stage2 && (method === 'GET' || method === 'HEAD')) {
      const name = stage2[1] as Stage2FileName;
      if (!STAGE2_FILES.includes(name)) throw new BootHttpError(404, 'no such stage2 file', mac);
      const set = this.deps.stage2(mac);
      if (!set) throw new BootHttpError(404, 'this pod holds no stage2 image for this server', mac);
      // Only the image is held back in a boot storm: a HEAD, the manifest and the signatures cost nothing.
      if (name === 'image' && method === 'GET') this.admitImageStream(req, res, mac, set.files.image);
      await this.sendFile(req, res, set.files[name], name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      return mac;
    }
    if (route === 'GET /v1/kickstart') {
      let text: string;
      try {
        text = this.deps.kickstart(mac);
      } catch (err) {
        throw new BootHttpError(500, `kickstart: ${(err as Error).message}`, mac);
      }
      this.deps.nodes.addEvent({ time: now, mac, kind: 'kickstart-served' });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      this.counters.bytesSent += Buffer.byteLength(text);
      return mac;
    }
    if (route === 'GET /v1/seed') {
      let image: Buffer;
      try {
        image = await this.deps.seed(mac);
      } catch (err) {
        throw new BootHttpError(500, `seed: ${(err as Error).message}`, mac, 'seed-failed');
      }
      this.deps.nodes.addEvent({ time: now, mac, kind: 'seed-served' });
      // It carries the server's node token: never kept by a cache on the way.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', 'content-length': image.length });
      res.end(image);
      this.counters.bytesSent += image.length;
      return mac;
    }
    if (route === 'POST /v1/token/refresh') {
      const session = this.deps.credentials.session(mac, now);
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end(session + '\n');
      return mac;
    }
    throw new BootHttpError(404, 'not found', mac);
  }

  /**
   * A slot for one image stream, given back once when the response ends
   * (finished, cut or failed); over the pod's or the rack's limit a 503
   * that says when to come back (curl --retry honours Retry-After).
   */
  private admitImageStream(req: IncomingMessage, res: ServerResponse, mac: string, image: Stage2File): void {
    if (!this.admission) return;
    const address = remoteV4(req).value;
    const a = this.admission.admit(address === undefined ? undefined : this.cfg.imageStreams!.rackOf(address), this.clock(), mac);
    if (!a.ok) {
      res.setHeader('retry-after', String(a.retryAfterSeconds));
      throw new BootHttpError(503, a.message, mac, 'busy');
    }
    // Finished through the image's last byte: the server is done. Cut, or a range short of the end: it will be back.
    res.once('finish', () => {
      const ifRange = typeof req.headers['if-range'] === 'string' ? req.headers['if-range'] : undefined;
      a.ticket.release(this.clock(), endsWithLastByte(res.statusCode, decideRange(image.size, req.headers.range, ifRange, image), image.size));
    });
    res.once('close', () => a.ticket.release(this.clock(), false));
  }

  private async shareRoute(res: ServerResponse, method: string, url: URL, mac: string, source: string): Promise<void> {
    let a: Awaited<ReturnType<ShareService['handle']>>;
    try {
      a = await this.deps.share!.handle(method, url, mac, source, () => res.destroyed || res.socket?.destroyed === true);
    } catch (err) {
      if (err instanceof ShareError) throw new BootHttpError(400, err.message, mac, 'bad-share-request');
      throw err;
    }
    if (a.status >= 400) throw new BootHttpError(a.status, a.body, mac, a.reason);
    // carries the swarm's key: never kept by a cache on the way
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(a.body) });
    res.end(a.body);
  }

  /** POST /v1/session: the session credential as text/plain, over TLS only. */
  private exchange(res: ServerResponse, token: string | undefined, source: string, now: number): string | undefined {
    const r = this.deps.credentials.exchange(token, source, now);
    if (!r.ok) throw new BootHttpError(r.status, r.reason, r.mac);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(r.session + '\n');
    return r.mac;
  }

  private async report(req: IncomingMessage, res: ServerResponse, scope: 'install' | 'node', mac: string, node: NodeRecord | undefined, now: number): Promise<void> {
    const body = await readBody(req, MAX_EVENT_BODY).catch((err: Error) => {
      if (err instanceof BodyTooLarge) throw new BootHttpError(413, `event body over ${MAX_EVENT_BODY} bytes`, mac, 'body-too-large');
      throw new BootHttpError(400, `event body: ${err.message}`, mac, 'body-incomplete');
    });
    let msg: { state?: unknown; reason?: unknown; detail?: unknown; sha256?: unknown };
    try {
      msg = JSON.parse(body.toString('utf8')) as typeof msg;
    } catch {
      throw new BootHttpError(400, 'event body is not JSON', mac);
    }
    if (typeof msg !== 'object' || msg === null || typeof msg.state !== 'string' || !(REPORTABLE as readonly string[]).includes(msg.state)) {
      throw new BootHttpError(400, `event state must be one of ${REPORTABLE.join(', ')}`, mac);
    }
    const report = msg.state as Report;
    const detail = typeof msg.detail === 'string' ? msg.detail.replace(/[^\x20-\x7e]/g, '?').slice(0, 500) : undefined;
    let reason: string | undefined;
    if (report === 'failed') {
      reason = typeof msg.reason === 'string' && (FAILURE_REASONS as readonly string[]).includes(msg.reason) ? msg.reason : 'other';
    }
    const t = reportTransition(node?.state, report, scope);
    if (!t.ok) {
      this.deps.nodes.addEvent({ time: now, mac, kind: 'report-refused', detail: `${report}: ${t.reason}` });
      throw new BootHttpError(409, t.reason, mac);
    }
    this.count('events', report);
    // an install that ended, or began again, serves its rack no chunks any more
    if (t.changed && (report === 'stage1' || t.next === 'installed' || t.next === 'failed')) this.deps.share?.forget(mac);
    if (t.changed) {
      const text = reason ? `failed(${reason})${detail ? `: ${detail}` : ''}` : detail;
      const image = t.next === 'installed' ? this.installedImage(mac, msg) : undefined;
      this.deps.nodes.changeInstallState({ mac, state: t.next, time: now, reason, ...(text ? { detail: text } : {}), ...(image ? { image } : {}) });
      const fields = { mac, from: node?.state, to: t.next, reason, detail };
      if (t.next === 'failed') this.deps.log.warn(fields, 'install failed');
      else this.deps.log.info(fields, 'install state');
    } else if (scope === 'node' && report === 'heartbeat') {
      // The last beat's figures replace the one before; no event row per beat.
      this.deps.nodes.recordHeartbeat(mac, { time: now, metrics: heartbeatMetrics(msg as Record<string, unknown>) });
    } else {
      this.deps.nodes.touch(mac, now);
    }
    // Only the installed OS (a node token) says the server is alive: active, or active again after a silence.
    if (scope === 'node') {
      const change = livenessOnReport(node?.liveness, now);
      if (change) applyLiveness(this.deps.nodes, this.deps.log, mac, change, now);
    }
    const answer: Record<string, unknown> = { state: t.changed ? t.next : node?.state };
    // The installed OS needs a token of its own to report in after the reboot.
    if (t.changed && t.next === 'installed') answer.nodeToken = this.deps.tokens.issue(mac, 'node', now);
    // Decided on the state after this report's own change.
    const action = this.deps.rollouts?.onReport(mac, scope, this.deps.nodes.node(mac), now);
    if (action) answer.action = action;
    sendJson(res, 200, answer, JSON_STYLE);
  }

  /**
   * The image an `installed` report says is on the disk, by the sha256 of the
   * signed manifest stage1 verified: the pod's own name for it (the version
   * this server is assigned, else another the pod holds), else only the
   * digest (the pod names no image it does not hold).
   */
  private installedImage(mac: string, msg: { sha256?: unknown }): string | undefined {
    if (typeof msg.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(msg.sha256)) return undefined;
    // The version assigned first: two versions may hold the same bytes (a release signed again).
    const set = this.deps.stage2(mac);
    if (set?.sha256 === msg.sha256) return `${set.name}@${set.version}`;
    return this.deps.imageRef?.(msg.sha256) ?? `sha256:${msg.sha256}`;
  }

  /** A boot-tree file or generated iPXE script, by its TFTP name. */
  private async resolved(req: IncomingMessage, res: ServerResponse, name: string, type: string): Promise<void> {
    const r = await this.deps.bootFiles.resolve(name, { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 });
    if (!r.ok) throw new BootHttpError(r.reason === 'not-found' ? 404 : 403, r.reason === 'not-found' ? 'not found' : `refused: ${r.reason}`);
    const src = r.source;
    try {
      const d = src.descriptor;
      if (d.kind === 'bytes') {
        res.writeHead(200, { 'content-type': type, 'content-length': d.bytes.length, 'cache-control': 'no-store' });
        if (req.method === 'HEAD') res.end();
        else res.end(Buffer.from(d.bytes));
        this.counters.bytesSent += req.method === 'HEAD' ? 0 : d.bytes.length;
        return;
      }
      // A boot-tree file: stream from the descriptor the resolver checked (it stays inside the tree).
      await this.stream(req, res, { fd: d.fd, size: d.size, type, validators: undefined });
    } finally {
      await src.close();
    }
  }

  /** A BMC mounting a server's ISO: the generic image, its config block patched in as the bytes go by. */
  private async vmediaIso(req: IncomingMessage, res: ServerResponse, mac12: string, token: string | undefined, secure: boolean): Promise<string> {
    const a = this.deps.vmedia!.answer(mac12, token, secure, Math.floor(this.clock() / 1000));
    if (!a.ok) throw new BootHttpError(a.status, a.reason, a.mac, a.status === 503 ? 'no-iso' : undefined);
    const handle = await open(a.path, 'r');
    try {
      const validators = { etag: a.etag, lastModified: new Date(0).toUTCString() };
      await this.stream(req, res, { fd: handle.fd, size: a.layout.size, type: 'application/octet-stream', validators, patch: { offset: a.layout.contentOffset, content: a.content } });
    } finally {
      await handle.close();
    }
    return a.mac;
  }

  private async sendFile(req: IncomingMessage, res: ServerResponse, f: Stage2File, type: string): Promise<void> {
    const handle = await open(f.path, 'r');
    try {
      await this.stream(req, res, { fd: handle.fd, size: f.size, type, validators: { etag: f.etag, lastModified: f.lastModified } });
    } finally {
      await handle.close();
    }
  }

  private async stream(req: IncomingMessage, res: ServerResponse, f: { fd: number; size: number; type: string; validators?: Validators; patch?: { offset: number; content: Buffer } }): Promise<void> {
    const headers: Record<string, string | number> = { 'content-type': f.type, 'accept-ranges': 'bytes' };
    const v = f.validators;
    if (v) {
      headers.etag = v.etag;
      headers['last-modified'] = v.lastModified;
      if (ifNoneMatchHits(req.headers['if-none-match'], v.etag)) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
    }
    const ifRange = typeof req.headers['if-range'] === 'string' ? req.headers['if-range'] : undefined;
    const d = decideRange(f.size, req.headers.range, ifRange, v ?? { etag: '', lastModified: '' });
    if (d.kind === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${f.size}` });
      res.end();
      return;
    }
    const [start, end] = d.kind === 'partial' ? [d.start, d.end] : [0, f.size - 1];
    headers['content-length'] = Math.max(0, end - start + 1);
    if (d.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${f.size}`;
    res.writeHead(d.kind === 'partial' ? 206 : 200, headers);
    if (req.method === 'HEAD' || f.size === 0) {
      res.end();
      return;
    }
    await this.pump(res, f.fd, start, end, f.patch);
  }

  /**
   * Bytes [start, end] of fd into res. Two buffers per response, reused: the
   * next chunk is read while the current one is written, and a buffer is read
   * into again only once its write has been flushed to the socket. A fresh
   * buffer per chunk (createReadStream) made V8 run major GCs and the kernel
   * zero new pages: ~1.5x the CPU per GB (docs/benchmarks.md, HTTPS). The fd
   * is never closed here (destroying a ReadStream on it closed it under the
   * caller) and no read is left in flight on return: the caller closes it.
   */
  private async pump(res: ServerResponse, fd: number, start: number, end: number, patch?: { offset: number; content: Buffer }): Promise<void> {
    const chunk = Math.min(STREAM_CHUNK, end - start + 1);
    const bufs = [Buffer.allocUnsafeSlow(chunk), Buffer.allocUnsafeSlow(chunk)];
    const bufFor = (i: number) => bufs[i & 1]!;
    let closed = res.destroyed;
    const gone = new Promise<void>((r) =>
      res.once('close', () => {
        closed = true;
        r();
      }),
    );
    const readAt = (buf: Buffer, pos: number) => new Promise<number>((resolve, reject) => read(fd, buf, 0, Math.min(chunk, end + 1 - pos), pos, (err, n) => (err ? reject(err) : resolve(n))));
    let pos = start;
    let next: Promise<number> | undefined = readAt(bufFor(0), pos);
    try {
      for (let i = 0; next; i++) {
        const n = await next;
        next = undefined;
        if (closed) return;
        if (n === 0) throw new Error(`file ends at byte ${pos}, ${end + 1} expected`);
        const buf = bufFor(i);
        // Bytes of a per-server block are replaced on their way out (the file on disk is everyone's).
        if (patch) patchSlice(buf.subarray(0, n), pos, patch.offset, patch.content);
        pos += n;
        if (pos <= end) next = readAt(bufFor(i + 1), pos);
        this.counters.bytesSent += n;
        await Promise.race([new Promise<void>((r) => res.write(n === buf.length ? buf : buf.subarray(0, n), () => r())), gone]);
        if (closed) return;
      }
      res.end();
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message }, 'read failed while streaming');
      res.destroy(err as Error);
    } finally {
      // The caller closes fd once this returns: no read may still use it.
      await next?.catch(() => undefined);
    }
  }
}

/** A bad %-escape is the client's mistake (400), not a server error. */
function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new BootHttpError(400, 'malformed %-escape in the path');
  }
}
