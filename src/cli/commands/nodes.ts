import { STATE_DEFAULT_HELP, defaultStateRoot } from '../../config/state-root.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { normalizeMac } from '../../net/mac.js';
import type { NodeEvent, PodStateAdmin } from '../../store/types.js';
import type { ListedNode } from '../../api/nodes.js';
import { CentralUnavailable, callApi, resolveTarget, type ApiTarget } from '../../api/client.js';
import { formatTable } from '../table.js';

// `nodes list` and `nodes show` ask the running central node (its API, the
// way `podboot pods` does), which reads every pod's state for them; with
// --state DIR they read the pods' state under DIR themselves, read-only, for
// scripts and for a node that is not running. Both ways give the same rows
// (src/api/nodes.ts). A reinstall opens the pod's state next to the running
// instance (src/store/pod-state.ts) and takes effect at the server's next
// DHCP exchange without a restart.

const CONNECT_OPTIONS = { url: { type: 'string' }, ca: { type: 'string' }, 'token-file': { type: 'string' } } as const;
const OPTIONS = { state: { type: 'string' }, pod: { type: 'string' }, json: { type: 'boolean' }, ...CONNECT_OPTIONS } as const;

const CONNECT_HELP = `  --url URL --ca FILE --token-file FILE
                the central node to ask; by default the one that
                STATE/central/api.json names, STATE being the state root
                (${STATE_DEFAULT_HELP})
  --state DIR   no central node: read the pods' state under DIR directly
                (read-only; the node need not run)
  --json        one JSON document instead of text

Exits 1, naming the URL (and the api.json it came from), when no central node
answers there.`;

/** Where the servers are read from: the central node's API, or a state directory. */
interface NodeSource {
  /** every pod, by name */
  pods(): Promise<string[]>;
  /** a pod's servers; undefined when there is no such pod (its reason on `missing`) */
  nodes(pod: string): Promise<ListedNode[] | undefined>;
  /** one server and its latest events (newest first); undefined when the pod has not seen it */
  node(pod: string, mac: string): Promise<{ node?: ListedNode; events: NodeEvent[] } | undefined>;
  /** why `pod` gave nothing, for the message */
  missing(pod: string, mac?: string): Promise<string>;
}

function sourceOf(values: { state?: string; url?: string; ca?: string; 'token-file'?: string }): NodeSource {
  if (values.state !== undefined) {
    if (values.url || values.ca || values['token-file'])
      throw new UsageError('--state reads a state directory without a central node; --url, --ca and --token-file name a central node: give one or the other');
    return stateSource(values.state);
  }
  return apiSource(resolveTarget({ url: values.url, ca: values.ca, tokenFile: values['token-file'] }));
}

function apiSource(t: ApiTarget): NodeSource {
  const where = `the central node at ${t.url}`;
  let lastError = '';
  const get = async (path: string): Promise<unknown> => {
    const r = await callApi(t, 'GET', path);
    if (r.status === 200) return r.body;
    lastError = typeof r.body === 'object' && r.body && 'error' in r.body ? String((r.body as { error: unknown }).error) : JSON.stringify(r.body);
    if (r.status === 404) return undefined;
    throw new Error(`${where}: HTTP ${r.status}: ${lastError}`);
  };
  const pod = (p: string) => `/api/v1/pods/${encodeURIComponent(p)}`;
  return {
    async pods() {
      const body = (await get('/api/v1/pods')) as { pods: { name: string }[] } | undefined;
      return (body?.pods ?? []).map((p) => p.name).sort();
    },
    async nodes(p) {
      const body = (await get(`${pod(p)}/nodes`)) as { nodes: ListedNode[] } | undefined;
      // Each row names its pod (an older node's rows do not).
      return body?.nodes.map((n) => ({ ...n, pod: p }));
    },
    async node(p, mac) {
      const body = (await get(`${pod(p)}/nodes/${mac}`)) as { node: ListedNode; events: NodeEvent[] } | undefined;
      return body && { ...body, node: { ...body.node, pod: p } };
    },
    missing: async (p) => `${where}: ${lastError || `no pod ${p}`}`,
  };
}

function stateSource(root: string): NodeSource {
  // Loaded only here: the way through the API needs no SQLite.
  const api = import('../../api/nodes.js');
  const database = import('../../store/database.js');
  const file = async (pod: string) => (await database).podDatabaseFile(join(root, pod));
  return {
    pods: async () => (await api).statePods(root),
    nodes: async (pod) => (existsSync(await file(pod)) ? (await api).podNodes(root, pod) : undefined),
    async node(pod, mac) {
      if (!existsSync(await file(pod))) return undefined;
      const shown = (await api).podNode(root, pod, mac);
      return shown.node || shown.events.length ? shown : undefined;
    },
    async missing(pod, mac) {
      const db = await file(pod);
      return existsSync(db) && mac !== undefined ? `pod ${pod} has never seen ${mac} (${db})` : `no pod ${pod} under ${root} (no ${db})`;
    },
  };
}

/** Runs a listing; no central node answering is exit 1 with where the CLI looked. */
async function reading(command: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof CentralUnavailable)) throw err;
    process.stderr.write(`podboot ${command}: ${err.message}\n(--state DIR reads a state directory without a central node)\n`);
    return EXIT_FAILURE;
  }
}

function macArg(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('expected exactly one MAC address');
  const mac = normalizeMac(positionals[0]!);
  if (!mac) throw new UsageError(`${positionals[0]}: not a MAC address`);
  return mac;
}

/** Unix seconds as ISO 8601 to the second (the pod records no finer). */
function iso(sec: number | undefined): string {
  return sec === undefined ? '-' : new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function stateText(n: ListedNode): string {
  return n.state === 'failed' && n.reason ? `failed(${n.reason})` : n.state;
}

/** 3d04h, 5h07m, 12m, 40s: an uptime at a glance. */
function uptimeText(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  if (d) return `${d}d${String(h).padStart(2, '0')}h`;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  return m ? `${m}m` : `${Math.floor(sec)}s`;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function percent(part: number | undefined, whole: number | undefined): string {
  return part !== undefined && whole ? `${Math.round((100 * part) / whole)}%` : '-';
}

const COLUMNS = ['MAC', 'STATE', 'ATTEMPT', 'HOSTNAME', 'IP', 'IMAGE', 'LAST SEEN', 'LIVENESS', 'POD'];
const WIDE_COLUMNS = ['CHANGED', 'UPTIME', 'LOAD', 'MEM', 'DISK'];

function row(n: ListedNode, wide: boolean): string[] {
  const cells = [n.mac, stateText(n), String(n.attempt), n.hostname ?? '-', n.ip ?? '-', n.image ?? '-', iso(n.lastSeen), n.liveness ?? '-', n.pod];
  return wide ? [...cells, iso(n.updatedAt), ...heartbeatCells(n)] : cells;
}

/** The wide list's columns of the last heartbeat: UPTIME, LOAD (1/5/15 min), MEM and DISK in use. */
function heartbeatCells(n: ListedNode): string[] {
  const m = n.heartbeat?.metrics;
  if (!m) return ['-', '-', '-', '-'];
  const load = [m.load1, m.load5, m.load15].map((l) => (l === undefined ? '-' : l.toFixed(2))).join('/');
  const memUsed = m.memTotal !== undefined && m.memAvailable !== undefined ? m.memTotal - m.memAvailable : undefined;
  return [m.uptime === undefined ? '-' : uptimeText(m.uptime), load, percent(memUsed, m.memTotal), percent(m.diskUsed, m.diskSize)];
}

/** `nodes show` as text: the server's fields one a line, then its latest events, oldest first. */
function showText(n: ListedNode | undefined, mac: string, pod: string, events: NodeEvent[]): string {
  const lines: [string, string][] = [['pod', pod]];
  if (!n) lines.push(['state', '(no install state)']);
  else {
    if (n.hostname) lines.push(['hostname', n.hostname]);
    lines.push(['ip', n.ip ?? '- (no live lease)']);
    if (n.management) lines.push(['management', n.management]);
    lines.push(['state', `${stateText(n)}  attempt ${n.attempt}  since ${iso(n.updatedAt)}${n.failedAfter ? `  after ${n.failedAfter}` : ''}`]);
    lines.push(['image', n.image ?? '- (none installed by this pod)']);
    lines.push(['assigned', n.assigned ?? '- (the pod assigns none)']);
    lines.push(['last seen', `${iso(n.lastSeen)}${n.liveness ? `  ${n.liveness}` : ''}`]);
    const beat = heartbeatText(n);
    if (beat) lines.push(['heartbeat', beat]);
  }
  const width = Math.max(...lines.map(([k]) => k.length));
  const shown = events.slice(-50);
  return [
    mac,
    ...lines.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    `events${events.length > shown.length ? ` (latest ${shown.length})` : ''}:`,
    ...shown.map((e) => `  ${iso(e.time)}  ${e.kind}${e.detail ? `  ${e.detail}` : ''}`),
  ].join('\n');
}

/** The node agent's last heartbeat, when it has sent one. */
function heartbeatText(n: ListedNode): string | undefined {
  const hb = n.heartbeat;
  if (!hb) return undefined;
  const m = hb.metrics;
  const parts = [iso(hb.time)];
  if (m.uptime !== undefined) parts.push(`uptime ${uptimeText(m.uptime)}`);
  if (m.load1 !== undefined) parts.push(`load ${[m.load1, m.load5, m.load15].map((l) => l?.toFixed(2) ?? '-').join(' ')}`);
  if (m.memTotal !== undefined) parts.push(`memory ${m.memAvailable === undefined ? '?' : gib(m.memTotal - m.memAvailable)} used of ${gib(m.memTotal)}`);
  if (m.diskSize !== undefined) parts.push(`disk ${m.diskUsed === undefined ? '?' : gib(m.diskUsed)} used of ${gib(m.diskSize)}`);
  return parts.join('  ');
}

export const nodesListCommand: Command = {
  summary: 'servers the pods have seen: state, hostname, IP, image, last seen',
  usage: `usage: podboot nodes list [--pod NAME] [--wide] [--json] [--url … --ca … --token-file … | --state DIR]

A table, one row per server of every pod (or of --pod NAME): MAC, install
state (discovered, pxe, stage1, stage2-fetched, verified, installing,
installed, booted-from-disk, failed(reason)), install attempt, hostname (from
the pod file), the address of its live lease (- when it holds none), the image
its disk holds (name@version, recorded when stage1 reported it installed; -
before that), when it last reported (its node
agent's heartbeats included), its liveness once booted from its disk (active,
or silent after 3 heartbeat intervals without a report), and its pod.
--wide adds when its state changed and the last heartbeat's uptime, load
(1/5/15 min), memory and root filesystem in use. --json: the same rows as a
list of objects (pod, mac, state, attempt, updatedAt, lastSeen; hostname, ip,
image, assigned (the pod's spec.stage2: what a reinstall puts on it), liveness
and heartbeat where there are some).

  --pod NAME    only this pod's servers
  --wide        more columns: CHANGED, UPTIME, LOAD, MEM, DISK
${CONNECT_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { ...OPTIONS, wide: { type: 'boolean' } }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return reading('nodes list', async () => {
      const source = sourceOf(values);
      const pods = values.pod ? [values.pod] : await source.pods();
      const rows: ListedNode[] = [];
      for (const pod of pods) {
        const nodes = await source.nodes(pod);
        if (!nodes) {
          // A pod named on the command line must exist; one listed a moment ago may have gone since.
          if (!values.pod) continue;
          process.stderr.write(`podboot nodes list: ${await source.missing(pod)}\n`);
          return EXIT_FAILURE;
        }
        rows.push(...nodes);
      }
      if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else {
        const wide = values.wide ?? false;
        process.stdout.write(
          formatTable(
            wide ? [...COLUMNS, ...WIDE_COLUMNS] : COLUMNS,
            rows.map((n) => row(n, wide)),
          ),
        );
      }
      return EXIT_OK;
    });
  },
};

export const nodesShowCommand: Command = {
  summary: 'one server: state, hostname, IP, image, last heartbeat, latest events',
  usage: `usage: podboot nodes show MAC [--pod NAME] [--json] [--url … --ca … --token-file … | --state DIR]

The server's pod, hostname, IP, install state and attempt, the image its disk
holds and the one its pod assigns now, when it last reported and its liveness; its node agent's last
heartbeat (uptime, load, memory, disk), if any; then its latest events.
--json: {node, events} with node as \`nodes list --json\` gives it and the
events oldest first. Exits 1 when no pod has seen that server.

  --pod NAME    the pod to ask (default: every pod, the first that has seen MAC)
${CONNECT_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    const mac = macArg(positionals);
    return reading('nodes show', async () => {
      const source = sourceOf(values);
      for (const pod of values.pod ? [values.pod] : await source.pods()) {
        const shown = await source.node(pod, mac);
        if (!shown) continue;
        // Oldest first: a server's story reads down, as scripts and the tests read it.
        const events = [...shown.events].reverse();
        if (values.json) process.stdout.write(`${JSON.stringify({ node: shown.node ?? null, events }, null, 2)}\n`);
        else process.stdout.write(`${showText(shown.node, mac, pod, events)}\n`);
        return EXIT_OK;
      }
      process.stderr.write(`podboot nodes show: ${values.pod ? await source.missing(values.pod, mac) : `no pod has seen ${mac}`}\n`);
      return EXIT_FAILURE;
    });
  },
};

export const nodesReinstallCommand: Command = {
  summary: 'let an installed server PXE-install again at its next boot',
  usage: `usage: podboot nodes reinstall MAC --pod NAME [--state DIR]

The only way back to network installation for an installed server. Starts a
new install attempt: every token handed out before is refused from now on,
the server's next DHCP exchange offers a boot file again, and an event
records who asked (the USER of this shell). Writes to the pod's state
directly, next to the running instance.

  --state DIR   state root of the central node (${STATE_DEFAULT_HELP})
  --pod NAME    the pod the server belongs to (required)`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { state: { type: 'string' }, pod: { type: 'string' } }, allowPositionals: true });
    const mac = macArg(positionals);
    if (!values.pod) throw new UsageError('--pod NAME is required');
    const root = values.state ?? defaultStateRoot();
    const dir = join(root, values.pod);
    const [{ openPodState }, { podDatabaseFile }] = await Promise.all([import('../../store/pod-state.js'), import('../../store/database.js')]);
    const state: PodStateAdmin | undefined = openPodState(dir, { readonly: false });
    if (!state) {
      process.stderr.write(`podboot nodes reinstall: no pod ${values.pod} under ${root} (no ${podDatabaseFile(dir)})\n`);
      return EXIT_FAILURE;
    }
    try {
      const node = state.reinstall(mac, Math.floor(Date.now() / 1000), `operator ${process.env.USER ?? 'unknown'} (cli)`);
      process.stdout.write(`${mac}: reinstall at next boot (attempt ${node.attempt})\n`);
      return EXIT_OK;
    } finally {
      state.close();
    }
  },
};
