// Kernel modules for the initramfs without kmod: the Debian kernel .deb ships
// no modules.dep, and busybox's insmod loads exactly one file and resolves
// nothing, so the load order is computed here from each module's own
// `.modinfo` ELF section (the `depends=` field `modinfo -F depends` prints).

/** Module names are the file's base name with '-' and '_' equivalent (the kernel treats them alike). */
export function moduleKey(name: string): string {
  return name.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** The NUL-separated key=value strings of an ELF64 little-endian module's `.modinfo` section. */
export function readModinfo(elf: Buffer): Map<string, string[]> {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file (compressed module? decompress it first)');
  if (elf[4] !== 2 || elf[5] !== 1) throw new Error('only ELF64 little-endian modules are supported');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > elf.length) throw new Error('ELF section table past end of file');
  const section = (i: number) => {
    const base = shoff + i * shentsize;
    return {
      name: elf.readUInt32LE(base),
      offset: Number(elf.readBigUInt64LE(base + 0x18)),
      size: Number(elf.readBigUInt64LE(base + 0x20)),
    };
  };
  const strtab = section(shstrndx);
  const nameOf = (off: number) => {
    const start = strtab.offset + off;
    const end = elf.indexOf(0, start);
    return elf.subarray(start, end).toString('latin1');
  };
  const info = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameOf(s.name) !== '.modinfo') continue;
    for (const item of elf
      .subarray(s.offset, s.offset + s.size)
      .toString('latin1')
      .split('\0')) {
      const eq = item.indexOf('=');
      if (eq <= 0) continue;
      const key = item.slice(0, eq);
      info.set(key, [...(info.get(key) ?? []), item.slice(eq + 1)]);
    }
  }
  return info;
}

/** `depends=` of a module, as module keys. */
export function moduleDepends(elf: Buffer): string[] {
  const deps = readModinfo(elf).get('depends') ?? [];
  return deps
    .flatMap((d) => d.split(','))
    .map((d) => d.trim())
    .filter(Boolean)
    .map(moduleKey);
}

/**
 * Load order for `wanted` (in the order given) with every dependency first.
 * `depsOf(key)` returns a module's dependencies, or undefined when the module
 * is not available as a file (then it must be built in: `builtin` has it, or
 * it is an error). Depth-first, so a module comes right after what it needs.
 */
export function resolveLoadOrder(wanted: string[], depsOf: (key: string) => string[] | undefined, builtin: ReadonlySet<string> = new Set()): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (key: string, path: string[]) => {
    const s = state.get(key);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`module dependency cycle: ${[...path, key].join(' -> ')}`);
    const deps = depsOf(key);
    if (deps === undefined) {
      if (builtin.has(key)) {
        state.set(key, 'done');
        return;
      }
      throw new Error(`module ${key} not found${path.length ? ` (needed by ${path.join(' -> ')})` : ''}`);
    }
    state.set(key, 'visiting');
    for (const d of deps) visit(d, [...path, key]);
    state.set(key, 'done');
    order.push(key);
  };
  for (const w of wanted) visit(moduleKey(w), []);
  return order;
}

/** Module keys listed in a kernel's modules.builtin ("kernel/drivers/x/y.ko" lines). */
export function parseModulesBuiltin(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    out.add(moduleKey(t.slice(t.lastIndexOf('/') + 1)));
  }
  return out;
}
