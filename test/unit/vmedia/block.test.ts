// The config block codec: fixed size whatever goes in, found once in an image,
// patched only where a slice overlaps it, and values stage1 would drop refused.
import { describe, expect, it } from 'vitest';
import { decodeCpio } from '../../../src/images/cpio.js';
import { BLOCK_FILE, BLOCK_MAGIC, blockTemplate, CONTENT_BYTES, findContent, patchSlice, placeholderContent, renderContent, type BlockValues } from '../../../src/vmedia/block.js';

const PEM = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const VALUES: BlockValues = {
  server: '10.99.0.1',
  https: 443,
  http: 80,
  pod: 'rack-a',
  mac: '52:54:00:00:00:01',
  hostname: 'n1',
  token: 'pb1.install.525400000001.1.1700000000.abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJ-0123',
  address: '10.20.0.10',
  prefix: 24,
  gateway: '10.20.0.1',
  dns: ['10.20.0.2'],
};

describe('vmedia config block', () => {
  it('the template is a one-file newc cpio whose content is the placeholder, of the fixed size', () => {
    const entries = decodeCpio(blockTemplate());
    // the parent directories encodeCpio always adds, then the one file
    expect(entries.map((e) => e.name)).toEqual(['etc', 'etc/podboot', BLOCK_FILE]);
    expect(entries[2]!.data.equals(placeholderContent())).toBe(true);
    expect(placeholderContent().length).toBe(CONTENT_BYTES);
  });

  it('renders settings, #end, the root CA, and newline padding to exactly the block size', () => {
    const c = renderContent(VALUES, PEM);
    expect(c.length).toBe(CONTENT_BYTES);
    const text = c.toString('latin1');
    expect(text.startsWith(BLOCK_MAGIC)).toBe(true);
    expect(text).toContain('PODBOOT_URL=https://10.99.0.1:443\n');
    expect(text).toContain('PODBOOT_MAC=52-54-00-00-00-01\n');
    expect(text).toContain(`PODBOOT_TOKEN=${VALUES.token}\n`);
    expect(text).toContain('PODBOOT_NET_DNS=10.20.0.2\n#end\n-----BEGIN CERTIFICATE-----');
    expect(text.trimEnd().endsWith('-----END CERTIFICATE-----')).toBe(true);
  });

  it('refuses what stage1 would drop or what does not fit, naming it', () => {
    expect(() => renderContent({ ...VALUES, hostname: 'a b' }, PEM)).toThrow(/PODBOOT_HOSTNAME value "a b"/);
    expect(() => renderContent({ ...VALUES, pod: 'x;reboot' }, PEM)).toThrow(/PODBOOT_POD/);
    expect(() => renderContent(VALUES, Buffer.from('not a pem'))).toThrow(/root CA is not a PEM/);
    const big = Buffer.concat([PEM, Buffer.alloc(CONTENT_BYTES, 0x41)]);
    expect(() => renderContent(VALUES, big)).toThrow(/more than the block's 8192/);
  });

  it('finds the placeholder once, and refuses an image with none or two', () => {
    const image = Buffer.concat([Buffer.alloc(5000, 1), blockTemplate(), Buffer.alloc(3000, 2)]);
    expect(findContent(image)).toBe(5000 + blockTemplate().indexOf(placeholderContent()));
    expect(() => findContent(Buffer.alloc(20000))).toThrow(/no config block/);
    expect(() => findContent(Buffer.concat([image, placeholderContent()]))).toThrow(/more than once/);
  });

  it('patches only the overlap of a slice and the block, for slices before, across, inside and after it', () => {
    const image = Buffer.alloc(40000, 0x2e);
    const offset = 12345;
    const content = renderContent(VALUES, PEM);
    const whole = Buffer.from(image);
    content.copy(whole, offset);
    for (const [from, to] of [
      [0, 1000],
      [offset - 7, offset + 5],
      [offset + 100, offset + 200],
      [offset + CONTENT_BYTES - 3, offset + CONTENT_BYTES + 10],
      [0, 40000],
      [30000, 40000],
    ] as const) {
      const slice = Buffer.from(image.subarray(from, to));
      expect(patchSlice(slice, from, offset, content).equals(whole.subarray(from, to)), `${from}-${to}`).toBe(true);
    }
  });
});
