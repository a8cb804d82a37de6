import { describe, expect, it } from 'vitest';
import { parsePod } from '../../../src/config/pod-file.js';
import { parseSelector, SelectorError, selects } from '../../../src/config/labels.js';

const web = { role: 'web', 'example.com/rack': 'a-01' };
const db = { role: 'db', gpu: '' };

describe('label selectors', () => {
  it('matches equality, inequality, presence and absence, all of them', () => {
    expect(selects(parseSelector('role=web'), web)).toBe(true);
    expect(selects(parseSelector('role==web'), db)).toBe(false);
    expect(selects(parseSelector('role!=web'), db)).toBe(true);
    expect(selects(parseSelector('role!=web'), undefined)).toBe(true);
    expect(selects(parseSelector('gpu'), db)).toBe(true);
    expect(selects(parseSelector('gpu'), web)).toBe(false);
    expect(selects(parseSelector('!gpu'), web)).toBe(true);
    expect(selects(parseSelector('role=web, example.com/rack=a-01'), web)).toBe(true);
    expect(selects(parseSelector('role=web,example.com/rack=b'), web)).toBe(false);
    expect(selects(parseSelector(''), undefined)).toBe(true);
  });

  it('refuses what it cannot read, naming the term', () => {
    expect(() => parseSelector('role=web,,x')).toThrow(SelectorError);
    expect(() => parseSelector('role=web,')).toThrow(/empty term/);
    expect(() => parseSelector('!role=web')).toThrow(/bare key/);
    expect(() => parseSelector('-bad=1')).toThrow(/label name "-bad"/);
    expect(() => parseSelector('role=has space')).toThrow(/label value "has space"/);
  });
});

describe('spec.nodes[].labels and stage2 in a pod file', () => {
  const pod = (node: string) => `apiVersion: podboot/v1
kind: Pod
metadata: { name: r1 }
spec:
  listen: { address: 127.0.0.1 }
  relays: [10.1.0.1]
  subnets: [{ cidr: 10.1.0.0/24, pool: 10.1.0.100-10.1.0.199 }]
  nodes:
    - ${node}
`;

  it('reads labels and a pinned image', () => {
    const { pod: p, problems } = parsePod(pod(`{ mac: "52:54:00:00:00:01", labels: { role: web, tier: 1 }, stage2: { image: lab, version: "1.0" } }`), 'r1.yaml');
    expect(problems).toEqual([]);
    expect(p!.nodes[0]!.labels).toEqual({ role: 'web', tier: '1' });
    expect(p!.nodes[0]!.stage2).toEqual({ image: 'lab', version: '1.0' });
  });

  it('locates a bad label name and value at their line', () => {
    const { problems } = parsePod(pod(`{ mac: "52:54:00:00:00:01", labels: { "-x": a, role: "no way", gpu: true } }`), 'r1.yaml');
    expect(problems.map((q) => `${q.line}:${q.path}: ${q.message.split(' (')[0]}`)).toEqual([
      '9:spec.nodes[0].labels.-x: label name "-x" is not valid',
      '9:spec.nodes[0].labels.role: label value "no way" is not valid',
      '9:spec.nodes[0].labels.gpu: expected a string, found true',
    ]);
  });
});
