import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MessageType } from '../../../src/dhcp/codec/constants.js';
import { decodePacket, encodePacket } from '../../../src/dhcp/codec/packet.js';
import { readRequest } from '../../../src/dhcp/request.js';
import { DhcpService } from '../../../src/dhcp/service.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { requestBytes } from '../../helpers/dhcp-packets.js';
import { captureLogger } from '../../helpers/logs.js';
import { prng } from '../../helpers/prng.js';
import { ip, testPod } from '../../helpers/pods.js';

const FIXTURES = new URL('../../fixtures/dhcp/', import.meta.url).pathname;

function seeds(): Buffer[] {
  const out: Buffer[] = [];
  if (existsSync(FIXTURES)) for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.bin'))) out.push(readFileSync(join(FIXTURES, f)));
  const giaddr = ip('10.20.0.1');
  out.push(
    requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:01', giaddr, arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: 'iPXE' }),
    requestBytes({ type: MessageType.REQUEST, mac: '52:54:00:00:00:02', giaddr, requestedIp: ip('10.20.0.100'), serverId: ip('10.99.0.1'), relayAgentInfo: Buffer.from([1, 2, 3, 4, 2, 1, 9]) }),
    requestBytes({ type: MessageType.RELEASE, mac: '52:54:00:00:00:03', ciaddr: ip('10.20.0.100') }),
  );
  return out;
}

/** One mutation of a valid packet: the kinds of damage a wire or an attacker does. */
function mutate(r: ReturnType<typeof prng>, seed: Buffer): Buffer {
  const b = Buffer.from(seed);
  switch (r.int(7)) {
    case 0: // flip bytes
      for (let i = 0, n = 1 + r.int(8); i < n; i++) {
        const at = r.int(b.length);
        b[at] = b[at]! ^ (1 << r.int(8));
      }
      return b;
    case 1: // truncate
      return b.subarray(0, r.int(b.length));
    case 2: // garbage tail
      return Buffer.concat([b, r.bytes(r.int(600))]);
    case 3: {
      // corrupt an option length
      const at = 240 + r.int(Math.max(1, b.length - 240));
      if (at < b.length) b[at] = r.int(256);
      return b;
    }
    case 4: {
      // overload games: option 52 with random value at the start of the options
      const o = Buffer.from([52, 1, r.int(5)]);
      return Buffer.concat([b.subarray(0, 240), o, b.subarray(240)]);
    }
    case 5: // random header fields (op, hlen, hops)
      b[r.int(4)] = r.int(256);
      return b;
    default: {
      // pure noise of a plausible size with the magic cookie
      const n = r.bytes(240 + r.int(400));
      n.writeUInt32BE(0x63825363, 236);
      return n;
    }
  }
}

describe('DHCP fuzz', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('decoder and request reader never throw on 100k random and mutated packets', () => {
    const r = prng(0x5eed1);
    const base = seeds();
    let decoded = 0;
    let refused = 0;
    for (let i = 0; i < 100_000; i++) {
      const input = i % 10 === 0 ? r.bytes(r.int(700)) : mutate(r, base[r.int(base.length)]!);
      const d = decodePacket(input);
      if (d.ok) {
        decoded++;
        readRequest(d.packet);
        // Whatever decodes must re-encode and decode to the same options.
        const again = decodePacket(encodePacket(d.packet, 0));
        expect(again.ok).toBe(true);
      } else {
        refused++;
        expect(d.detail).toBeTypeOf('string');
      }
    }
    // Both paths are exercised, or the fuzzer proves nothing.
    expect(decoded).toBeGreaterThan(10_000);
    expect(refused).toBeGreaterThan(10_000);
  });

  it('the service survives 20k mutated packets and still answers a valid DISCOVER', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podboot-fuzz-'));
    dirs.push(dir);
    const db = openPodDatabase(dir);
    const leases = new SqliteLeaseStore(db);
    const { log, lines } = captureLogger({ pod: 'fuzz' });
    const svc = new DhcpService(testPod(), leases, new SqliteNodeStateStore(db), log);
    const r = prng(0x5eed2);
    const base = seeds();
    for (let i = 0; i < 20_000; i++) {
      const res = svc.handle(mutate(r, base[r.int(base.length)]!), { address: '10.20.0.1', port: 67 }, 1_700_000_000 + (i >> 8));
      leases.commit(res.commit, res.nodes);
      svc.committed();
    }
    // Rate limiting: a few lines per kind, not one per bad packet.
    const warnings = lines.filter((l) => l.level === 'warn').length;
    expect(warnings).toBeLessThan(200);
    const dropped = Object.values(svc.counters.dropped).reduce((a, b) => a + b, 0);
    expect(dropped).toBeGreaterThan(1000);
    const ok = svc.handle(requestBytes({ type: MessageType.DISCOVER, mac: '52:54:00:99:99:99', giaddr: ip('10.20.0.1') }), { address: '10.20.0.1', port: 67 }, 1_700_001_000);
    expect(ok.send).toHaveLength(1);
    db.close();
  });
});
