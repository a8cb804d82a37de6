// The simulated rack of `npm run bench -- storm`: N servers powered on at
// once, each walking the boot chain a real one walks against one pod, as
// its PXE ROM, iPXE and the stage1 agent (images/stage1/podboot-agent.sh)
// would: relayed DHCP (PXE) → TFTP undionly.kpxe → relayed DHCP (iPXE) →
// HTTP script, kernel, initrd → HTTPS install token → session exchange,
// events, manifest, signatures, image, kickstart → installed, then one more PXE DHCP that must get no boot file.
// The image download honours the pod's boot-storm admission as stage1's curl
// does: a 503 with Retry-After is waited out and asked again, up to a bound
// per server. Runs inside the bench's namespace (it binds the relay address
// and the servers' leased addresses) and prints one JSON line of results.
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { DhcpProbeClient, messageType } from '../src/dhcp/client.js';
import { MessageType, Opt } from '../src/dhcp/codec/constants.js';
import type { DhcpPacket } from '../src/dhcp/codec/packet.js';
import { formatIPv4 } from '../src/net/ipv4.js';
import { decodePacket as decodeTftp, encodeAck, encodeRequest } from '../src/tftp/codec.js';

export interface StormConfig {
  servers: number;
  /** each server powers on at a random moment within this many ms */
  spreadMs: number;
  pod: string;
  dhcpPort: number;
  tftpPort: number;
  httpsPort: number;
  relay: string;
  /** the pod's root CA (PEM file) */
  ca: string;
  /** MAC prefix: five bytes, the server's index is the sixth */
  macPrefix: string;
  /** bounds the whole run */
  deadlineMs: number;
  /** how long one server may spend waiting out 503 + Retry-After before it counts as failed */
  maxBusyWaitMs?: number;
}

export const PHASES = ['dhcp-pxe', 'tftp', 'dhcp-ipxe', 'http', 'https', 'installed-dhcp'] as const;
export type Phase = (typeof PHASES)[number];

export interface ServerResult {
  mac: string;
  ok: boolean;
  /** ms spent in each phase it finished */
  phases: Partial<Record<Phase, number>>;
  failedAt?: Phase;
  error?: string;
  bytes: number;
  /** DHCP requests sent again after a timeout */
  dhcpRetries: number;
  /** DHCP exchanges: DISCOVERs sent and OFFERs back, REQUESTs sent and ACKs (or NAKs) back */
  dhcp: { discovers: number; offers: number; requests: number; acks: number };
  /** image requests answered 503 (boot-storm admission) and the time spent waiting them out */
  busy: number;
  busyWaitMs: number;
}

/** Image downloads running at once in this rack, and the most there ever were. */
const streams = { current: 0, peak: 0 };

const PXE = { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' };
const IPXE = { ...PXE, userClass: 'iPXE' };

class StepError extends Error {}

/** DORA with a PXE ROM's patience: 4, 8, 16 s (RFC 2131 backoff, as iPXE and PXE ROMs do). */
async function dora(relay: DhcpProbeClient, id: { mac: string; arch?: number; vendorClass?: string; userClass?: string }, r: ServerResult): Promise<DhcpPacket> {
  for (const wait of [4000, 8000, 16000]) {
    r.dhcp.discovers++;
    const got = await relay.dora(id, wait);
    if (got.offer) r.dhcp.offers++;
    if (got.offer && messageType(got.offer) === MessageType.OFFER) r.dhcp.requests++;
    if (got.ack) r.dhcp.acks++;
    if (got.ack && messageType(got.ack) === MessageType.ACK) return got.ack;
    if (got.ack && messageType(got.ack) === MessageType.NAK) throw new StepError('NAK');
    r.dhcpRetries++;
  }
  throw new StepError('no ACK after 3 tries');
}

function bootFile(p: DhcpPacket): string {
  const opt = p.options.get(Opt.BOOTFILE);
  if (opt) return opt.toString('latin1').replace(/\0+$/, '');
  return p.file.toString('latin1').replace(/\0.*$/s, '');
}

/** Lock-step RRQ with blksize (as iPXE asks), from the server's own address; resolves with the bytes. */
function tftpGet(local: string, server: string, port: number, file: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    let peer: { address: string; port: number } | undefined;
    let blksize = 512;
    let expected = 1;
    let bytes = 0;
    let retries = 0;
    let last: Buffer = encodeRequest({ op: 'rrq', filename: file, options: { blksize: 1432, tsize: 0 } });
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(bytes);
    };
    const send = (buf: Buffer) => {
      last = buf;
      sock.send(buf, peer?.port ?? port, peer?.address ?? server);
      clearTimeout(timer);
      timer = setTimeout(() => {
        // As iPXE: resend the last packet, give up after a few.
        if (++retries > 5) return done(new StepError(`TFTP ${file}: timed out at block ${expected}`));
        send(last);
      }, timeoutMs);
    };
    sock.on('message', (msg, rinfo) => {
      peer ??= { address: rinfo.address, port: rinfo.port };
      const d = decodeTftp(msg);
      if (!d.ok) return done(new StepError(`TFTP ${file}: bad packet (${d.detail})`));
      const p = d.packet;
      if (p.op === 'error') return done(new StepError(`TFTP ${file}: error ${p.code} ${p.message}`));
      if (p.op === 'oack') {
        blksize = Number(p.options.blksize ?? 512);
        return send(encodeAck(0));
      }
      if (p.op !== 'data') return;
      if (p.block !== (expected & 0xffff)) return send(last);
      retries = 0;
      bytes += p.data.length;
      send(encodeAck(p.block));
      expected++;
      if (p.data.length < blksize) done();
    });
    sock.on('error', (err) => done(err));
    sock.bind(0, local, () => send(last));
  });
}

/**
 * A GET that survives a keep-alive connection the pod closed just as it was
 * reused (undici: "other side closed", ECONNRESET), which waiting out a
 * Retry-After on an idle connection makes likely: asked again on a fresh
 * one, as stage1's curl --retry-all-errors would, at most 3 times.
 */
async function getOnce(agent: Agent, url: string, token?: string): Promise<Awaited<ReturnType<typeof request>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request(url, { dispatcher: agent, headers: token ? { authorization: `Bearer ${token}` } : {} });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 3 || (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET')) throw new StepError(`GET ${url.replace(/\?.*/, '')}: ${(err as Error).message}`);
    }
  }
}

async function httpGet(agent: Agent, url: string, token?: string, sha?: ReturnType<typeof createHash>): Promise<{ bytes: number; text?: string }> {
  const res = await getOnce(agent, url, token);
  if (res.statusCode !== 200) {
    const body = await res.body.text();
    throw new StepError(`GET ${url.replace(/\?.*/, '')}: ${res.statusCode} ${body.slice(0, 120)}`);
  }
  if (!sha) {
    const text = await res.body.text();
    return { bytes: Buffer.byteLength(text), text };
  }
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    sha.update(chunk as Buffer);
  }
  return { bytes };
}

/**
 * The stage2 image, as stage1's curl --retry fetches it: a 503 is waited out
 * for its Retry-After (1 s without one) and asked again, until the server
 * has waited `maxWaitMs` in all. Counts the streams running at once.
 */
async function imageGet(agent: Agent, url: string, token: string, r: ServerResult, maxWaitMs: number): Promise<{ bytes: number; sha256: string }> {
  for (;;) {
    const res = await getOnce(agent, url, token);
    if (res.statusCode === 503) {
      const body = await res.body.text();
      const after = Number(res.headers['retry-after'] ?? 1);
      const waitMs = (Number.isFinite(after) && after >= 0 ? after : 1) * 1000;
      r.busy++;
      if (r.busyWaitMs + waitMs > maxWaitMs) throw new StepError(`GET image: still 503 after ${r.busy} tries and ${(r.busyWaitMs / 1000).toFixed(0)} s of waiting: ${body.trim().slice(0, 120)}`);
      r.busyWaitMs += waitMs;
      await sleep(waitMs);
      continue;
    }
    if (res.statusCode !== 200) throw new StepError(`GET ${url}: ${res.statusCode} ${(await res.body.text()).slice(0, 120)}`);
    streams.current++;
    streams.peak = Math.max(streams.peak, streams.current);
    try {
      const sha = createHash('sha256');
      let bytes = 0;
      for await (const chunk of res.body) {
        bytes += (chunk as Buffer).length;
        sha.update(chunk as Buffer);
      }
      return { bytes, sha256: sha.digest('hex') };
    } finally {
      streams.current--;
    }
  }
}

async function report(agent: Agent, base: string, token: string, state: string): Promise<void> {
  const res = await request(`${base}/v1/events`, {
    method: 'POST',
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ state }),
  });
  await res.body.dump();
  if (res.statusCode >= 300) throw new StepError(`POST /v1/events ${state}: ${res.statusCode}`);
}

/** POST /v1/session: the install token from the script buys the session everything else uses. */
async function exchange(agent: Agent, base: string, installToken: string): Promise<string> {
  const res = await request(`${base}/v1/session`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${installToken}` } });
  const body = (await res.body.text()).trim();
  if (res.statusCode !== 200) throw new StepError(`POST /v1/session: ${res.statusCode} ${body.slice(0, 120)}`);
  return body;
}

async function boot(cfg: StormConfig, relay: DhcpProbeClient, ca: Buffer, i: number): Promise<ServerResult> {
  const mac = `${cfg.macPrefix}:${i.toString(16).padStart(2, '0')}`;
  const r: ServerResult = { mac, ok: false, phases: {}, bytes: 0, dhcpRetries: 0, dhcp: { discovers: 0, offers: 0, requests: 0, acks: 0 }, busy: 0, busyWaitMs: 0 };
  let phase: Phase = 'dhcp-pxe';
  let t = performance.now();
  const step = (next: Phase) => {
    const now = performance.now();
    r.phases[phase] = now - t;
    t = now;
    phase = next;
    if (process.env.STORM_TRACE) process.stderr.write(`${mac} ${next}\n`);
  };
  let agent: Agent | undefined;
  try {
    await sleep(Math.random() * cfg.spreadMs);
    t = performance.now();
    const pxe = await dora(relay, { mac, ...PXE }, r);
    const ip = formatIPv4(pxe.yiaddr);
    const file = bootFile(pxe);
    if (!file) throw new StepError('PXE ACK without a boot file');
    step('tftp');
    r.bytes += await tftpGet(ip, cfg.pod, cfg.tftpPort, file, 2000);
    step('dhcp-ipxe');
    const script = bootFile(await dora(relay, { mac, ...IPXE }, r));
    if (!/^https?:\/\//.test(script)) throw new StepError(`iPXE got "${script}", not a script URL`);
    step('http');
    agent = new Agent({ localAddress: ip, connect: { ca }, connections: 2 });
    const text = (await httpGet(agent, script)).text!;
    const kernel = /^kernel (\S+)/m.exec(text)?.[1];
    const initrd = /^initrd (?:--name \S+ )?(\S+)/m.exec(text)?.[1];
    const installToken = / podboot\.token=(\S+)/.exec(text)?.[1];
    if (!kernel || !initrd || !installToken) throw new StepError(`iPXE script without kernel, initrd or token: ${text.slice(0, 200)}`);
    for (const u of [kernel, initrd]) r.bytes += (await httpGet(agent, u, undefined, createHash('sha256'))).bytes;
    step('https');
    const base = `https://${cfg.pod}:${cfg.httpsPort}`;
    const token = await exchange(agent, base, installToken);
    await report(agent, base, token, 'stage1');
    const manifest = JSON.parse((await httpGet(agent, `${base}/v1/stage2/manifest.json`, token)).text!) as { sha256: string };
    for (const p of ['manifest.json.p7s', 'image.p7s']) r.bytes += (await httpGet(agent, `${base}/v1/stage2/${p}`, token, createHash('sha256'))).bytes;
    const image = await imageGet(agent, `${base}/v1/stage2/image`, token, r, cfg.maxBusyWaitMs ?? 300_000);
    r.bytes += image.bytes;
    // Stage1 checks the digest against the signed manifest; so does the simulated one.
    const digest = image.sha256;
    if (digest !== manifest.sha256) throw new StepError(`image digest ${digest} is not the manifest's ${manifest.sha256}`);
    await report(agent, base, token, 'stage2-fetched');
    await report(agent, base, token, 'verified');
    r.bytes += (await httpGet(agent, `${base}/v1/kickstart`, token)).bytes;
    await report(agent, base, token, 'installing');
    await report(agent, base, token, 'installed');
    step('installed-dhcp');
    // Installed: the next PXE boot gets an address and no boot file.
    const after = await dora(relay, { mac, ...PXE }, r);
    if (bootFile(after)) throw new StepError(`installed server still offered "${bootFile(after)}"`);
    step('installed-dhcp');
    r.ok = true;
  } catch (err) {
    r.failedAt = phase;
    r.error = err instanceof StepError ? err.message : String((err as Error)?.message ?? err);
  } finally {
    await agent?.close();
  }
  return r;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]!) as StormConfig;
  const ca = readFileSync(cfg.ca);
  const relay = await DhcpProbeClient.open({ server: { address: cfg.pod, port: cfg.dhcpPort }, relay: { address: cfg.relay, port: 67 } });
  const started = performance.now();
  const deadline = sleep(cfg.deadlineMs, undefined, { ref: false }).then(() => 'deadline' as const);
  const all = Promise.all(Array.from({ length: cfg.servers }, (_, i) => boot(cfg, relay, ca, i)));
  const results = await Promise.race([all, deadline]);
  await relay.close();
  if (results === 'deadline') {
    process.stdout.write(JSON.stringify({ error: `not done within ${cfg.deadlineMs} ms` }) + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ wallMs: performance.now() - started, results, peakStreams: streams.peak }) + '\n');
}

// Run as a program inside the namespace; imported by the bench only for its types.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
