// The instance's self-probe of its listeners, run inside the instance (so it
// works in its own network namespace too): its UDP sockets (DHCP, TFTP) must
// still be bound, as the kernel lists them in /proc/self/net/udp, and its TCP
// listeners (HTTP, HTTPS) must accept a connection (HTTPS: complete a TLS
// handshake, so the boot server sees no broken handshake to log). Nothing is
// sent that the protocol servers would count or log.
import { readFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface ProbeResult {
  listener: string;
  ok: boolean;
  detail?: string;
}

/** Local address:port pairs bound in a /proc/net/udp text (addresses in host byte order, little-endian hex). */
export function boundUdp(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (!local) continue;
    const [hexAddr, hexPort] = local.split(':');
    if (!hexAddr || !hexPort || hexAddr.length !== 8) continue;
    const a = parseInt(hexAddr, 16);
    const addr = [a & 255, (a >>> 8) & 255, (a >>> 16) & 255, a >>> 24].join('.');
    out.add(`${addr}:${parseInt(hexPort, 16)}`);
  }
  return out;
}

function tcpProbe(address: string, port: number, tls: boolean, timeoutMs: number): Promise<ProbeResult> {
  const listener = `${tls ? 'https' : 'http'} ${address}:${port}`;
  return new Promise((resolve) => {
    const done = (ok: boolean, detail?: string) => {
      clearTimeout(t);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.end();
      socket.destroy();
      resolve({ listener, ok, ...(detail ? { detail } : {}) });
    };
    // Only reachability is checked here; who the pod's certificate names is the client's business.
    const socket = tls ? tlsConnect({ host: address, port, rejectUnauthorized: false, minVersion: 'TLSv1.2' }) : tcpConnect({ host: address, port });
    const t = setTimeout(() => done(false, `no answer within ${timeoutMs} ms`), timeoutMs);
    socket.once(tls ? 'secureConnect' : 'connect', () => done(true));
    socket.once('error', (err) => done(false, err.message));
  });
}

export async function probeListeners(l: { address: string; dhcpPort: number; tftpPort: number; httpPort?: number; httpsPort?: number }, timeoutMs = 2000): Promise<ProbeResult[]> {
  const results: ProbeResult[] = [];
  let udp: Set<string> | undefined;
  try {
    udp = boundUdp(await readFile('/proc/self/net/udp', 'utf8'));
  } catch (err) {
    results.push({ listener: 'udp', ok: false, detail: `cannot read /proc/self/net/udp: ${(err as Error).message}` });
  }
  if (udp) {
    for (const [name, port] of [
      ['dhcp', l.dhcpPort],
      ['tftp', l.tftpPort],
    ] as const) {
      const ok = udp.has(`${l.address}:${port}`) || udp.has(`0.0.0.0:${port}`);
      results.push({ listener: `${name} ${l.address}:${port}`, ok, ...(ok ? {} : { detail: 'socket not bound' }) });
    }
  }
  const tcp: Promise<ProbeResult>[] = [];
  if (l.httpPort) tcp.push(tcpProbe(l.address, l.httpPort, false, timeoutMs));
  if (l.httpsPort) tcp.push(tcpProbe(l.address, l.httpsPort, true, timeoutMs));
  return [...results, ...(await Promise.all(tcp))];
}
