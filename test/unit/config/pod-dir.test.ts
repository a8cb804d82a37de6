import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPodDir, loadPodPaths } from '../../../src/config/load.js';
import { FIXTURES, lines, ROOT } from './fixtures.js';

describe('a directory of pod files', () => {
  it('reports names, listen sockets and subnets that collide between pods, also for a file with problems of its own', () => {
    const r = loadPodDir(join(FIXTURES, 'dir-conflicts'));
    // README.txt and the editor lock file .#10-rack-a.yaml are not read; 40-broken has its own problem,
    // and what it could read still collides with the others (test/unit/config/cross-files.test.ts).
    expect(r.pods.map((p) => p.name)).toEqual(['rack-a', 'rack-a', 'edge-1']);
    expect(lines(r.problems)).toEqual([
      'dir-conflicts/20-rack-b.yaml:6:9: metadata.name: pod name rack-a is also used by dir-conflicts/10-rack-a.yaml:4:9',
      'dir-conflicts/20-rack-b.yaml:9:5: spec.listen.httpPort: tcp 10.99.0.1:80 (the default) is also used by pod rack-a (dir-conflicts/10-rack-a.yaml:7:5)',
      'dir-conflicts/20-rack-b.yaml:9:5: spec.listen.httpsPort: tcp 10.99.0.1:443 (the default) is also used by pod rack-a (dir-conflicts/10-rack-a.yaml:7:5)',
      'dir-conflicts/20-rack-b.yaml:11:15: spec.listen.tftpPort: udp 10.99.0.1:67 is also used by pod rack-a (dir-conflicts/10-rack-a.yaml:7:5)',
      'dir-conflicts/20-rack-b.yaml:15:13: spec.subnets[1].cidr: 10.22.0.128/25 overlaps 10.22.0.0/24 of pod rack-a (dir-conflicts/10-rack-a.yaml:11:13)',
      'dir-conflicts/40-broken.yaml:5:9: metadata.name: pod name edge-1 is also used by dir-conflicts/30-edge.yaml:5:9',
      ...['dhcpPort: udp 10.99.0.1:67', 'tftpPort: udp 10.99.0.1:69', 'httpPort: tcp 10.99.0.1:80', 'httpsPort: tcp 10.99.0.1:443'].map(
        (s) => `dir-conflicts/40-broken.yaml:7:11: spec.listen.${s} (the default) is also used by pod rack-a (dir-conflicts/10-rack-a.yaml:7:5)`,
      ),
      ...[
        'dhcpPort: udp 10.99.0.1:67 (the default) is also used by pod rack-a (dir-conflicts/20-rack-b.yaml:11:15)',
        'httpPort: tcp 10.99.0.1:80 (the default) is also used by pod rack-a (dir-conflicts/20-rack-b.yaml:9:5)',
        'httpsPort: tcp 10.99.0.1:443 (the default) is also used by pod rack-a (dir-conflicts/20-rack-b.yaml:9:5)',
      ].map((s) => `dir-conflicts/40-broken.yaml:7:11: spec.listen.${s}`),
      'dir-conflicts/40-broken.yaml:10:13: spec.subnets[0].cidr: 10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-a (dir-conflicts/10-rack-a.yaml:10:13)',
      'dir-conflicts/40-broken.yaml:11:18: spec.subnets[0].leaseTime: expected a duration such as 90s, 30m, 1h, 1d or a number of seconds, found "soon"',
    ]);
  });

  it('loads the example pods together without a problem', () => {
    const r = loadPodDir(join(ROOT, 'examples', 'pods'));
    expect(r.problems).toEqual([]);
    expect(r.pods.map((p) => [p.name, p.listen.address, p.subnets.map((s) => s.cidr)])).toEqual([
      ['edge-1', '10.99.0.3', ['172.16.40.0/26']],
      ['rack-a', '10.99.0.1', ['10.20.0.0/24', '10.20.8.0/22']],
      ['rack-b', '10.99.0.2', ['10.21.0.0/24']],
    ]);
  });

  describe('paths named together', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'podboot-config-dir-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('checks a file against the pods of a directory named with it', () => {
      const r = loadPodPaths([join(FIXTURES, 'valid/minimal.yaml'), join(ROOT, 'examples', 'pods')]);
      expect(r.pods).toHaveLength(4);
      expect(lines(r.problems).map((l) => l.replace(ROOT, ''))).toEqual([
        'examples/pods/rack-a.yaml:12:13: spec.subnets[0].cidr: 10.20.0.0/24 overlaps 10.20.0.0/24 of pod rack-min (valid/minimal.yaml:8:13)',
      ]);
    });

    it('treats a named directory without pod files as a problem, an empty --pods directory not', () => {
      const empty = join(tmp, 'empty');
      mkdirSync(empty);
      expect(loadPodPaths([empty]).problems).toEqual([{ file: empty, line: 1, col: 1, path: '(dir)', message: 'no pod files (*.yaml, *.yml) in this directory' }]);
      expect(loadPodDir(empty)).toEqual({ pods: [], problems: [] });
      expect(loadPodDir(join(tmp, 'absent')).problems).toEqual([{ file: join(tmp, 'absent'), line: 1, col: 1, path: '(dir)', message: expect.stringContaining('ENOENT') }]);
    });
  });
});
