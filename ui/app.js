// The operator page of the central node (docs/web-page.md). Everything it
// shows comes from the JSON API with the operator's bearer token; the token is
// kept in this tab's sessionStorage only (never in a URL, a cookie or a log).
// Data reaches the DOM through textContent only: pod names, exit reasons and
// log lines are never parsed as HTML.

const TOKEN_KEY = 'podboot.token';
const VIEW_KEY = 'podboot.view';
const REFRESH_MS = 5000;
/** the install steps a server goes through, in order (src/install/state.ts) */
const STEPS = ['discovered', 'pxe', 'stage1', 'stage2-fetched', 'verified', 'installing', 'installed'];
const INSTALLING = new Set(['pxe', 'stage1', 'stage2-fetched', 'verified', 'installing']);
const INSTALLED = new Set(['installed', 'booted-from-disk']);
const BAD_EVENTS = new Set(['crashed', 'crash-loop', 'refused', 'probe-failed', 'rolling-aborted']);
const MAX_EVENTS = 100;
/**
 * A pod's servers are drawn a page at a time: a pod of thousands would
 * otherwise put tens of thousands of elements on the page at every refresh.
 * One page holds a whole rack of the usual size.
 */
const PAGE_SIZE = 200;
/**
 * An opened pod of more servers than this has its list fetched again only
 * every LARGE_EVERY refreshes, or at once when its counts per state change,
 * it is opened again or a server in it is reinstalled: for 5,000 servers one
 * list is ~1.7 MB and ~150 ms of the central node's event loop.
 */
const LARGE_POD = 1000;
const LARGE_EVERY = 6;
/** the order of the per-state counts over a pod's servers */
const STATE_ORDER = [...STEPS, 'booted-from-disk', 'failed'];
/** a task in one of these can still be cancelled (src/tasks/state.ts) */
const OPEN_TASK = new Set(['queued', 'delivered', 'running']);
/**
 * A task's log is drawn up to this many lines (its last ones): a stream may
 * hold 8 MiB, and the whole page is drawn again at every refresh.
 */
const LOG_LINES = 5000;
/**
 * A rollout's phases and what an operator may do in each: the same rules as
 * the API's (src/rollout/central.ts actOnRollout), so a button is shown only
 * where the API would take it.
 */
const OPEN_PHASES = new Set(['canary', 'canary-passed', 'promoting', 'paused', 'rolling-back']);
const PAUSABLE = new Set(['canary', 'canary-passed', 'promoting', 'rolling-back']);
const ROLLBACKABLE = new Set(['canary', 'canary-passed', 'promoting', 'paused', 'completed']);
/** the order releases are listed in */
const RELEASE_ROLES = ['active', 'previous', 'canary', 'staged'];
/** a rollout's servers drawn at most (one row per server and pass; `podboot rollout status` has them all) */
const ROLLOUT_ROWS = 200;

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

const view = loadView();
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
let timer;
let lastEventSeq = 0;
let data = { instances: [], refused: [], counts: new Map(), nodes: new Map(), tasks: new Map(), rollouts: new Map() };
const events = [];
/** per opened pod: the text in its server filter and the page shown; kept across refreshes */
const racks = new Map();
/** refreshes done, and per opened pod at which one its list was fetched, with its counts then */
let refreshNo = 0;
const fetched = new Map();
/** per opened pod: the task whose log is shown, and that log as last fetched ({id, key, task, chunks} or {id, error}) */
const taskViews = new Map();
/** per opened pod: what is typed in its rollout start form, and the API's answer to the last start ({values, error}); kept across refreshes */
const rolloutForms = new Map();

function loadView() {
  try {
    const v = JSON.parse(sessionStorage.getItem(VIEW_KEY) ?? '{}');
    return { key: typeof v.key === 'string' ? v.key : 'name', dir: v.dir === -1 ? -1 : 1, expanded: new Set(Array.isArray(v.expanded) ? v.expanded : []), filter: '' };
  } catch {
    return { key: 'name', dir: 1, expanded: new Set(), filter: '' };
  }
}

function saveView() {
  sessionStorage.setItem(VIEW_KEY, JSON.stringify({ key: view.key, dir: view.dir, expanded: [...view.expanded] }));
}

async function api(path, { method = 'GET', body, auth = token } = {}) {
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    headers: { authorization: `Bearer ${auth}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401 || res.status === 403) throw new AuthError(`HTTP ${res.status}`);
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.error ? `HTTP ${res.status}: ${json.error}` : `HTTP ${res.status}`);
  return json;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children.filter((c) => c !== undefined && c !== null));
  return e;
}

/** what the banner is about: a refresh that works again only clears its own kind ('network'), not a failed action */
let errorKind = '';

function showError(text, kind = '') {
  const box = $('error');
  box.textContent = text;
  box.hidden = !text;
  errorKind = text ? kind : '';
}

// ---- formatting ----------------------------------------------------------

const NUMBER = new Intl.NumberFormat('en-US');
const PLURAL = new Intl.PluralRules('en-US');

/** "1 server", "0 servers", "5,000 servers": every count on the page goes through here */
function count(n, one, other = `${one}s`) {
  return `${NUMBER.format(n)} ${PLURAL.select(n) === 'one' ? one : other}`;
}

const fmt = {
  cpu: (v) => (v === undefined ? '' : v.toFixed(1)),
  rss: (v) => (v === undefined ? '' : `${(v / 1048576).toFixed(1)} MiB`),
  int: (v) => (v === undefined ? '' : String(v)),
  duration(sec) {
    if (sec === undefined) return '';
    const d = Math.floor(sec / 86400),
      h = Math.floor((sec % 86400) / 3600),
      m = Math.floor((sec % 3600) / 60),
      s = Math.floor(sec % 60);
    const two = (n) => String(n).padStart(2, '0');
    if (d) return `${d}d ${two(h)}h`;
    if (h) return `${h}h ${two(m)}m`;
    if (m) return `${m}m ${two(s)}s`;
    return `${s}s`;
  },
  ago(unixSec) {
    if (!unixSec) return '';
    return `${fmt.duration(Math.max(0, Date.now() / 1000 - unixSec))} ago`;
  },
  time: (iso) => new Date(iso).toLocaleTimeString(undefined, { hour12: false }),
};

// ---- sorting -------------------------------------------------------------

/** what each sortable column sorts by; undefined (a stopped pod has no PID) always sorts last */
const SORT_VALUE = {
  name: (i) => i.pod,
  state: (i) => i.state,
  pid: (i) => i.pid,
  cpu: (i) => i.cpuPercent,
  rss: (i) => i.rssBytes,
  threads: (i) => i.threads,
  uptime: (i) => i.uptimeSec,
  restarts: (i) => i.restarts,
  servers: (i) => data.counts.get(i.pod)?.total,
};

function compareInstances(a, b) {
  const get = SORT_VALUE[view.key] ?? SORT_VALUE.name;
  const va = get(a),
    vb = get(b);
  if (va === undefined || vb === undefined) {
    if (va !== vb) return va === undefined ? 1 : -1;
  } else {
    const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb), undefined, { numeric: true });
    if (c !== 0) return c * view.dir;
  }
  return a.pod.localeCompare(b.pod, undefined, { numeric: true });
}

function sortBy(key) {
  if (view.key === key) view.dir = -view.dir;
  else {
    view.key = key;
    view.dir = 1;
  }
  saveView();
  render();
}

// ---- rendering -----------------------------------------------------------

function podMatches(i) {
  const f = view.filter;
  if (!f) return true;
  const macs = (data.nodes.get(i.pod) ?? []).map((n) => `${n.mac} ${n.ip ?? ''} ${n.hostname ?? ''}`).join(' ');
  return `${i.pod} ${i.state} ${i.degradeReason ?? ''} ${macs}`.toLowerCase().includes(f);
}

function render() {
  for (const th of document.querySelectorAll('#pods thead th[data-key]')) {
    th.setAttribute('aria-sort', th.dataset.key === view.key ? (view.dir === 1 ? 'ascending' : 'descending') : 'none');
  }
  const rows = data.instances.filter(podMatches).sort(compareInstances);
  keepFocus(() => $('pods').tBodies[0].replaceChildren(...rows.flatMap((i) => podRows(i))));
  $('shown').textContent = view.filter ? `${NUMBER.format(rows.length)} of ${count(data.instances.length, 'pod')}` : '';
  renderSummary();
  renderRefused();
  renderEvents();
}

/**
 * Re-rendering replaces buttons and inputs: the keyboard focus (and in a
 * text box, the caret) goes back to the element that stands for the same thing.
 */
function keepFocus(replace) {
  const active = document.activeElement;
  const focused = active?.dataset?.focus;
  const caret = focused && typeof active.selectionStart === 'number' ? [active.selectionStart, active.selectionEnd] : undefined;
  // A box scrolled by the operator (a task's log) keeps its place; one scrolled to its end stays at the end as it grows, as a tail would.
  const scrolled = [...document.querySelectorAll('[data-scroll]')].map((e) => [e.dataset.scroll, e.scrollTop, e.scrollTop + e.clientHeight >= e.scrollHeight - 2]);
  replace();
  for (const [key, top, atEnd] of scrolled) {
    const again = document.querySelector(`[data-scroll="${CSS.escape(key)}"]`);
    if (again) again.scrollTop = atEnd ? again.scrollHeight : top;
  }
  if (!focused || document.activeElement?.dataset?.focus === focused) return;
  const again = document.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
  again?.focus();
  if (again && caret) again.setSelectionRange(...caret);
}

function stateBadge(state, extra) {
  return el('span', { class: `state state-${state}`, text: extra ? `${state} (${extra})` : state });
}

function nodeCounts(pod) {
  const c = data.counts.get(pod);
  if (!c?.total) return el('span', { class: 'counts', text: 'none yet' });
  let installing = 0,
    installed = 0,
    failed = 0,
    other = 0;
  for (const [state, n] of Object.entries(c.states)) {
    if (INSTALLING.has(state)) installing += n;
    else if (INSTALLED.has(state)) installed += n;
    else if (state === 'failed') failed += n;
    else other += n;
  }
  const part = (n, cls, label) => (n ? el('span', { class: cls, text: `${NUMBER.format(n)} ${label}` }) : null);
  return el('span', { class: 'counts' }, part(installed, 'installed', 'installed'), part(installing, 'installing', 'installing'), part(failed, 'failed', 'failed'), part(other, 'other', 'discovered'));
}

function podRows(i) {
  const open = view.expanded.has(i.pod);
  const num = (col, value, text) => el('td', { class: 'num', dataset: { col, ...(value !== undefined ? { value: String(value) } : {}) }, text });
  const exit = i.lastExit;
  const row = el(
    'tr',
    { class: 'pod', dataset: { pod: i.pod } },
    el(
      'th',
      { scope: 'row', dataset: { col: 'name' } },
      el('button', {
        type: 'button',
        class: 'expand',
        'aria-expanded': open ? 'true' : 'false',
        'aria-controls': `detail-${i.pod}`,
        dataset: { focus: `expand:${i.pod}` },
        onclick: () => toggle(i.pod),
        text: i.pod,
      }),
    ),
    el('td', { dataset: { col: 'state' } }, stateBadge(i.state, i.degraded && i.state !== 'degraded' ? 'degraded' : undefined)),
    num('pid', i.pid, fmt.int(i.pid)),
    num('cpu', i.cpuPercent, fmt.cpu(i.cpuPercent)),
    num('rss', i.rssBytes, fmt.rss(i.rssBytes)),
    num('threads', i.threads, fmt.int(i.threads)),
    num('uptime', i.uptimeSec, fmt.duration(i.uptimeSec)),
    num('restarts', i.restarts, fmt.int(i.restarts)),
    el('td', { dataset: { col: 'servers' } }, nodeCounts(i.pod)),
    el('td', { dataset: { col: 'heartbeats' } }, heartbeatCounts(data.counts.get(i.pod)?.heartbeats)),
    el('td', { class: 'exit', dataset: { col: 'exit' }, title: exit?.lastLog, text: exit ? `${exit.reason} (${fmt.time(exit.at)})` : '' }),
    el('td', { class: 'actions' }, ...podActions(i)),
  );
  if (!open) return [row];
  return [row, el('tr', { class: 'detail', id: `detail-${i.pod}`, dataset: { detail: i.pod } }, el('td', { colspan: 12 }, podDetail(i)))];
}

function podActions(i) {
  const b = (action, label, confirmText) =>
    el('button', { type: 'button', dataset: { action, focus: `${action}:${i.pod}` }, onclick: () => podAction(i.pod, action, label, confirmText), text: label });
  const stopped = i.state === 'stopped' || i.state === 'stopping';
  return [
    stopped
      ? b('start', 'Start', `Start pod ${i.pod}'s instance.`)
      : b('restart', 'Restart', `Restart pod ${i.pod}'s instance (PID ${i.pid ?? '–'}): stopped gracefully, then started again; its leases are kept.`),
    stopped ? null : b('stop', 'Stop', `Stop pod ${i.pod}'s instance. It stays stopped until started again: its racks get no DHCP answer meanwhile.`),
    i.degraded ? b('undegrade', 'Resume', `Resume new installs in pod ${i.pod}.`) : b('degrade', 'Degrade', `Degrade pod ${i.pod}: no new installs start, leases are still served.`),
  ].filter(Boolean);
}

function podDetail(i) {
  const nodes = data.nodes.get(i.pod);
  const m = i.metrics;
  const facts = [
    `file ${i.file}`,
    i.self?.leases !== undefined ? count(i.self.leases, 'lease') : null,
    m ? `DHCP ${NUMBER.format(m.dhcpReceived)} in / ${NUMBER.format(m.dhcpSent)} out / ${NUMBER.format(m.dhcpDropped)} dropped` : null,
    m ? `TFTP ${count(m.tftpRequests, 'request')}` : null,
    i.degradeReason ? `degraded: ${i.degradeReason}` : null,
    i.nextStartAt ? `next start ${fmt.time(i.nextStartAt)}` : null,
  ].filter(Boolean);
  const failedProbes = (i.self?.probes ?? []).filter((p) => !p.ok).map((p) => `${p.listener}: ${p.detail ?? 'failed'}`);
  const head = el('p', { class: 'facts', text: facts.join(' · ') });
  const probes = failedProbes.length ? el('p', { class: 'error', text: `self-probe failed: ${failedProbes.join('; ')}` }) : null;
  const beats = heartbeatLine(data.counts.get(i.pod)?.heartbeats);
  const rollout = rolloutPanel(i.pod);
  const tasks = tasksPanel(i.pod);
  if (!nodes) return el('div', {}, head, probes, beats, el('p', { text: 'loading servers…' }), rollout, tasks);
  if (!nodes.length) return el('div', {}, head, probes, beats, el('p', { text: 'This pod has not seen any server yet.' }), rollout, tasks);
  return el('div', {}, head, probes, beats, rackPanel(i.pod, nodes), rollout, tasks);
}

// ---- a pod's heartbeats (its site's summary) -------------------------------

const percent = (ratio) => `${Math.round(ratio * 100)}%`;
const twoPlaces = (v) => v.toFixed(2);

/** The pod row's part: how many of its installed servers report, how many went silent. */
function heartbeatCounts(hb) {
  if (!hb) return null;
  return el(
    'span',
    { class: 'heartbeat-counts', title: hb.reporting ? heartbeatFigures(hb).join(' · ') : undefined },
    el('span', { class: 'liveness-active', dataset: { hb: 'active' }, text: `${NUMBER.format(hb.active)} active` }),
    hb.silent ? ' ' : null,
    hb.silent ? el('span', { class: 'liveness-silent', dataset: { hb: 'silent' }, text: `${NUMBER.format(hb.silent)} silent` }) : null,
  );
}

/** Load, memory and disk over the servers' last heartbeats, as the API sums them up (avg and max). */
function heartbeatFigures(hb) {
  const fig = (key, label, show) => (hb[key] ? `${label} avg ${show(hb[key].avg)}, max ${show(hb[key].max)}` : null);
  return [fig('load1', 'load', twoPlaces), fig('memoryUsedRatio', 'memory', percent), fig('diskUsedRatio', 'disk', percent)].filter(Boolean);
}

/** The opened pod's summary of its installed servers' node agents. */
function heartbeatLine(hb) {
  if (!hb) return null;
  const part = (key, label, show) =>
    hb[key] ? [' · ', el('span', { dataset: { hb: key, avg: String(hb[key].avg), max: String(hb[key].max) }, text: `${label} avg ${show(hb[key].avg)}, max ${show(hb[key].max)}` })] : [];
  return el(
    'p',
    {
      class: 'heartbeats',
      title: 'over the last heartbeat of every booted-from-disk server, a silent one included (its last known state)',
      dataset: { active: String(hb.active), silent: String(hb.silent), reporting: String(hb.reporting) },
    },
    el('strong', { text: 'Heartbeats: ' }),
    el('span', { class: 'liveness-active', dataset: { hb: 'active' }, text: `${NUMBER.format(hb.active)} active` }),
    ', ',
    el('span', { class: hb.silent ? 'liveness-silent' : '', dataset: { hb: 'silent' }, text: `${NUMBER.format(hb.silent)} silent` }),
    ...part('load1', 'load', twoPlaces),
    ...part('memoryUsedRatio', 'memory', percent),
    ...part('diskUsedRatio', 'disk', percent),
    hb.time ? el('span', { class: 'muted', title: new Date(hb.time.max * 1000).toISOString(), text: ` · newest ${fmt.ago(hb.time.max)}` }) : null,
  );
}

// ---- a pod's releases and rollout (docs/web-page.md) ------------------------

function rolloutForm(pod) {
  let f = rolloutForms.get(pod);
  if (!f) rolloutForms.set(pod, (f = { values: { target: '', select: '', canary: '', batch: '1', maxFailures: '1' }, error: '', busy: false }));
  return f;
}

/** Its releases, its newest rollout (phase, settings, actions, servers), and a form to start one when none is open. */
function rolloutPanel(pod) {
  const got = data.rollouts.get(pod);
  const label = { class: 'rollout', 'aria-label': `releases and rollout of pod ${pod}`, dataset: { rollout: pod } };
  const head = el('h3', { text: 'Releases and rollout' });
  if (!got) return el('section', label, head, el('p', { class: 'muted', text: 'loading…' }));
  if (got.error) return el('section', label, head, el('p', { class: 'error', text: `could not read them: ${got.error}` }));
  const { releases, rollout: r, servers } = got.status;
  const open = r && OPEN_PHASES.has(r.phase);
  return el(
    'section',
    label,
    head,
    releasesLine(releases),
    r ? rolloutSummary(pod, r, servers) : el('p', { class: 'muted', dataset: { noRollout: '' }, text: `No rollout yet (podboot rollout start --pod ${pod} IMAGE@VERSION).` }),
    r ? rolloutServers(pod, r, servers) : null,
    open ? el('p', { class: 'muted', text: `A new rollout can start once rollout ${r.id} has completed or been rolled back.` }) : startForm(pod),
  );
}

function releasesLine(releases) {
  const shown = RELEASE_ROLES.flatMap((role) => releases.filter((x) => x.role === role));
  if (!shown.length) return el('p', { class: 'releases muted', text: 'Releases: none recorded (the pod file names no spec.stage2).' });
  return el(
    'p',
    { class: 'releases' },
    el('strong', { text: 'Releases: ' }),
    ...shown.flatMap((x, k) => [
      k ? ' · ' : null,
      el(
        'span',
        { class: `release release-${x.role}`, dataset: { role: x.role, ref: x.ref }, title: `${x.role} since ${when(x.changedAt).title}, by ${x.changedBy}${x.why ? `: ${x.why}` : ''}` },
        `${x.role} `,
        el('span', { class: 'mono', text: x.ref }),
      ),
    ]),
  );
}

function rolloutSummary(pod, r, servers) {
  const phaseText = r.phase === 'paused' && r.pausedFrom ? `paused (from ${r.pausedFrom})` : r.phase;
  const head = el(
    'p',
    { class: 'rollout-head' },
    el('strong', { text: `Rollout ${r.id}` }),
    ' to ',
    el('span', { class: 'mono', dataset: { target: r.target }, text: r.target }),
    r.previous ? ` (from ${r.previous})` : null,
    ': ',
    el('span', { class: `state phase phase-${r.phase}`, dataset: { phase: r.phase }, text: phaseText }),
  );
  // A pause stands out with its reason: by itself (how many servers failed) or by an operator (what they gave).
  const reason = r.phase === 'paused' ? el('p', { class: 'paused-reason', dataset: { pausedReason: '' } }, el('strong', { text: 'Paused: ' }), r.reason ?? 'no reason recorded') : null;
  const other = r.phase !== 'paused' && r.reason ? el('p', { class: 'rollout-reason', dataset: { reason: '' }, text: `Reason: ${r.reason}` }) : null;
  const started = when(r.createdAt);
  const fact = (key, text) => el('span', { dataset: { fact: key }, text });
  const facts = el(
    'p',
    { class: 'rollout-facts' },
    ...[
      fact('selector', `selector ${r.selector || '(every server)'}`),
      fact('canary', `canary ${r.canary}`),
      fact('batch', `batch ${r.batch}`),
      fact('max-failures', `max failures ${r.maxFailures}`),
      fact('timeout', `server timeout ${fmt.duration(r.serverTimeout)}`),
      el('span', { dataset: { fact: 'started' }, title: started.title, text: `started ${started.text} by ${r.createdBy}` }),
    ].flatMap((f, k) => [k ? ' · ' : null, f]),
  );
  return el('div', { class: 'rollout-summary' }, head, reason, other, facts, rolloutActions(pod, r, servers));
}

/** Only the buttons the API takes in this phase (src/rollout/central.ts actOnRollout). */
function rolloutActions(pod, r, servers) {
  const b = (action, label, onclick) => el('button', { type: 'button', dataset: { rolloutAction: action, focus: `rollout-${action}:${pod}` }, onclick, text: label });
  const path = (action) => `/api/v1/pods/${encodeURIComponent(pod)}/rollout/${action}`;
  const buttons = [];
  if (PAUSABLE.has(r.phase)) buttons.push(b('pause', 'Pause', () => act(`Pause rollout ${r.id}`, path('pause'))));
  if (r.phase === 'paused' && r.pausedFrom) buttons.push(b('resume', 'Resume', () => act(`Resume rollout ${r.id}`, path('resume'))));
  if (r.phase === 'canary-passed') buttons.push(b('promote', 'Promote', () => promoteRollout(pod, r, servers)));
  if (ROLLBACKABLE.has(r.phase) && !(r.phase === 'paused' && r.pausedFrom === 'rolling-back') && r.previous) {
    buttons.push(b('rollback', 'Rollback', () => rollBack(pod, r, servers)));
  }
  return buttons.length ? el('p', { class: 'rollout-actions' }, ...buttons) : null;
}

const WHY_LABEL = "Reason (recorded with the release change and in the pod's events)";

async function promoteRollout(pod, r, servers) {
  const rest = servers.filter((s) => s.pass === 'forward' && s.state === 'pending').length;
  const text = `${r.target} becomes pod ${pod}'s active release${r.previous ? ` (${r.previous} previous)` : ''}, and the ${count(rest, 'other selected server')} are reinstalled with it, ${r.batch} at a time, each batch once the last one booted from its disk with it.`;
  const why = await confirmWith(`Promote rollout ${r.id}?`, text, 'Promote', WHY_LABEL);
  if (why === null) return;
  await act(`Promote rollout ${r.id}`, `/api/v1/pods/${encodeURIComponent(pod)}/rollout/promote`, why ? { why } : undefined);
}

async function rollBack(pod, r, servers) {
  const touched = servers.filter((s) => s.pass === 'forward' && (s.state === 'installing' || s.state === 'done' || s.state === 'failed')).length;
  const text = `${r.previous} becomes pod ${pod}'s active release again, and the ${count(touched, 'server')} this rollout reinstalled ${touched === 1 ? 'is' : 'are'} reinstalled with it, ${r.batch} at a time; servers it has not started are left as they are. Nothing is downloaded: the pod keeps its copy.`;
  const why = await confirmWith(`Roll back rollout ${r.id}?`, text, 'Rollback', WHY_LABEL);
  if (why === null) return;
  await act(`Rollback of rollout ${r.id}`, `/api/v1/pods/${encodeURIComponent(pod)}/rollout/rollback`, why ? { why } : undefined);
}

function rolloutServers(pod, r, servers) {
  if (!servers.length) return null;
  const passes = ['forward', 'back'].filter((p) => servers.some((s) => s.pass === p));
  const counts = el(
    'p',
    { class: 'rollout-counts' },
    ...passes.flatMap((pass, k) => {
      const mine = servers.filter((s) => s.pass === pass);
      const byState = new Map();
      for (const s of mine) byState.set(s.state, (byState.get(s.state) ?? 0) + 1);
      return [
        k ? ' · ' : null,
        el('span', { dataset: { pass } }, `${pass === 'forward' ? `to ${r.target}` : `back to ${r.previous ?? 'the previous release'}`}: ${count(mine.length, 'server')} (`),
        ...[...byState].flatMap(([s, n], j) => [j ? ', ' : null, el('span', { class: `rollout-state-${s}`, dataset: { pass, state: s }, text: `${NUMBER.format(n)} ${s}` })]),
        ')',
      ];
    }),
  );
  const shown = servers.slice(0, ROLLOUT_ROWS);
  const note =
    shown.length < servers.length
      ? el('p', { class: 'muted', text: `the first ${NUMBER.format(shown.length)} of ${count(servers.length, 'row')} shown (podboot rollout status --pod ${pod} has them all)` })
      : null;
  const table = el(
    'table',
    { class: 'rollout-servers', 'aria-label': `servers of rollout ${r.id} in pod ${pod}` },
    el('thead', {}, el('tr', {}, ...['Server', 'Hostname', 'Pass', 'Canary', 'Batch', 'State', 'Image on disk', 'Detail'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...shown.map((s) => rolloutServerRow(s))),
  );
  return el('div', {}, counts, note, el('div', { class: 'scroll' }, table));
}

function rolloutServerRow(s) {
  const onTarget = s.nodeImage !== undefined && s.nodeImage === s.image;
  return el(
    'tr',
    { dataset: { mac: s.mac, pass: s.pass, state: s.state } },
    el('td', { class: 'mono', dataset: { col: 'mac' }, text: s.mac }),
    el('td', { dataset: { col: 'hostname' }, text: s.hostname ?? '' }),
    el('td', { dataset: { col: 'pass' }, title: `this pass installs ${s.image}`, text: s.pass }),
    el('td', { dataset: { col: 'canary' }, text: s.canary ? 'canary' : '' }),
    el('td', { class: 'num', dataset: { col: 'batch' }, text: s.batch === undefined ? '' : String(s.batch) }),
    el('td', { dataset: { col: 'state' } }, el('span', { class: `state rollout-state-${s.state}`, text: s.state })),
    el('td', {
      class: onTarget ? 'mono image-target' : 'mono',
      dataset: { col: 'image' },
      title: s.nodeState ? `install state ${s.nodeState}; this pass installs ${s.image}` : undefined,
      text: s.nodeImage ?? '',
    }),
    el('td', { class: 'rollout-detail', dataset: { col: 'detail' }, text: s.detail ?? '' }),
  );
}

/** The start form; what is typed stays across refreshes (and so does the API's refusal, until the next start). */
function startForm(pod) {
  const f = rolloutForm(pod);
  const field = (name, label, attrs = {}) => {
    const input = el('input', {
      name,
      id: `rollout-${name}-${pod}`,
      value: f.values[name],
      autocomplete: 'off',
      spellcheck: 'false',
      dataset: { focus: `rollout-${name}:${pod}` },
      ...attrs,
    });
    input.addEventListener('input', () => {
      f.values[name] = input.value;
    });
    return el('label', { class: 'field' }, el('span', { text: label }), input);
  };
  const form = el(
    'form',
    { class: 'rollout-start', autocomplete: 'off', 'aria-label': `start a rollout in pod ${pod}`, dataset: { rolloutStart: pod } },
    el('strong', { text: 'Start a rollout' }),
    field('target', 'Image', { placeholder: 'IMAGE@VERSION', required: true, size: 18 }),
    field('select', 'Selector', { placeholder: 'role=web', title: 'a label selector (role=web,rack!=b); empty: every server of the pod file', size: 22 }),
    field('canary', 'Canary', { placeholder: '1 or 10%', title: 'a count or a share of the selected servers; empty: no canary', size: 8 }),
    field('batch', 'Batch', { type: 'number', min: 1, max: 10000, class: 'small' }),
    field('maxFailures', 'Max failures', { type: 'number', min: 1, max: 10000, class: 'small' }),
    el('button', { type: 'submit', disabled: f.busy, dataset: { focus: `rollout-submit:${pod}` }, text: f.busy ? 'Starting…' : 'Start…' }),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void startFromForm(pod);
  });
  const error = f.error ? el('p', { class: 'error', role: 'alert', dataset: { startError: pod }, text: `Start refused: ${f.error}` }) : null;
  return el('div', {}, form, error);
}

/** A whole number as a number, anything else as typed: the API names what is wrong with it. */
const asNumber = (text) => (/^\d+$/.test(text) ? Number(text) : text);

async function startFromForm(pod) {
  const f = rolloutForm(pod);
  const v = Object.fromEntries(Object.entries(f.values).map(([k, x]) => [k, x.trim()]));
  const body = {
    target: v.target,
    ...(v.select ? { select: v.select } : {}),
    ...(v.canary ? { canary: v.canary } : {}),
    ...(v.batch ? { batch: asNumber(v.batch) } : {}),
    ...(v.maxFailures ? { maxFailures: asNumber(v.maxFailures) } : {}),
  };
  const which = v.select ? `the servers ${v.select} selects` : 'every server of its pod file (but pinned ones)';
  const first = v.canary && v.canary !== '0' ? `canary ${v.canary} first, the rest after a promote, ` : '';
  const text = `Pod ${pod}: ${which} will be reinstalled with ${v.target || '(no image)'}, ${first}${v.batch || 1} at a time; it pauses by itself after ${v.maxFailures || 1} failed. The pod's copies of the images are hashed again first.`;
  const why = await confirmWith(`Start a rollout of ${v.target || '(no image)'}?`, text, 'Start rollout', WHY_LABEL);
  if (why === null) return;
  if (why) body.why = why;
  f.busy = true;
  f.error = '';
  render();
  try {
    await api(`/api/v1/pods/${encodeURIComponent(pod)}/rollout`, { method: 'POST', body });
    f.values = { target: '', select: '', canary: '', batch: '1', maxFailures: '1' };
  } catch (err) {
    if (err instanceof AuthError) return signOut(`The central node no longer accepts this token (${err.message}). Paste the operator token again.`);
    f.error = err.message;
  } finally {
    f.busy = false;
  }
  render();
  await refresh();
}

// ---- a pod's tasks -------------------------------------------------------

function taskView(pod) {
  let v = taskViews.get(pod);
  if (!v) taskViews.set(pod, (v = {}));
  return v;
}

/** unix seconds as the time of day, the full date and time on hover */
function when(sec) {
  if (!sec) return { text: '' };
  const d = new Date(sec * 1000);
  return { text: d.toLocaleTimeString(undefined, { hour12: false }), title: d.toISOString() };
}

/** What a refresh compares to know the shown log is out of date. */
const logKey = (t) => `${t.state}:${t.stdoutLength}:${t.stderrLength}`;

function tasksPanel(pod) {
  const got = data.tasks.get(pod);
  const head = el('h3', { text: 'Tasks' });
  const label = { class: 'tasks', 'aria-label': `tasks of pod ${pod}`, dataset: { tasks: pod } };
  // Without tasks to list, one line: a rack's servers stay near the top of the page.
  const short = (cls, text) => el('section', label, el('p', { class: cls }, el('strong', { text: 'Tasks: ' }), text));
  if (!got) return short('muted', 'loading…');
  if (got.error) return short('error', `could not list them: ${got.error}`);
  if (!got.tasks.length) return short('muted', `none yet (podboot tasks run … --pod ${pod}).`);
  const v = taskView(pod);
  const byState = new Map();
  for (const t of got.tasks) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
  const counts = el(
    'p',
    { class: 'task-counts' },
    count(got.tasks.length, 'task'),
    ': ',
    ...[...byState].flatMap(([s, n], k) => [k ? ', ' : null, el('span', { class: `task-state-${s}`, dataset: { state: s }, text: `${NUMBER.format(n)} ${s}` })]),
  );
  const table = el(
    'table',
    { class: 'tasks', 'aria-label': `tasks of pod ${pod}, newest first` },
    el('thead', {}, el('tr', {}, ...['ID', 'Template', 'Server', 'State', 'Exit', 'Reason', 'Created', 'Finished', ''].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...got.tasks.map((t) => taskRow(pod, t, v.selected === t.id))),
  );
  const selected = v.selected && got.tasks.find((t) => t.id === v.selected);
  return el('section', label, head, counts, el('div', { class: 'scroll' }, table), selected ? taskLog(pod, selected, v) : null);
}

function taskRow(pod, t, open) {
  const created = when(t.createdAt);
  const finished = when(t.finishedAt);
  return el(
    'tr',
    { dataset: { task: t.id, state: t.state }, class: open ? 'selected' : undefined },
    el(
      'td',
      { class: 'mono', dataset: { col: 'id' } },
      el('button', {
        type: 'button',
        class: 'task-open',
        'aria-expanded': open ? 'true' : 'false',
        'aria-controls': `task-log-${pod}-${t.id}`,
        title: open ? 'hide its log' : 'show its log',
        dataset: { focus: `task:${pod}:${t.id}` },
        onclick: () => selectTask(pod, t.id),
        text: t.id,
      }),
    ),
    el('td', { dataset: { col: 'template' }, text: t.template }),
    el('td', { dataset: { col: 'server' }, class: t.hostname ? undefined : 'mono', title: t.mac, text: t.hostname ?? t.mac }),
    el('td', { dataset: { col: 'state' } }, el('span', { class: `state task-state-${t.state}`, text: t.state })),
    el('td', { class: 'num', dataset: { col: 'exit' }, text: t.exitCode === undefined ? '' : String(t.exitCode) }),
    el('td', { class: 'task-reason', dataset: { col: 'reason' }, text: t.reason ?? '' }),
    el('td', { dataset: { col: 'created' }, title: created.title, text: created.text }),
    el('td', { dataset: { col: 'finished' }, title: finished.title, text: finished.text }),
    el(
      'td',
      { class: 'node-actions' },
      OPEN_TASK.has(t.state) ? el('button', { type: 'button', dataset: { action: 'cancel-task', focus: `cancel-task:${pod}:${t.id}` }, onclick: () => cancelTask(pod, t), text: 'Cancel' }) : null,
    ),
  );
}

/** The shown task's output, both streams in the order they reached the pod; stderr marked apart. Text only: it is whatever the script printed. */
function taskLog(pod, t, v) {
  const box = { class: 'task-log', id: `task-log-${pod}-${t.id}`, dataset: { taskLog: t.id } };
  const title = el('h4', { text: `Log of task ${t.id} (${t.template} on ${t.hostname ?? t.mac}, ${t.state})` });
  const logs = v.logs?.id === t.id ? v.logs : undefined;
  if (!logs) return el('div', box, title, el('p', { text: 'loading the log…' }));
  if (logs.error) return el('div', box, title, el('p', { class: 'error', text: `Could not read the log: ${logs.error}` }));
  const lines = logLines(logs.chunks);
  const shown = lines.slice(-LOG_LINES);
  const note = [
    `stdout ${count(t.stdoutLength, 'byte')}, stderr ${count(t.stderrLength, 'byte')}`,
    lines.length > shown.length ? `the last ${NUMBER.format(shown.length)} of ${count(lines.length, 'line')} shown (podboot tasks logs ${t.id} --pod ${pod} has them all)` : null,
  ].filter(Boolean);
  const legend = el('p', { class: 'log-legend' }, el('span', { class: 'log-stdout', text: 'stdout' }), ' ', el('span', { class: 'log-stderr', text: 'stderr' }), ` · ${note.join(' · ')}`);
  if (!shown.length) return el('div', box, title, legend, el('p', { class: 'muted', text: 'No output yet.' }));
  const pre = el(
    'pre',
    { class: 'log', tabindex: '0', 'aria-label': `output of task ${t.id}`, dataset: { scroll: `log:${pod}:${t.id}`, focus: `log:${pod}:${t.id}` } },
    ...shown.map(([stream, text]) => el('span', { class: `line log-${stream}`, dataset: { stream }, text })),
  );
  return el('div', box, title, legend, pre);
}

/** Chunks as [stream, line] pairs; a line a chunk left unfinished goes on in the next chunk of its stream. */
function logLines(chunks) {
  const lines = [];
  const open = new Map();
  for (const c of chunks) {
    const parts = c.text.split('\n');
    const pending = open.get(c.stream);
    if (pending !== undefined) {
      pending[1] += parts.shift();
      if (parts.length) open.delete(c.stream);
      else continue;
    }
    const last = parts.pop();
    for (const p of parts) lines.push([c.stream, p]);
    if (last) {
      const line = [c.stream, last];
      lines.push(line);
      open.set(c.stream, line);
    }
  }
  return lines;
}

// ---- a pod's servers (its rack) ------------------------------------------

function rackView(pod) {
  let r = racks.get(pod);
  if (!r) racks.set(pod, (r = { filter: '', page: 0 }));
  return r;
}

/** What the server filter looks in: the MAC (also as aa-bb-… and without separators), hostname, addresses, state and its reason, the image on its disk, liveness. */
function serverText(n) {
  return [n.mac, n.mac.replace(/:/g, '-'), n.mac.replace(/:/g, ''), n.hostname, n.ip, n.management, n.state, n.reason, n.image, n.liveness].filter(Boolean).join(' ').toLowerCase();
}

/** The servers whose text holds every word typed, in the API's order (by MAC). */
function matchingServers(nodes, filter) {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return nodes;
  return nodes.filter((n) => {
    const text = serverText(n);
    return words.every((w) => text.includes(w));
  });
}

/**
 * A pod is a rack (the pod file groups servers no further): its servers
 * counted by install state, then a filter and one page of them.
 */
function rackPanel(pod, nodes) {
  const r = rackView(pod);
  const image = data.counts.get(pod)?.image;
  const byState = new Map();
  for (const n of nodes) byState.set(n.state, (byState.get(n.state) ?? 0) + 1);
  const states = [...STATE_ORDER.filter((s) => byState.has(s)), ...[...byState.keys()].filter((s) => !STATE_ORDER.includes(s)).sort()];
  const counts = el(
    'p',
    { class: 'rack-counts', dataset: { total: String(nodes.length) } },
    el('strong', { dataset: { count: 'servers' }, text: count(nodes.length, 'server') }),
    ': ',
    ...states.flatMap((s, k) => [k ? ', ' : null, el('span', { class: `state-${s}`, dataset: { state: s }, text: `${NUMBER.format(byState.get(s))} ${s}` })]),
    image ? el('span', { class: 'image', title: "the pod file's spec.stage2: what a server installs from now on", text: ` · installs ${image}` }) : null,
  );
  const input = el('input', {
    type: 'search',
    class: 'server-filter',
    id: `server-filter-${pod}`,
    placeholder: 'MAC, hostname, IP, state or image',
    spellcheck: 'false',
    autocomplete: 'off',
    value: r.filter,
    'aria-controls': `servers-${pod}`,
    dataset: { focus: `server-filter:${pod}` },
  });
  const results = el('div', { class: 'rack-results', id: `servers-${pod}`, dataset: { rack: pod } }, ...rackResults(pod, nodes));
  // Typing redraws only this pod's list: the box itself (and the caret in it) stays.
  input.addEventListener('input', () => {
    r.filter = input.value;
    r.page = 0;
    keepFocus(() => results.replaceChildren(...rackResults(pod, data.nodes.get(pod) ?? [])));
  });
  const tools = el('div', { class: 'rack-tools' }, el('label', { for: input.id, text: 'Find a server' }), input);
  return el('section', { class: 'rack', 'aria-label': `servers of pod ${pod}` }, counts, tools, results);
}

function rackResults(pod, nodes) {
  const r = rackView(pod);
  const matching = matchingServers(nodes, r.filter);
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  r.page = Math.min(Math.max(r.page, 0), pages - 1);
  const first = r.page * PAGE_SIZE;
  const shown = matching.slice(first, first + PAGE_SIZE);
  // Unfiltered, the count above says it all.
  const found = r.filter.trim() ? `${count(matching.length, 'server matches', 'servers match')} “${r.filter.trim()}”` : '';
  const go = (page) => {
    r.page = page;
    const box = document.getElementById(`servers-${pod}`);
    if (box) keepFocus(() => box.replaceChildren(...rackResults(pod, data.nodes.get(pod) ?? [])));
  };
  const pager =
    pages > 1
      ? el(
          'nav',
          { class: 'pager', 'aria-label': `pages of pod ${pod}'s servers` },
          el('button', { type: 'button', dataset: { page: 'prev', focus: `page-prev:${pod}` }, disabled: r.page === 0, onclick: () => go(r.page - 1), text: '‹ Previous' }),
          el('span', {
            class: 'page',
            dataset: { page: String(r.page + 1), pages: String(pages) },
            text: `page ${r.page + 1} of ${pages} (servers ${NUMBER.format(first + 1)}–${NUMBER.format(first + shown.length)})`,
          }),
          el('button', { type: 'button', dataset: { page: 'next', focus: `page-next:${pod}` }, disabled: r.page === pages - 1, onclick: () => go(r.page + 1), text: 'Next ›' }),
        )
      : null;
  const status = found || pager ? [el('p', { class: 'rack-status' }, el('span', { class: 'found', dataset: { found: String(matching.length) }, text: found }), pager)] : [];
  if (!shown.length) return status;
  const table = el(
    'table',
    { class: 'nodes', 'aria-label': `servers of pod ${pod}` },
    el(
      'thead',
      {},
      el('tr', {}, ...['MAC', 'Hostname', 'IP', 'Management', 'State', 'Image', 'Liveness', 'Last seen', 'Attempt', 'Install progress', ''].map((h) => el('th', { scope: 'col', text: h }))),
    ),
    el('tbody', {}, ...shown.map((n) => nodeRow(pod, n))),
  );
  return [...status, el('div', { class: 'scroll' }, table)];
}

function nodeRow(pod, n) {
  const seen = n.lastSeen ?? n.updatedAt;
  return el(
    'tr',
    { dataset: { mac: n.mac, state: n.state } },
    el('td', { class: 'mono', dataset: { col: 'mac' }, text: n.mac }),
    el('td', { dataset: { col: 'hostname' }, text: n.hostname ?? '' }),
    el('td', { dataset: { col: 'ip' }, text: n.ip ?? '' }),
    el('td', { dataset: { col: 'management' }, text: n.management ?? '' }),
    el('td', { dataset: { col: 'state' } }, stateBadge(n.state, n.reason)),
    el('td', {
      class: n.image && n.assigned && n.image !== n.assigned ? 'mono image-behind' : 'mono',
      dataset: { col: 'image' },
      title: n.image && n.assigned && n.image !== n.assigned ? `its pod assigns ${n.assigned}: a reinstall puts that on it` : undefined,
      text: n.image ?? '',
    }),
    el('td', { dataset: { col: 'liveness' } }, n.liveness ? el('span', { class: `liveness liveness-${n.liveness}`, text: n.liveness }) : null),
    el('td', { dataset: { col: 'seen' }, title: seen ? new Date(seen * 1000).toISOString() : undefined, text: fmt.ago(seen) }),
    el('td', { class: 'num', dataset: { col: 'attempt' }, text: String(n.attempt) }),
    el('td', { dataset: { col: 'progress' } }, progress(n)),
    el(
      'td',
      { class: 'node-actions' },
      el('button', {
        type: 'button',
        dataset: { action: 'reinstall', focus: `reinstall:${pod}:${n.mac}` },
        onclick: () => reinstall(pod, n),
        text: 'Reinstall',
      }),
    ),
  );
}

/** The install steps as a row of labels: reached, current, still to come; a failure in red where it broke. */
function progress(n) {
  const failed = n.state === 'failed';
  const reached = failed ? STEPS.indexOf(n.failedAfter ?? '') : INSTALLED.has(n.state) ? STEPS.length - 1 : STEPS.indexOf(n.state);
  const items = STEPS.map((step, k) => {
    let cls = 'todo';
    if (k < reached) cls = 'done';
    else if (k === reached) cls = failed ? 'done' : n.state === 'installed' || n.state === 'booted-from-disk' ? 'done last' : 'current';
    if (failed && k === reached + 1) cls = 'failed';
    return el('li', { class: cls, dataset: { step }, 'aria-current': cls === 'current' ? 'step' : undefined, text: cls === 'failed' ? `${step} ✗` : step });
  });
  const label = failed ? `failed after ${n.failedAfter ?? 'an unknown step'}${n.reason ? ` (${n.reason})` : ''}` : `${n.state}, step ${Math.max(reached, 0) + 1} of ${STEPS.length}`;
  const list = el('ol', { class: 'steps', 'aria-label': `install progress: ${label}` }, ...items);
  if (!failed) return list;
  return el('span', {}, list, el('span', { class: 'reason', text: n.reason ? `failed: ${n.reason}` : 'failed' }));
}

function renderSummary() {
  const by = (pred) => data.instances.filter(pred).length;
  const pods = [
    [by((i) => ['running', 'busy'].includes(i.state)), 'running', ''],
    [by((i) => i.degraded), 'degraded', 'warn'],
    [by((i) => i.state === 'crashed' || i.state === 'crash-loop'), 'crashed', 'bad'],
    [by((i) => i.state === 'error'), 'error', 'bad'],
    [by((i) => i.state === 'stopped'), 'stopped', ''],
    [by((i) => ['starting', 'upgrading', 'stopping'].includes(i.state)), 'starting', 'warn'],
  ];
  let installing = 0,
    installed = 0,
    failed = 0,
    total = 0;
  for (const c of data.counts.values()) {
    total += c.total;
    for (const [state, n] of Object.entries(c.states)) {
      if (INSTALLING.has(state)) installing += n;
      else if (INSTALLED.has(state)) installed += n;
      else if (state === 'failed') failed += n;
    }
  }
  const servers = [
    [installing, 'installing', ''],
    [installed, 'installed', ''],
    [failed, 'failed', 'bad'],
  ];
  const part = ([n, label, cls], always) => (n || always ? el('span', { class: n ? cls : '', dataset: { count: label }, text: `${NUMBER.format(n)} ${label}` }) : null);
  const join = (parts) => parts.filter(Boolean).flatMap((p, k) => (k ? [', ', p] : [p]));
  $('summary').replaceChildren(`${count(data.instances.length, 'pod')}: `, ...join(pods.map((p, k) => part(p, k < 3))), ` · ${count(total, 'server')}: `, ...join(servers.map((p) => part(p, true))));
}

function renderRefused() {
  const box = $('refused');
  box.hidden = !data.refused.length;
  box
    .querySelector('ul')
    .replaceChildren(
      ...data.refused.map((r) =>
        el('li', { text: `${r.file}${r.running ? ` (pod ${r.running} keeps its previous version)` : ''}: ${r.problems.map((p) => p.message ?? JSON.stringify(p)).join('; ')}` }),
      ),
    );
}

function renderEvents() {
  $('events').replaceChildren(
    ...events
      .slice()
      .reverse()
      .map((e) => el('li', { class: BAD_EVENTS.has(e.kind) ? 'bad' : undefined, value: e.seq, text: `${fmt.time(e.time)} ${e.pod ?? '-'} ${e.kind}: ${e.message}` })),
  );
}

// ---- data ----------------------------------------------------------------

let inFlight;
let again = false;

/** One refresh at a time: the timer, an opened pod and an action may all ask at once, and two would read the same events twice. */
function refresh() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = load().finally(() => {
    inFlight = undefined;
    if (again) {
      again = false;
      void refresh();
    }
  });
  return inFlight;
}

async function load() {
  clearTimeout(timer);
  const asked = token;
  try {
    const [inst, pods, summary, news] = await Promise.all([
      api('/api/v1/instances'),
      api('/api/v1/pods'),
      api('/api/v1/nodes/summary'),
      api(`/api/v1/events?after=${lastEventSeq}&limit=${MAX_EVENTS}`),
    ]);
    const known = new Set(inst.instances.map((i) => i.pod));
    const open = [...view.expanded].filter((p) => known.has(p));
    const counts = new Map(summary.pods.map((c) => [c.pod, c]));
    const no = ++refreshNo;
    const due = open.filter((p) => listDue(p, counts.get(p), no));
    const [lists, taskLists, rolloutList] = await Promise.all([
      Promise.all(due.map((p) => api(`/api/v1/pods/${encodeURIComponent(p)}/nodes`).then((r) => [p, r.nodes]))),
      Promise.all(open.map((p) => loadTasks(p))),
      Promise.all(open.map((p) => loadRollout(p))),
    ]);
    // Signed out (or in with another token) meanwhile: these answers belong to no one on screen.
    if (token !== asked) return;
    for (const p of due) fetched.set(p, { at: no, counts: countsKey(counts.get(p)) });
    const nodes = new Map(open.filter((p) => data.nodes.has(p)).map((p) => [p, data.nodes.get(p)]));
    for (const [p, list] of lists) nodes.set(p, list);
    const tasks = new Map(taskLists);
    // A shown log is read again only when its task changed (state or output length), not at every refresh.
    await Promise.all(
      open.map((p) => {
        const v = taskViews.get(p);
        const t = v?.selected && tasks.get(p)?.tasks?.find((x) => x.id === v.selected);
        return t && (v.logs?.id !== t.id || v.logs.key !== logKey(t)) ? loadLog(p, t) : undefined;
      }),
    );
    if (token !== asked) return;
    data = { instances: inst.instances, refused: pods.refused, counts, nodes, tasks, rollouts: new Map(rolloutList) };
    for (const e of news.events) {
      if (e.seq <= lastEventSeq) continue;
      events.push(e);
      lastEventSeq = e.seq;
    }
    events.splice(0, Math.max(0, events.length - MAX_EVENTS));
    if (errorKind === 'network') showError('');
    $('updated').textContent = `updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
    $('updated').classList.remove('stale');
    $('updated').dataset.refreshed = String(Date.now());
    render();
  } catch (err) {
    if (token !== asked) return;
    if (err instanceof AuthError) return signOut(`The central node no longer accepts this token (${err.message}). Paste the operator token again.`);
    // Keep what is on screen, but say it is old.
    $('updated').classList.add('stale');
    $('updated').textContent = `not updated since ${$('updated').dataset.refreshed ? new Date(Number($('updated').dataset.refreshed)).toLocaleTimeString(undefined, { hour12: false }) : 'load'}`;
    showError(`Could not reach the central node: ${err.message}`, 'network');
  }
  if (token && document.visibilityState !== 'hidden') timer = setTimeout(refresh, REFRESH_MS);
}

const countsKey = (c) => JSON.stringify([c?.total, c?.states]);

/** An opened pod's tasks, newest first; a failure is shown in its tasks section and does not stop the refresh. */
function loadTasks(pod) {
  return api(`/api/v1/pods/${encodeURIComponent(pod)}/tasks`).then(
    (r) => [pod, { tasks: r.tasks }],
    (err) => {
      if (err instanceof AuthError) throw err;
      return [pod, { error: err.message }];
    },
  );
}

/** An opened pod's releases and newest rollout; a failure (a pod that never started has no database) is shown in its panel. */
function loadRollout(pod) {
  return api(`/api/v1/pods/${encodeURIComponent(pod)}/rollout`).then(
    (r) => [pod, { status: r }],
    (err) => {
      if (err instanceof AuthError) throw err;
      return [pod, { error: err.message }];
    },
  );
}

/** Reads the log of the task shown in a pod into its view. */
async function loadLog(pod, t) {
  const v = taskView(pod);
  try {
    const r = await api(`/api/v1/pods/${encodeURIComponent(pod)}/tasks/${t.id}/logs`);
    if (v.selected === t.id) v.logs = { id: t.id, key: logKey(r.task), task: r.task, chunks: r.chunks };
  } catch (err) {
    if (err instanceof AuthError) throw err;
    if (v.selected === t.id) v.logs = { id: t.id, key: '', error: err.message };
  }
}

/** Shows a task's log (or hides it, clicked again). */
async function selectTask(pod, id) {
  const v = taskView(pod);
  v.selected = v.selected === id ? undefined : id;
  v.logs = undefined;
  render();
  const t = v.selected && data.tasks.get(pod)?.tasks?.find((x) => x.id === id);
  if (!t) return;
  const asked = token;
  try {
    await loadLog(pod, t);
  } catch (err) {
    if (err instanceof AuthError) return signOut(`The central node no longer accepts this token (${err.message}). Paste the operator token again.`);
    throw err;
  }
  if (token === asked) render();
}

/** Whether an opened pod's server list is fetched in this refresh (LARGE_POD). */
function listDue(pod, counts, no) {
  const last = fetched.get(pod);
  const list = data.nodes.get(pod);
  if (!last || !list || list.length <= LARGE_POD) return true;
  return no - last.at >= LARGE_EVERY || last.counts !== countsKey(counts);
}

function toggle(pod) {
  fetched.delete(pod);
  if (view.expanded.has(pod)) view.expanded.delete(pod);
  else view.expanded.add(pod);
  saveView();
  render();
  if (view.expanded.has(pod)) void refresh();
}

/** Asks before an operator action; resolves with the reason typed, or null when cancelled. */
function confirmWith(title, text, okLabel, reasonLabel = 'Reason (recorded in the events)') {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  $('confirm-reason-label').textContent = reasonLabel;
  $('confirm-reason').value = '';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? $('confirm-reason').value.trim() : null), { once: true });
    dialog.showModal();
    $('confirm-reason').focus();
  });
}

async function act(what, path, body) {
  if (errorKind === 'action') showError('');
  try {
    await api(path, { method: 'POST', body });
  } catch (err) {
    if (err instanceof AuthError) return signOut(`The central node no longer accepts this token (${err.message}). Paste the operator token again.`);
    showError(`${what} failed: ${err.message}`, 'action');
  }
  await refresh();
}

async function podAction(pod, action, label, text) {
  const reason = await confirmWith(`${label} ${pod}?`, text, label);
  if (reason === null) return;
  await act(`${label} ${pod}`, `/api/v1/pods/${encodeURIComponent(pod)}/${action}`, reason ? { reason } : undefined);
}

async function reinstall(pod, n) {
  const text = `Server ${n.mac} (${n.state}, attempt ${n.attempt}) will PXE-install again at its next network boot: attempt ${n.attempt + 1}; the tokens of earlier attempts stop working.`;
  const reason = await confirmWith(`Reinstall ${n.mac}?`, text, 'Reinstall');
  if (reason === null) return;
  fetched.delete(pod);
  await act(`Reinstall ${n.mac}`, `/api/v1/pods/${encodeURIComponent(pod)}/nodes/${n.mac.replace(/:/g, '-')}/reinstall`, reason ? { reason } : undefined);
}

async function cancelTask(pod, t) {
  const on = t.hostname ? `${t.hostname} (${t.mac})` : t.mac;
  const what = t.state === 'running' ? 'its agent stops the script (SIGTERM, SIGKILL 5 s later) at its next report; what it did so far stays done' : 'it will not run';
  const reason = await confirmWith(`Cancel task ${t.id}?`, `Task ${t.id}, ${t.template} on ${on}, is ${t.state}: ${what}.`, 'Cancel task', "Reason (kept as the task's reason)");
  if (reason === null) return;
  await act(`Cancel task ${t.id}`, `/api/v1/pods/${encodeURIComponent(pod)}/tasks/${t.id}/cancel`, reason ? { reason } : undefined);
}

// ---- token ---------------------------------------------------------------

function showBoard(on) {
  $('board').hidden = !on;
  $('login').hidden = on;
  $('logout').hidden = !on;
  if (!on) {
    // Nothing from the last token stays on screen.
    data = { instances: [], refused: [], counts: new Map(), nodes: new Map(), tasks: new Map(), rollouts: new Map() };
    racks.clear();
    taskViews.clear();
    rolloutForms.clear();
    fetched.clear();
    events.length = 0;
    lastEventSeq = 0;
    $('pods').tBodies[0].replaceChildren();
    $('events').replaceChildren();
    $('summary').replaceChildren();
    $('updated').textContent = '';
  }
}

function signOut(message) {
  clearTimeout(timer);
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  showBoard(false);
  showError(message ?? '');
  $('token').focus();
}

async function signIn(candidate) {
  try {
    await api('/api/v1/instances', { auth: candidate });
  } catch (err) {
    if (err instanceof AuthError) {
      showError(`The central node did not accept this token (${err.message}). Use the operator token from ${$('token-file').textContent}.`);
    } else showError(`Could not reach the central node: ${err.message}`);
    return;
  }
  token = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  showError('');
  showBoard(true);
  await refresh();
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const candidate = $('token').value.trim();
  if (candidate) void signIn(candidate);
});
$('logout').addEventListener('click', () => signOut(''));
$('filter').addEventListener('input', (ev) => {
  view.filter = ev.target.value.trim().toLowerCase();
  render();
});
for (const th of document.querySelectorAll('#pods thead th[data-key]')) th.querySelector('button').addEventListener('click', () => sortBy(th.dataset.key));
// A background tab need not poll; it catches up as soon as it is shown again.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && token) void refresh();
});

if (token) {
  showBoard(true);
  void refresh();
} else showBoard(false);
