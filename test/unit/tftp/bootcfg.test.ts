import { describe, expect, it } from 'vitest';
import { renderGrub } from '../../../src/bootcfg/grub.js';
import { renderIpxe } from '../../../src/bootcfg/ipxe.js';
import { renderPxelinux } from '../../../src/bootcfg/pxelinux.js';
import { DEFAULT_STAGE1, type BootConfigInput, type InstallState, type NodeDirectory, type NodeInfo } from '../../../src/bootcfg/types.js';
import { GeneratedFilesResolver, podServer } from '../../../src/tftp/generated-resolver.js';
import { testPod } from '../../helpers/pods.js';

const server = { pod: 'rack-t', address: '10.99.0.1', tftpPort: 69, httpPort: 8080, httpsPort: 8443 };
const input = (installState: InstallState, arch: 'bios' | 'uefi' = 'bios', extra: Partial<BootConfigInput> = {}): BootConfigInput => ({
  node: { mac: '52:54:00:12:34:56', hostname: 'n1', arch, installState },
  stage1: DEFAULT_STAGE1,
  server,
  ...extra,
});

describe('boot configs', () => {
  it('pxelinux: stage1 for a server to provision, LOCALBOOT otherwise', () => {
    const p = renderPxelinux(input('provision'));
    expect(p).toContain('DEFAULT stage1\n');
    expect(p).toContain('  KERNEL stage1/vmlinuz\n  INITRD stage1/initrd.img\n');
    expect(p).toContain('  APPEND console=ttyS0,115200 console=tty0 podboot.server=10.99.0.1 podboot.http=8080 podboot.https=8443 podboot.pod=rack-t podboot.mac=52-54-00-12-34-56\n');
    for (const state of ['installed', 'unknown'] as const) {
      const local = renderPxelinux(input(state));
      expect(local).toContain('LABEL local\n  LOCALBOOT 0\n');
      expect(local).not.toContain('KERNEL');
    }
  });

  it('every renderer appends the install token to the stage1 command line, reduced to token characters', () => {
    const token = 'pb1.install.525400123456.1.2000000000.abc_DEF-123';
    for (const render of [renderPxelinux, renderIpxe, renderGrub]) {
      expect(render(input('provision', 'bios', { token }))).toContain(`podboot.mac=52-54-00-12-34-56 podboot.token=${token}\n`);
      expect(render(input('provision', 'bios', { token: `${token}\nboot evil` }))).toContain(`podboot.token=${token}bootevil\n`);
      expect(render(input('provision', 'bios'))).not.toContain('podboot.token');
    }
  });

  it('iPXE: kernel and initrd over HTTP when an HTTP base is set, else over TFTP; local disk per firmware', () => {
    const http = renderIpxe(input('provision', 'bios', { stage1: { ...DEFAULT_STAGE1, httpBase: 'http://{server}:{httpPort}/boot' } }));
    expect(http.startsWith('#!ipxe\n')).toBe(true);
    expect(http).toContain('kernel http://10.99.0.1:8080/boot/stage1/vmlinuz initrd=initrd console=ttyS0');
    expect(http).toContain('initrd --name initrd http://10.99.0.1:8080/boot/stage1/initrd.img\nboot\n');
    const tftp = renderIpxe(input('provision', 'bios', { server: { ...server, tftpPort: 1069 } }));
    expect(tftp).toContain('kernel tftp://10.99.0.1:1069/stage1/vmlinuz ');
    expect(renderIpxe(input('installed', 'bios'))).toContain('\nsanboot --no-describe --drive 0x80 || exit\n');
    expect(renderIpxe(input('unknown', 'uefi'))).toMatch(/\nexit\n$/);
  });

  it('GRUB: linux/initrd from the TFTP root, exit (UEFI) or chainloader (BIOS) for the local disk', () => {
    const g = renderGrub(input('provision', 'uefi'));
    expect(g).toContain('  linux /stage1/vmlinuz console=ttyS0');
    expect(g).toContain('  initrd /stage1/initrd.img\n');
    expect(renderGrub(input('installed', 'uefi'))).toContain('{\n  exit\n}');
    expect(renderGrub(input('unknown', 'bios'))).toContain('chainloader +1');
  });

  it('a hostname from the inventory cannot add lines or directives', () => {
    const evil = input('provision');
    evil.node.hostname = 'x\nKERNEL http://evil/vmlinuz';
    evil.stage1 = { ...DEFAULT_STAGE1, args: 'hostname={hostname}' };
    const text = renderPxelinux(evil);
    expect(text.split('\n').filter((l) => /^\s*KERNEL/.test(l))).toEqual(['  KERNEL stage1/vmlinuz']);
    expect(text.split('\n')).toHaveLength(renderPxelinux(input('provision')).split('\n').length);
    expect(text).toContain('APPEND hostname=xKERNELhttp:evilvmlinuz\n');
  });
});

describe('generated files resolver', () => {
  const nodes = new Map<string, NodeInfo>([
    ['52:54:00:00:00:01', { hostname: 'new1', installState: 'provision' }],
    ['52:54:00:00:00:02', { hostname: 'old2', installState: 'installed' }],
  ]);
  const directory: NodeDirectory = {
    lookupByMac: (mac) => nodes.get(mac),
    lookupByUuid: (uuid) => (uuid === '8a0b1c2d-0000-4000-8000-00000000abcd' ? { mac: '52:54:00:00:00:01', installState: 'provision' } : undefined),
  };
  const resolver = new GeneratedFilesResolver({ server: podServer(testPod()), stage1: DEFAULT_STAGE1, directory });

  async function text(name: string): Promise<{ body: string; size: number; mac?: string } | { code: number }> {
    const r = await resolver.resolve(name);
    if (!r.ok) return { code: r.code };
    const buf = Buffer.alloc(r.source.size);
    await r.source.read(0, [buf]);
    return { body: buf.toString(), size: r.source.size, mac: r.mac };
  }

  it('answers pxelinux.cfg/01-<mac> from the inventory; tsize is the generated length', async () => {
    const known = await text('pxelinux.cfg/01-52-54-00-00-00-01');
    expect(known).toMatchObject({ mac: '52:54:00:00:00:01' });
    expect('body' in known && known.body).toContain('KERNEL stage1/vmlinuz');
    expect('body' in known && known.size).toBe(Buffer.byteLength('body' in known ? known.body : ''));
    expect(await text('/pxelinux.cfg/01-52-54-00-00-00-02')).toMatchObject({ body: expect.stringContaining('LOCALBOOT 0') });
    expect(await text('pxelinux.cfg/01-52-54-00-99-99-99')).toMatchObject({ body: expect.stringContaining('LOCALBOOT 0') });
    expect(await text('pxelinux.cfg/default')).toMatchObject({ body: expect.stringContaining('LOCALBOOT 0') });
  });

  it('answers a UUID file only for a known UUID, so pxelinux falls through to the MAC file', async () => {
    expect(await text('pxelinux.cfg/8a0b1c2d-0000-4000-8000-00000000abcd')).toMatchObject({ body: expect.stringContaining('KERNEL') });
    expect(await text('pxelinux.cfg/8a0b1c2d-0000-4000-8000-00000000ffff')).toEqual({ code: 1 });
  });

  it('answers GRUB and iPXE names; anything else is not found (left to the boot tree)', async () => {
    expect(await text('grub/grub.cfg-01-52-54-00-00-00-01')).toMatchObject({ body: expect.stringContaining('linux /stage1/vmlinuz') });
    expect(await text('grub/grub.cfg')).toMatchObject({ body: expect.stringContaining('exit') });
    expect(await text('ipxe/52-54-00-00-00-01.ipxe')).toMatchObject({ body: expect.stringMatching(/^#!ipxe\n/) });
    expect(await text('ipxe/52:54:00:00:00:02.ipxe')).toMatchObject({ body: expect.stringContaining('sanboot') });
    for (const other of ['pxelinux.0', 'pxelinux.cfg/C0A80001', 'ipxe/zz.ipxe', 'pxelinux.cfg/01-52-54-00-00-00-01/x']) expect(await text(other)).toEqual({ code: 1 });
  });
});
