// The central node's HTTPS side (issue 5, must show 4 and the operator API):
// a real Prometheus scrapes the aggregated /metrics (TLS + operator token)
// and discovers each pod through the HTTP SD list; its query API returns
// per-pod series. Pods register themselves as targets (their own token,
// over TLS), and /sd lists what registered and still sends heartbeats. The
// CLI drives the pods through the API. Everything runs in one namespace of
// its own (pods, central node, Prometheus).
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const PODS = ['rack-a', 'rack-b', 'rack-c'];
/** Pods re-register this often here (15 s by default); a registration lives 3 heartbeats. */
const REGISTER_MS = 500;

const podYaml = (name: string, i: number) => `apiVersion: podboot/v1
kind: Pod
metadata:
  name: ${name}
spec:
  listen: { address: 10.99.0.${i + 1} }
  relays: [10.${31 + i}.0.1]
  subnets:
    - { cidr: 10.${31 + i}.0.0/16, gateway: 10.${31 + i}.0.1, pool: 10.${31 + i}.1.0-10.${31 + i}.1.250 }
`;

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('central node API and a real Prometheus', () => {
  const lab = new Lab('pbm');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;
  let api: { url: string; ca: string; tokenFile: string };

  const curl = (...args: string[]) => lab.exec('c', 'curl', ['-s', '--max-time', '10', ...args], { allowFail: true });
  const authed = (path: string, ...extra: string[]) => curl('--cacert', api.ca, '-H', `Authorization: Bearer ${readFileSync(api.tokenFile, 'utf8').trim()}`, ...extra, `${api.url}${path}`);
  const cli = (...args: string[]) => lab.exec('c', process.execPath, [PODBOOT, ...args, '--state', stateDir], { allowFail: true });
  /** the pods /sd lists, by their pod label */
  const sdPods = (): string[] => {
    try {
      return (JSON.parse(authed('/sd')) as { labels: Record<string, string> }[]).map((g) => g.labels.pod!).sort();
    } catch {
      return [];
    }
  };
  const podToken = (pod: string) => readFileSync(join(stateDir, pod, 'register.token'), 'utf8').trim();
  /** a registration as a pod would send it, with `token`; returns the HTTP code */
  const register = (token: string | undefined, body: Record<string, unknown>, method = 'POST', path = '/api/v1/targets') =>
    curl(
      '--cacert',
      api.ca,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      method,
      ...(token === undefined ? [] : ['-H', `Authorization: Bearer ${token}`]),
      '-H',
      'content-type: application/json',
      ...(method === 'POST' ? ['-d', JSON.stringify(body)] : []),
      `${api.url}${path}`,
    );

  beforeAll(async () => {
    requireBuild();
    lab.addNs('c');
    // One more address for a pod run by hand (rack-d).
    for (let i = 0; i <= PODS.length; i++) lab.ip('c', 'addr', 'add', `10.99.0.${i + 1}/32`, 'dev', 'lo');
    mkdirSync(podsDir);
    for (const [i, p] of PODS.entries()) writeFileSync(join(podsDir, `${p}.yaml`), podYaml(p, i));
    // The instances inherit the heartbeat period of their registration.
    central = lab.spawn('c', process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0', '--api-name', 'central.rack.example,podboot'], 'central', {
      PODBOOT_REGISTER_INTERVAL_MS: String(REGISTER_MS),
    });
    await central.waitFor(/central API listening/, 30_000);
    await until(
      'pods ready',
      () => PODS.every((p) => new RegExp(`"pod":"${p}","pid":\\d+,"listeners"`).test(central.log())),
      30_000,
      () => central.log(),
    );
    api = JSON.parse(readFileSync(join(stateDir, 'central', 'api.json'), 'utf8'));
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it('refuses requests without the token (401), with a wrong one (403), and TLS below 1.2', () => {
    expect(curl('--cacert', api.ca, '-o', '/dev/null', '-w', '%{http_code}', `${api.url}/api/v1/pods`)).toBe('401');
    expect(curl('--cacert', api.ca, '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Authorization: Bearer not-the-token', `${api.url}/metrics`)).toBe('403');
    // TLS 1.1 offered (with the client's own security level lowered so that it may): refused by the server.
    const host = api.url.replace('https://', '');
    const old = lab.exec('c', 'sh', ['-c', `openssl s_client -connect ${host} -tls1_1 -cipher DEFAULT@SECLEVEL=0 </dev/null 2>&1; echo "rc=$?"`]);
    expect(old).toMatch(/rc=1/);
    expect(old).toMatch(/alert protocol version|unsupported protocol|no protocols available/i);
    expect(curl('--cacert', api.ca, '--tls-max', '1.2', '-o', '/dev/null', '-w', '%{http_code}', `${api.url}/healthz`)).toBe('200');
    expect(curl('--cacert', api.ca, `${api.url}/healthz`)).toBe('{"ok":true}');
    expect(central.log()).toMatch(/central API certificate is self-issued/);
    // The names an operator reaches the node by are in its certificate, and a client checks them.
    const leaf = lab.exec('c', 'sh', ['-c', `openssl s_client -connect ${host} -servername central.rack.example -verify_hostname central.rack.example -CAfile ${api.ca} </dev/null 2>&1`]);
    expect(leaf).toMatch(/Verify return code: 0 \(ok\)/);
    const wrong = lab.exec('c', 'sh', ['-c', `openssl s_client -connect ${host} -verify_hostname other.example -CAfile ${api.ca} </dev/null 2>&1`]);
    expect(wrong).toMatch(/Verify return code: 62 \(hostname mismatch\)/);
  });

  it('each pod registers itself over TLS with its own token; /sd lists the registrations', async () => {
    await until(
      'the three pods registered in /sd',
      () => sdPods().join() === PODS.join(),
      30_000,
      () => central.log(),
    );
    const groups = JSON.parse(authed('/sd')) as { targets: string[]; labels: Record<string, string> }[];
    for (const g of groups) {
      expect(g.targets).toEqual([api.url.replace('https://', '')]);
      expect(g.labels.__metrics_path__).toBe(`/pods/${g.labels.pod}/metrics`);
    }
    for (const p of PODS) {
      // The node gave each pod its token, readable by root only.
      expect(statSync(join(stateDir, p, 'register.token')).mode & 0o777).toBe(0o600);
      const registered = new RegExp(`"pod":"${p}","pid":\\d+,"socket":"[^"]*/${p}/metrics.sock".*"msg":"target registered"`);
      await until(
        `${p} registered in the central log`,
        () => registered.test(central.log()),
        5000,
        () => central.log(),
      );
      expect(readFileSync(join(stateDir, p, 'instance.log'), 'utf8')).toMatch(/"msg":"registered as a scrape target with the central node"/);
    }
    // What the central API lists: each pod's socket, heartbeat and expiry.
    const targets = JSON.parse(authed('/api/v1/targets')).targets as { pod: string; metricsSocket: string; intervalMs: number }[];
    expect(targets.map((t) => t.pod)).toEqual(PODS);
    for (const t of targets) expect(t).toMatchObject({ metricsSocket: join(stateDir, t.pod, 'metrics.sock'), intervalMs: REGISTER_MS });
    expect(authed('/pods/rack-b/metrics')).toMatch(/^podboot_dhcp_pool_addresses 251$/m);
  }, 40_000);

  it("refuses a registration without a token (401), with a wrong one or another pod's (403); nothing refused appears", async () => {
    const operator = readFileSync(api.tokenFile, 'utf8').trim();
    const body = (pod: string) => ({ pod, metricsSocket: join(stateDir, pod, 'metrics.sock'), intervalMs: 60_000 });
    expect(register(undefined, body('rack-x'))).toBe('401');
    expect(register('not-a-registration-token-at-all', body('rack-x'))).toBe('403');
    // rack-b's own token is good for rack-b only: not for a new name, nor to take over rack-a's target.
    expect(register(podToken('rack-b'), body('rack-x'))).toBe('403');
    expect(register(podToken('rack-b'), { ...body('rack-a'), labels: { hijacked: 'yes' } })).toBe('403');
    // The operator token is not a pod's registration token either.
    expect(register(operator, body('rack-x'))).toBe('403');
    // And a pod cannot remove another pod's registration.
    expect(register(podToken('rack-b'), {}, 'DELETE', '/api/v1/targets/rack-a')).toBe('403');
    // A pod's own token with a metrics socket outside its state directory: refused as invalid.
    expect(register(podToken('rack-b'), { ...body('rack-b'), metricsSocket: join(stateDir, 'rack-a', 'metrics.sock') })).toBe('400');
    // A registration token opens nothing else.
    expect(curl('--cacert', api.ca, '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${podToken('rack-b')}`, `${api.url}/api/v1/pods`)).toBe('403');
    await new Promise((r) => setTimeout(r, 3 * REGISTER_MS));
    expect(sdPods()).toEqual(PODS);
    const rackA = (JSON.parse(authed('/sd')) as { labels: Record<string, string> }[]).find((g) => g.labels.pod === 'rack-a')!;
    expect(rackA.labels.hijacked).toBeUndefined();
    // Each refusal kind logged (rate-limited), with the pod it claimed and never a token.
    const log = central.log();
    expect(log).toMatch(/"pod":"rack-x","action":"register".*"msg":"target registration refused: not the registration token of this pod"/);
    expect(log).toMatch(/"msg":"target registration without a token"/);
    for (const secret of [podToken('rack-a'), podToken('rack-b'), operator]) expect(log).not.toContain(secret);
  });

  it('a real Prometheus scrapes the aggregated /metrics and the discovered pods; its query API returns per-pod series', async () => {
    const promDir = join(lab.dir, 'prometheus');
    mkdirSync(promDir);
    const target = api.url.replace('https://', '');
    // Prometheus trusts the central node's root and sends the operator token, to the node and to its discovery list.
    const tls = `tls_config: { ca_file: ${api.ca} }`;
    // type: Bearer spelled out: Prometheus 2.42's HTTP SD client sends the bare credentials without it.
    const auth = `authorization: { type: Bearer, credentials_file: ${api.tokenFile} }`;
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: podboot-central
    scheme: https
    ${tls}
    ${auth}
    static_configs: [{ targets: ['${target}'] }]
  - job_name: podboot-pods
    scheme: https
    ${tls}
    ${auth}
    http_sd_configs:
      - url: ${api.url}/sd
        refresh_interval: 1s
        ${tls}
        ${auth}
`,
    );
    const prom = lab.spawn(
      'c',
      'prometheus',
      [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, '--web.listen-address=127.0.0.1:19090', '--log.level=warn'],
      'prometheus',
    );
    const query = (q: string) => {
      const out = curl(`http://127.0.0.1:19090/api/v1/query?query=${encodeURIComponent(q)}`);
      try {
        return (JSON.parse(out) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
      } catch {
        return [];
      }
    };
    const perPod = await until(
      'per-pod series from the central scrape',
      () => {
        const r = query('podboot_dhcp_pool_addresses{job="podboot-central"}');
        return r.length === 3 ? r : undefined;
      },
      45_000,
      () => prom.log(),
    );
    expect(perPod.map((s) => s.metric.pod).sort()).toEqual(PODS);
    for (const s of perPod) expect(s.value[1]).toBe('251');
    const discovered = await until(
      'the pods discovered through /sd scraped up',
      () => {
        const r = query('up{job="podboot-pods"} == 1');
        return r.length === 3 ? r : undefined;
      },
      45_000,
      () => prom.log(),
    );
    expect(discovered.map((s) => s.metric.pod).sort()).toEqual(PODS);
    expect(
      query('podboot_instance_up{job="podboot-central"} == 1')
        .map((s) => s.metric.pod)
        .sort(),
    ).toEqual(PODS);
    await prom.stop();
  }, 120_000);

  it('the CLI lists, degrades, stops and starts pods through the API; a stopped pod is served from the cache', async () => {
    const list = cli('pods', 'list', '--sort', 'name');
    for (const p of PODS) expect(list).toMatch(new RegExp(`^${p}\\s+running\\s+\\d+`, 'm'));

    const degraded = JSON.parse(cli('pods', 'degrade', 'rack-a', '--reason', 'maintenance'));
    expect(degraded.degraded).toBe(true);
    // The instance itself reports the change at its next heartbeat, and in its metrics.
    await until('rack-a degraded', () => JSON.parse(cli('pods', 'status', 'rack-a')).state === 'degraded');
    expect(authed('/pods/rack-a/metrics')).toMatch(/^podboot_pod_degraded 1$/m);
    expect(readFileSync(join(stateDir, 'rack-a', 'instance.log'), 'utf8')).toMatch(/"reason":"maintenance","msg":"pod degraded: no new installs, leases still served"/);

    const before = authed('/metrics');
    expect(before).toMatch(/^podboot_scrape_up\{pod="rack-c"\} 1$/m);
    const stopped = JSON.parse(cli('pods', 'stop', 'rack-c'));
    expect(stopped.state).toBe('stopped');
    expect(stopped.lastExit.reason).toMatch(/stopped by operator/);
    const after = authed('/metrics');
    // Stopped gracefully, it deregistered: gone from /sd at once (not only after its registration's TTL).
    expect(sdPods()).toEqual(['rack-a', 'rack-b']);
    await until(
      'rack-c deregistered in the central log',
      () => /"pod":"rack-c","by":"pod","msg":"target deregistered"/.test(central.log()),
      5000,
      () => central.log(),
    );
    expect(after).toMatch(/^podboot_scrape_up\{pod="rack-c"\} 0$/m);
    expect(after).toMatch(/^podboot_dhcp_pool_addresses\{pod="rack-c"\} 251$/m);
    expect(after).toMatch(/^podboot_instance_state\{pod="rack-c",state="stopped"\} 1$/m);

    expect(JSON.parse(cli('pods', 'start', 'rack-c')).state).toBe('starting');
    await until('rack-c running', () => JSON.parse(cli('pods', 'status', 'rack-c')).state === 'running');
    await until('rack-c back in /sd', () => sdPods().join() === PODS.join());
    const status = JSON.parse(cli('pods', 'status', 'rack-c'));
    expect(status.pid).toBeGreaterThan(0);
    expect(status.restarts).toBe(0);
    // Its self-probe found every listener: DHCP and TFTP bound, HTTP and HTTPS accepting.
    await until('rack-c probes', () => (JSON.parse(cli('pods', 'status', 'rack-c')).self?.probes?.length ?? 0) >= 3);
    const probes = JSON.parse(cli('pods', 'status', 'rack-c')).self.probes as { listener: string; ok: boolean }[];
    expect(probes.map((p) => p.listener.split(' ')[0])).toEqual(expect.arrayContaining(['dhcp', 'tftp', 'https']));
    expect(probes.every((p) => p.ok)).toBe(true);

    const events = cli('events', '--pod', 'rack-c');
    expect(events).toMatch(/\track-c\taction\toperator: stop/);
    expect(events).toMatch(/\track-c\tstopped\t/);
    expect(cli('pods', 'status', 'no-such-pod')).toBe('');
  }, 60_000);

  it('a rolling restart brings every instance back, one at a time', async () => {
    const pids = (): Record<string, number> => Object.fromEntries((JSON.parse(cli('pods', 'list', '--json')).instances as { pod: string; pid: number }[]).map((i) => [i.pod, i.pid]));
    const before = pids();
    const startSeq = cli('events').trim().split('\n').at(-1)!;
    expect(cli('pods', 'rolling-restart')).toMatch(/rolling restart of 3 pods started: rack-a, rack-b, rack-c/);
    await until(
      'rolling-done',
      () => cli('events').includes('rolling-done'),
      60_000,
      () => central.log(),
    );
    const events = (JSON.parse(cli('events', '--json')) as { seq: number; pod?: string; kind: string }[]).filter((e) => e.seq > Number(/(\d+)/.exec(startSeq)![1]));
    // One at a time: each pod is ready again before the next one is restarted.
    const seqOf = (pod: string, kind: string) => events.find((e) => e.pod === pod && e.kind === kind)?.seq ?? NaN;
    expect(events.filter((e) => e.kind === 'rolling' && e.pod).map((e) => e.pod)).toEqual(PODS);
    for (let i = 0; i + 1 < PODS.length; i++) expect(seqOf(PODS[i]!, 'ready')).toBeLessThan(seqOf(PODS[i + 1]!, 'restarting'));
    const after = pids();
    for (const p of PODS) expect(after[p], p).not.toBe(before[p]);
    for (const p of PODS) expect(JSON.parse(cli('pods', 'status', p)).state).toMatch(/running|degraded/);
  }, 90_000);

  it("lists a pod's servers from its database and reinstalls one through the API", () => {
    const mac = '52:54:00:aa:bb:01';
    const r = JSON.parse(authed(`/api/v1/pods/rack-b/nodes/${mac}/reinstall`, '-X', 'POST', '-H', 'content-type: application/json', '-d', '{"reason":"disk replaced"}'));
    expect(r).toMatchObject({ mac, state: 'discovered', attempt: 2 });
    expect(JSON.parse(authed('/api/v1/pods/rack-b/nodes')).nodes.map((n: { mac: string }) => n.mac)).toContain(mac);
    const one = JSON.parse(authed(`/api/v1/pods/rack-b/nodes/${mac.replace(/:/g, '-')}`));
    expect(one.events.map((e: { kind: string; detail: string }) => `${e.kind} ${e.detail}`).join('\n')).toMatch(/reinstall by operator via the central API \(disk replaced\)/);
    expect(authed('/api/v1/pods/rack-b/nodes/52:54:00:aa:bb:02', '-o', '/dev/null', '-w', '%{http_code}')).toBe('404');
    expect(authed('/api/v1/pods/no-such/nodes', '-o', '/dev/null', '-w', '%{http_code}')).toBe('404');
  });

  it('a pod run by hand on the state root registers; SIGTERM deregisters it, kill -9 lets its registration expire', async () => {
    const file = join(lab.dir, 'rack-d.yaml');
    writeFileSync(file, podYaml('rack-d', PODS.length));
    const env = { PODBOOT_REGISTER_INTERVAL_MS: String(REGISTER_MS) };
    const start = async (label: string) => {
      const d = lab.spawn('c', process.execPath, [PODBOOT, 'pod', 'run', file, '--state', stateDir], label, env);
      await until(
        `${label} in /sd`,
        () => sdPods().includes('rack-d'),
        30_000,
        () => d.log(),
      );
      return d;
    };
    const first = await start('rack-d-1');
    // No supervisor gave it a token: it derived its own from the node's key, kept mode 0600.
    expect(statSync(join(stateDir, 'rack-d', 'register.token')).mode & 0o777).toBe(0o600);
    expect(sdPods()).toEqual([...PODS, 'rack-d']);
    expect(authed('/pods/rack-d/metrics')).toMatch(/^podboot_dhcp_pool_addresses 251$/m);
    // The node's own view (aggregated /metrics) stays the pods it supervises.
    expect(authed('/metrics')).not.toMatch(/pod="rack-d"/);

    await first.stop('SIGTERM');
    expect(sdPods()).toEqual(PODS);
    expect(first.log()).toMatch(/"msg":"deregistered from the central node"/);

    const second = await start('rack-d-2');
    second.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await until(
      'rack-d expired from /sd',
      () => !sdPods().includes('rack-d'),
      10_000,
      () => central.log(),
    );
    // Expiry is three missed heartbeats after the last one.
    expect(Date.now() - killedAt).toBeGreaterThan(REGISTER_MS);
    await until(
      'the expiry logged',
      () => /"pod":"rack-d".*"msg":"target registration expired \(no heartbeat\)"/.test(central.log()),
      5000,
      () => central.log(),
    );
    expect(sdPods()).toEqual(PODS);
  }, 90_000);
});
