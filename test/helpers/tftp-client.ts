// A TFTP read client for tests, written to misbehave on purpose: it can drop
// chosen incoming packets (as if lost on the wire), repeat its ACKs, and it
// recovers the way tftp-hpa and UEFI firmware do: on its own timeout it sends
// its last packet (the request or the last ACK) again. As an RFC 7440
// receiver it acknowledges every `windowsize` in-order blocks, the last
// block, and optionally the last in-order block when it sees a gap.
import dgram from 'node:dgram';
import { decodePacket, encodeAck, encodeRequest } from '../../src/tftp/codec.js';

export interface FetchOptions {
  address?: string;
  /** the client's own address (default: the server's, fine on loopback); a booting server asks from its leased one */
  localAddress?: string;
  port: number;
  file: string;
  mode?: string;
  /** options to request, e.g. { blksize: 1468, windowsize: 16, tsize: 0 } */
  options?: Record<string, number | string>;
  /** bytes to send instead of a request built from file/mode/options */
  rawRequest?: Buffer;
  /**
   * Drop an incoming packet? `block` is absolute (1, 2, … past 65535; 0 for the
   * OACK), `attempt` counts how often this block has arrived, starting at 1.
   */
  drop?: (kind: 'oack' | 'data', block: number, attempt: number) => boolean;
  /** send every ACK this many times (1 = normal) */
  ackCopies?: number;
  /** lose an outgoing ACK on the wire? `attempt` counts ACKs of this block, starting at 1 */
  dropAck?: (block: number, attempt: number) => boolean;
  /** ACK the last in-order block as soon as a gap is seen (RFC 7440 allows it) */
  ackOnGap?: boolean;
  timeoutMs?: number;
  maxRetries?: number;
  /** keep the data? off for big files when only the count matters */
  keep?: boolean;
  /** called once the server's transfer port (its TID) is known, with a way to send from the client's own socket */
  onServerTid?: (port: number, sendFromClient: (datagram: Buffer) => void) => void;
}

export interface FetchResult {
  ok: boolean;
  data: Buffer;
  bytes: number;
  oack?: Record<string, string>;
  error?: { code: number; message: string };
  /** every DATA packet that arrived, dropped ones included */
  dataPackets: number;
  /** DATA packets that arrived for a block already received */
  duplicateData: number;
  acksSent: number;
  /** times the client's own timer fired */
  clientTimeouts: number;
  serverTid?: number;
}

export function tftpFetch(o: FetchOptions): Promise<FetchResult> {
  const address = o.address ?? '127.0.0.1';
  const timeoutMs = o.timeoutMs ?? 400;
  const maxRetries = o.maxRetries ?? 20;
  const keep = o.keep ?? true;
  const socket = dgram.createSocket('udp4');
  const parts: Buffer[] = [];
  const arrivals = new Map<number, number>();
  const r: FetchResult = { ok: false, data: Buffer.alloc(0), bytes: 0, dataPackets: 0, duplicateData: 0, acksSent: 0, clientTimeouts: 0 };
  let blksize = 512;
  let windowsize = 1;
  let expected = 1;
  let sinceAck = 0;
  let gapAcked = false;
  const request = o.rawRequest ?? encodeRequest({ op: 'rrq', filename: o.file, mode: o.mode ?? 'octet', options: o.options });
  /** absolute block of the last ACK sent; undefined while only the request has gone out */
  let lastAck: number | undefined;
  let retries = 0;
  let timer: NodeJS.Timeout | undefined;

  return new Promise<FetchResult>((resolve) => {
    const finish = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      socket.removeAllListeners('message');
      r.data = Buffer.concat(parts);
      socket.close(() => resolve(r));
    };
    const ackAttempts = new Map<number, number>();
    /** `then` runs once the ACK has left (closing the socket earlier would cancel it) */
    const sendAck = (block: number, copies: number, then?: () => void) => {
      const attempt = (ackAttempts.get(block) ?? 0) + 1;
      ackAttempts.set(block, attempt);
      lastAck = block;
      if (o.dropAck?.(block, attempt)) return then?.();
      const packet = encodeAck(block);
      for (let i = 0; i < copies; i++) {
        socket.send(packet, r.serverTid!, address, i === copies - 1 ? then : undefined);
        r.acksSent++;
      }
    };
    const ack = (block: number, then?: () => void) => sendAck(block, o.ackCopies ?? 1, then);
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        r.clientTimeouts++;
        if (++retries > maxRetries) return finish();
        if (lastAck === undefined) socket.send(request, o.port, address);
        else sendAck(lastAck, 1);
        arm();
      }, timeoutMs);
    };
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== address) return;
      if (r.serverTid === undefined) {
        r.serverTid = rinfo.port;
        o.onServerTid?.(rinfo.port, (datagram) => socket.send(datagram, rinfo.port, address));
      } else if (rinfo.port !== r.serverTid) return;
      const d = decodePacket(msg);
      if (!d.ok) return;
      const p = d.packet;
      if (p.op === 'error') {
        r.error = { code: p.code, message: p.message };
        return finish();
      }
      if (p.op === 'oack') {
        const attempt = (arrivals.get(0) ?? 0) + 1;
        arrivals.set(0, attempt);
        if (o.drop?.('oack', 0, attempt)) {
          if (attempt === 1 && expected === 1) r.serverTid = undefined; // as if it never came
          return;
        }
        if (expected !== 1) return;
        r.oack = p.options;
        if (p.options.blksize) blksize = Number(p.options.blksize);
        if (p.options.windowsize) windowsize = Number(p.options.windowsize);
        retries = 0;
        ack(0);
        arm();
        return;
      }
      if (p.op !== 'data') return;
      r.dataPackets++;
      // The absolute block this wire number stands for, nearest to what we expect.
      const abs = expected + (((p.block - expected + 0x8000) & 0xffff) - 0x8000);
      const attempt = (arrivals.get(abs) ?? 0) + 1;
      arrivals.set(abs, attempt);
      if (o.drop?.('data', abs, attempt)) return;
      if (abs !== expected) {
        if (abs < expected) r.duplicateData++;
        else if (o.ackOnGap && !gapAcked) {
          gapAcked = true;
          sinceAck = 0;
          ack(expected - 1);
        }
        return;
      }
      if (keep) parts.push(Buffer.from(p.data));
      r.bytes += p.data.length;
      expected++;
      sinceAck++;
      gapAcked = false;
      retries = 0;
      if (p.data.length < blksize) {
        r.ok = true;
        if (timer) clearTimeout(timer);
        socket.removeAllListeners('message');
        return ack(abs, finish);
      }
      if (sinceAck >= windowsize) {
        sinceAck = 0;
        ack(abs);
      }
      arm();
    });
    socket.bind(0, o.localAddress ?? address, () => {
      socket.send(request, o.port, address);
      arm();
    });
  });
}

/** Sends one datagram from a fresh socket and returns the first answer (or undefined after timeoutMs). */
export function exchangeOnce(port: number, datagram: Buffer, timeoutMs = 1500, address = '127.0.0.1'): Promise<{ data: Buffer; port: number } | undefined> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    const t = setTimeout(() => socket.close(() => resolve(undefined)), timeoutMs);
    socket.once('message', (data, rinfo) => {
      clearTimeout(t);
      socket.close(() => resolve({ data, port: rinfo.port }));
    });
    socket.bind(0, address, () => socket.send(datagram, port, address));
  });
}
