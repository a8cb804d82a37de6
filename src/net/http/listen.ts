// Listening, for both HTTP servers: TLS options (1.2 and later), a TCP
// address or a unix socket, the answer to requests Node cannot parse, and a
// close that does not wait on a stalled client for ever.
import { constants } from 'node:crypto';
import { rmSync } from 'node:fs';
import { STATUS_CODES, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export type AnyHttpServer = HttpServer | HttpsServer;

/**
 * The TLS options of every HTTPS listener: this key pair, TLS 1.2 or later.
 * The server's cipher order stands (AES-GCM first), except that a client that
 * puts ChaCha20-Poly1305 first gets it: stage1 does so on a CPU without AES
 * instructions, where it streams the image about 3x faster.
 */
export function tlsServerOptions(tls: { cert: string | Buffer; key: string | Buffer }): HttpsServerOptions {
  return { key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_PRIORITIZE_CHACHA };
}

/** Where a server listens: a TCP address, or a unix socket path. */
export type ListenOn = { port: number; address: string } | { path: string };

/**
 * Resolves once `server` listens, rejects with the listen error (the address
 * in use, no permission). A socket file left by a killed process is removed
 * first: it would make listen() fail.
 */
export function listen(server: AnyHttpServer, on: ListenOn): Promise<void> {
  if ('path' in on) rmSync(on.path, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in on) server.listen(on.path, done);
    else server.listen(on.port, on.address, done);
  });
}

/**
 * Stops accepting, closes idle connections at once and the rest after
 * `graceMs` (0: at once), and resolves when the server is closed. A unix
 * socket's file goes with it.
 */
export async function closeServer(server: AnyHttpServer, graceMs: number): Promise<void> {
  const where = server.address();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  if (graceMs <= 0) server.closeAllConnections();
  // Bounded: a stalled download must not hold a shutdown for ever.
  else timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  if (timer) clearTimeout(timer);
  if (typeof where === 'string') rmSync(where, { force: true });
}

export interface ClientErrorAnswer {
  status: number;
  /** a fixed word for metrics and logs */
  reason: string;
  /** the client's address, for the log */
  remote?: string;
}

/**
 * What a server's 'clientError' handler must do (Node's default, made
 * visible): answer 400/408/431 on a request it could not parse and close.
 * Returns undefined when there is nobody left to answer (the client reset
 * the connection, or a response was already under way).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): ClientErrorAnswer | undefined {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return undefined;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const reason = status === 431 ? 'headers-too-large' : status === 408 ? 'request-timeout' : 'malformed-request';
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  return { status, reason, remote: (socket as Partial<Socket>).remoteAddress };
}
