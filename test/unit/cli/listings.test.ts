// Listings as operators read them (issue 20): tables with a header row, and
// the same rows as JSON with --json.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

  it('nodes list: a header, each server with its live lease address; --json the same with ip', () => {
    requireBuild();
    const db = openPodDatabase(join(root, 'rack-l'));
    const nodes = new SqliteNodeStateStore(db);
    nodes.changeInstallState({ mac: '52:54:00:00:0e:01', state: 'pxe', time: T - 5 });
    nodes.changeInstallState({ mac: '52:54:00:00:0e:02', state: 'failed', reason: 'signature', time: T - 4 });
    new SqliteLeaseStore(db).commit([{ address: 0x0a000064, clientKey: 'a', mac: '52:54:00:00:0e:01', state: 'bound', starts: T - 10, ends: T + 600, subnet: '10.0.0.0/24' }]);
    db.close();
    const run = (...extra: string[]) => spawnSync(process.execPath, [PODBOOT, 'nodes', 'list', '--pod', 'rack-l', '--state', root, ...extra], { encoding: 'utf8' });
    const text = run();
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^MAC\s+STATE\s+ATTEMPT\s+IP\s+CHANGED\s+LAST SEEN\s+LIVENESS\s+UPTIME\s+LOAD\s+MEM\s+DISK$/);
    expect(lines.slice(1)).toEqual([
      // Not booted from its disk: no liveness, no heartbeat.
      expect.stringMatching(/^52:54:00:00:0e:01\s+pxe\s+1\s+10\.0\.0\.100\s+\d{4}-\d\d-\d\dT\S+\s+\d{4}-\S+(\s+-){5}$/),
      expect.stringMatching(/^52:54:00:00:0e:02\s+failed\(signature\)\s+1\s+-\s+\d{4}-/),
    ]);
    // Columns line up under their header.
    expect(lines[1]!.indexOf('10.0.0.100')).toBe(lines[0]!.indexOf('IP'));
    const json = run('--json');
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ mac: '52:54:00:00:0e:01', state: 'pxe', attempt: 1, ip: '10.0.0.100' }),
      expect.not.objectContaining({ ip: expect.anything() }),
    ]);
  });
});
