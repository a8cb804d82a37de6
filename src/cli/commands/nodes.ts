import { defaultStateRoot, STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { normalizeMac } from '../../net/mac.js';
import { formatIPv4 } from '../../net/ipv4.js';
import type { NodeEvent, NodeRecord, PodStateAdmin, PodStateView } from '../../store/types.js';
import { formatTable } from '../table.js';

// These commands open the pod's state next to the running instance
// (src/store/pod-state.ts): read-only to list and show; a reinstall takes
// effect at the server's next DHCP exchange without a restart.

const OPTIONS = { state: { type: 'string' }, pod: { type: 'string' }, json: { type: 'boolean' } } as const;
const HELP = `  --state DIR   state root of the central node (${STATE_DEFAULT_HELP})
  --pod NAME    the pod the server belongs to (required)
  --json        one JSON document instead of text`;

/**
 * Opens the pod's state for one command, runs it, closes it; a pod that has
 * recorded nothing yet is exit 1 with the reason.
 */
async function withState(command: string, values: { state?: string; pod?: string }, readonly: true, run: (state: PodStateView) => number): Promise<number>;
async function withState(command: string, values: { state?: string; pod?: string }, readonly: false, run: (state: PodStateAdmin) => number): Promise<number>;
async function withState(command: string, values: { state?: string; pod?: string }, readonly: boolean, run: (state: PodStateAdmin) => number): Promise<number> {
  if (!values.pod) throw new UsageError('--pod NAME is required');
  const root = values.state ?? defaultStateRoot();
  const dir = join(root, values.pod);
  const [{ openPodState }, { podDatabaseFile }] = await Promise.all([import('../../store/pod-state.js'), import('../../store/database.js')]);
  const state = readonly ? openPodState(dir, { readonly: true }) : openPodState(dir, { readonly: false });
  if (!state) {
    process.stderr.write(`podboot ${command}: no pod ${values.pod} under ${root} (no ${podDatabaseFile(dir)})\n`);
    return EXIT_FAILURE;
  }
  try {
    return run(state as PodStateAdmin);
  } finally {
    state.close();
  }
}

function macArg(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('expected exactly one MAC address');
  const mac = normalizeMac(positionals[0]!);
  if (!mac) throw new UsageError(`${positionals[0]}: not a MAC address`);
  return mac;
}

function iso(sec: number | undefined): string {
  return sec === undefined ? '-' : new Date(sec * 1000).toISOString();
}

function stateText(n: NodeRecord): string {
  return n.state === 'failed' && n.reason ? `failed(${n.reason})` : n.state;
}

/** `nodes show`'s first line: one server, its fields named. */
function nodeLine(n: NodeRecord): string {
  return `${n.mac}  ${stateText(n).padEnd(20)} attempt ${n.attempt}  since ${iso(n.updatedAt)}  last seen ${iso(n.lastSeen)}${n.liveness ? `  ${n.liveness}` : ''}`;
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

/** The list's columns of the last heartbeat: UPTIME, LOAD (1/5/15 min), MEM and DISK in use. */
function heartbeatCells(n: NodeRecord): string[] {
  const m = n.heartbeat?.metrics;
  if (!m) return ['-', '-', '-', '-'];
  const load = [m.load1, m.load5, m.load15].map((l) => (l === undefined ? '-' : l.toFixed(2))).join('/');
  const memUsed = m.memTotal !== undefined && m.memAvailable !== undefined ? m.memTotal - m.memAvailable : undefined;
  return [m.uptime === undefined ? '-' : uptimeText(m.uptime), load, percent(memUsed, m.memTotal), percent(m.diskUsed, m.diskSize)];
}

/** `nodes show`'s heartbeat line, when the node agent has sent one. */
function heartbeatLine(n: NodeRecord): string | undefined {
  const hb = n.heartbeat;
  if (!hb) return undefined;
  const m = hb.metrics;
  const parts = [`heartbeat ${iso(hb.time)}`];
  if (m.uptime !== undefined) parts.push(`uptime ${uptimeText(m.uptime)}`);
  if (m.load1 !== undefined) parts.push(`load ${[m.load1, m.load5, m.load15].map((l) => l?.toFixed(2) ?? '-').join(' ')}`);
  if (m.memTotal !== undefined) parts.push(`memory ${m.memAvailable === undefined ? '?' : gib(m.memTotal - m.memAvailable)} used of ${gib(m.memTotal)}`);
  if (m.diskSize !== undefined) parts.push(`disk ${m.diskUsed === undefined ? '?' : gib(m.diskUsed)} used of ${gib(m.diskSize)}`);
  return parts.join('  ');
}

function eventLine(e: NodeEvent): string {
  return `${iso(e.time)}  ${e.mac}  ${e.kind}${e.detail ? `  ${e.detail}` : ''}`;
}

export const nodesListCommand: Command = {
  summary: 'servers a pod has seen, with their install state',
  usage: `usage: podboot nodes list --pod NAME [--state DIR] [--json]

A table, one row per server: MAC, install state (discovered, pxe, stage1,
stage2-fetched, verified, installing, installed, booted-from-disk,
failed(reason)), install attempt, the address of its live lease (- when it
holds none), when its state changed, when it last reported; for a server
booted from its disk, its liveness (active, or silent after 3 heartbeat
intervals without a report) and its node agent's last heartbeat: uptime,
load (1/5/15 min), memory and root filesystem in use. --json: the same as a
list of objects (ip only where a lease is live; liveness, and heartbeat with
its time and figures, where there are some).

${HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return withState('nodes list', values, true, (store) => {
      const nodes = store.nodesWithLeases(Math.floor(Date.now() / 1000)).map(({ address, ...n }) => ({ ...n, ...(address === undefined ? {} : { ip: formatIPv4(address) }) }));
      if (values.json) process.stdout.write(JSON.stringify(nodes, null, 2) + '\n');
      else
        process.stdout.write(
          formatTable(
            ['MAC', 'STATE', 'ATTEMPT', 'IP', 'CHANGED', 'LAST SEEN', 'LIVENESS', 'UPTIME', 'LOAD', 'MEM', 'DISK'],
            nodes.map((n) => [n.mac, stateText(n), String(n.attempt), n.ip ?? '-', iso(n.updatedAt), iso(n.lastSeen), n.liveness ?? '-', ...heartbeatCells(n)]),
          ),
        );
      return EXIT_OK;
    });
  },
};

export const nodesShowCommand: Command = {
  summary: 'one server: install state and its latest events',
  usage: `usage: podboot nodes show MAC --pod NAME [--state DIR] [--json]

The server's install state, attempt, last report and liveness; its node
agent's last heartbeat (uptime, load, memory, disk), if any; then its latest
events. Exits 1 when the pod has never seen that server.

${HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    const mac = macArg(positionals);
    return withState('nodes show', values, true, (store) => {
      const node = store.node(mac);
      const events = store.events(mac, 50).reverse();
      if (!node && events.length === 0) {
        process.stderr.write(`podboot nodes show: pod ${values.pod} has never seen ${mac}\n`);
        return EXIT_FAILURE;
      }
      if (values.json) process.stdout.write(JSON.stringify({ node: node ?? null, events }, null, 2) + '\n');
      else {
        const beat = node && heartbeatLine(node);
        process.stdout.write([node ? nodeLine(node) : `${mac}  (no install state)`, ...(beat ? [beat] : []), ...events.map(eventLine)].join('\n') + '\n');
      }
      return EXIT_OK;
    });
  },
};

export const nodesReinstallCommand: Command = {
  summary: 'let an installed server PXE-install again at its next boot',
  usage: `usage: podboot nodes reinstall MAC --pod NAME [--state DIR]

The only way back to network installation for an installed server. Starts a
new install attempt: every token handed out before is refused from now on,
the server's next DHCP exchange offers a boot file again, and an event
records who asked (the USER of this shell).

${HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    const mac = macArg(positionals);
    return withState('nodes reinstall', values, false, (store) => {
      const node = store.reinstall(mac, Math.floor(Date.now() / 1000), `operator ${process.env.USER ?? 'unknown'} (cli)`);
      process.stdout.write(`${mac}: reinstall at next boot (attempt ${node.attempt})\n`);
      return EXIT_OK;
    });
  },
};
