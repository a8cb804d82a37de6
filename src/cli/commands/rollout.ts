// `podboot rollout …`: image releases of one pod through the running central
// node's API (docs/rollouts.md). The node checks the pod's cached copies and
// writes the rollout into the pod's database; the pod moves it on. `status`
// also reads a state directory itself (--state DIR), through the same
// function the API answers with.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { STATE_DEFAULT_HELP } from '../../config/state-root.js';
import { CentralUnavailable, callApi, resolveTarget, type ApiTarget } from '../../api/client.js';
import type { RolloutStatus } from '../../rollout/central.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Command } from '../command.js';
import { formatTable } from '../table.js';

const CONNECT = { url: { type: 'string' }, ca: { type: 'string' }, 'token-file': { type: 'string' }, state: { type: 'string' } } as const;
const CONNECT_HELP = `  --url URL --ca FILE --token-file FILE
                the central node to ask; by default the one that
                STATE/central/api.json names, STATE being --state DIR
                (${STATE_DEFAULT_HELP})`;
const EXITS = `Exit 0 when done; 1 when the node refuses (the reason is printed), none
answers, or --wait ends anywhere but where it waited for; 2 on wrong usage.`;

class RefusedError extends Error {}

function connect(values: { url?: string; ca?: string; 'token-file'?: string; state?: string }): ApiTarget {
  return resolveTarget({ state: values.state, url: values.url, ca: values.ca, tokenFile: values['token-file'] });
}

async function api(t: ApiTarget, method: string, path: string, body?: unknown): Promise<RolloutStatus> {
  const r = await callApi(t, method, path, body, 120_000);
  if (r.status === 200 || r.status === 201) return r.body as RolloutStatus;
  const text = typeof r.body === 'object' && r.body && 'error' in r.body ? String((r.body as { error: unknown }).error) : JSON.stringify(r.body);
  throw new RefusedError(`HTTP ${r.status}: ${text}`);
}

function podPath(pod: string | undefined): string {
  if (!pod) throw new UsageError('--pod NAME is required');
  return `/api/v1/pods/${encodeURIComponent(pod)}/rollout`;
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1) throw new UsageError(`${name} ${v}: a whole number of at least 1`);
  return Number(v);
}

function iso(sec: number | undefined): string {
  return sec === undefined ? '-' : new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The status as an operator reads it: the rollout, the releases, one line per server and pass. */
export function formatStatus(s: RolloutStatus): string {
  const out: string[] = [];
  const role = (r: string) =>
    s.releases
      .filter((x) => x.role === r)
      .map((x) => x.ref)
      .join(', ') || '-';
  out.push(`pod ${s.pod}: active ${role('active')}, previous ${role('previous')}, canary ${role('canary')}, staged ${role('staged')}`);
  const r = s.rollout;
  if (!r) {
    out.push('no rollout');
    return out.join('\n') + '\n';
  }
  const paused = r.phase === 'paused' ? ` (from ${r.pausedFrom})` : '';
  out.push(`rollout ${r.id} to ${r.target}: ${r.phase}${paused}; from ${r.previous ?? '-'}; select ${r.selector || '(all)'}; canary ${r.canary}; batch ${r.batch}; max failures ${r.maxFailures}`);
  out.push(`started ${iso(r.createdAt)} by ${r.createdBy}; changed ${iso(r.updatedAt)}${r.reason ? `: ${r.reason}` : ''}`);
  out.push(
    formatTable(
      ['SERVER', 'HOSTNAME', 'PASS', 'CANARY', 'BATCH', 'STATE', 'INSTALLS', 'NODE', 'ON DISK', 'DETAIL'],
      s.servers.map((x) => [
        x.mac,
        x.hostname ?? '-',
        x.pass,
        x.canary ? 'yes' : '-',
        x.batch === undefined ? '-' : String(x.batch),
        x.state,
        x.image,
        x.nodeState ?? '-',
        x.nodeImage ?? '-',
        x.detail ?? '',
      ]),
    ).trimEnd(),
  );
  return out.join('\n') + '\n';
}

/** Where --wait stops: the phase a command leads to, or a pause. */
const SETTLED: Record<string, readonly string[]> = {
  canary: ['canary-passed', 'paused'],
  promoting: ['completed', 'paused'],
  'rolling-back': ['rolled-back', 'paused'],
};

async function waitFor(t: ApiTarget, path: string, first: RolloutStatus, timeoutSec: number): Promise<RolloutStatus> {
  const from = first.rollout?.phase ?? '';
  const stops = SETTLED[from];
  if (!stops) return first;
  const until = Date.now() + timeoutSec * 1000;
  let s = first;
  let last = '';
  while (Date.now() < until) {
    s = await api(t, 'GET', path);
    const line = (s.servers ?? []).map((x) => `${x.mac}:${x.pass}:${x.state}`).join(' ');
    if (line !== last && !process.stdout.isTTY) process.stdout.write(`${new Date().toISOString()} ${s.rollout?.phase} ${line}\n`);
    last = line;
    if (stops.includes(s.rollout?.phase ?? '')) return s;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return s;
}

async function guarded(name: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof CentralUnavailable || err instanceof RefusedError) {
      process.stderr.write(`podboot rollout ${name}: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}

async function report(t: ApiTarget, path: string, s: RolloutStatus, o: { json?: boolean; wait?: boolean; waitTimeout?: string; want?: string }): Promise<number> {
  let status = s;
  if (o.wait) status = await waitFor(t, path, s, positiveInt(o.waitTimeout, '--wait-timeout') ?? 3600);
  process.stdout.write(o.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
  if (o.wait && o.want && status.rollout?.phase !== o.want) return EXIT_FAILURE;
  return EXIT_OK;
}

const WAIT_HELP = `  --wait        follow it until it settles (canary-passed, completed, rolled-back,
                or paused), one line per change; exit 1 unless it got where it was going
  --wait-timeout S   give up waiting after S seconds (default 3600)
  --json        the status as JSON`;

export const rolloutStartCommand: Command = {
  summary: 'roll an image version out to a pod’s servers: canaries first, then in batches',
  usage: `usage: podboot rollout start IMAGE@VERSION --pod NAME [--select SELECTOR] [--canary N|P%]
                             [--batch N] [--max-failures N] [--server-timeout S] [--why TEXT]
                             [--wait] [--json]

The central node hashes the pod's cached copy of IMAGE@VERSION (placing it
from its catalog if the pod has none) and of the active release again, then
writes the rollout into the pod's database. The pod reinstalls only the
servers it selects: the canaries first (picked stably from the rollout id
and each server's MAC), at most --batch servers at a time, the next batch
only when the last one booted from its disk with the new version. Servers
pinned in the pod file (spec.nodes[].stage2) are never selected. When
--max-failures servers failed it pauses by itself. After the canaries:
podboot rollout promote. A server is asked to reboot in the answer to its
node agent's next heartbeat.

  --select S         servers whose labels match S (role=web,rack!=b); default all
  --canary N|P%      canary servers: a count or a share, rounded up (default 0: no canary phase)
  --batch N          servers reinstalled at a time (default 1)
  --max-failures N   failures that pause the rollout (default 1)
  --server-timeout S seconds a server may take from the reboot request to booted-from-disk (default 1800)
  --why TEXT         kept in the release history
${WAIT_HELP}
${CONNECT_HELP}

${EXITS}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        pod: { type: 'string' },
        select: { type: 'string' },
        canary: { type: 'string' },
        batch: { type: 'string' },
        'max-failures': { type: 'string' },
        'server-timeout': { type: 'string' },
        why: { type: 'string' },
        wait: { type: 'boolean' },
        'wait-timeout': { type: 'string' },
        json: { type: 'boolean' },
        ...CONNECT,
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected one IMAGE@VERSION');
    const path = podPath(values.pod);
    const [{ parseStage2Ref }, { parseSelector, SelectorError }, { canaryCount, CanaryError }] = await Promise.all([
      import('../../config/stage2-ref.js'),
      import('../../config/labels.js'),
      import('../../rollout/plan.js'),
    ]);
    if (!parseStage2Ref(positionals[0]!)) throw new UsageError(`${positionals[0]}: expected IMAGE@VERSION, e.g. debian-12@2.0`);
    try {
      parseSelector(values.select ?? '');
      canaryCount(values.canary ?? '0', 1);
    } catch (err) {
      if (err instanceof SelectorError || err instanceof CanaryError) throw new UsageError(err.message);
      throw err;
    }
    const body = {
      target: positionals[0],
      ...(values.select !== undefined ? { select: values.select } : {}),
      ...(values.canary !== undefined ? { canary: values.canary } : {}),
      ...(values.batch !== undefined ? { batch: positiveInt(values.batch, '--batch') } : {}),
      ...(values['max-failures'] !== undefined ? { maxFailures: positiveInt(values['max-failures'], '--max-failures') } : {}),
      ...(values['server-timeout'] !== undefined ? { serverTimeoutSeconds: positiveInt(values['server-timeout'], '--server-timeout') } : {}),
      ...(values.why !== undefined ? { why: values.why } : {}),
    };
    return guarded('start', async () => {
      const t = connect(values);
      const s = await api(t, 'POST', path, body);
      return report(t, path, s, { ...values, want: s.rollout?.phase === 'canary' ? 'canary-passed' : 'completed' });
    });
  },
};

export const rolloutStatusCommand: Command = {
  summary: 'a pod’s releases and its newest rollout, server by server',
  usage: `usage: podboot rollout status --pod NAME [--json] [--state DIR | --url URL --ca FILE --token-file FILE]

The releases (active, previous, canary, staged), then the newest rollout:
its phase, and per server and pass (forward to the target, back on a
rollback) its batch, state and what its pod records (install state, image on
the disk).

  --json        as JSON (the API's answer)
  --state DIR   no central node: read the pod's database directly, read-only
${CONNECT_HELP}

Exit 1 when the pod is not there or no central node answers.`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { pod: { type: 'string' }, json: { type: 'boolean' }, ...CONNECT }, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
    const path = podPath(values.pod);
    return guarded('status', async () => {
      let s: RolloutStatus;
      if (values.state !== undefined && !values.url) {
        const { rolloutStatus, RolloutRequestError } = await import('../../rollout/central.js');
        const { podDatabaseFile } = await import('../../store/database.js');
        if (!existsSync(podDatabaseFile(join(values.state, values.pod!)))) throw new RefusedError(`no pod ${values.pod} under ${values.state}`);
        try {
          s = JSON.parse(JSON.stringify(rolloutStatus(values.state, values.pod!))) as RolloutStatus;
        } catch (err) {
          if (err instanceof RolloutRequestError) throw new RefusedError(err.message);
          throw err;
        }
      } else {
        s = await api(connect(values), 'GET', path);
      }
      process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      return EXIT_OK;
    });
  },
};

function actionCommand(action: 'pause' | 'resume' | 'promote' | 'rollback', summary: string, help: string, want?: string): Command {
  const extra = action === 'rollback' ? ' [--batch N]' : action === 'resume' ? ' [--max-failures N]' : '';
  return {
    summary,
    usage: `usage: podboot rollout ${action} --pod NAME${extra} [--why TEXT]${want ? ' [--wait]' : ''} [--json]

${help}

  --why TEXT    kept in the rollout's events and the release history
${action === 'rollback' ? "  --batch N     servers reinstalled at a time on the way back (default: the rollout's)\n" : ''}${action === 'resume' ? '  --max-failures N   a new failure limit (a rollout paused by its limit pauses again without one)\n' : ''}${want ? WAIT_HELP : '  --json        the status as JSON'}
${CONNECT_HELP}

${EXITS}`,
    async run(argv) {
      const { values, positionals } = parseArgs({
        args: argv,
        options: {
          pod: { type: 'string' },
          why: { type: 'string' },
          batch: { type: 'string' },
          'max-failures': { type: 'string' },
          wait: { type: 'boolean' },
          'wait-timeout': { type: 'string' },
          json: { type: 'boolean' },
          ...CONNECT,
        },
        allowPositionals: true,
      });
      if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
      if (values.batch !== undefined && action !== 'rollback') throw new UsageError('--batch is for rollback');
      if (values['max-failures'] !== undefined && action !== 'resume') throw new UsageError('--max-failures is for resume');
      if (values.wait && !want) throw new UsageError(`--wait is not for ${action}`);
      const path = podPath(values.pod);
      const body = {
        ...(values.why !== undefined ? { why: values.why } : {}),
        ...(values.batch !== undefined ? { batch: positiveInt(values.batch, '--batch') } : {}),
        ...(values['max-failures'] !== undefined ? { maxFailures: positiveInt(values['max-failures'], '--max-failures') } : {}),
      };
      return guarded(action, async () => {
        const t = connect(values);
        const s = await api(t, 'POST', `${path}/${action}`, body);
        return report(t, path, s, { ...values, ...(want ? { want } : {}) });
      });
    },
  };
}

export const rolloutPauseCommand = actionCommand(
  'pause',
  'pause a rollout: servers in flight finish, no new batch starts',
  'Servers already asked to reinstall finish; no new batch is started until resume.',
);
export const rolloutResumeCommand = actionCommand('resume', 'resume a paused rollout where it stopped', 'The rollout goes back to the phase it was paused in.');
export const rolloutPromoteCommand = actionCommand(
  'promote',
  'after the canaries: make the target the active release and roll on in batches',
  'Only after every canary booted with the target (phase canary-passed). The\ntarget becomes the active release (new installs get it), the one before it\nprevious, and the other selected servers follow, --batch at a time.',
  'completed',
);
export const rolloutRollbackCommand = actionCommand(
  'rollback',
  'make the previous release active again and reinstall the servers that took the new one',
  'The release the rollout started from becomes active again; every server the\nrollout reinstalled (or tried to) is reinstalled with it, batch by batch,\nfrom the copy the pod already holds: nothing is downloaded.',
  'rolled-back',
);
