import { defaultStateRoot, STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { normalizeMac } from '../../net/mac.js';
import type { NodeEvent, NodeRecord } from '../../store/types.js';

// These commands open the pod's own database next to the running instance:
// SQLite in WAL mode takes a second process, and the instance reads install
// state from the database on every request, so a reinstall takes effect at
// the server's next DHCP exchange without a restart.

const OPTIONS = { state: { type: 'string' }, pod: { type: 'string' }, json: { type: 'boolean' } } as const;
const HELP = `  --state DIR   state root of the central node (${STATE_DEFAULT_HELP})
  --pod NAME    the pod the server belongs to (required)
  --json        one JSON document instead of text`;

async function openStore(values: { state?: string; pod?: string }) {
  if (!values.pod) throw new UsageError('--pod NAME is required');
  const dir = join(values.state ?? defaultStateRoot(), values.pod);
  if (!existsSync(join(dir, 'pod.db'))) return { error: `no pod ${values.pod} under ${values.state ?? defaultStateRoot()} (no ${join(dir, 'pod.db')})` } as const;
  const [{ openPodDatabase }, { SqliteNodeStateStore }] = await Promise.all([import('../../store/database.js'), import('../../store/sqlite-store.js')]);
  const db = openPodDatabase(dir);
  return { db, store: new SqliteNodeStateStore(db) } as const;
}

type Store = Exclude<Awaited<ReturnType<typeof openStore>>, { error: string }>['store'];

/** Opens the pod's store for one command, runs it, closes it; a missing pod is exit 1 with the reason. */
async function withStore(command: string, values: { state?: string; pod?: string }, run: (store: Store) => number): Promise<number> {
  const o = await openStore(values);
  if ('error' in o) {
    process.stderr.write(`podboot ${command}: ${o.error}\n`);
    return EXIT_FAILURE;
  }
  try {
    return run(o.store);
  } finally {
    o.db.close();
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

function nodeLine(n: NodeRecord): string {
  const state = n.state === 'failed' && n.reason ? `failed(${n.reason})` : n.state;
  return `${n.mac}  ${state.padEnd(20)} attempt ${n.attempt}  since ${iso(n.updatedAt)}  last seen ${iso(n.lastSeen)}`;
}

function eventLine(e: NodeEvent): string {
  return `${iso(e.time)}  ${e.mac}  ${e.kind}${e.detail ? `  ${e.detail}` : ''}`;
}

export const nodesListCommand: Command = {
  summary: "servers a pod has seen, with their install state",
  usage: `usage: podboot nodes list --pod NAME [--state DIR] [--json]

One line per server: MAC, install state (discovered, pxe, stage1,
stage2-fetched, verified, installing, installed, booted-from-disk,
failed(reason)), install attempt, when it changed, when it last reported.

${HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    return withStore('nodes list', values, (store) => {
      const nodes = store.nodes();
      process.stdout.write(values.json ? JSON.stringify(nodes, null, 2) + '\n' : nodes.map(nodeLine).join('\n') + (nodes.length ? '\n' : ''));
      return EXIT_OK;
    });
  },
};

export const nodesShowCommand: Command = {
  summary: 'one server: install state and its latest events',
  usage: `usage: podboot nodes show MAC --pod NAME [--state DIR] [--json]

Exits 1 when the pod has never seen that server.

${HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
    const mac = macArg(positionals);
    return withStore('nodes show', values, (store) => {
      const node = store.node(mac);
      const events = store.events(mac, 50).reverse();
      if (!node && events.length === 0) {
        process.stderr.write(`podboot nodes show: pod ${values.pod} has never seen ${mac}\n`);
        return EXIT_FAILURE;
      }
      if (values.json) process.stdout.write(JSON.stringify({ node: node ?? null, events }, null, 2) + '\n');
      else process.stdout.write([node ? nodeLine(node) : `${mac}  (no install state)`, ...events.map(eventLine)].join('\n') + '\n');
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
    return withStore('nodes reinstall', values, (store) => {
      const node = store.reinstall(mac, Math.floor(Date.now() / 1000), `operator ${process.env.USER ?? 'unknown'} (cli)`);
      process.stdout.write(`${mac}: reinstall at next boot (attempt ${node.attempt})\n`);
      return EXIT_OK;
    });
  },
};
