// kill -9 of a pod instance in the middle of a storm of relayed clients: every
// ACK the clients saw must still be in the store after the restart (and, for
// PXE clients, the install state the ACK moved them to), and no address may
// ever be ACKed to two clients. Loopback only.
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DhcpProbeClient, messageType } from '../../../src/dhcp/client.js';
import { MessageType } from '../../../src/dhcp/codec/constants.js';
import { formatIPv4 } from '../../../src/net/ipv4.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';

const PORT = 20_000 + (process.pid % 10_000);
const POD_YAML = `apiVersion: podboot/v1
kind: Pod
metadata:
  name: crash-pod
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${PORT} }
  relays: [127.88.0.1]
  subnets:
    - { cidr: 127.88.0.0/16, gateway: 127.88.0.1, pool: 127.88.1.0-127.88.255.250, leaseTime: 1h }
  unknownNodes: provision
`;

const mac = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

describe('kill -9 under a DHCP storm', () => {
  const lab = new Lab('pbk');
  const stateDir = join(lab.dir, 'state');
  const podFile = join(lab.dir, 'pod.yaml');
  let pod: Daemon;
  let client: DhcpProbeClient;

  async function startPod(label: string): Promise<Daemon> {
    const d = lab.spawn(undefined, process.execPath, [PODBOOT, 'pod', 'run', podFile, '--state', stateDir], label);
    await d.waitFor(/dhcp listening/);
    return d;
  }

  beforeAll(async () => {
    requireBuild();
    writeFileSync(podFile, POD_YAML);
    pod = await startPod('pod-1');
    client = await DhcpProbeClient.open({ server: { address: '127.0.0.1', port: PORT }, relay: { address: '127.88.0.1', port: 0 } });
  });

  afterAll(async () => {
    await client?.close();
    await lab.cleanup();
  });

  it('loses no ACKed lease nor install state, and never gives one address to two clients', async () => {
    const acked = new Map<string, number>();
    // Every 20th client PXE-boots (option 93): its ACK carries a boot file and moves it to pxe.
    const ackedPxe = new Set<string>();
    let next = 0;
    let stop = false;
    const worker = async () => {
      // Paced (~1,000 DORA/s in all) so the storm is still running when the kill comes.
      while (!stop && next < 20_000) {
        const i = next++;
        const pxe = i % 20 === 0;
        const { ack } = await client.dora({ mac: mac(i), ...(pxe ? { arch: 0 } : {}) }, 400);
        if (ack && messageType(ack) === MessageType.ACK) {
          acked.set(mac(i), ack.yiaddr);
          if (pxe) ackedPxe.add(mac(i));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const workers = Array.from({ length: 24 }, worker);
    // Let the storm run, kill the instance without warning, bring it back while clients keep coming.
    await new Promise((r) => setTimeout(r, 1500));
    const ackedBeforeKill = acked.size;
    pod.proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    pod = await startPod('pod-2');
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(workers);

    expect(ackedBeforeKill).toBeGreaterThan(50);
    expect(acked.size).toBeGreaterThan(ackedBeforeKill);
    // No address ACKed to two clients.
    const owners = new Map<number, string>();
    for (const [m, a] of acked) {
      expect(owners.get(a), `${formatIPv4(a)} ACKed to ${owners.get(a)} and ${m}`).toBeUndefined();
      owners.set(a, m);
    }
    // Every ACKed client gets the same address again from the restarted instance.
    const sample = [...acked].filter((_, i) => i % 7 === 0);
    for (const [m, a] of sample) {
      const { ack } = await client.dora({ mac: m }, 2000);
      expect(ack && formatIPv4(ack.yiaddr), m).toBe(formatIPv4(a));
    }
    // And every ACK is in the database as a bound lease for that client.
    await pod.stop();
    const db = new Database(join(stateDir, 'crash-pod', 'pod.db'), { readonly: true });
    const rows = db.prepare("SELECT address, mac FROM leases WHERE state = 'bound'").all() as { address: number; mac: string }[];
    const states = new Map((db.prepare('SELECT mac, state FROM nodes').all() as { mac: string; state: string }[]).map((r) => [r.mac, r.state]));
    db.close();
    const stored = new Map(rows.map((r) => [r.mac, r.address >>> 0]));
    for (const [m, a] of acked) expect(stored.get(m), m).toBe(a);
    // Committed with the lease, before the ACK: a PXE client ACKed before the kill is pxe after it.
    expect(ackedPxe.size).toBeGreaterThan(5);
    for (const m of ackedPxe) expect(states.get(m), m).toBe('pxe');
  });
});
