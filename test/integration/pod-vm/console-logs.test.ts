// The operator's console and logs (issue 20): a real `podboot serve` shows
// its pod instance's lines (a PXE client's DHCPACK) on its own console, pretty
// with --log-format pretty and JSON with --log-format json, while the pod's
// instance.log keeps them as JSON; `podboot logs` reads them through the
// central API (--pod, --server, --follow), and `events --follow` prints an
// event that happens after it started, both ending with exit 0 on a signal.
// The central node runs in a namespace of its own, its one rack in another.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Rack, wireRack } from '../../helpers/rack-pods.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const RACK: Rack = { pod: 'rack-l', ns: 'r', server: '10.99.0.1', relay: '10.41.0.1', octet: 41 };
const MAC = (n: number) => `52:54:00:20:41:0${n}`;

async function until(what: string, fn: () => boolean, detail: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${detail().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('podboot serve console, podboot logs, events --follow', () => {
  const lab = new Lab('pbl');
  const podsDir = join(lab.dir, 'pods');
  const stateDir = join(lab.dir, 'state');
  let central: Daemon;

  const serve = (format: 'pretty' | 'json', label: string) =>
    lab.spawn('c', process.execPath, [PODBOOT, 'serve', '--pods', podsDir, '--state', stateDir, '--api', '127.0.0.1:0', '--log-format', format], label);
  const cli = (...args: string[]) => lab.exec('c', process.execPath, [PODBOOT, ...args, '--state', stateDir]);
  const jsonLines = (text: string) =>
    text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  /** A PXE client's exchange through the rack's relay; the pod logs its DHCPACK with the MAC. */
  function probe(mac: string): string {
    const out = lab.exec(RACK.ns, process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', `${RACK.server}:67`, '--relay', `${RACK.relay}:67`, '--mac', mac, '--arch', '0', '--timeout', '3000']);
    const ack = jsonLines(out).find((p) => p.type === 'ACK');
    if (!ack) throw new Error(`no ACK for ${mac}: ${out}`);
    return ack.yiaddr as string;
  }

  beforeAll(async () => {
    requireBuild();
    wireRack(lab, RACK, podsDir);
    central = serve('pretty', 'central-pretty');
    // The pod's own line, relayed from its instance.log, in pretty form.
    await central.waitFor(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z INFO  ${RACK.pod} metrics endpoint listening`, 'm'), 30_000);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
  });

  it("--log-format pretty: the pod instance's DHCPACK shows on serve's console as a readable line; instance.log keeps it as JSON", async () => {
    const address = probe(MAC(1));
    const line = await central.waitFor(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z INFO  ${RACK.pod} ${MAC(1)} DHCPACK .*$`, 'm'));
    expect(line).toContain(`address=${address}`);
    expect(line).toMatch(/ boot=\S+/);
    // The node's own lines too, and no JSON line anywhere on this console.
    expect(central.log()).toMatch(new RegExp(`^\\S+ INFO  central/${RACK.pod} pod instance ready pid=\\d+`, 'm'));
    expect(central.log()).not.toMatch(/^\{/m);
    const kept = jsonLines(readFileSync(join(stateDir, RACK.pod, 'instance.log'), 'utf8')).filter((l) => l.msg === 'DHCPACK');
    expect(kept).toEqual([expect.objectContaining({ pod: RACK.pod, mac: MAC(1), address })]);
  });

  it("podboot logs --pod: the pod's lines through the central API, readable or as JSON lines", () => {
    const text = cli('logs', '--pod', RACK.pod);
    expect(text).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z INFO  ${RACK.pod} dhcp listening`, 'm'));
    expect(text).toMatch(new RegExp(`^\\S+ \\S+ INFO  ${RACK.pod} ${MAC(1)} DHCPACK `, 'm'));
    const lines = jsonLines(cli('logs', '--pod', RACK.pod, '--json'));
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l.pod).toBe(RACK.pod);
    expect(lines.map((l) => l.msg)).toContain('DHCPACK');
    // --lines: the last ones only; without --pod, every pod's.
    expect(jsonLines(cli('logs', '--pod', RACK.pod, '--json', '--lines', '2'))).toEqual(lines.slice(-2));
    expect(jsonLines(cli('logs', '--json', '--lines', '2'))).toEqual(lines.slice(-2));
    // The route is behind the operator token like every other; a bad query is a 400.
    const api = JSON.parse(readFileSync(join(stateDir, 'central', 'api.json'), 'utf8')) as { url: string; ca: string; tokenFile: string };
    const status = (path: string, ...auth: string[]) => lab.exec('c', 'curl', ['-s', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', api.ca, ...auth, `${api.url}${path}`]);
    const bearer = ['-H', `Authorization: Bearer ${readFileSync(api.tokenFile, 'utf8').trim()}`];
    expect(status(`/api/v1/pods/${RACK.pod}/logs`)).toBe('401');
    expect(status(`/api/v1/pods/${RACK.pod}/logs`, '-H', 'Authorization: Bearer nope')).toBe('403');
    expect(status(`/api/v1/pods/${RACK.pod}/logs?server=zz`, ...bearer)).toBe('400');
    expect(status('/api/v1/pods/no-such-pod/logs', ...bearer)).toBe('404');
    expect(status(`/api/v1/pods/${RACK.pod}/logs?lines=1`, ...bearer)).toBe('200');
  });

  it('podboot logs --server: only the lines about that server', () => {
    probe(MAC(2));
    const one = jsonLines(cli('logs', '--pod', RACK.pod, '--server', MAC(1), '--json'));
    expect(one.map((l) => l.msg)).toContain('DHCPACK');
    for (const l of one) expect(l.mac).toBe(MAC(1));
    // Any spelling of the MAC; the other server's lines are there, just not in this answer.
    const two = jsonLines(cli('logs', '--pod', RACK.pod, '--server', MAC(2).toUpperCase().replace(/:/g, '-'), '--json'));
    expect(two.length).toBeGreaterThan(0);
    for (const l of two) expect(l.mac).toBe(MAC(2));
  });

  it('podboot logs --follow: receives a line logged after it started; SIGINT ends it with exit 0', async () => {
    const follow = lab.spawn('c', process.execPath, [PODBOOT, 'logs', '--pod', RACK.pod, '--follow', '--lines', '1', '--state', stateDir], 'logs-follow');
    // Its first line (the last one already logged) says the stream is open.
    await until('the follow to start', () => follow.log().trim().length > 0, follow.log);
    expect(follow.log()).not.toContain(MAC(3));
    const address = probe(MAC(3));
    const line = await follow.waitFor(new RegExp(`^.*${MAC(3)} DHCPACK .*$`, 'm'));
    expect(line).toContain(`address=${address}`);
    expect(await follow.stop('SIGINT')).toBe(0);
  });

  it('podboot events --follow: prints an event that happens after it started; SIGTERM ends it with exit 0', async () => {
    const events = lab.spawn('c', process.execPath, [PODBOOT, 'events', '--follow', '--pod', RACK.pod, '--state', stateDir], 'events-follow');
    await events.waitFor(/\tready\tinstance ready/);
    expect(events.log()).not.toContain('pbl-follow');
    cli('pods', 'degrade', RACK.pod, '--reason', 'pbl-follow');
    await events.waitFor(/^\d+\t\S+\track-l\taction\toperator: degrade \(pbl-follow\)$/m);
    expect(await events.stop('SIGTERM')).toBe(0);
    cli('pods', 'undegrade', RACK.pod);
  });

  it("--log-format json: serve's console carries the pod instance's lines as the JSON it wrote", async () => {
    expect(await central.stop('SIGTERM')).toBe(0);
    central = serve('json', 'central-json');
    await central.waitFor(new RegExp(`"pod":"${RACK.pod}".*"msg":"metrics endpoint listening"`), 30_000);
    probe(MAC(4));
    await central.waitFor(new RegExp(`"mac":"${MAC(4)}".*"msg":"DHCPACK"`));
    const lines = jsonLines(central.log());
    // The instance's own line (no node field), next to the node's own lines about it.
    expect(lines).toContainEqual(expect.objectContaining({ pod: RACK.pod, mac: MAC(4), msg: 'DHCPACK', level: 'info' }));
    expect(lines.find((l) => l.msg === 'DHCPACK')).not.toHaveProperty('node');
    expect(lines).toContainEqual(expect.objectContaining({ node: 'central', pod: RACK.pod, msg: 'pod instance ready' }));
  });
});
