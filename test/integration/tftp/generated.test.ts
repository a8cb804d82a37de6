// Per-server boot configs served by the live server next to the boot tree,
// fetched by real clients: what pxelinux, GRUB and iPXE would get.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPxelinux } from '../../../src/bootcfg/pxelinux.js';
import { DEFAULT_STAGE1, type NodeInfo } from '../../../src/bootcfg/types.js';
import { GeneratedFilesResolver, podServer } from '../../../src/tftp/generated-resolver.js';
import { testPod } from '../../helpers/pods.js';
import { acceptedLine, makeTree, runProcess, startTftp, type RunningTftp, type Tree } from '../../helpers/tftp-lab.js';

describe('generated boot configs over TFTP', () => {
  let tree: Tree;
  let tftp: RunningTftp;
  const pod = testPod();
  const nodes = new Map<string, NodeInfo>([['52:54:00:20:00:10', { hostname: 'node10', installState: 'provision' }]]);
  const generated = new GeneratedFilesResolver({ server: podServer(pod), stage1: DEFAULT_STAGE1, directory: { lookupByMac: (m) => nodes.get(m) } });

  beforeAll(async () => {
    // A file on disk with a generated name: the inventory's answer wins.
    tree = makeTree({ 'pxelinux.cfg/default': Buffer.from('DEFAULT stale\n'), 'pxelinux.0': Buffer.from('pxe') });
    tftp = await startTftp(tree.root, {}, { extra: [generated] });
  });
  afterAll(async () => {
    await tftp?.stop();
    tree?.cleanup();
  });

  const get = async (name: string) => {
    const out = join(tree.dir, 'got');
    const r = await runProcess('curl', ['-sS', '-o', out, `tftp://127.0.0.1:${tftp.port}/${name}`]);
    return r.code === 0 ? readFileSync(out, 'utf8') : `curl exit ${r.code}: ${r.stderr}`;
  };

  it('pxelinux.cfg/01-<mac> for a node to provision boots stage1; tsize is the generated length', async () => {
    const text = await get('pxelinux.cfg/01-52-54-00-20-00-10');
    expect(text).toBe(renderPxelinux({ node: { mac: '52:54:00:20:00:10', hostname: 'node10', installState: 'provision', arch: 'bios' }, stage1: DEFAULT_STAGE1, server: podServer(pod) }));
    expect(acceptedLine(tftp.lines, 'pxelinux.cfg/01-52-54-00-20-00-10')).toMatchObject({ mac: '52:54:00:20:00:10', params: { oack: { tsize: Buffer.byteLength(text) } } });
  });

  it('an unknown server gets local boot from pxelinux, GRUB and iPXE names', async () => {
    expect(await get('pxelinux.cfg/01-52-54-00-99-00-01')).toContain('LOCALBOOT 0');
    expect(await get('pxelinux.cfg/default')).toContain('LOCALBOOT 0');
    expect(await get('grub/grub.cfg-01-52-54-00-99-00-01')).toContain('exit');
    expect(await get('ipxe/52-54-00-99-00-01.ipxe')).toMatch(/^#!ipxe\n/);
  });

  it('tftp-hpa (no tsize) gets the same bytes; boot tree files are still served', async () => {
    const out = join(tree.dir, 'hpa');
    await runProcess('tftp', ['-m', 'binary', '127.0.0.1', String(tftp.port), '-c', 'get', 'ipxe/52-54-00-20-00-10.ipxe', out]);
    expect(readFileSync(out, 'utf8')).toContain('kernel tftp://10.99.0.1/stage1/vmlinuz initrd=initrd ');
    expect(await get('pxelinux.0')).toBe('pxe');
  });
});
