import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferSource } from '../../../src/tftp/file-source.js';
import { BootTreeResolver, FirstMatchResolver, notFound, type ResolveResult } from '../../../src/tftp/resolver.js';
import { netasciiSource, toNetascii } from '../../../src/tftp/netascii.js';

describe('boot tree resolver', () => {
  let dir: string;
  let resolver: BootTreeResolver;
  const client = { address: '127.0.0.1', port: 1 };
  const code = (r: ResolveResult) => (r.ok ? 'ok' : `${r.code}:${r.reason}`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pbt-tree-'));
    mkdirSync(join(dir, 'root/stage1'), { recursive: true });
    writeFileSync(join(dir, 'root/pxelinux.0'), 'PXE');
    writeFileSync(join(dir, 'root/stage1/vmlinuz'), Buffer.alloc(10_000, 7));
    writeFileSync(join(dir, 'secret'), 'outside');
    symlinkSync('stage1/vmlinuz', join(dir, 'root/kernel'));
    symlinkSync('../secret', join(dir, 'root/leak'));
    symlinkSync(join(dir, 'root'), join(dir, 'root/loop-back')); // absolute, but lands inside
    symlinkSync('/etc', join(dir, 'root/etc'));
    symlinkSync('self', join(dir, 'root/self'));
    execFileSync('mkfifo', [join(dir, 'root/fifo')]);
    resolver = await BootTreeResolver.open(join(dir, 'root'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves files and symlinks that stay inside the tree, with their size', async () => {
    const r = await resolver.resolve('/kernel');
    expect(r.ok && r.source.size).toBe(10_000);
    if (r.ok) {
      const a = Buffer.alloc(3);
      const b = Buffer.alloc(5000);
      expect(await r.source.read(9_000, [a, b])).toBe(1000);
      expect(a.equals(Buffer.alloc(3, 7))).toBe(true);
      await r.source.close();
    }
    expect(code(await resolver.resolve('loop-back/pxelinux.0'))).toBe('ok');
  });

  it.each([
    ['leak', '2:outside-root'],
    ['etc/passwd', '2:outside-root'],
    ['self', '2:symlink-loop'],
    ['stage1', '2:directory'],
    ['fifo', '2:not-regular'],
    ['../secret', '2:dot-dot'],
    ['missing', '1:not-found'],
    ['pxelinux.0/x', '1:not-found'],
  ])('refuses %s (%s)', async (name, expected) => {
    expect(code(await resolver.resolve(name))).toBe(expected);
  });

  it('the first resolver that knows a name wins; refusals are not passed on', async () => {
    const generated = { resolve: async (n: string) => (n === 'pxelinux.0' ? { ok: true as const, source: bufferSource(Buffer.from('gen')) } : notFound()) };
    const chain = new FirstMatchResolver([generated, resolver]);
    const g = await chain.resolve('pxelinux.0', client);
    expect(g.ok && g.source.size).toBe(3);
    expect(code(await chain.resolve('kernel', client))).toBe('ok');
    expect(code(await chain.resolve('leak', client))).toBe('2:outside-root');
  });
});

describe('netascii', () => {
  it('sends LF as CR LF and a bare CR as CR NUL', async () => {
    expect(toNetascii(Buffer.from('a\nb\rc\r\n'))).toEqual(Buffer.from('a\r\nb\r\0c\r\0\r\n'));
    const s = await netasciiSource(bufferSource(Buffer.from('x\ny\n')));
    expect(s?.size).toBe(6);
  });
});
