// Problems within files and between files in one run (issue 20): a file with
// problems of its own still takes part in the checks between files with
// every field whose value could be read.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crossPodProblems, factsOfPod } from '../../../src/config/cross-pod.js';
import { loadPodDir } from '../../../src/config/load.js';
import { parsePod } from '../../../src/config/pod-file.js';
import { formatProblem } from '../../../src/config/types.js';
import { ip, subnet, testPod } from '../../helpers/pods.js';
import { FIXTURES, lines } from './fixtures.js';

describe('checks within and between pod files', () => {
  it('reports both kinds in one run, each at its file:line:col and field', () => {
    const r = loadPodDir(join(FIXTURES, 'cross-files'));
    expect(r.pods.map((p) => p.name)).toEqual(['rack-a', 'rack-e']);
    expect(lines(r.problems)).toEqual([
      // Between files, though rack-b has problems of its own: a socket, a subnet, a server and a management network.
      'cross-files/20-rack-b.yaml:9:59: spec.listen.tftpPort: udp 10.99.0.1:69 is also used by pod rack-a (cross-files/10-rack-a.yaml:7:11)',
      // Within: an unreadable port, compared with nobody's (rack-a's http port 80 is not named).
      'cross-files/20-rack-b.yaml:9:73: spec.listen.httpPort: expected an integer, found "eighty"',
      'cross-files/20-rack-b.yaml:13:13: spec.subnets[1].cidr: 10.20.0.128/25 overlaps 10.20.0.0/24 of pod rack-a (cross-files/10-rack-a.yaml:10:13)',
      'cross-files/20-rack-b.yaml:14:13: spec.subnets[2].cidr: 10.20.0.300/24 is not a CIDR (a.b.c.d/len, len 0..32)',
      'cross-files/20-rack-b.yaml:15:30: spec.managementNetwork.cidr: management network 10.30.0.128/25 overlaps 10.30.0.0/24, the management network of pod rack-a (cross-files/10-rack-a.yaml:11:30)',
      'cross-files/20-rack-b.yaml:15:55: spec.managementNetwork.gateway: gateway 10.31.0.1 is outside 10.30.0.128/25 (spec.managementNetwork.cidr)',
      'cross-files/20-rack-b.yaml:17:14: spec.nodes[0].mac: server 52:54:00:00:0a:02 is also a server of pod rack-a (cross-files/10-rack-a.yaml:14:14)',
      'cross-files/20-rack-b.yaml:18:14: spec.nodes[1].mac: not-a-mac is not a MAC address (six hex bytes, e.g. 52:54:00:12:34:56)',
      // A server whose hostname is wrong still has its MAC compared (it is rack-b's only).
      "cross-files/20-rack-b.yaml:19:43: spec.nodes[2].hostname: b_3 is not a host name (letters, digits, inner '-', dots)",
      'cross-files/30-rack-c.yaml:5:9: metadata.name: pod name rack-a is also used by cross-files/10-rack-a.yaml:5:9',
      'cross-files/30-rack-c.yaml:10:38: spec.subnets[0].gateway: gateway 10.24.0.1 is outside 10.23.0.0/24',
      "cross-files/40-no-name.yaml:5:9: metadata.name: Rack_D is not a DNS label (a-z, 0-9, inner '-', at most 63)",
      // A pod whose name could not be read is still the other side of a conflict.
      'cross-files/50-rack-e.yaml:10:13: spec.subnets[0].cidr: 10.24.0.0/24 overlaps 10.24.0.0/24 of another pod (cross-files/40-no-name.yaml:10:13)',
      // A file that is not YAML takes no part: it also says rack-a and 10.99.0.1.
      'cross-files/60-syntax.yaml:5:1: (yaml): Flow map in block collection must be sufficiently indented and end with a }',
    ]);
  });

  it("reads a broken file's facts field by field: what could be read, nothing else", () => {
    const text = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-f }
spec:
  listen: { address: 10.99.0.6, httpPort: 0 }
  relays: [10.26.0.1]
  subnets: [{ cidr: 10.26.0.0/24 }, { cidr: nope }]
  nodes: [{ mac: 52:54:00:00:0f:01 }, { mac: 01:00:5e:00:00:01 }]
  managementNetwork: { cidr: 10.36.0.1/24 }
`;
    const p = parsePod(text, 'f.yaml');
    expect(p.pod).toBeUndefined();
    expect(p.problems.map(formatProblem)).toHaveLength(4);
    expect(p.facts).toEqual({
      name: 'rack-f',
      listen: { address: '10.99.0.6', ports: { dhcpPort: 67, tftpPort: 69, httpsPort: 443 } },
      subnets: [{ cidr: expect.objectContaining({ prefix: 24 }), text: '10.26.0.0/24', path: 'spec.subnets[0]' }],
      macs: [{ mac: '52:54:00:00:0f:01', path: 'spec.nodes[0].mac' }],
    });
  });

  it('a valid pod has the same facts read from its file as made from its config', () => {
    const text = `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-g }
spec:
  listen: { address: 10.99.0.7, tftpPort: 1069 }
  relays: [10.27.0.1]
  subnets: [{ cidr: 10.27.0.0/24 }]
  nodes: [{ mac: 52:54:00:00:10:01 }]
  managementNetwork: { cidr: 10.37.0.0/24 }
`;
    const p = parsePod(text, 'g.yaml');
    expect(p.problems).toEqual([]);
    expect(factsOfPod(p.pod!)).toEqual(p.facts);
  });

  it('the central node refuses a pod sharing a server or a management network with a running one', () => {
    const locate = () => ({ line: 1, col: 1, written: true });
    const mgmt = (cidr: string) => {
      const s = subnet(cidr);
      return { cidr, network: s.network, prefix: s.prefix, dns: [] };
    };
    const a = testPod({ name: 'rack-a', nodes: [{ mac: '52:54:00:00:0a:01' }], managementNetwork: mgmt('10.30.0.0/16') });
    const b = testPod({
      name: 'rack-b',
      listen: { address: '10.99.0.2', dhcpPort: 67, tftpPort: 69, httpPort: 80, httpsPort: 443 },
      relays: [ip('10.21.0.1')],
      subnets: [subnet('10.21.0.0/24')],
      nodes: [{ mac: '52:54:00:00:0b:01' }, { mac: '52:54:00:00:0a:01' }],
      managementNetwork: mgmt('10.30.7.0/24'),
    });
    const problems = crossPodProblems([
      { pod: a, file: 'a.yaml', locate },
      { pod: b, file: 'b.yaml', locate },
    ]);
    expect(problems.map((p) => `${p.file}: ${p.path}: ${p.message}`)).toEqual([
      'b.yaml: spec.nodes[1].mac: server 52:54:00:00:0a:01 is also a server of pod rack-a (a.yaml:1:1)',
      'b.yaml: spec.managementNetwork.cidr: management network 10.30.7.0/24 overlaps 10.30.0.0/16, the management network of pod rack-a (a.yaml:1:1)',
    ]);
  });
});
