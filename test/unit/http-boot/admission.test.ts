import { describe, expect, it } from 'vitest';
import { endsWithLastByte, ImageStreamAdmission, type Admission, type Ticket } from '../../../src/http-boot/admission.js';
import { parsePod } from '../../../src/config/pod-file.js';
import { formatProblem } from '../../../src/config/types.js';
import { podFamilies } from '../../../src/metrics/pod-metrics.js';
import { render } from '../../../src/metrics/exposition.js';
import { newHistogram } from '../../../src/metrics/histogram.js';
import { RefusalCounts } from '../../../src/metrics/refusals.js';

const A = '10.20.1.0/24';
const B = '10.20.2.0/24';

function ticket(a: Admission): Ticket {
  if (!a.ok) throw new Error(`refused: ${a.message}`);
  return a.ticket;
}

function refusal(a: Admission): Extract<Admission, { ok: false }> {
  if (a.ok) throw new Error('admitted');
  return a;
}

describe('image stream admission', () => {
  it('admits up to the rack limit, refuses the next with a Retry-After, and admits again once one is released', () => {
    const adm = new ImageStreamAdmission({ perPod: 10, perRack: 2, random: () => 0 });
    const t1 = ticket(adm.admit(A, 0, 'm1'));
    ticket(adm.admit(A, 0, 'm2'));
    const r = refusal(adm.admit(A, 0, 'm3'));
    expect(r.scope).toBe('rack');
    expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(r.message).toMatch(/^busy: 2 image streams already running for rack 10\.20\.1\.0\/24; retry in \d+ s$/);
    // Another rack has its own limit.
    ticket(adm.admit(B, 0, 'm4'));
    t1.release(5000);
    ticket(adm.admit(A, 6000, 'm3'));
    expect(adm.counts()).toEqual({
      current: 3,
      peak: 3,
      racks: { [A]: { current: 2, peak: 2 }, [B]: { current: 1, peak: 1 } },
      refused: { pod: 0, rack: 1 },
      admitted: 4,
      waiting: 0,
    });
  });

  it('holds the pod limit across racks, and servers outside every rack to the pod limit alone', () => {
    const adm = new ImageStreamAdmission({ perPod: 3, perRack: 2, random: () => 0 });
    ticket(adm.admit(A, 0));
    ticket(adm.admit(B, 0));
    ticket(adm.admit(undefined, 0));
    expect(refusal(adm.admit('10.20.3.0/24', 0)).scope).toBe('pod');
    expect(refusal(adm.admit(undefined, 0)).scope).toBe('pod');
    expect(adm.counts().refused).toEqual({ pod: 2, rack: 0 });
  });

  it('releases a ticket once, however often the response says it ended', () => {
    const adm = new ImageStreamAdmission({ perPod: 2, perRack: 2 });
    const t = ticket(adm.admit(A, 0));
    ticket(adm.admit(A, 0));
    t.release(1000);
    t.release(1000);
    t.release(2000);
    expect(adm.counts().current).toBe(1);
    expect(adm.counts().racks[A]!.current).toBe(1);
    ticket(adm.admit(A, 2000));
    expect(adm.admit(A, 2000).ok).toBe(false);
  });

  it('keeps a server its slot between the range requests of its stream, and for a while after a cut; the last byte frees it at once', () => {
    const adm = new ImageStreamAdmission({ perPod: 10, perRack: 1, holdSeconds: 30, random: () => 0 });
    // Chunk 1 of a streamed install, then a newcomer while the server writes it: the slot is still taken.
    ticket(adm.admit(A, 0, 'streaming')).release(1000, false);
    expect(refusal(adm.admit(A, 2000, 'newcomer')).scope).toBe('rack');
    // Chunk 2 comes within the hold: no limit checked, no second slot.
    const chunk2 = ticket(adm.admit(A, 5000, 'streaming'));
    expect(adm.counts().current).toBe(1);
    // A cut: the slot waits for the resume, not for ever.
    chunk2.release(6000, false);
    expect(adm.admit(A, 35_000, 'newcomer').ok).toBe(false);
    expect(adm.counts(36_000).current).toBe(0);
    const other = ticket(adm.admit(A, 36_000, 'newcomer'));
    // Now the first server waits like any other.
    expect(adm.admit(A, 37_000, 'streaming').ok).toBe(false);
    // The response that ends with the image's last byte frees the slot at once.
    other.release(40_000, true);
    expect(adm.counts().current).toBe(0);
    ticket(adm.admit(A, 40_000, 'streaming'));
    expect(adm.counts()).toMatchObject({ current: 1, peak: 1, admitted: 3 });
  });

  it('spreads the servers it refuses over the time the queue needs to drain, and asks for longer when the queue is deep', () => {
    // Streams of 20 s, 4 at a time: each server ahead adds 5 s.
    let draw = 0.5;
    const adm = new ImageStreamAdmission({ perPod: 100, perRack: 4, initialStreamSeconds: 20, random: () => draw });
    for (let i = 0; i < 4; i++) ticket(adm.admit(A, 0, `run${i}`));
    // One server waiting: a slot frees within 20/4 = 5 s; it is asked back within the first half of that.
    const first = refusal(adm.admit(A, 0, 'w0')).retryAfterSeconds;
    expect(first).toBe(2);
    const seen = new Set<number>();
    const spread = [0, 0.13, 0.37, 0.5, 0.71, 0.99];
    for (let i = 1; i < 12; i++) {
      draw = spread[i % spread.length]!;
      seen.add(refusal(adm.admit(A, 0, `w${i}`)).retryAfterSeconds);
    }
    // Not in lock-step: as many moments as draws, all within 1..30 s.
    expect(seen.size).toBeGreaterThanOrEqual(5);
    for (const s of seen) expect(s).toBeGreaterThanOrEqual(1);
    for (const s of seen) expect(s).toBeLessThanOrEqual(30);
    // The same draw with 12 waiting instead of 1: 12 × 5 s to drain, the middle of its first half.
    draw = 0.5;
    expect(refusal(adm.admit(A, 0, 'w0')).retryAfterSeconds).toBe(16);
    // 40 waiting: past the cap, which stays under stage1's curl --retry-max-time.
    for (let i = 12; i < 40; i++) refusal(adm.admit(A, 0, `w${i}`));
    expect(refusal(adm.admit(A, 0, 'w0')).retryAfterSeconds).toBe(30);
    expect(adm.counts().waiting).toBe(40);
  });

  it('learns how long streams take: short streams mean short waits', () => {
    const adm = new ImageStreamAdmission({ perPod: 100, perRack: 1, initialStreamSeconds: 100, random: () => 0.999 });
    for (let n = 0; n < 30; n++) ticket(adm.admit(A, n * 1000)).release(n * 1000 + 1000);
    ticket(adm.admit(A, 40_000, 'run'));
    for (let i = 0; i < 5; i++) refusal(adm.admit(A, 40_000, `w${i}`));
    // Five waiting, one slot, streams of about 1 s: back within a few seconds, not 100.
    expect(refusal(adm.admit(A, 40_000, 'w0')).retryAfterSeconds).toBeLessThanOrEqual(7);
  });

  it('forgets waiters that never came back, and admitted ones at once', () => {
    const adm = new ImageStreamAdmission({ perPod: 1, perRack: 1, maxRetryAfterSeconds: 10 });
    const t = ticket(adm.admit(A, 0, 'run'));
    refusal(adm.admit(A, 0, 'gone'));
    refusal(adm.admit(A, 1000, 'back'));
    expect(adm.counts().waiting).toBe(2);
    t.release(2000);
    ticket(adm.admit(A, 2000, 'back'));
    expect(adm.counts().waiting).toBe(1);
    refusal(adm.admit(A, 31_000, 'late'));
    expect(adm.counts().waiting).toBe(1);
  });

  it('frees the slot when the last byte came, even if a cut request of the same server is noticed after it', () => {
    const adm = new ImageStreamAdmission({ perPod: 10, perRack: 1 });
    const cut = ticket(adm.admit(A, 0, 's'));
    ticket(adm.admit(A, 1000, 's')).release(2000, true);
    expect(adm.counts().current).toBe(1);
    cut.release(2100, false);
    expect(adm.counts().current).toBe(0);
  });

  it('tells a response that ends the image from a range short of its end', () => {
    expect(endsWithLastByte(200, { kind: 'full' }, 50)).toBe(true);
    expect(endsWithLastByte(206, { kind: 'partial', start: 0, end: 15 }, 50)).toBe(false);
    expect(endsWithLastByte(206, { kind: 'partial', start: 16, end: 49 }, 50)).toBe(true);
    expect(endsWithLastByte(304, { kind: 'full' }, 50)).toBe(true);
  });

  it('refuses limits below 1', () => {
    expect(() => new ImageStreamAdmission({ perPod: 0, perRack: 1 })).toThrow(/at least 1/);
  });

  it('shows its counts in the pod metrics', () => {
    const adm = new ImageStreamAdmission({ perPod: 4, perRack: 1, random: () => 0 });
    ticket(adm.admit(A, 0, 'a'));
    refusal(adm.admit(A, 0, 'b'));
    const text = render(
      podFamilies({
        dhcp: { received: {}, sent: {}, dropped: {}, commits: 0, commitFailures: 0, replySeconds: newHistogram() },
        leases: 0,
        poolAddresses: 0,
        http: { requests: {}, bytesSent: 0, refused: new RefusalCounts(), events: {}, requestSeconds: newHistogram(), imageStreams: () => adm.counts() },
        nodesByState: {},
        degraded: false,
        startTimeSec: 0,
        rssBytes: 0,
        heapUsedBytes: 0,
      }),
    );
    expect(text).toContain('podboot_http_image_streams 1\n');
    expect(text).toContain('podboot_http_image_streams_peak 1\n');
    expect(text).toContain(`podboot_http_image_streams_rack{rack="${A}"} 1\n`);
    expect(text).toContain('podboot_http_image_streams_refused_total{limit="rack"} 1\n');
    expect(text).toContain('podboot_http_image_streams_refused_total{limit="pod"} 0\n');
    expect(text).toContain('podboot_http_image_streams_waiting 1\n');
  });
});

describe('spec.imageStreams in a pod file', () => {
  const pod = (streams: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-s }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.1.1]
  subnets:
    - { cidr: 10.20.1.0/24, pool: 10.20.1.100-10.20.1.199 }
${streams}`;

  it('is absent unless written (the pod then admits 64 per pod, 16 per rack), and fills in what is not written', () => {
    expect(parsePod(pod(''), 'p.yaml').pod?.imageStreams).toBeUndefined();
    expect(parsePod(pod('  imageStreams: { perPod: 32, perRack: 8 }\n'), 'p.yaml').pod?.imageStreams).toEqual({ perPod: 32, perRack: 8 });
    expect(parsePod(pod('  imageStreams: { perRack: 4 }\n'), 'p.yaml').pod?.imageStreams).toEqual({ perPod: 64, perRack: 4 });
    expect(parsePod(pod('  imageStreams: {}\n'), 'p.yaml').pod?.imageStreams).toEqual({ perPod: 64, perRack: 16 });
  });

  it('names the file, line and field of a bad value', () => {
    const problems = (text: string) => parsePod(pod(text), 'p.yaml').problems.map(formatProblem);
    expect(problems('  imageStreams:\n    perPod: 0\n    perRack: two\n')).toEqual([
      'p.yaml:10:13: spec.imageStreams.perPod: 0 is outside 1..10000',
      'p.yaml:11:14: spec.imageStreams.perRack: expected an integer, found "two"',
    ]);
    expect(problems('  imageStreams: { perPod: 8, perRack: 16 }\n')).toEqual(['p.yaml:9:39: spec.imageStreams.perRack: 16 is above perPod (8): a rack cannot have more streams than its pod']);
    expect(problems('  imageStreams: { perpod: 8 }\n')).toEqual(['p.yaml:9:19: spec.imageStreams.perpod: unknown field (did you mean perPod?)']);
  });
});
