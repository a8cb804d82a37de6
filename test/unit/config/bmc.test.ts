// spec.nodes[].bmc: read into the node, every mistake located and named, the password only by file.
import { describe, expect, it } from 'vitest';
import { loadPodText } from '../../../src/config/load.js';
import { formatProblem } from '../../../src/config/types.js';

const pod = (bmc: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: rack-b }
spec:
  listen: { address: 10.99.0.1 }
  relays: [10.20.0.1]
  subnets:
    - { cidr: 10.20.0.0/24, gateway: 10.20.0.1, pool: 10.20.0.100-10.20.0.199 }
  nodes:
    - { mac: "52:54:00:00:00:01", address: 10.20.0.10, bmc: ${bmc} }
`;

const problems = (bmc: string) => loadPodText(pod(bmc), 'p.yaml').problems.map(formatProblem);

describe('spec.nodes[].bmc', () => {
  it('reads address, user, password file, CA file and the plain-HTTP choice', () => {
    const r = loadPodText(pod('{ address: "https://10.0.0.5/", username: admin, passwordFile: /etc/podboot/bmc.pw, caFile: /etc/podboot/bmc-ca.pem, plainHttpMedia: true }'), 'p.yaml');
    expect(r.problems).toEqual([]);
    expect(r.pod!.nodes[0]!.bmc).toEqual({ address: 'https://10.0.0.5', username: 'admin', passwordFile: '/etc/podboot/bmc.pw', caFile: '/etc/podboot/bmc-ca.pem', plainHttpMedia: true });
    const plain = loadPodText(pod('{ address: "http://10.0.0.5:8000", username: admin, passwordFile: /pw }'), 'p.yaml');
    expect(plain.pod!.nodes[0]!.bmc?.plainHttpMedia).toBe(false);
  });

  it('names a bad URL, relative files, missing fields and an inline password', () => {
    expect(problems('{ address: "10.0.0.5", username: admin, passwordFile: /pw }')).toEqual([expect.stringMatching(/^p\.yaml:10:\d+: spec\.nodes\[0\]\.bmc\.address: 10\.0\.0\.5 is not a base URL/)]);
    expect(problems('{ address: "https://b/redfish", username: admin, passwordFile: pw }').join('\n')).toMatch(
      /bmc\.address: https:\/\/b\/redfish is not a base URL[\s\S]*bmc\.passwordFile: pw is not an absolute path/,
    );
    expect(problems('{ address: "https://b" }').join('\n')).toMatch(/bmc\.username[\s\S]*bmc\.passwordFile/);
    expect(problems('{ address: "https://b", username: admin, passwordFile: /pw, password: hunter2 }').join('\n')).toMatch(/bmc\.password\b/);
  });
});
