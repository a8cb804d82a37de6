// Typed HTTP errors: what a handler throws to refuse a request. The status it
// means is the status sent (a thrown HttpError(413) is a 413); anything else
// thrown is unexpected, answered 500 (src/net/http/refusals.ts logs it).

/** A refusal a handler means: its status, the message the client reads, and a fixed word for metrics and logs. */
export class HttpError extends Error {
  /** a short fixed word (never text from a client) for the refusal counter's label and the log's kind */
  readonly reason: string;

  constructor(
    readonly status: number,
    message: string,
    /** the status's own word (defaultReason) when absent */
    reason?: string,
  ) {
    super(message);
    this.reason = reason ?? defaultReason(status);
  }
}

/** What the client is told when nobody meant the error. */
export const INTERNAL_ERROR = 'internal error';

/**
 * The HttpError to answer for anything a handler threw, and whether it was
 * unexpected (not an HttpError: a 500 whose cause must be logged).
 */
export function asHttpError(err: unknown): { error: HttpError; unexpected: boolean } {
  if (err instanceof HttpError) return { error: err, unexpected: false };
  return { error: new HttpError(500, INTERNAL_ERROR), unexpected: true };
}

/** The reason word for a status when the refusing code named none. */
export function defaultReason(status: number): string {
  return DEFAULT_REASONS[status] ?? (status >= 500 ? 'server-error' : 'client-error');
}

const DEFAULT_REASONS: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  408: 'request-timeout',
  409: 'conflict',
  413: 'body-too-large',
  416: 'range-not-satisfiable',
  429: 'too-many-requests',
  431: 'headers-too-large',
  500: 'internal-error',
  503: 'unavailable',
};
