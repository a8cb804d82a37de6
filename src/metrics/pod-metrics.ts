// The metrics one pod instance exposes, as a pure function of its counters.
// No `pod` label here: the central node adds it when it aggregates, and the
// service-discovery targets carry it when Prometheus scrapes a pod directly.
import type { DhcpCounters } from '../dhcp/service.js';
import type { TftpCounters } from '../tftp/server.js';
import type { HttpBootCounters } from '../http-boot/server.js';
import type { AdmissionCounts } from '../http-boot/admission.js';
import { fromRecord, type Family } from './exposition.js';
import { histogramSamples } from './histogram.js';
import { fleetFamilies, type FleetSource } from './fleet-metrics.js';
import type { ShareCounters } from '../share/service.js';
import type { BoardStats } from '../share/chunk-board.js';

export interface PodMetricsSource {
  dhcp: DhcpCounters;
  /** leases held in the lease table (offered and bound) */
  leases: number;
  /** addresses in the pod's pools */
  poolAddresses: number;
  tftp?: TftpCounters;
  /** the HTTP(S) boot server: stage1, stage2, kickstarts, callbacks */
  http?: HttpBootCounters;
  /** servers known to the pod by install state */
  nodesByState: Record<string, number>;
  /** booted-from-disk servers by liveness (src/install/liveness.ts); absent: none */
  nodesByLiveness?: { active: number; silent: number };
  degraded: boolean;
  /** process start, seconds since the epoch */
  startTimeSec: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** the alert rules' inputs and the heartbeat summary (fleet-metrics.ts); absent: not exposed */
  fleet?: FleetSource;
  /** rack sharing of image chunks (src/share/); absent: not exposed */
  share?: { counters: ShareCounters; board: BoardStats };
}

export function podFamilies(s: PodMetricsSource): Family[] {
  const f: Family[] = [
    fromRecord('podboot_dhcp_received_total', 'DHCP requests received, by message type', 'counter', 'type', s.dhcp.received),
    fromRecord('podboot_dhcp_sent_total', 'DHCP replies sent, by message type', 'counter', 'type', s.dhcp.sent),
    fromRecord('podboot_dhcp_dropped_total', 'DHCP datagrams dropped, by reason', 'counter', 'reason', s.dhcp.dropped),
    { name: 'podboot_dhcp_commits_total', help: 'lease group commits to the pod database', type: 'counter', samples: [{ value: s.dhcp.commits }] },
    { name: 'podboot_dhcp_commit_failures_total', help: 'lease group commits that failed (their ACKs withheld)', type: 'counter', samples: [{ value: s.dhcp.commitFailures }] },
    { name: 'podboot_dhcp_reply_seconds', help: 'DHCP datagram received to reply sent (lease commit included)', type: 'histogram', samples: histogramSamples(s.dhcp.replySeconds) },
    { name: 'podboot_dhcp_leases', help: 'leases in the lease table', type: 'gauge', samples: [{ value: s.leases }] },
    { name: 'podboot_dhcp_pool_addresses', help: 'addresses in the pod pools', type: 'gauge', samples: [{ value: s.poolAddresses }] },
  ];
  if (s.tftp) {
    const t = s.tftp;
    f.push(
      { name: 'podboot_tftp_requests_total', help: 'TFTP read requests', type: 'counter', samples: [{ value: t.rrq }] },
      { name: 'podboot_tftp_write_requests_total', help: 'TFTP write requests (always refused)', type: 'counter', samples: [{ value: t.wrq }] },
      { name: 'podboot_tftp_completed_total', help: 'TFTP transfers completed', type: 'counter', samples: [{ value: t.completed }] },
      {
        name: 'podboot_tftp_size_probes_total',
        help: 'TFTP transfers a client ended after reading tsize from the OACK (UEFI firmware does this before each download)',
        type: 'counter',
        samples: [{ value: t.sizeProbes }],
      },
      { name: 'podboot_tftp_active_transfers', help: 'TFTP transfers running', type: 'gauge', samples: [{ value: t.active }] },
      { name: 'podboot_tftp_sent_bytes_total', help: 'TFTP payload bytes sent', type: 'counter', samples: [{ value: t.bytesSent }] },
      { name: 'podboot_tftp_retransmitted_blocks_total', help: 'TFTP blocks sent again', type: 'counter', samples: [{ value: t.retransmittedBlocks }] },
      { name: 'podboot_tftp_duplicate_acks_total', help: 'TFTP duplicate ACKs received', type: 'counter', samples: [{ value: t.duplicateAcks }] },
      fromRecord('podboot_tftp_errors_total', 'TFTP requests and transfers that failed, by kind', 'counter', 'kind', t.errors),
    );
  }
  if (s.http) {
    const h = s.http;
    f.push(
      fromRecord('podboot_http_requests_total', 'HTTP(S) boot requests answered, by status code', 'counter', 'code', h.requests),
      { name: 'podboot_http_sent_bytes_total', help: 'HTTP(S) body bytes sent (images, kickstarts, scripts)', type: 'counter', samples: [{ value: h.bytesSent }] },
      h.refused.family('podboot_http_refused_total', 'HTTP(S) boot requests refused (status >= 400, TLS handshakes, unparseable requests), by code and reason'),
      { name: 'podboot_http_request_seconds', help: 'HTTP(S) boot request received to response finished', type: 'histogram', samples: histogramSamples(h.requestSeconds) },
      fromRecord('podboot_http_callbacks_total', 'install callbacks received from servers, by kind', 'counter', 'kind', h.events),
    );
    if (h.imageStreams) f.push(...imageStreamFamilies(h.imageStreams()));
  }
  f.push(
    fromRecord('podboot_nodes', 'servers known to the pod, by install state', 'gauge', 'state', s.nodesByState),
    // Both states always, so an alert on silent > 0 sees a 0 rather than no series.
    fromRecord('podboot_nodes_liveness', 'booted-from-disk servers whose node agent reports in (active) or has been quiet for 3 heartbeat intervals (silent)', 'gauge', 'state', {
      active: s.nodesByLiveness?.active ?? 0,
      silent: s.nodesByLiveness?.silent ?? 0,
    }),
    { name: 'podboot_pod_degraded', help: '1 while the pod offers no new installs', type: 'gauge', samples: [{ value: s.degraded ? 1 : 0 }] },
    { name: 'podboot_process_start_time_seconds', help: 'start of the instance process', type: 'gauge', samples: [{ value: s.startTimeSec }] },
    { name: 'podboot_process_resident_memory_bytes', help: 'resident memory of the instance process', type: 'gauge', samples: [{ value: s.rssBytes }] },
    { name: 'podboot_process_heap_used_bytes', help: 'V8 heap in use', type: 'gauge', samples: [{ value: s.heapUsedBytes }] },
  );
  if (s.fleet) f.push(...fleetFamilies(s.fleet));
  if (s.share) {
    const { counters: c, board: b } = s.share;
    f.push(
      fromRecord('podboot_share_answers_total', 'answers to "where do I get this chunk": a rack peer, the pod, or wait for the peer fetching it', 'counter', 'source', c.answers),
      fromRecord('podboot_share_refusals_total', 'chunks a server refused from a rack peer, by why (digest: the peer is struck)', 'counter', 'why', c.refusals),
      { name: 'podboot_share_swarms', help: 'racks × images with servers sharing chunks now', type: 'gauge', samples: [{ value: b.swarms }] },
      { name: 'podboot_share_holders', help: 'servers serving chunks to their rack now', type: 'gauge', samples: [{ value: b.holders }] },
      { name: 'podboot_share_fetching', help: 'chunks a rack peer is fetching from the pod now', type: 'gauge', samples: [{ value: b.fetching }] },
    );
  }
  return f;
}

/** Boot-storm admission (src/http-boot/admission.ts): image streams now and at peak, pod-wide and per rack, and the servers sent away. */
function imageStreamFamilies(c: AdmissionCounts): Family[] {
  const racks = Object.entries(c.racks);
  return [
    { name: 'podboot_http_image_streams', help: 'stage2 image downloads running', type: 'gauge', samples: [{ value: c.current }] },
    { name: 'podboot_http_image_streams_peak', help: 'most stage2 image downloads running at once since the pod started', type: 'gauge', samples: [{ value: c.peak }] },
    {
      name: 'podboot_http_image_streams_rack',
      help: 'stage2 image downloads running, by rack (pod subnet)',
      type: 'gauge',
      samples: racks.map(([rack, r]) => ({ labels: { rack }, value: r.current })),
    },
    {
      name: 'podboot_http_image_streams_rack_peak',
      help: 'most stage2 image downloads running at once, by rack (pod subnet)',
      type: 'gauge',
      samples: racks.map(([rack, r]) => ({ labels: { rack }, value: r.peak })),
    },
    { name: 'podboot_http_image_streams_admitted_total', help: 'stage2 image downloads admitted', type: 'counter', samples: [{ value: c.admitted }] },
    fromRecord('podboot_http_image_streams_refused_total', 'stage2 image downloads sent away with 503 and Retry-After, by the limit reached (pod or rack)', 'counter', 'limit', c.refused),
    { name: 'podboot_http_image_streams_waiting', help: 'servers sent away lately that have not been admitted yet', type: 'gauge', samples: [{ value: c.waiting }] },
  ];
}

/** Servers by liveness (only booted-from-disk servers have one). */
export function livenessCounts(nodes: Iterable<{ liveness?: 'active' | 'silent' }>): { active: number; silent: number } {
  const counts = { active: 0, silent: 0 };
  for (const n of nodes) if (n.liveness) counts[n.liveness]++;
  return counts;
}

/** Addresses in every pool of a pod (pure, from its config). */
export function poolAddresses(subnets: readonly { pool?: { start: number; end: number } }[]): number {
  let n = 0;
  for (const s of subnets) if (s.pool) n += (s.pool.end >>> 0) - (s.pool.start >>> 0) + 1;
  return n;
}
