// A pod instance serves its boot tree and per-server configs over TFTP, the
// config following the server's install state in the pod's own database.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { Lab, PODBOOT, requireBuild, type Daemon } from '../../helpers/netns.js';
import { tftpFetch } from '../../helpers/tftp-client.js';

const BASE = 21_000 + (process.pid % 5_000) * 2;
const POD = `apiVersion: podboot/v1
kind: Pod
metadata: { name: boot-pod }
spec:
  listen: { address: 127.0.0.1, dhcpPort: ${BASE}, tftpPort: ${BASE + 1} }
  relays: [127.66.0.1]
  subnets:
    - { cidr: 127.66.0.0/24, pool: 127.66.0.100-127.66.0.199 }
  nodes:
    - { mac: "52:54:00:66:00:01", hostname: fresh, address: 127.66.0.11 }
    - { mac: "52:54:00:66:00:02", hostname: done, address: 127.66.0.12 }
  unknownNodes: ignore
`;

describe('pod instance: TFTP boot files', () => {
  const lab = new Lab('pbp');
  const state = join(lab.dir, 'state');
  let pod: Daemon;

  const get = (name: string): { ok: boolean; text: string } => {
    const out = join(lab.dir, 'got');
    try {
      execFileSync('tftp', ['127.0.0.1', String(BASE + 1), '-m', 'binary', '-c', 'get', name, out], { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      return { ok: false, text: '' };
    }
    // tftp-hpa exits 0 even on an error packet; it then leaves no (or an empty) file.
    const text = readFileSync(out, 'utf8');
    writeFileSync(out, '');
    return { ok: text.length > 0, text };
  };

  beforeAll(async () => {
    requireBuild();
    const file = join(lab.dir, 'pod.yaml');
    writeFileSync(file, POD);
    // The second node finished its install earlier: its state is in the pod's database.
    const db = openPodDatabase(join(state, 'boot-pod'));
    new SqliteNodeStateStore(db).changeInstallState({ mac: '52:54:00:66:00:02', state: 'installed', time: 1_700_000_000 });
    db.close();
    mkdirSync(join(state, 'boot-pod', 'boot', 'stage1'), { recursive: true });
    writeFileSync(join(state, 'boot-pod', 'boot', 'stage1', 'vmlinuz'), 'kernel bytes');
    pod = lab.spawn(undefined, process.execPath, [PODBOOT, 'pod', 'run', file, '--state', state], 'pod');
    await pod.waitFor(/pod instance started/);
  });

  afterAll(() => lab.cleanup());

  it('gives a server to provision its stage1 config (from its leased address only) and the files from the boot tree', async () => {
    // The server's PXE ROM gets its lease through the rack's relay, then asks from that address.
    execFileSync(process.execPath, [PODBOOT, 'dhcp', 'probe', '--server', `127.0.0.1:${BASE}`, '--relay', `127.66.0.1:${BASE + 2}`, '--mac', '52:54:00:66:00:01', '--arch', '0', '--timeout', '5000'], {
      encoding: 'utf8',
    });
    const own = await tftpFetch({ port: BASE + 1, file: 'pxelinux.cfg/01-52-54-00-66-00-01', localAddress: '127.66.0.11', timeoutMs: 1000 });
    expect(own.ok).toBe(true);
    const cfg = own.data.toString();
    expect(cfg).toContain('KERNEL stage1/vmlinuz');
    expect(cfg).toContain('podboot.mac=52-54-00-66-00-01 podboot.token=pb1.install.525400660001.');
    // Anyone else (tftp-hpa asks from 127.0.0.1): an error packet, no file, and a log line naming the file and source.
    expect(get('pxelinux.cfg/01-52-54-00-66-00-01').ok).toBe(false);
    await pod.waitFor(/"node":"52:54:00:66:00:01","file":"pxelinux\.cfg\/01-52-54-00-66-00-01","source":"127\.0\.0\.1".*boot config with an install token refused/);
    expect(get('stage1/vmlinuz').text).toBe('kernel bytes');
  });

  it('tells an installed server, and an unknown one when the pod ignores them, to boot from disk', () => {
    for (const mac of ['52-54-00-66-00-02', '52-54-00-66-00-99']) {
      const cfg = get(`pxelinux.cfg/01-${mac}`);
      expect(cfg.ok, mac).toBe(true);
      expect(cfg.text, mac).not.toContain('KERNEL stage1/vmlinuz');
      expect(cfg.text, mac).toMatch(/LOCALBOOT/);
    }
  });

  it('refuses names that leave the boot tree, with a log line', async () => {
    expect(get('../pod.db').ok).toBe(false);
    await pod.waitFor(/"pod":"boot-pod".*pod\.db/);
  });
});
