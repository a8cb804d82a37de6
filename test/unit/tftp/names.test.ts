import { describe, expect, it } from 'vitest';
import { checkName, escapeName } from '../../../src/tftp/names.js';

describe('TFTP name rules', () => {
  it.each([
    ['pxelinux.0', 'pxelinux.0'],
    ['/pxelinux.0', 'pxelinux.0'],
    ['pxelinux.cfg/01-52-54-00-00-00-01', 'pxelinux.cfg/01-52-54-00-00-00-01'],
    ['./stage1//vmlinuz', 'stage1/vmlinuz'],
    ['a..b/c..', 'a..b/c..'],
  ])('accepts %j as %j', (raw, path) => {
    expect(checkName(raw)).toEqual({ ok: true, path });
  });

  it.each([
    ['../etc/passwd', 'dot-dot'],
    ['a/../../b', 'dot-dot'],
    ['/..', 'dot-dot'],
    ['//etc/passwd', 'absolute'],
    ['a\\..\\b', 'backslash'],
    ['a\0b', 'nul'],
    ['a\nb', 'control-char'],
    ['a\x7fb', 'control-char'],
    ['caf\xe9', 'non-ascii'],
    ['x'.repeat(256), 'too-long'],
    ['/', 'empty'],
    ['./', 'empty'],
  ])('refuses %j: %s', (raw, reason) => {
    expect(checkName(raw)).toEqual({ ok: false, reason });
  });

  it('accepts 255 characters, the limit', () => {
    expect(checkName('x'.repeat(255)).ok).toBe(true);
  });

  it('escapes names for logs', () => {
    expect(escapeName('a\\b\0c\n\xff')).toBe('a\\\\b\\x00c\\x0a\\xff');
    const long = escapeName('y'.repeat(400));
    expect(long).toBe('y'.repeat(300) + '...(400 chars)');
  });
});
