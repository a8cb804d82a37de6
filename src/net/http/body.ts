// Reading a request body under a limit, for both HTTP servers. Past the limit
// the answer is 413 (BodyTooLarge is an HttpError), read cleanly so the client
// sees it; a client gone before its body ended is a 400.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/** A request body past its limit: the handler answers 413. */
export class BodyTooLarge extends HttpError {
  constructor(
    readonly limit: number,
    /** true when the rest of the body was read and thrown away, so the connection is clean */
    readonly drained: boolean,
  ) {
    super(413, `request body over ${limit} bytes`, 'body-too-large');
  }
}

/** The client stopped sending (reset, closed) before its body ended: 400, if anyone is still listening. */
export class BodyIncomplete extends HttpError {
  constructor(cause: string) {
    super(400, `request body incomplete: ${cause}`);
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
