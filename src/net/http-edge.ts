// The edges both HTTP servers share (the pod's boot server and the central
// API): reading the bearer credential, reading a request body under a limit,
// and answering a request Node could not parse. Small on purpose; the first
// pieces of one HTTP toolkit.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * The credential of `Authorization: Bearer <token>`, or undefined when the
 * header is absent, names another scheme or carries nothing. The scheme is
 * matched case-insensitively (RFC 7235 §2.1: `bearer`, `BEARER` are the same
 * scheme); the token itself is returned as sent.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const m = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return m?.[1];
}

/** A request body past its limit: the handler answers 413. */
export class BodyTooLarge extends Error {
  readonly status = 413;
  constructor(
    readonly limit: number,
    /** true when the rest of the body was read and thrown away, so the connection is clean */
    readonly drained: boolean,
  ) {
    super(`request body over ${limit} bytes`);
  }
}

/** The client stopped sending (reset, closed) before its body ended: 400, if anyone is still listening. */
export class BodyIncomplete extends Error {
  readonly status = 400;
  constructor(cause: string) {
    super(`request body incomplete: ${cause}`);
  }
}

export interface ReadBodyOptions {
  /**
   * How much more than `limit` is read and thrown away before giving up, so
   * that a client still sending its body reads our 413 instead of a reset
   * (closing a socket with unread data makes the kernel send RST). Past it,
   * the caller answers anyway and closes.
   */
  drainBytes?: number;
}

/**
 * The whole body of `req`, at most `limit` bytes. Rejects with BodyTooLarge
 * past it (at once when Content-Length already says so), and with
 * BodyIncomplete when the client goes away first. Never destroys the
 * request: the caller still answers on it.
 */
export function readBody(req: IncomingMessage, limit: number, opts: ReadBodyOptions = {}): Promise<Buffer> {
  const drainBytes = opts.drainBytes ?? 1024 * 1024;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit + drainBytes) {
    // Not worth reading: the answer goes out now and the connection closes.
    return Promise.reject(new BodyTooLarge(limit, false));
  }
  // Read once already: 'end' will not come again.
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) {
        chunks.push(c);
        return;
      }
      if (!over) {
        over = true;
        chunks.length = 0;
      }
      if (size > limit + drainBytes) {
        done();
        // Stop reading; the response closes the connection.
        req.pause();
        reject(new BodyTooLarge(limit, false));
      }
    };
    const onEnd = () => {
      done();
      if (over) reject(new BodyTooLarge(limit, true));
      else resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      done();
      reject(new BodyIncomplete(err.message));
    };
    const onClose = () => {
      done();
      reject(new BodyIncomplete('the client closed the connection'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
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
