// Install credentials stay with their server (issue 12): the one access
// policy for boot configs with a token, minting only for servers the pod may
// provision, caps on unknown servers and on event rows, and the install
// token → session exchange with its replay refusal, durable in the pod's
// SQLite database across a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenAuthority } from '../../../src/install/tokens.js';
import { issueToken } from '../../../src/install/token.js';
import { checkSession, issueSession, sessionKey } from '../../../src/install/session.js';
import { AdmittingNodeStore, admit } from '../../../src/install/admission.js';
import { bootConfigAccess, type LeaseView } from '../../../src/install/boot-config-access.js';
import { InstallCredentials } from '../../../src/install/credentials.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { SqliteTokenUseStore } from '../../../src/store/token-uses.js';
import { captureLogger } from '../../helpers/logs.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';

const MAC = '52:54:00:20:00:10';
const OTHER = '52:54:00:20:00:11';
const NOW = 1_800_000_000;
const SUBNETS = [subnet('10.20.0.0/24', ['10.20.0.100', '10.20.0.199'])];
const lease = (over: Partial<LeaseView> = {}): LeaseView => ({ address: ip('10.20.0.10'), mac: MAC, state: 'bound', ends: NOW + 600, subnet: '10.20.0.0/24', ...over });

describe('boot config access: one policy for TFTP and HTTP', () => {
  const decide = (source: string, leases: LeaseView[] = [lease()]) => bootConfigAccess({ mac: MAC, source, now: NOW, leases, subnets: SUBNETS });

  it('allows the server from the address leased to it, also as a dual-stack socket shows it', () => {
    expect(decide('10.20.0.10')).toEqual({ allow: true, address: '10.20.0.10' });
    expect(decide('::ffff:10.20.0.10')).toMatchObject({ allow: true });
    // A second, live lease of the same MAC (iPXE and stage1 asked with different client ids) counts too.
    expect(decide('10.20.0.120', [lease(), lease({ address: ip('10.20.0.120') })])).toMatchObject({ allow: true });
  });

  it('refuses anyone else, with a reason', () => {
    expect(decide('10.20.0.11')).toMatchObject({ allow: false, reason: 'not-leased-address' });
    expect(decide('10.99.0.1')).toMatchObject({ allow: false, reason: 'not-leased-address' });
    expect(decide('fe80::1')).toMatchObject({ allow: false, reason: 'bad-source' });
    expect(decide('10.20.0.10', [])).toMatchObject({ allow: false, reason: 'no-lease' });
    expect(decide('10.20.0.10', [lease({ mac: OTHER })])).toMatchObject({ allow: false, reason: 'no-lease' });
    expect(decide('10.20.0.10', [lease({ ends: NOW })])).toMatchObject({ allow: false, reason: 'lease-expired' });
    expect(decide('10.20.0.10', [lease({ state: 'released' })])).toMatchObject({ allow: false, reason: 'lease-expired' });
    expect(decide('10.20.0.10', [lease({ subnet: '10.30.0.0/24' })])).toMatchObject({ allow: false, reason: 'outside-pod-subnets' });
  });
});

describe('admission: who gets tokens and rows', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const open = () => {
    dir ??= mkdtempSync(join(tmpdir(), 'pb-admission-'));
    return openPodDatabase(dir);
  };

  it('admit(): the pod file, rows already kept, then unknown servers by policy and under the cap', () => {
    const base = { known: false, policy: 'provision' as const, hasRow: false, unknownRows: 0, maxUnknownNodes: 2 };
    expect(admit({ ...base, known: true, policy: 'ignore' })).toEqual({ ok: true });
    expect(admit(base)).toEqual({ ok: true });
    expect(admit({ ...base, policy: 'ignore' })).toEqual({ ok: false, reason: 'unknown-nodes-ignored' });
    expect(admit({ ...base, unknownRows: 2 })).toEqual({ ok: false, reason: 'unknown-node-cap' });
    expect(admit({ ...base, unknownRows: 2, hasRow: true })).toEqual({ ok: true });
  });

  it('caps unknown servers per pod: no row, no token past the cap; servers in the pod file always get theirs', () => {
    const db = open();
    const { log, lines } = captureLogger({ pod: 'rack-t' });
    const pod = testPod({ nodes: [{ mac: '52:54:00:00:00:01' }] });
    const nodes = new AdmittingNodeStore(new SqliteNodeStateStore(db), pod, log, { maxUnknownNodes: 3, maxEventsPerMinute: 100 });
    const creds = credentials(db, nodes, log);
    for (let i = 0; i < 10; i++) nodes.changeInstallState({ mac: `52:54:00:aa:00:${i.toString(16).padStart(2, '0')}`, state: 'discovered', time: NOW });
    expect(nodes.nodes()).toHaveLength(3);
    expect(nodes.counters.nodesRefused).toBe(7);
    expect(nodes.mayProvision('52:54:00:aa:00:09')).toEqual({ ok: false, reason: 'unknown-node-cap' });
    expect(creds.mint('52:54:00:aa:00:09', NOW)).toBeUndefined();
    // Admitted ones keep going, and so does the server the pod file names.
    expect(creds.mint('52:54:00:aa:00:00', NOW)).toMatch(/^pb1\.install\.525400aa0000\./);
    nodes.changeInstallState({ mac: '52:54:00:00:00:01', state: 'discovered', time: NOW });
    expect(creds.mint('52:54:00:00:00:01', NOW)).toMatch(/^pb1\.install\.525400000001\./);
    expect(nodes.nodes()).toHaveLength(4);
    // One line for the whole flood, not seven.
    expect(lines.filter((l) => l.msg === 'server not recorded: unknown-node-cap')).toHaveLength(1);
    // The count survives a restart: a new wrapper over the same database starts from the rows it finds.
    const again = new AdmittingNodeStore(new SqliteNodeStateStore(db), pod, log, { maxUnknownNodes: 3, maxEventsPerMinute: 100 });
    expect(again.mayProvision('52:54:00:bb:00:01')).toMatchObject({ ok: false });
    db.close();
  });

  it('mints nothing for an unknown server when the pod ignores unknown servers', () => {
    const db = open();
    const { log } = captureLogger();
    const nodes = new AdmittingNodeStore(new SqliteNodeStateStore(db), testPod({ unknownNodes: 'ignore', nodes: [{ mac: MAC }] }), log);
    const creds = credentials(db, nodes, log);
    expect(creds.mint(OTHER, NOW)).toBeUndefined();
    nodes.changeInstallState({ mac: OTHER, state: 'discovered', time: NOW });
    expect(nodes.node(OTHER)).toBeUndefined();
    expect(creds.mint(MAC, NOW)).toMatch(/^pb1\.install\./);
    db.close();
  });

  it("bounds DHCP's rows before its group commit writes them: refused servers get no row, an event over the rate leaves the change alone", () => {
    const db = open();
    const { log } = captureLogger({ pod: 'rack-t' });
    const inner = new SqliteNodeStateStore(db);
    const nodes = new AdmittingNodeStore(inner, testPod({ nodes: [{ mac: MAC }] }), log, { maxUnknownNodes: 1, maxEventsPerMinute: 1 }, () => NOW * 1000);
    const w = {
      changes: [
        { mac: '52:54:00:aa:01:01', state: 'discovered', time: NOW },
        { mac: '52:54:00:aa:01:02', state: 'discovered', time: NOW },
        { mac: MAC, state: 'discovered', time: NOW },
      ],
      events: [{ time: NOW, mac: MAC, kind: 'pxe-after-install' }],
    };
    const admitted = nodes.admit(w);
    // The second unknown server is over the cap; the known one's event used its minute, so the extra event goes.
    expect(admitted).toEqual({ changes: [w.changes[0], w.changes[2]], events: [] });
    expect(nodes.counters).toEqual({ nodesRefused: 1, eventsDropped: 1 });
    expect(inner.nodes()).toEqual([]);
    // Counted as if written: a third unknown server is refused before the commit lands.
    expect(nodes.admit({ changes: [{ mac: '52:54:00:aa:01:03', state: 'discovered', time: NOW }], events: [] }).changes).toEqual([]);
    // A change whose event is over the rate is still a change, written without its event.
    expect(nodes.admit({ changes: [{ mac: MAC, state: 'pxe', time: NOW }], events: [] }).changes).toEqual([{ mac: MAC, state: 'pxe', time: NOW, event: false }]);
    db.close();
  });

  it('caps event rows per server per minute: the excess is counted and dropped with one log line', () => {
    const db = open();
    const { log, lines } = captureLogger({ pod: 'rack-t' });
    let clock = NOW * 1000;
    const nodes = new AdmittingNodeStore(new SqliteNodeStateStore(db), testPod(), log, { maxUnknownNodes: 10, maxEventsPerMinute: 5 }, () => clock);
    for (let i = 0; i < 50; i++) nodes.addEvent({ time: NOW, mac: MAC, kind: 'report-refused', detail: `#${i}` });
    for (let i = 0; i < 3; i++) nodes.addEvent({ time: NOW, mac: OTHER, kind: 'pxe-after-install' });
    expect(nodes.events(MAC, 1000)).toHaveLength(5);
    expect(nodes.events(OTHER, 1000)).toHaveLength(3);
    expect(nodes.counters.eventsDropped).toBe(45);
    const said = lines.filter((l) => l.msg === 'event rows over the per-server rate dropped');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ pod: 'rack-t', node: MAC, max: 5 });
    // The next minute has room again.
    clock += 60_000;
    nodes.addEvent({ time: NOW + 60, mac: MAC, kind: 'stage1' });
    expect(nodes.events(MAC, 1000)).toHaveLength(6);
    db.close();
  });
});

function credentials(
  db: ReturnType<typeof openPodDatabase>,
  nodes: AdmittingNodeStore | SqliteNodeStateStore,
  log: ReturnType<typeof captureLogger>['log'],
  fromServer = (_mac: string, source: string) => source === '10.20.0.10',
) {
  const inner = new SqliteNodeStateStore(db);
  return new InstallCredentials({
    pod: 'rack-t',
    log,
    secret: SECRET,
    tokens: new TokenAuthority(SECRET, inner),
    nodes,
    uses: new SqliteTokenUseStore(db),
    mayProvision: (mac) => (nodes instanceof AdmittingNodeStore ? nodes.mayProvision(mac).ok : true),
    fromServer,
    retryWindowSec: 60,
  });
}

const SECRET = Buffer.alloc(32, 7);

describe('install token → session exchange', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('one exchange from the server; a retry in the window gets the same session; any other use is a 401 and an event', () => {
    dir = mkdtempSync(join(tmpdir(), 'pb-session-'));
    const db = openPodDatabase(dir);
    const { log, lines } = captureLogger({ pod: 'rack-t' });
    const store = new SqliteNodeStateStore(db);
    const creds = credentials(db, store, log);
    const token = creds.mint(MAC, NOW)!;

    // Before its exchange the token buys nothing else, and a stranger cannot exchange (nor burn) it.
    expect(creds.authorize(token, '10.20.0.10', NOW)).toMatchObject({ ok: false, status: 401, reason: 'an install token is only good for POST /v1/session' });
    expect(creds.exchange(token, '10.20.0.66', NOW)).toMatchObject({ ok: false, status: 403 });
    const first = creds.exchange(token, '10.20.0.10', NOW);
    expect(first).toMatchObject({ ok: true, retried: false, mac: MAC });
    const session = (first as { session: string }).session;
    expect(creds.authorize(session, '10.20.0.10', NOW + 1)).toMatchObject({ ok: true, claims: { scope: 'install', mac: MAC, attempt: 1 } });
    // The answer was lost: the agent asks again from the same address within the window.
    expect(creds.exchange(token, '10.20.0.10', NOW + 30)).toEqual({ ok: true, session, mac: MAC, retried: true });
    // The same address after the window, another address at once, or the token where a session is wanted: replays.
    expect(creds.exchange(token, '10.20.0.10', NOW + 61)).toMatchObject({ ok: false, status: 401, reason: 'install token already used' });
    expect(creds.exchange(token, '10.20.0.66', NOW + 2)).toMatchObject({ ok: false, status: 401 });
    expect(creds.authorize(token, '10.20.0.66', NOW + 3)).toMatchObject({ ok: false, status: 401, reason: 'install token already used' });
    const replays = store.events(MAC).filter((e) => e.kind === 'install-token-replayed');
    expect(replays).toHaveLength(3);
    expect(replays.map((e) => e.detail)).toContain(`from 10.20.0.66; exchanged from 10.20.0.10 at ${new Date(NOW * 1000).toISOString()}`);
    expect(store.events(MAC).filter((e) => e.kind === 'install-token-exchanged')).toEqual([expect.objectContaining({ detail: 'from 10.20.0.10' })]);
    // Logged with pod, node and source; never a token or session.
    expect(lines.filter((l) => l.msg === 'install token replayed').find((l) => l.source === '10.20.0.66')).toMatchObject({ pod: 'rack-t', node: MAC, source: '10.20.0.66' });
    const text = JSON.stringify(lines);
    expect(text).not.toContain(token.split('.').at(-1));
    expect(text).not.toContain(session.split('.').at(-1));
    // The marker is a digest, never the token.
    expect(JSON.stringify(db.prepare('SELECT * FROM install_token_uses').all())).not.toContain(token.split('.').at(-1));

    // A restarted instance (new objects, same database): the replay is still refused.
    db.close();
    const db2 = openPodDatabase(dir);
    const store2 = new SqliteNodeStateStore(db2);
    const creds2 = credentials(db2, store2, log);
    expect(creds2.exchange(token, '10.20.0.66', NOW + 100)).toMatchObject({ ok: false, status: 401 });
    expect(store2.events(MAC).filter((e) => e.kind === 'install-token-replayed')).toHaveLength(4);
    // A new boot config's token is a new exchange.
    expect(creds2.exchange(creds2.mint(MAC, NOW + 200)!, '10.20.0.10', NOW + 200)).toMatchObject({ ok: true, retried: false });
    db2.close();
  });

  it('sessions die with a reinstall, are refused for an installed server, and cannot be made from any other token', () => {
    dir = mkdtempSync(join(tmpdir(), 'pb-session-'));
    const db = openPodDatabase(dir);
    const { log } = captureLogger();
    const store = new SqliteNodeStateStore(db);
    const creds = credentials(db, store, log);
    const session = creds.session(MAC, NOW);
    expect(session).toMatch(/^pb1s\.525400200010\.1\./);
    expect(creds.authorize(session, 'x', NOW + 3600)).toMatchObject({ ok: true });
    expect(creds.authorize(session, 'x', NOW + 4 * 3600)).toMatchObject({ ok: false, status: 401, reason: 'session expired' });
    // Signed with the token secret itself (not the derived key): not a session.
    expect(checkSession(sessionKey(SECRET), issueSession(SECRET, { mac: MAC, attempt: 1, expires: NOW + 60 }), NOW)).toMatchObject({ ok: false, reason: 'bad-signature' });
    // A node token is not exchanged; a reinstall kills sessions of the old attempt.
    expect(creds.exchange(issueToken(SECRET, { scope: 'node', mac: MAC, attempt: 1, expires: NOW + 60 }), '10.20.0.10', NOW)).toMatchObject({ ok: false, status: 403 });
    store.reinstall(MAC, NOW, 'test');
    expect(creds.authorize(session, 'x', NOW + 1)).toMatchObject({ ok: false, status: 403 });
    // Installed: its install token buys no session, and the refusal is an event.
    store.changeInstallState({ mac: MAC, state: 'installed', time: NOW + 2 });
    expect(creds.exchange(creds.mint(MAC, NOW + 3)!, '10.20.0.10', NOW + 3)).toMatchObject({ ok: false, status: 403 });
    expect(store.events(MAC).some((e) => e.kind === 'install-request-after-install')).toBe(true);
    db.close();
  });
});
