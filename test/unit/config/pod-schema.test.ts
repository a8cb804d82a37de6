// The pod file's JSON Schema and the validator must not disagree: both are
// made from src/config/pod-shape.ts, and this test runs both over the config
// corpus. The schema only knows structure (field names, required fields,
// value types and ranges); the validator's other checks (addresses inside
// subnets, overlaps, duplicates) are left out of the comparison.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument, stringify } from 'yaml';
import { parsePod } from '../../../src/config/pod-file.js';
import { podSchema } from '../../../src/config/pod-schema.js';
import { POD_SHAPE, type ValueShape } from '../../../src/config/pod-shape.js';
import { checkSchema } from '../../helpers/json-schema.js';
import { ed25519Key } from '../../helpers/ssh-keys.js';
import { FIXTURES, ROOT } from './fixtures.js';

/** Validator messages about structure, which the schema must express too. */
const STRUCTURAL = [
  /^unknown field/,
  /^required field is missing$/,
  /^expected (a mapping|a list|a string|an integer|a boolean), found /,
  /^expected (podboot\/v1|Pod)$/,
  /^expected a pod \(a mapping /,
  /^expected [a-z0-9]+( or [a-z0-9]+)+, found /,
  /^expected a (duration|size) such as /,
  /^-?[\d.]+ is outside \d+\.\.\d+$/,
  /^at least one (relay address|subnet) is needed$/,
  /^label (name|value) "/,
];

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f));
}

/** Validator problems about structure, at the paths the schema checker uses. */
function structuralPaths(text: string, file: string): string[] {
  const problems = parsePod(text, file).problems.filter((p) => STRUCTURAL.some((re) => re.test(p.message)));
  return [...new Set(problems.map((p) => (p.path === '(document)' ? '' : p.path)))].sort();
}

const corpus = [...yamlFiles(FIXTURES), ...yamlFiles(join(ROOT, 'examples'))].sort();

/** The file as an editor's YAML plugin hands it to a schema; undefined when it is not valid YAML. */
function asJson(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true });
  return doc.errors.length || doc.warnings.length ? undefined : doc.toJS();
}

describe('pod JSON Schema', () => {
  const schema = podSchema();

  it('is the checked-in docs/pod.schema.json (regenerate: podboot validate --schema > docs/pod.schema.json)', () => {
    expect(JSON.parse(readFileSync(join(ROOT, 'docs/pod.schema.json'), 'utf8'))).toEqual(schema);
  });

  it('is draft 2020-12 and closed: every mapping refuses unknown fields', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const open: string[] = [];
    const walk = (s: unknown, at: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as Record<string, unknown>;
      // A map of free names (labels) is closed by the pattern its names must match.
      const closed = o.additionalProperties === false || (typeof o.additionalProperties === 'object' && o.propertyNames !== undefined);
      if (o.type === 'object' && !closed) open.push(at);
      for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
    };
    walk(schema, '#');
    expect(open).toEqual([]);
  });

  it('has a corpus of good and structurally bad files', () => {
    const valid = corpus.filter((f) => parsePod(readFileSync(f, 'utf8'), f).pod);
    expect(valid.length).toBeGreaterThanOrEqual(6);
    const structural = corpus.filter((f) => parsePod(readFileSync(f, 'utf8'), f).problems.some((p) => STRUCTURAL.some((re) => re.test(p.message))));
    expect(structural.length).toBeGreaterThanOrEqual(5);
  });

  for (const file of corpus) {
    const name = file.slice(ROOT.length);
    it(`agrees with the validator on ${name}`, () => {
      const text = readFileSync(file, 'utf8');
      const json = asJson(text);
      const { problems } = parsePod(text, file);
      if (json === undefined) {
        // Not YAML an editor could read either: the validator must say so.
        expect(problems.some((p) => p.path === '(yaml)')).toBe(true);
        return;
      }
      const structural = problems.filter((p) => STRUCTURAL.some((re) => re.test(p.message)));
      const errors = checkSchema(schema, json);
      const schemaPaths = [...new Set(errors.map((e) => e.path))].sort();
      // The validator names the whole document (document); the schema, the root path ''.
      const validatorPaths = [...new Set(structural.map((p) => (p.path === '(document)' ? '' : p.path)))].sort();
      // Valid for one, valid for the other (as to structure).
      expect(errors.length === 0, `schema: ${JSON.stringify(errors)}`).toBe(structural.length === 0);
      // Every structural problem the validator reports, the schema reports at the same field.
      expect(schemaPaths).toEqual(expect.arrayContaining(validatorPaths));
      // And the other way round, unless the validator stopped at a file that does not say it is a pod.
      if (!problems.some((p) => p.path === 'apiVersion' || p.path === 'kind' || p.path === '(document)')) {
        expect(validatorPaths).toEqual(expect.arrayContaining(schemaPaths));
      }
    });
  }

  // Beyond the corpus: one pod with every section, broken one field at a time
  // in every way the shape allows (unknown field, missing required field,
  // wrong type, out of range). Both must refuse, at that field.
  describe('on every field of the shape', () => {
    const base = { ...(parseDocument(readFileSync(join(FIXTURES, 'valid/full.yaml'), 'utf8')).toJS() as Record<string, Record<string, unknown>>) };
    base.spec = {
      ...base.spec,
      stage2: { image: 'lab', version: '1.0' },
      install: { kickstart: 'lab-image.sh', disk: '/dev/vda', rootPasswordHash: '$6$saltsalt$abcdefgh' },
      isolation: {
        mode: 'netns',
        provisioning: { parent: 'eth1', vlan: 20, prefix: 24, gateway: '10.99.0.1' },
        management: { parent: 'eth1', vlan: 30, address: '192.168.50.10/24', gateway: '192.168.50.1' },
      },
      limits: { memory: '256Mi', pids: 64, cpuWeight: 200 },
      imageStreams: { perPod: 32, perRack: 8 },
      imageSharing: { peers: true, port: 8070, keep: '256Mi' },
      managementNetwork: { cidr: '192.168.60.0/24', gateway: '192.168.60.1', dns: ['192.168.60.1'], vlan: 60, pool: '192.168.60.100-192.168.60.199', interface: { name: 'ens4' } },
      users: [{ name: 'ops', sshAuthorizedKeys: [ed25519Key()], sudo: true }],
      heartbeat: { interval: '30s' },
      nodes: [
        {
          ...(base.spec!.nodes as Record<string, unknown>[])[0],
          management: { interface: { mac: '52:54:00:00:01:01' }, address: '192.168.60.10', gateway: '192.168.60.1', dns: ['192.168.60.1'], vlan: 61 },
          sshAuthorizedKeys: [ed25519Key()],
          labels: { role: 'web', 'example.com/rack': 'a-01' },
          stage2: { image: 'lab', version: '0.9' },
          bmc: { address: 'https://10.0.0.5', username: 'admin', passwordFile: '/etc/podboot/bmc.password', caFile: '/etc/podboot/bmc-ca.pem', plainHttpMedia: false },
        },
        ...(base.spec!.nodes as Record<string, unknown>[]).slice(1),
      ],
    };

    it('starts from a pod both accept', () => {
      expect(parsePod(stringify(base), 'base.yaml').problems).toEqual([]);
      expect(checkSchema(schema, base)).toEqual([]);
    });

    const cases = mutations(POD_SHAPE, base, []);
    it('reaches every mapping of the shape', () => {
      const mappings = (shape: ValueShape): number =>
        shape.kind === 'mapping' ? 1 + Object.values(shape.fields).reduce((n, f) => n + mappings(f.shape), 0) : shape.kind === 'list' ? mappings(shape.items) : 0;
      expect(cases.filter((c) => c.path.endsWith('.bogusField') || c.path === 'bogusField')).toHaveLength(mappings(POD_SHAPE));
    });
    for (const { label, path, pod } of cases) {
      it(label, () => {
        const text = stringify(pod);
        const validator = structuralPaths(text, 'mutated.yaml');
        const schemaPaths = [...new Set(checkSchema(schema, pod).map((e) => e.path))];
        expect(validator).toContain(path);
        expect(schemaPaths).toContain(path);
        expect(schemaPaths).toEqual(expect.arrayContaining(validator));
      });
    }
  });
});

interface Mutation {
  label: string;
  /** the field both must name */
  path: string;
  pod: unknown;
}

type Key = string | number;

const pathOf = (keys: Key[]) => keys.reduce<string>((p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${k}` : k), '');

/** A deep copy of `root` with the value at `keys` replaced (or deleted when `value` is DELETE). */
const DELETE = Symbol('delete');
function setAt(root: unknown, keys: Key[], value: unknown): unknown {
  const copy = structuredClone(root) as Record<Key, unknown>;
  let node = copy;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<Key, unknown>;
  const last = keys[keys.length - 1]!;
  if (value === DELETE) delete node[last];
  else node[last] = value;
  return copy;
}

/** Every way to break the field at `keys` (whose value is `value`, of `shape`), then its children's. */
function mutations(shape: ValueShape, value: unknown, keys: Key[], root: unknown = value): Mutation[] {
  const path = pathOf(keys);
  const at = (label: string, p: string, pod: unknown): Mutation => ({ label: `${p || '(root)'}: ${label}`, path: p, pod });
  const out: Mutation[] = [];
  if (keys.length) {
    const wrong = shape.kind === 'mapping' || shape.kind === 'list' || shape.kind === 'labels' ? 'wrong-type' : { wrong: 'type' };
    out.push(at(`${JSON.stringify(wrong)} instead of a ${shape.kind}`, path, setAt(root, keys, wrong)));
  }
  switch (shape.kind) {
    case 'text':
      if (shape.oneOf) out.push(at('a value not in the list', path, setAt(root, keys, 'nonsense')));
      break;
    case 'integer':
      out.push(at(`${shape.max + 1}, above the range`, path, setAt(root, keys, shape.max + 1)));
      out.push(at(`${shape.min - 1}, below the range`, path, setAt(root, keys, shape.min - 1)));
      break;
    case 'quantity':
      out.push(at('text that is no quantity', path, setAt(root, keys, 'lots')));
      break;
    case 'labels':
      out.push(at('a label name that is not one', pathOf([...keys, '-bad-']), setAt(root, [...keys, '-bad-'], 'x')));
      out.push(at('a label value that is not one', pathOf([...keys, 'role']), setAt(root, [...keys, 'role'], 'has space')));
      out.push(at('a label value that is a mapping', pathOf([...keys, 'role']), setAt(root, [...keys, 'role'], { a: 1 })));
      break;
    case 'list':
      if (Array.isArray(value) && value.length) out.push(...mutations(shape.items, value[0], [...keys, 0], root));
      break;
    case 'mapping': {
      const map = value as Record<string, unknown>;
      out.push(at('an unknown field', pathOf([...keys, 'bogusField']), setAt(root, [...keys, 'bogusField'], 1)));
      for (const [name, field] of Object.entries(shape.fields)) {
        if (!Object.hasOwn(map, name)) continue;
        if (field.required) out.push(at('required field deleted', pathOf([...keys, name]), setAt(root, [...keys, name], DELETE)));
        out.push(...mutations(field.shape, map[name], [...keys, name], root));
      }
      break;
    }
  }
  return out;
}
