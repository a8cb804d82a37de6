// The stage1 agent (images/stage1/podboot-agent.sh) on the host, for the
// agent and streamed-install tests: a CA made by `podboot ca`, a small HTTPS
// server on 127.0.0.1 that speaks the pod's API (install token → session
// exchange, events, session refresh, the stage2 files and the kickstart, with
// byte ranges), and the shells to run the agent under (the host's sh, and
// Debian's busybox-static with only its applets and the tools stage1 copies
// in on PATH).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tlsServerOptions } from '../../src/net/http/listen.js';
import { PODBOOT, requireBuild } from './netns.js';

export const REPO = new URL('../../', import.meta.url).pathname;
export const TOKEN = 'tok.initial-AbC_123';
export const REFRESHED = 'tok.refreshed-XyZ_456';
/** what POST /v1/session answers for TOKEN (once, as the pod does) */
export const SESSION = 'tok.session-Ses_789';
/** the pod the agent says it boots from */
export const POD = 'rack-t';

export interface Stage2 {
  image: Buffer;
  imageP7s: Buffer;
  manifest: Buffer;
  manifestP7s: Buffer;
}

export interface Shell {
  name: string;
  /** the sh to run the agent with */
  sh: string;
  /** PATH for the agent: for busybox, only its applets plus the host tools named, as in stage1 */
  path: string;
}

export interface AgentRequest {
  method: string;
  path: string;
  auth: string | undefined;
  range: string | undefined;
  /** the TLS cipher the connection agreed on */
  cipher: string;
}

/** `bytes=A-` or `bytes=A-B` → [A, B] within a file of `size` bytes; undefined when absent or unsatisfiable. */
export function byteRange(header: string | undefined, size: number): [number, number] | undefined {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
  if (!m || Number(m[1]) >= size) return undefined;
  return [Number(m[1]), m[2] ? Math.min(Number(m[2]), size - 1) : size - 1];
}

export class AgentRig {
  readonly tmp: string;
  readonly ca: string;
  /** lib.sh, verify.sh and stream.sh in one directory, as in the initramfs */
  readonly lib: string;
  port = 0;
  stage2!: Stage2;
  kickstart = '';
  /** more files GET serves, by path */
  files: Record<string, Buffer> = {};
  missing = new Set<string>();
  /**
   * The exchange, as the pod does it: TOKEN buys SESSION once; the same TOKEN
   * again is a replay (401) unless it is the retry of an exchange whose answer
   * was lost (`cut`: the first answer is never delivered, the retry gets the
   * same session). Any other call with TOKEN is refused (401).
   */
  sessionMode: 'ok' | 'cut' | 'refuse' = 'ok';
  /** the JSON a heartbeat is answered with (a failed agent's wait for the pod's word); none: 204 */
  retryAnswer?: string;
  exchanges = 0;
  events: { body: unknown; auth: string | undefined }[] = [];
  requests: AgentRequest[] = [];
  /** sees each GET past the session checks before it is served; true when it answered (or cut) it itself */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** sees every request past the exchange and the install-token check, before the rig answers it (routes of the pod the rig lacks); true when it answered it */
  route?: (req: IncomingMessage, res: ServerResponse) => boolean;
  private server?: Server;

  constructor(prefix: string) {
    this.tmp = mkdtempSync(join(tmpdir(), prefix));
    this.ca = join(this.tmp, 'ca');
    this.lib = join(this.tmp, 'lib');
  }

  podboot(...args: string[]): string {
    return execFileSync(process.execPath, [PODBOOT, ...args], { encoding: 'utf8', cwd: this.tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** the CA (with the signer ci and the server certificate of POD for 127.0.0.1), the server, the lib directory */
  async start(org: string): Promise<void> {
    requireBuild();
    this.podboot('ca', 'init', '--out', this.ca, '--org', org);
    this.podboot('ca', 'issue-signer', 'ci', '--ca', this.ca);
    this.podboot('ca', 'issue-server', POD, '--ca', this.ca, '--ip', '127.0.0.1');
    const tls = tlsServerOptions({ key: readFileSync(`${this.ca}/servers/${POD}.key`), cert: readFileSync(`${this.ca}/servers/${POD}.chain.pem`) });
    const server = createServer(tls, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.serve(req, res, Buffer.concat(chunks)));
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    mkdirSync(this.lib);
    symlinkSync(join(REPO, 'images/common/lib.sh'), join(this.lib, 'lib.sh'));
    symlinkSync(join(REPO, 'images/stage1/verify.sh'), join(this.lib, 'verify.sh'));
    symlinkSync(join(REPO, 'images/stage1/stream.sh'), join(this.lib, 'stream.sh'));
  }

  async stop(): Promise<void> {
    await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
    rmSync(this.tmp, { recursive: true, force: true });
  }

  private serve(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const path = req.url ?? '';
    this.requests.push({ method: req.method ?? '', path, auth: req.headers.authorization, range: req.headers.range, cipher: (req.socket as TLSSocket).getCipher().name });
    if (this.missing.has(path)) return void res.writeHead(404).end();
    if (req.method === 'POST' && path === '/v1/session') {
      this.exchanges++;
      if (req.headers.authorization !== `Bearer ${TOKEN}` || this.sessionMode === 'refuse') return void res.writeHead(401).end('{"error":"install token already used"}');
      // The session is decided, but the connection dies before it gets there.
      if (this.sessionMode === 'cut' && this.exchanges === 1) return void req.socket.destroy();
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end(`${SESSION}\n`);
    }
    // Past the exchange the install token is worth nothing.
    if (req.headers.authorization === `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    if (this.route?.(req, res)) return;
    if (req.method === 'POST' && path === '/v1/events') {
      const event = JSON.parse(body.toString()) as { state?: string };
      this.events.push({ body: event, auth: req.headers.authorization });
      // As the pod answers a failed server's heartbeat when a rollout wants it back.
      if (event.state === 'heartbeat' && this.retryAnswer) return void res.writeHead(200, { 'content-type': 'application/json' }).end(this.retryAnswer);
      return void res.writeHead(204).end();
    }
    if (req.method === 'POST' && path === '/v1/token/refresh') return void res.writeHead(200, { 'content-type': 'text/plain' }).end(REFRESHED);
    const files: Record<string, Buffer> = {
      '/v1/stage2/image': this.stage2.image,
      '/v1/stage2/image.p7s': this.stage2.imageP7s,
      '/v1/stage2/manifest.json': this.stage2.manifest,
      '/v1/stage2/manifest.json.p7s': this.stage2.manifestP7s,
      '/v1/kickstart': Buffer.from(this.kickstart),
      ...this.files,
    };
    const data = files[path];
    if (req.method !== 'GET' || !data) return void res.writeHead(404).end();
    if (this.intercept?.(req, res)) return;
    const range = byteRange(req.headers.range, data.length);
    if (range) {
      const [from, to] = range;
      res.writeHead(206, { 'content-range': `bytes ${from}-${to}/${data.length}`, 'content-length': to - from + 1 });
      return void res.end(data.subarray(from, to + 1));
    }
    res.writeHead(200, { 'content-length': data.length });
    res.end(data);
  }

  /** podboot sign → the four files the pod serves */
  sign(name: string, content: Buffer, extra: string[] = []): Stage2 {
    const dir = join(this.tmp, `img-${name}`);
    mkdirSync(dir, { recursive: true });
    const img = join(dir, 'stage2.img');
    writeFileSync(img, content);
    this.podboot('sign', img, '--cert', `${this.ca}/signers/ci.chain.pem`, '--key', `${this.ca}/signers/ci.key`, '--name', 'lab', '--version', '2.1', ...extra);
    return {
      image: readFileSync(img),
      imageP7s: readFileSync(`${img}.p7s`),
      manifest: readFileSync(`${img}.manifest.json`),
      manifestP7s: readFileSync(`${img}.manifest.json.p7s`),
    };
  }

  /**
   * A detached CMS signature of FILE made by openssl, by the CI signer unless
   * another certificate (relative to the CA directory, without .pem/.key) and
   * its issuing CA are named: for manifests `podboot sign` would not write,
   * and for signers it would not use.
   */
  signCms(file: string, signer = 'signers/ci', issuer = 'codesign-ca.pem'): Buffer {
    const at = (f: string) => `${this.ca}/${f}`;
    return execFileSync('openssl', ['cms', '-sign', '-binary', '-outform', 'DER', '-in', file, '-signer', at(`${signer}.pem`), '-inkey', at(`${signer}.key`), '-certfile', at(issuer)]);
  }

  /** The host's sh, and (when the stage1 build cached it) Debian's busybox-static with only `tools` from the host beside its applets. */
  shells(tools: string[]): Shell[] {
    const list: Shell[] = [{ name: 'host sh', sh: 'sh', path: process.env.PATH ?? '/usr/bin:/bin' }];
    const x = join(REPO, '.cache', 'debs', 'x');
    const pkg = existsSync(x) ? readdirSync(x).find((d) => d.startsWith('busybox-static_')) : undefined;
    if (pkg) {
      const busybox = join(x, pkg, 'bin', 'busybox');
      const bin = join(this.tmp, 'bb-bin');
      mkdirSync(bin, { recursive: true });
      for (const applet of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) symlinkSync(busybox, join(bin, applet));
      for (const tool of tools) {
        rmSync(join(bin, tool), { force: true });
        symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
      }
      list.push({ name: 'busybox', sh: join(bin, 'sh'), path: bin });
    }
    return list;
  }

  runAgent(shell: Shell, work: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      const p = spawn(shell.sh, [join(REPO, 'images/stage1/podboot-agent.sh')], {
        env: {
          PATH: shell.path,
          PODBOOT_SERVER: '127.0.0.1',
          PODBOOT_HTTPS: String(this.port),
          PODBOOT_POD: POD,
          PODBOOT_MAC: '52-54-00-aa-bb-cc',
          PODBOOT_TOKEN: TOKEN,
          PODBOOT_ROOT_CA: `${this.ca}/root.pem`,
          PODBOOT_WORK: work,
          PODBOOT_LIB: this.lib,
          PODBOOT_RETRIES: '1',
          PODBOOT_FETCH_ROUNDS: '1',
          // A failed agent waits for the pod's word; these tests want its exit at once.
          PODBOOT_RETRY_WAIT: '0',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const kill = setTimeout(() => p.kill('SIGKILL'), 60_000);
      p.on('exit', (code) => {
        clearTimeout(kill);
        resolve({ code: code ?? -1, out });
      });
    });
  }

  /** what the server serves next, and nothing recorded yet */
  reset(s: Stage2, ks: string): void {
    this.stage2 = s;
    this.kickstart = ks;
    this.files = {};
    this.missing = new Set();
    this.intercept = undefined;
    this.route = undefined;
    this.sessionMode = 'ok';
    this.retryAnswer = undefined;
    this.exchanges = 0;
    this.events.length = 0;
    this.requests.length = 0;
  }

  /** the states reported, in order */
  states(): string[] {
    return this.events.map((e) => (e.body as { state: string }).state);
  }
}
