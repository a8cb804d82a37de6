// What a read request gets: RFC 2347 option negotiation under the pod's caps.
// Pure: request options, file size and limits in; transfer parameters and the
// OACK contents out.
import type { RequestOptions } from './codec.js';

export interface TftpLimits {
  /** largest blksize negotiated (RFC 2348 allows up to 65464; some paths break large IP fragments) */
  maxBlockSize: number;
  maxWindowSize: number;
  /**
   * Largest window in payload bytes: blksize × windowsize of one transfer is
   * held in memory and may sit in socket buffers at once.
   */
  maxWindowBytes: number;
  /** retransmission timeout when the client asks for none */
  defaultTimeoutMs: number;
}

export interface TransferParams {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  size: number;
  /** options to acknowledge, in a fixed order; undefined when no OACK is sent (plain RFC 1350) */
  oack?: Record<string, number>;
}

export const RFC_MAX_BLKSIZE = 65464;
const RFC_MIN_BLKSIZE = 8;
const DEFAULT_BLKSIZE = 512;

/**
 * Out-of-range values are left out of the OACK (the client then uses the
 * RFC 1350 default) except blksize and windowsize above what we allow, which
 * RFC 2348 and RFC 7440 let the server answer with a smaller value.
 */
export function negotiate(req: RequestOptions, size: number, limits: TftpLimits): TransferParams {
  const oack: Record<string, number> = {};
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs = limits.defaultTimeoutMs;

  if (req.blksize !== undefined && req.blksize >= RFC_MIN_BLKSIZE) {
    blksize = Math.min(req.blksize, RFC_MAX_BLKSIZE, limits.maxBlockSize);
    oack.blksize = blksize;
  }
  // RFC 2349: in a read request tsize is 0 and the server answers with the size.
  if (req.tsize !== undefined) oack.tsize = size;
  if (req.timeout !== undefined && req.timeout >= 1 && req.timeout <= 255) {
    timeoutMs = req.timeout * 1000;
    oack.timeout = req.timeout;
  }
  if (req.windowsize !== undefined && req.windowsize >= 1 && req.windowsize <= 65535) {
    const byBytes = Math.max(1, Math.floor(limits.maxWindowBytes / blksize));
    windowsize = Math.min(req.windowsize, limits.maxWindowSize, byBytes);
    oack.windowsize = windowsize;
  }
  return { blksize, windowsize, timeoutMs, size, oack: Object.keys(oack).length ? oack : undefined };
}
