import { describe, expect, it } from 'vitest';
import { negotiate, type TftpLimits } from '../../../src/tftp/negotiate.js';

const limits: TftpLimits = { maxBlockSize: 65464, maxWindowSize: 64, maxWindowBytes: 1024 * 1024, defaultTimeoutMs: 1000 };

describe('TFTP option negotiation', () => {
  it('without options: RFC 1350 lock-step at 512, no OACK', () => {
    expect(negotiate({}, 1000, limits)).toEqual({ blksize: 512, windowsize: 1, timeoutMs: 1000, size: 1000, oack: undefined });
  });

  it('answers tsize with the real size and acknowledges what it accepts', () => {
    const p = negotiate({ blksize: 1468, tsize: 0, timeout: 3, windowsize: 16 }, 123456, limits);
    expect(p).toEqual({ blksize: 1468, windowsize: 16, timeoutMs: 3000, size: 123456, oack: { blksize: 1468, tsize: 123456, timeout: 3, windowsize: 16 } });
  });

  it('caps blksize at the pod limit and at 65464, windowsize at the pod limit and by window bytes', () => {
    expect(negotiate({ blksize: 65464 }, 1, { ...limits, maxBlockSize: 1400 }).oack).toEqual({ blksize: 1400 });
    expect(negotiate({ blksize: 65535 }, 1, limits).blksize).toBe(65464);
    expect(negotiate({ windowsize: 1000 }, 1, limits).windowsize).toBe(64);
    // 65464-byte blocks: 16 of them fill the 1 MiB window budget.
    expect(negotiate({ blksize: 65464, windowsize: 64 }, 1, limits).oack).toEqual({ blksize: 65464, windowsize: 16 });
  });

  it('leaves out values the RFCs do not allow, so the client keeps its defaults', () => {
    expect(negotiate({ blksize: 7, timeout: 0, windowsize: 0 }, 5, limits)).toEqual({ blksize: 512, windowsize: 1, timeoutMs: 1000, size: 5, oack: undefined });
    expect(negotiate({ timeout: 256 }, 5, limits).oack).toBeUndefined();
  });
});
