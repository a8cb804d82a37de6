// Must show 3 (issue 16): the shipped rules in a real Prometheus, its alert
// delivered by a real Alertmanager (Debian's prometheus-alertmanager) to a
// webhook receiver served here; podboot's own evaluator, given the same
// series, posts the same receiver JSON shape (same keys and types, same
// group key, Alertmanager's fingerprint) to the same receiver. Everything on
// loopback ports chosen at run time, in a temporary directory.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertEvaluator } from '../../../src/alerts/evaluator.js';
import { fingerprint } from '../../../src/alerts/fingerprint.js';
import { defaultRulesFile, loadRulesFile } from '../../../src/alerts/rules.js';
import { parseSamples } from '../../../src/alerts/samples.js';
import type { WebhookMessage } from '../../../src/alerts/webhook.js';
import { createLogger } from '../../../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'pbal-am-'));
const EXPOSITION = '# TYPE podboot_instance_state gauge\npodboot_instance_state{pod="rack-x",state="crash-loop"} 1\npodboot_instance_state{pod="rack-x",state="running"} 0\n';
const received: { path: string; body: WebhookMessage }[] = [];
const servers: Server[] = [];
const procs: ChildProcess[] = [];

async function serve(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function daemon(name: string, cmd: string, args: string[]): () => string {
  const logFile = join(dir, `${name}.log`);
  const out = createWriteStream(logFile);
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.pipe(out);
  p.stderr!.pipe(out);
  procs.push(p);
  return () => readFileSync(logFile, 'utf8');
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number, detail: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const MAPS = new Set(['labels', 'annotations', 'groupLabels', 'commonLabels', 'commonAnnotations']);
/** Keys and value types, recursively; label maps as maps of strings (their keys differ by design). */
function shape(v: unknown, key = ''): unknown {
  if (MAPS.has(key)) return Object.values(v as object).every((x) => typeof x === 'string') ? 'map<string,string>' : 'not a string map';
  if (Array.isArray(v)) return [v.length ? shape(v[0]) : 'empty'];
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, shape((v as Record<string, unknown>)[k], k)]),
    );
  return typeof v;
}

let amLog: () => string;
let promLog: () => string;
let hookPort: number;

beforeAll(async () => {
  hookPort = await serve((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(body) as WebhookMessage });
      res.end();
    });
  });
  const metricsPort = await serve((_req, res) => res.end(EXPOSITION));
  const [amPort, amCluster, promPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    `route:
  receiver: podboot
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: podboot
    webhook_configs:
      - url: http://127.0.0.1:${hookPort}/alertmanager
        send_resolved: true
`,
  );
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [${JSON.stringify(defaultRulesFile())}]
alerting:
  alertmanagers:
    - static_configs: [{ targets: ['127.0.0.1:${amPort}'] }]
scrape_configs:
  - job_name: podboot
    honor_labels: true
    static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }]
`,
  );
  amLog = daemon('alertmanager', 'prometheus-alertmanager', [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'am-data')}`,
    `--web.listen-address=127.0.0.1:${amPort}`,
    `--cluster.listen-address=127.0.0.1:${amCluster}`,
  ]);
  promLog = daemon('prometheus', 'prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prom-data')}`, `--web.listen-address=127.0.0.1:${promPort}`]);
}, 30_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Prometheus + Alertmanager and podboot deliver the same message', () => {
  it('a crash-looping pod: the same receiver JSON shape from Alertmanager and from podboot', async () => {
    const am = await until(
      "Alertmanager's webhook post",
      () => received.find((r) => r.path === '/alertmanager' && r.body.alerts.some((a) => a.labels.alertname === 'PodbootPodCrashLoop' && a.status === 'firing'))?.body,
      60_000,
      () => `${promLog()}\n${amLog()}`,
    );
    expect(am).toMatchObject({ version: '4', receiver: 'podboot', status: 'firing', groupKey: '{}:{alertname="PodbootPodCrashLoop"}', groupLabels: { alertname: 'PodbootPodCrashLoop' } });
    const amAlert = am.alerts[0]!;
    expect(amAlert.labels).toMatchObject({ alertname: 'PodbootPodCrashLoop', pod: 'rack-x', state: 'crash-loop', severity: 'critical' });
    // podboot computes the fingerprint Alertmanager does.
    expect(fingerprint(amAlert.labels)).toBe(amAlert.fingerprint);

    const ev = new AlertEvaluator({
      groups: loadRulesFile(defaultRulesFile()),
      receiver: { name: 'podboot', urls: [`http://127.0.0.1:${hookPort}/podboot`] },
      externalURL: 'https://127.0.0.1:9443',
      intervalSec: 15,
      // The series as Prometheus stored them (it adds job and instance), so the alerts are the same ones.
      source: async () => parseSamples(EXPOSITION).map((s) => ({ ...s, labels: { ...s.labels, job: amAlert.labels.job!, instance: amAlert.labels.instance! } })),
      log: createLogger({}, { destination: { write: () => undefined } }),
    });
    await ev.tick();
    const pb = received.find((r) => r.path === '/podboot')?.body;
    expect(pb).toBeDefined();
    expect(shape(pb)).toEqual(shape(am));
    expect(pb!.groupKey).toBe(am.groupKey);
    expect(pb!.alerts.map((a) => [a.status, a.labels, a.annotations, a.fingerprint])).toEqual([[amAlert.status, amAlert.labels, amAlert.annotations, amAlert.fingerprint]]);
    expect(pb!.commonLabels).toEqual(am.commonLabels);
    expect(pb!.commonAnnotations).toEqual(am.commonAnnotations);
    expect(pb!.alerts[0]!.endsAt).toBe(amAlert.endsAt);
  }, 90_000);
});
