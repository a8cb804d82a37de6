// Listings as operators read them (issue 20): tables with a header row, and
// the same rows as JSON with --json.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatTable } from '../../../src/cli/table.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteLeaseStore, SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';
import { PODBOOT, requireBuild } from '../../helpers/netns.js';

const T = Math.floor(Date.now() / 1000);
const root = mkdtempSync(join(tmpdir(), 'pb-listings-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('listings', () => {
  it('formatTable pads columns under a header, two spaces apart, no trailing blanks', () => {
    expect(
      formatTable(
        ['MAC', 'STATE', 'IP'],
        [
          ['52:54:00:00:00:01', 'pxe', '-'],
          ['x', 'failed(signature)', '10.0.0.100'],
        ],
      ),
    ).toBe('MAC                STATE              IP\n' + '52:54:00:00:00:01  pxe                -\n' + 'x                  failed(signature)  10.0.0.100\n');
    expect(formatTable(['POD', 'STATE'], [])).toBe('POD  STATE\n');
  });

  it('nodes list --state: a header, each server with hostname, live lease address, the image on its disk, last seen and pod; --json the same rows', () => {
    requireBuild();
    const db = openPodDatabase(join(root, 'rack-l'));
    const nodes = new SqliteNodeStateStore(db);
    nodes.changeInstallState({ mac: '52:54:00:00:0e:01', state: 'pxe', time: T - 5 });
    nodes.changeInstallState({ mac: '52:54:00:00:0e:02', state: 'failed', reason: 'signature', time: T - 4 });
    // installed from the version before the one the pod file assigns now
    nodes.changeInstallState({ mac: '52:54:00:00:0e:03', state: 'installed', time: T - 4, image: 'lab-os@1.1.0' });
    nodes.changeInstallState({ mac: '52:54:00:00:0e:03', state: 'booted-from-disk', time: T - 3 });
    nodes.recordHeartbeat('52:54:00:00:0e:03', {
      time: T - 2,
      metrics: { uptime: 3 * 86400 + 4 * 3600, load1: 0.5, load5: 0.25, load15: 0.125, memTotal: 2 ** 31, memAvailable: 2 ** 30, diskSize: 100, diskUsed: 25 },
    });
    nodes.setLiveness('52:54:00:00:0e:03', 'active');
    new SqliteLeaseStore(db).commit([{ address: 0x0a000064, clientKey: 'a', mac: '52:54:00:00:0e:01', state: 'bound', starts: T - 10, ends: T + 600, subnet: '10.0.0.0/24' }]);
    db.close();
    // The pod's running copy of its file names two servers and the image it installs.
    writeFileSync(
      join(root, 'rack-l', 'pod.yaml'),
      `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-l }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.0.0.1]
  subnets: [{ cidr: 10.0.0.0/24, pool: 10.0.0.100-10.0.0.199 }]
  stage2: { image: lab-os, version: 1.2.0 }
  nodes:
    - { mac: 52:54:00:00:0e:01, hostname: node-1 }
    - { mac: 52:54:00:00:0e:03, hostname: node-3 }
`,
    );
    // A second pod: every pod is listed unless --pod names one.
    const other = openPodDatabase(join(root, 'rack-m'));
    new SqliteNodeStateStore(other).changeInstallState({ mac: '52:54:00:00:0f:01', state: 'discovered', time: T - 1 });
    other.close();

    const run = (...extra: string[]) => spawnSync(process.execPath, [PODBOOT, 'nodes', 'list', '--state', root, ...extra], { encoding: 'utf8' });
    const text = run('--pod', 'rack-l');
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^MAC\s+STATE\s+ATTEMPT\s+HOSTNAME\s+IP\s+IMAGE\s+LAST SEEN\s+LIVENESS\s+POD$/);
    const at = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^52:54:00:00:0e:01\\s+pxe\\s+1\\s+node-1\\s+10\\.0\\.0\\.100\\s+-\\s+${at(T - 5)}\\s+-\\s+rack-l$`)),
      expect.stringMatching(/^52:54:00:00:0e:02\s+failed\(signature\)\s+1\s+-\s+-\s+-\s+\d{4}-\S+Z\s+-\s+rack-l$/),
      // Booted from its disk: last seen is its last heartbeat, and it is active.
      expect.stringMatching(new RegExp(`^52:54:00:00:0e:03\\s+booted-from-disk\\s+1\\s+node-3\\s+-\\s+lab-os@1\\.1\\.0\\s+${at(T - 2)}\\s+active\\s+rack-l$`)),
    ]);
    // Columns line up under their header.
    expect(lines[1]!.indexOf('10.0.0.100')).toBe(lines[0]!.indexOf('IP'));
    expect(lines[1]!.indexOf('rack-l')).toBe(lines[0]!.indexOf('POD'));
    // --wide: when the state changed, and the last heartbeat's figures.
    const wide = run('--pod', 'rack-l', '--wide').stdout.trimEnd().split('\n');
    expect(wide[0]).toMatch(/\s+POD\s+CHANGED\s+UPTIME\s+LOAD\s+MEM\s+DISK$/);
    expect(wide[3]).toMatch(new RegExp(`rack-l\\s+${at(T - 3)}\\s+3d04h\\s+0\\.50/0\\.25/0\\.13\\s+50%\\s+25%$`));
    expect(wide[1]).toMatch(/rack-l\s+\S+Z(\s+-){4}$/);

    const json = run('--json');
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ pod: 'rack-l', mac: '52:54:00:00:0e:01', hostname: 'node-1', state: 'pxe', attempt: 1, ip: '10.0.0.100', assigned: 'lab-os@1.2.0', lastSeen: T - 5 }),
      expect.objectContaining({ pod: 'rack-l', mac: '52:54:00:00:0e:02', state: 'failed', reason: 'signature' }),
      expect.objectContaining({
        pod: 'rack-l',
        mac: '52:54:00:00:0e:03',
        hostname: 'node-3',
        image: 'lab-os@1.1.0',
        assigned: 'lab-os@1.2.0',
        liveness: 'active',
        heartbeat: expect.objectContaining({ time: T - 2 }),
      }),
      expect.objectContaining({ pod: 'rack-m', mac: '52:54:00:00:0f:01', state: 'discovered' }),
    ]);
    expect(JSON.parse(json.stdout)[1]).not.toHaveProperty('ip');
    expect(JSON.parse(json.stdout)[0]).not.toHaveProperty('image');
    expect(JSON.parse(json.stdout)[3]).not.toHaveProperty('assigned');

    // nodes show --state: the same row, then the events oldest first.
    const show = spawnSync(process.execPath, [PODBOOT, 'nodes', 'show', '52:54:00:00:0e:03', '--state', root], { encoding: 'utf8' });
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout.split('\n').slice(0, 9)).toEqual([
      '52:54:00:00:0e:03',
      '  pod        rack-l',
      '  hostname   node-3',
      '  ip         - (no live lease)',
      `  state      booted-from-disk  attempt 1  since ${at(T - 3)}`,
      '  image      lab-os@1.1.0',
      '  assigned   lab-os@1.2.0',
      `  last seen  ${at(T - 2)}  active`,
      `  heartbeat  ${at(T - 2)}  uptime 3d04h  load 0.50 0.25 0.13  memory 1.0 GiB used of 2.0 GiB  disk 0.0 GiB used of 0.0 GiB`,
    ]);
    const shownJson = JSON.parse(spawnSync(process.execPath, [PODBOOT, 'nodes', 'show', '52:54:00:00:0e:01', '--pod', 'rack-l', '--state', root, '--json'], { encoding: 'utf8' }).stdout);
    expect(shownJson.node).toMatchObject({ pod: 'rack-l', mac: '52:54:00:00:0e:01', hostname: 'node-1', ip: '10.0.0.100', assigned: 'lab-os@1.2.0' });
    expect(shownJson.events.map((e: { kind: string }) => e.kind)).toEqual(['pxe']);
  });

  it('nodes: an unknown pod or server is exit 1 naming where it looked; --state with --url is wrong usage', () => {
    requireBuild();
    const nodes = (...args: string[]) => spawnSync(process.execPath, [PODBOOT, 'nodes', ...args], { encoding: 'utf8' });
    const noPod = nodes('list', '--pod', 'rack-x', '--state', root);
    expect(noPod.status).toBe(1);
    expect(noPod.stderr).toBe(`podboot nodes list: no pod rack-x under ${root} (no ${join(root, 'rack-x', 'pod.db')})\n`);
    const unseen = nodes('show', '52:54:00:00:ee:ee', '--pod', 'rack-m', '--state', root);
    expect(unseen.status).toBe(1);
    expect(unseen.stderr).toBe(`podboot nodes show: pod rack-m has never seen 52:54:00:00:ee:ee (${join(root, 'rack-m', 'pod.db')})\n`);
    expect(nodes('show', '52:54:00:00:ee:ee', '--state', root).stderr).toBe('podboot nodes show: no pod has seen 52:54:00:00:ee:ee\n');
    const both = nodes('list', '--state', root, '--url', 'https://127.0.0.1:1');
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('give one or the other');
  });
});
