// What the operator page's rack view and token prompt get from the central
// node beyond the install states: the real token file in the page itself,
// and from the pod file in force (STATE/<pod>/pod.yaml) the hostnames and
// management addresses of known servers and the image the pod installs.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { podNodeCounts, podNodes } from '../../../src/api/nodes.js';
import { podInventory } from '../../../src/api/pod-inventory.js';
import { renderIndex, uiDir } from '../../../src/api/ui.js';
import { openPodDatabase } from '../../../src/store/database.js';
import { SqliteNodeStateStore } from '../../../src/store/sqlite-store.js';

const root = mkdtempSync(join(tmpdir(), 'pbu-rack-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("the page's token prompt", () => {
  const shipped = readFileSync(join(uiDir(), 'index.html'), 'utf8');

  it('names the token file this node reads, in place of the generic path', () => {
    expect(shipped).toContain('<code id="token-file">STATE/central/operator.token</code>');
    const html = renderIndex(shipped, { tokenFile: '/var/lib/podboot/central/operator.token' });
    expect(html).toContain('<code id="token-file">/var/lib/podboot/central/operator.token</code>');
    expect(html).not.toContain('STATE/central/operator.token');
    // Nothing else of the page changes.
    expect(html.replace('/var/lib/podboot/central/operator.token', 'STATE/central/operator.token')).toBe(shipped);
  });

  it('puts a path chosen with --token-file in as text, never as markup', () => {
    const html = renderIndex(shipped, { tokenFile: `/srv/<script>alert(1)</script>/a&b/"o'k"$&.token` });
    expect(html).toContain('<code id="token-file">/srv/&lt;script&gt;alert(1)&lt;/script&gt;/a&amp;b/&quot;o&#39;k&quot;$&amp;.token</code>');
    expect(html).not.toContain('<script>alert');
  });

  it('without a token file known (a bare API), the page is served as shipped', () => {
    expect(renderIndex(shipped, {})).toBe(shipped);
  });
});

describe('known servers from the pod file in force', () => {
  const pod = 'rack-k';
  const dir = join(root, pod);
  const now = Math.floor(Date.now() / 1000);
  const db = openPodDatabase(dir);
  const nodes = new SqliteNodeStateStore(db);
  for (const mac of ['52:54:00:00:0a:01', '52:54:00:00:0a:02', '52:54:00:00:0a:03']) nodes.changeInstallState({ mac, state: 'pxe', time: now });
  db.close();
  const file = (stage2: { image: string; version: string }, hostname: string) => {
    const spec = {
      listen: { address: '10.98.0.1' },
      relays: ['10.50.0.1'],
      subnets: [{ cidr: '10.50.0.0/16', gateway: '10.50.0.1', pool: '10.50.1.0-10.50.1.250' }],
      managementNetwork: { cidr: '10.150.0.0/24' },
      stage2,
      nodes: [
        { mac: '52:54:00:00:0A:01', hostname, management: { address: '10.150.0.11' } },
        { mac: '52:54:00:00:0a:02', hostname: 'k02' },
      ],
    };
    // As the supervisor writes its copy: a new file renamed over the old one.
    writeFileSync(join(dir, 'pod.yaml.tmp'), stringify({ apiVersion: 'podboot/v1', kind: 'Pod', metadata: { name: pod }, spec }));
    renameSync(join(dir, 'pod.yaml.tmp'), join(dir, 'pod.yaml'));
  };

  it('lists a server with the hostname and management address its pod file gives it; others without', () => {
    expect(podNodes(root, pod).map((n) => [n.mac, n.hostname, n.management])).toEqual([
      ['52:54:00:00:0a:01', undefined, undefined],
      ['52:54:00:00:0a:02', undefined, undefined],
      ['52:54:00:00:0a:03', undefined, undefined],
    ]);
    file({ image: 'debian', version: '12.5' }, 'k01');
    const listed = podNodes(root, pod);
    expect(listed.map((n) => [n.mac, n.state, n.hostname, n.management])).toEqual([
      ['52:54:00:00:0a:01', 'pxe', 'k01', '10.150.0.11'],
      ['52:54:00:00:0a:02', 'pxe', 'k02', undefined],
      ['52:54:00:00:0a:03', 'pxe', undefined, undefined],
    ]);
    // Only added fields: a server's own record is as before, and one the file does not name has no name.
    expect(listed[2]).toMatchObject({ mac: '52:54:00:00:0a:03', state: 'pxe', attempt: 1, updatedAt: now, lastSeen: now });
    expect(Object.keys(listed[2]!)).not.toEqual(expect.arrayContaining(['hostname']));
    expect(Object.keys(listed[2]!)).not.toEqual(expect.arrayContaining(['management']));
  });

  it('the overview names the image the pod installs', () => {
    expect(podNodeCounts(root, [pod, 'rack-none'])).toEqual([
      { pod, total: 3, states: { pxe: 3 }, image: 'debian@12.5' },
      { pod: 'rack-none', total: 0, states: {} },
    ]);
  });

  it('reads the file again once the supervisor replaced it, not before', () => {
    const first = podInventory(root, pod);
    expect(podInventory(root, pod)).toBe(first);
    file({ image: 'debian', version: '12.6' }, 'k01-renamed');
    expect(podInventory(root, pod)).not.toBe(first);
    expect(podInventory(root, pod).image).toBe('debian@12.6');
    expect(podNodes(root, pod)[0]!.hostname).toBe('k01-renamed');
  });

  it('a file that no longer parses, or none, adds nothing', () => {
    writeFileSync(join(dir, 'pod.yaml'), 'apiVersion: podboot/v1\nkind: Pod\nspec: [');
    expect(podInventory(root, pod)).toEqual({ nodes: new Map(), labels: new Map() });
    expect(podNodes(root, pod).map((n) => n.hostname)).toEqual([undefined, undefined, undefined]);
    rmSync(join(dir, 'pod.yaml'));
    expect(podNodeCounts(root, [pod])).toEqual([{ pod, total: 3, states: { pxe: 3 } }]);
  });
});
