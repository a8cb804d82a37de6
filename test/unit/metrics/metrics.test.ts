import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newHistogram, observe } from '../../../src/metrics/histogram.js';
import { describe, expect, it } from 'vitest';
import { fetchSocketMetrics, MetricsAggregator, mergeByPod, parseExposition, withLabel } from '../../../src/metrics/aggregate.js';
import { render } from '../../../src/metrics/exposition.js';
import { podFamilies, poolAddresses } from '../../../src/metrics/pod-metrics.js';
import { matchRoute } from '../../../src/api/routes.js';

const POD_TEXT = `# HELP podboot_dhcp_sent_total DHCP replies sent, by message type
# TYPE podboot_dhcp_sent_total counter
podboot_dhcp_sent_total{type="OFFER"} 3
podboot_dhcp_sent_total{type="ACK"} 2
# HELP podboot_dhcp_leases leases in the lease table
# TYPE podboot_dhcp_leases gauge
podboot_dhcp_leases 2
# HELP x_seconds a histogram
# TYPE x_seconds histogram
x_seconds_bucket{le="0.1"} 1
x_seconds_bucket{le="+Inf"} 2
x_seconds_sum 0.3
x_seconds_count 2
`;

describe('exposition', () => {
  it('renders families with escaped labels', () => {
    expect(render([{ name: 'a_total', help: 'line\nbreak', type: 'counter', samples: [{ labels: { k: 'say "hi"\\' }, value: 1 }, { value: Infinity }] }])).toBe(
      '# HELP a_total line\\nbreak\n# TYPE a_total counter\na_total{k="say \\"hi\\"\\\\"} 1\na_total +Inf\n',
    );
  });

  it('pod metrics name every counter family once', () => {
    const replies = newHistogram([0.001, 0.01]);
    for (const v of [0.0004, 0.002, 0.003, 5]) observe(replies, v);
    const text = render(
      podFamilies({
        dhcp: { received: { DISCOVER: 4 }, sent: { OFFER: 4 }, dropped: {}, commits: 1, commitFailures: 0, replySeconds: replies },
        leases: 4,
        poolAddresses: poolAddresses([{ pool: { start: 10, end: 109 } }, {}]),
        nodesByState: { installed: 2 },
        degraded: true,
        startTimeSec: 1,
        rssBytes: 2,
        heapUsedBytes: 3,
        share: { counters: { answers: { peer: 12, pod: 5, wait: 3 }, refusals: { digest: 1, download: 0 } }, board: { swarms: 1, holders: 4, fetching: 1 } },
      }),
    );
    expect(text).toMatch(/^podboot_dhcp_received_total\{type="DISCOVER"\} 4$/m);
    expect(text).toMatch(/^podboot_share_answers_total\{source="peer"\} 12$/m);
    expect(text).toMatch(/^podboot_share_refusals_total\{why="digest"\} 1$/m);
    expect(text).toMatch(/^podboot_share_holders 4$/m);
    expect(text).toMatch(/^podboot_dhcp_pool_addresses 100$/m);
    expect(text).toMatch(/^podboot_nodes\{state="installed"\} 2$/m);
    expect(text).toMatch(/^podboot_pod_degraded 1$/m);
    // Cumulative buckets, +Inf = count.
    expect(text).toContain(
      'podboot_dhcp_reply_seconds_bucket{le="0.001"} 1\npodboot_dhcp_reply_seconds_bucket{le="0.01"} 3\npodboot_dhcp_reply_seconds_bucket{le="+Inf"} 4\npodboot_dhcp_reply_seconds_sum 5.0054\npodboot_dhcp_reply_seconds_count 4\n',
    );
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('aggregation', () => {
  it('adds a label to samples with and without labels', () => {
    expect(withLabel('a{b="c"} 1', 'pod', 'p')).toBe('a{pod="p",b="c"} 1');
    expect(withLabel('a 1 1700000000', 'pod', 'p')).toBe('a{pod="p"} 1 1700000000');
    expect(withLabel('a{} 1', 'pod', 'p')).toBe('a{pod="p"} 1');
  });

  it('keeps histogram samples in their family', () => {
    const f = parseExposition(POD_TEXT);
    expect(f.map((x) => [x.name, x.type, x.samples.length])).toEqual([
      ['podboot_dhcp_sent_total', 'counter', 2],
      ['podboot_dhcp_leases', 'gauge', 1],
      ['x_seconds', 'histogram', 4],
    ]);
  });

  it('merges pods into one exposition: each family once, every sample labelled', () => {
    const out = mergeByPod([
      { pod: 'a', text: POD_TEXT },
      { pod: 'b', text: POD_TEXT },
    ]);
    expect(out.match(/# TYPE podboot_dhcp_leases gauge/g)).toHaveLength(1);
    expect(out).toContain('podboot_dhcp_leases{pod="a"} 2\npodboot_dhcp_leases{pod="b"} 2\n');
    expect(out).toContain('x_seconds_bucket{pod="b",le="+Inf"} 2');
  });

  it('serves a pod that stops answering from its last good values and says so', async () => {
    let bAnswers = true;
    const agg = new MetricsAggregator(
      () => [
        { pod: 'a', socketPath: '' },
        { pod: 'b', socketPath: '' },
      ],
      50,
      async (t) => {
        if (t.pod === 'b' && !bAnswers) throw new Error('no answer within 50 ms');
        return POD_TEXT;
      },
    );
    expect(await agg.scrape()).toMatch(/^podboot_scrape_up\{pod="b"\} 1$/m);
    bAnswers = false;
    const out = await agg.scrape();
    expect(out).toMatch(/^podboot_scrape_up\{pod="b"\} 0$/m);
    expect(out).toMatch(/^podboot_dhcp_leases\{pod="b"\} 2$/m);
    expect(out).toMatch(/^podboot_scrape_cached_age_seconds\{pod="b"\} [\d.]+$/m);
    expect(agg.last.find((o) => o.pod === 'b')?.error).toMatch(/no answer/);
  });
});

describe('scraping a pod socket', () => {
  it('answers from a real socket; refuses a symlink to one (a pod could point it at another pod) and a plain file, without connecting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pbv-scrape-'));
    const sock = join(dir, 'metrics.sock');
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end('podboot_up 1\n');
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      expect(await fetchSocketMetrics(sock, 2000)).toBe('podboot_up 1\n');
      symlinkSync(sock, join(dir, 'link.sock'));
      await expect(fetchSocketMetrics(join(dir, 'link.sock'), 2000)).rejects.toThrow(/is not a socket \(a symlink\)/);
      writeFileSync(join(dir, 'file.sock'), 'x');
      await expect(fetchSocketMetrics(join(dir, 'file.sock'), 2000)).rejects.toThrow(/is not a socket \(another kind of file\)/);
      expect(hits).toBe(1);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('API routes', () => {
  it('matches paths and methods', () => {
    expect(matchRoute('GET', '/api/v1/pods/')).toEqual({ kind: 'pods' });
    expect(matchRoute('GET', '/api/v1/instances/rack-a')).toEqual({ kind: 'instance', pod: 'rack-a' });
    expect(matchRoute('POST', '/api/v1/pods/rack-a/degrade')).toEqual({ kind: 'action', pod: 'rack-a', action: 'degrade' });
    expect(matchRoute('GET', '/api/v1/pods/rack-a/degrade')).toEqual({ kind: 'method-not-allowed', allow: 'POST' });
    expect(matchRoute('POST', '/api/v1/pods/rack-a/explode')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/api/v1/events?after=7&pod=rack-a&limit=99999')).toEqual({ kind: 'events', after: 7, pod: 'rack-a', limit: 2000 });
    expect(matchRoute('GET', '/pods/Rack_A/metrics')).toEqual({ kind: 'not-found' });
    expect(matchRoute('DELETE', '/metrics')).toEqual({ kind: 'method-not-allowed', allow: 'GET' });
  });
});
