// packaging/k8s as a cluster would get it: each overlay rendered by the real
// `kubectl kustomize` (Debian 12's kubernetes-client: kubectl 1.20 with
// kustomize 2.0, unpacked into the build's .deb cache rather than installed,
// since the machine's own kubectl package owns /usr/bin/kubectl), every object checked against the Kubernetes 1.27 schemas of
// kubernetes-models, then what podboot depends on asserted by path. No
// cluster is involved: nothing here is applied.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { matchRoute } from '../../../src/api/routes.js';
import { loadPodDir } from '../../../src/config/load.js';
import { candidates, DebCache } from '../../../src/images/debs.js';

const REPO = new URL('../../../', import.meta.url).pathname;
const OVERLAYS = ['group-a', 'group-b-netns'];
const tmp = mkdtempSync(join(tmpdir(), 'kustomize-test-'));
const KUBECTL = new DebCache(join(REPO, '.cache', 'debs')).file(candidates(['kubernetes-client']).get('kubernetes-client')!, 'usr/bin/kubectl');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered YAML, checked by schema first
  spec?: any;
  data?: Record<string, string>;
}

// kustomize ≥ 5 warns about the spellings kustomize 2.0 (Debian's kubectl) needs; nothing else may appear.
const DEPRECATION = /^# Warning: '(bases|commonLabels|patchesStrategicMerge|patchesJson6902)' is deprecated\./;

function render(overlay: string): K8sObject[] {
  const r = spawnSync(KUBECTL, ['kustomize', join(REPO, 'packaging/k8s/overlays', overlay)], { encoding: 'utf8' });
  if (r.error) throw new Error(`${KUBECTL}: ${r.error.message}`);
  expect(r.status, r.stderr).toBe(0);
  const other = r.stderr.split('\n').filter((l) => l.trim() && !DEPRECATION.test(l));
  expect(other, 'kubectl kustomize said more than deprecation warnings').toEqual([]);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
}

/** apiVersion + kind → the kubernetes-models class, e.g. apps/v1 Deployment → kubernetes-models/apps/v1/Deployment. */
async function validate(o: K8sObject): Promise<void> {
  const mod = `kubernetes-models/${o.apiVersion}/${o.kind}`;
  const classes = (await import(mod)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = classes[o.kind];
  if (!Model) throw new Error(`${mod} has no class ${o.kind}`);
  new Model(o).validate();
}

const rendered = new Map<string, K8sObject[]>();
function objects(overlay: string): K8sObject[] {
  let list = rendered.get(overlay);
  if (!list) rendered.set(overlay, (list = render(overlay)));
  return list;
}
function one(overlay: string, kind: string): K8sObject {
  const found = objects(overlay).filter((o) => o.kind === kind);
  expect(found, `${overlay}: one ${kind}`).toHaveLength(1);
  return found[0]!;
}

describe.each(OVERLAYS)('packaging/k8s/overlays/%s', (overlay) => {
  it('renders with kubectl kustomize, and every object validates against the Kubernetes schemas', async () => {
    const list = objects(overlay);
    expect(list.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'PodDisruptionBudget']);
    for (const o of list) {
      await expect(validate(o), `${o.kind}/${o.metadata.name}`).resolves.toBeUndefined();
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('podboot');
    }
  });

  it('runs one central node on the host network, probed on the API health path, with its own state and pod files', () => {
    const d = one(overlay, 'Deployment');
    const pod = d.spec.template.spec;
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe('Recreate');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.nodeSelector?.['podboot.io/central-group']).toBe(overlay.replace(/-netns$/, ''));
    const [c] = pod.containers;
    const api = c.ports.find((p: { name: string }) => p.name === 'api');
    expect(api.containerPort).toBe(9443);
    expect(c.args).toContain(`--api=$(NODE_IP):${api.containerPort}`);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(c[probe]?.httpGet, probe).toEqual({ path: '/healthz', port: 'api', scheme: 'HTTPS' });
      // the one path the central API answers without the operator token
      expect(matchRoute('GET', c[probe].httpGet.path)).toEqual({ kind: 'health' });
    }
    // references resolve to objects of this render (kustomize renames both)
    const volumes = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
    expect(volumes.pods.configMap.name).toBe(one(overlay, 'ConfigMap').metadata.name);
    expect(volumes.state.persistentVolumeClaim.claimName).toBe(one(overlay, 'PersistentVolumeClaim').metadata.name);
    const mounts = Object.fromEntries(c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.mountPath, m.name]));
    expect(mounts).toMatchObject({ '/etc/podboot/pods': 'pods', '/var/lib/podboot': 'state' });
    expect(c.args).toEqual(expect.arrayContaining(['serve', '--pods=/etc/podboot/pods', '--state=/var/lib/podboot']));
  });

  it('keeps a PodDisruptionBudget over exactly its own group', () => {
    const pdb = one(overlay, 'PodDisruptionBudget');
    const labels = one(overlay, 'Deployment').spec.template.metadata.labels;
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(one(overlay, 'Deployment').spec.selector.matchLabels);
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(labels[k], k).toBe(v);
    expect(pdb.spec.selector.matchLabels['app.kubernetes.io/instance']).toBe(overlay.replace(/-netns$/, ''));
  });

  it('gives the node pod files that podboot validate accepts', () => {
    const cm = one(overlay, 'ConfigMap');
    const dir = join(tmp, overlay);
    mkdirSync(dir);
    const keys = Object.keys(cm.data ?? {});
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.endsWith('.yaml'))).toBe(true);
    for (const k of keys) writeFileSync(join(dir, k), cm.data![k]!);
    const { pods, problems } = loadPodDir(dir);
    expect(problems).toEqual([]);
    expect(pods).toHaveLength(keys.length);
  });
});

describe('isolation modes', () => {
  const caps = (overlay: string): string[] => one(overlay, 'Deployment').spec.template.spec.containers[0].securityContext.capabilities.add;

  it('adds NET_ADMIN only to the group whose pods have network namespaces', () => {
    expect(caps('group-a')).not.toContain('NET_ADMIN');
    expect(caps('group-b-netns')).toEqual([...caps('group-a'), 'NET_ADMIN']);
    const netnsPods = Object.values(one('group-b-netns', 'ConfigMap').data ?? {});
    expect(netnsPods.every((p) => /mode: netns/.test(p))).toBe(true);
    expect(Object.values(one('group-a', 'ConfigMap').data ?? {}).some((p) => /mode: netns/.test(p))).toBe(false);
  });

  it('the schemas do refuse a broken object (the check above is not vacuous)', async () => {
    const d = structuredClone(one('group-a', 'Deployment'));
    d.spec.template.spec.containers[0].livenessProbe.httpGet = { path: '/healthz' };
    await expect(validate(d)).rejects.toThrow(/port/);
  });
});
