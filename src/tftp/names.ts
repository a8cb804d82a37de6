// Which requested file names may reach a resolver, and how names are shown in
// logs. Pure string rules; the file system checks (symlinks) live in the
// boot-tree resolver.

export const MAX_NAME_LENGTH = 255;

export type NameRefusal = 'empty' | 'too-long' | 'nul' | 'control-char' | 'non-ascii' | 'backslash' | 'absolute' | 'dot-dot';

export type NameCheck = { ok: true; path: string } | { ok: false; reason: NameRefusal };

/**
 * A relative POSIX path inside the boot tree, or the reason it is refused.
 * One leading '/' is dropped because many PXE ROMs ask for `/pxelinux.0`;
 * anything else absolute is refused rather than reinterpreted.
 */
export function checkName(raw: string): NameCheck {
  if (raw.length > MAX_NAME_LENGTH) return { ok: false, reason: 'too-long' };
  const name = raw.startsWith('/') ? raw.slice(1) : raw;
  if (name === '') return { ok: false, reason: 'empty' };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0) return { ok: false, reason: 'nul' };
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: 'control-char' };
    if (c > 0x7f) return { ok: false, reason: 'non-ascii' };
    if (c === 0x5c) return { ok: false, reason: 'backslash' };
  }
  if (name.startsWith('/')) return { ok: false, reason: 'absolute' };
  const parts = name.split('/');
  if (parts.includes('..')) return { ok: false, reason: 'dot-dot' };
  const path = parts.filter((p) => p !== '' && p !== '.').join('/');
  if (path === '') return { ok: false, reason: 'empty' };
  return { ok: true, path };
}

const SHOWN_CHARS = 300;

/** Printable ASCII as is, backslash doubled, every other byte as \xNN, cut after 300 characters: safe in any log viewer. */
export function escapeName(raw: string): string {
  let out = '';
  for (let i = 0; i < Math.min(raw.length, SHOWN_CHARS); i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += raw[i];
    else out += '\\x' + (c & 0xff).toString(16).padStart(2, '0');
  }
  return raw.length > SHOWN_CHARS ? `${out}...(${raw.length} chars)` : out;
}
