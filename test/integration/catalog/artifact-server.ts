// A real HTTPS artifact store for catalog tests: Debian's nginx, in the
// foreground, on 127.0.0.1, configured in a temp directory; and a TCP relay in
// front of it that can cut a connection after N bytes (nginx still serves
// every byte; the relay only stops forwarding them).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitForPort(port: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited (${proc.exitCode}):\n${log()}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}:\n${log()}`);
    await sleep(50);
  }
}

export interface Nginx {
  port: number;
  root: string;
  /** access log lines: "status method uri range if-range bytes_sent" */
  accessLog(): string[];
  stop(): Promise<void>;
}

/** nginx serving `dir/www` over TLS 1.2/1.3 with `cert` (leaf + chain) and `key`. */
export async function startNginx(dir: string, cert: string, key: string): Promise<Nginx> {
  const root = join(dir, 'www');
  const temp = join(dir, 'nginx-temp');
  mkdirSync(root, { recursive: true });
  mkdirSync(temp, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const errorLog = join(dir, 'nginx-error.log');
  const access = join(dir, 'nginx-access.log');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${errorLog} info;
events { worker_connections 64; }
http {
  default_type application/octet-stream;
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  log_format t '$status $request_method $uri "$http_range" "$http_if_range" $body_bytes_sent';
  access_log ${access} t;
  sendfile on;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    root ${root};
  }
}
`,
  );
  const proc = spawn('nginx', ['-p', dir, '-c', conf, '-e', errorLog], { stdio: 'ignore' });
  const readLog = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8').slice(-3000) : '');
  await waitForPort(port, proc, readLog);
  return {
    port,
    root,
    accessLog: () => (existsSync(access) ? readFileSync(access, 'utf8').split('\n').filter(Boolean) : []),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface CuttingRelay {
  port: number;
  /** cut the next connection that has carried more than `bytes` from the server */
  cutOnceAfter(bytes: number): void;
  /** connections cut so far */
  cuts: number;
  close(): Promise<void>;
}

export async function startCuttingRelay(targetPort: number): Promise<CuttingRelay> {
  let budget: number | undefined;
  const sockets = new Set<Socket>();
  const relay: CuttingRelay = {
    port: 0,
    cuts: 0,
    cutOnceAfter: (n) => (budget = n),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(client).add(upstream);
    let fromServer = 0;
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      fromServer += d.length;
      if (budget !== undefined && fromServer > budget) {
        budget = undefined;
        relay.cuts++;
        close();
        return;
      }
      client.write(d);
    });
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  relay.port = (server.address() as { port: number }).port;
  return relay;
}
