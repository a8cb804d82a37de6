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

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

const view = loadView();
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
let timer;
let lastEventSeq = 0;
let data = { instances: [], refused: [], counts: new Map(), nodes: new Map() };
const events = [];
/** per opened pod: the text in its server filter and the page shown; kept across refreshes */
const racks = new Map();
/** refreshes done, and per opened pod at which one its list was fetched, with its counts then */
let refreshNo = 0;
const fetched = new Map();

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
  replace();
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
    el('td', { class: 'exit', dataset: { col: 'exit' }, title: exit?.lastLog, text: exit ? `${exit.reason} (${fmt.time(exit.at)})` : '' }),
    el('td', { class: 'actions' }, ...podActions(i)),
  );
  if (!open) return [row];
  return [row, el('tr', { class: 'detail', id: `detail-${i.pod}`, dataset: { detail: i.pod } }, el('td', { colspan: 11 }, podDetail(i)))];
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
  if (!nodes) return el('div', {}, head, probes, el('p', { text: 'loading servers…' }));
  if (!nodes.length) return el('div', {}, head, probes, el('p', { text: 'This pod has not seen any server yet.' }));
  return el('div', {}, head, probes, rackPanel(i.pod, nodes));
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
    const lists = await Promise.all(due.map((p) => api(`/api/v1/pods/${encodeURIComponent(p)}/nodes`).then((r) => [p, r.nodes])));
    // Signed out (or in with another token) meanwhile: these answers belong to no one on screen.
    if (token !== asked) return;
    for (const p of due) fetched.set(p, { at: no, counts: countsKey(counts.get(p)) });
    const nodes = new Map(open.filter((p) => data.nodes.has(p)).map((p) => [p, data.nodes.get(p)]));
    for (const [p, list] of lists) nodes.set(p, list);
    data = { instances: inst.instances, refused: pods.refused, counts, nodes };
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
function confirmWith(title, text, okLabel) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
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

// ---- token ---------------------------------------------------------------

function showBoard(on) {
  $('board').hidden = !on;
  $('login').hidden = on;
  $('logout').hidden = !on;
  if (!on) {
    // Nothing from the last token stays on screen.
    data = { instances: [], refused: [], counts: new Map(), nodes: new Map() };
    racks.clear();
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
