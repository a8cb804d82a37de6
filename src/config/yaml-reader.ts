// Reads a parsed YAML document field by field and locates every problem at the
// node it is about (file:line:col), so an operator can jump to it. The pod
// loader says which fields exist and what they hold; this module knows how to
// find nodes, describe what was found instead, and suggest a misspelt name.
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type YAMLMap } from 'yaml';
import { parseIPv4 } from '../net/ipv4.js';
import { closestName } from './suggest.js';
import { notUnicast } from './syntax.js';
import type { ConfigProblem } from './types.js';

export interface Position {
  line: number;
  col: number;
}

/** `spec` + `listen` → `spec.listen`, `spec.nodes` + 2 → `spec.nodes[2]`; the root has no prefix. */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/** The field names a mapping may hold, each true when it is required. */
export type FieldSpec = Readonly<Record<string, boolean>>;

/** A list item: its node (aliases resolved) and its path, e.g. spec.relays[1]. */
export interface Item {
  node: Node;
  path: string;
}

export class YamlReader {
  readonly problems: ConfigProblem[] = [];

  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  position(node: Node | null | undefined): Position {
    return this.lines.linePos(node?.range?.[0] ?? 0);
  }

  report(node: Node | null | undefined, path: string, message: string): void {
    this.problems.push({ file: this.file, ...this.position(node), path, message });
  }

  /** The node an alias stands for; any other node as it is. */
  resolve(node: unknown): Node | undefined {
    if (isAlias(node)) return node.resolve(this.doc) ?? undefined;
    return (node as Node | null | undefined) ?? undefined;
  }

  /**
   * A mapping holding only `fields`, with every required one present. An absent
   * node (undefined) is silent: whoever holds it reports it if it is required.
   */
  section(node: Node | undefined, path: string, fields: FieldSpec): Section | undefined {
    if (node === undefined) return undefined;
    if (!isMap(node)) {
      this.report(node, path, `expected a mapping, found ${found(node)}`);
      return undefined;
    }
    const names = Object.keys(fields);
    for (const pair of node.items) {
      const keyNode = this.resolve(pair.key);
      const key = isScalar(keyNode) ? String(keyNode.value ?? '(empty key)') : String(pair.key);
      if (Object.hasOwn(fields, key)) continue;
      const hint = key === '<<' ? ' (YAML merge keys are not supported)' : suggestion(key, names);
      this.report(keyNode, fieldPath(path, key), `unknown field${hint}`);
    }
    for (const name of names) {
      if (fields[name] && !node.has(name)) this.report(node, fieldPath(path, name), 'required field is missing');
    }
    return new Section(this, node, path);
  }

  /** Text of a string scalar; numbers keep their source text (a hostname may be all digits). */
  string(node: Node, path: string): string | undefined {
    if (isScalar(node) && typeof node.value === 'string') return node.value;
    if (isScalar(node) && typeof node.value === 'number') return node.source ?? String(node.value);
    this.report(node, path, `expected a string, found ${found(node)}`);
    return undefined;
  }

  integer(node: Node, path: string, min: number, max: number): number | undefined {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
      this.report(node, path, `expected an integer, found ${found(node)}`);
      return undefined;
    }
    if (node.value < min || node.value > max) {
      this.report(node, path, `${node.value} is outside ${min}..${max}`);
      return undefined;
    }
    return node.value;
  }

  boolean(node: Node, path: string): boolean | undefined {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.report(node, path, `expected a boolean, found ${found(node)}`);
    return undefined;
  }

  /** A host's IPv4 address as uint32 (not 0.0.0.0/8, multicast or broadcast). */
  address(node: Node, path: string): number | undefined {
    const text = this.string(node, path);
    if (text === undefined) return undefined;
    const value = parseIPv4(text.trim());
    if (value === undefined) {
      // parseIPv4 refuses leading zeros: some tools read 010 as octal 8.
      const hint = /(^|\.)0\d/.test(text.trim()) ? ' (no leading zeros)' : '';
      this.report(node, path, `${text} is not an IPv4 address${hint}`);
      return undefined;
    }
    const why = notUnicast(value);
    if (why) {
      this.report(node, path, `${text} ${why}`);
      return undefined;
    }
    return value;
  }

  /** A mapping of free names (server labels): each pair with its key's text, path and nodes. */
  pairs(node: Node, path: string): { key: string; keyNode: Node | undefined; value: Node | undefined; path: string }[] | undefined {
    if (!isMap(node)) {
      this.report(node, path, `expected a mapping, found ${found(node)}`);
      return undefined;
    }
    return node.items.map((pair) => {
      const keyNode = this.resolve(pair.key);
      const key = isScalar(keyNode) ? String(keyNode.value ?? '') : '';
      return { key, keyNode, value: this.resolve(pair.value), path: fieldPath(path, key) };
    });
  }

  list(node: Node, path: string): Item[] | undefined {
    if (!isSeq(node)) {
      this.report(node, path, `expected a list, found ${found(node)}`);
      return undefined;
    }
    const items: Item[] = [];
    node.items.forEach((item, i) => {
      const resolved = this.resolve(item);
      if (resolved) items.push({ node: resolved, path: fieldPath(path, i) });
    });
    return items;
  }
}

/** One mapping of the document, read by field name. */
export class Section {
  constructor(
    readonly reader: YamlReader,
    readonly map: YAMLMap,
    readonly path: string,
  ) {}

  node(key: string): Node | undefined {
    return this.reader.resolve(this.map.get(key, true));
  }

  pathOf(key: string): string {
    return fieldPath(this.path, key);
  }

  /** Reports at the field's value, or at this mapping when the field is absent. */
  report(key: string, message: string): void {
    this.reader.report(this.node(key) ?? this.map, this.pathOf(key), message);
  }

  section(key: string, fields: FieldSpec): Section | undefined {
    return this.reader.section(this.node(key), this.pathOf(key), fields);
  }

  string(key: string): string | undefined {
    return this.read(key, (n, p) => this.reader.string(n, p));
  }

  integer(key: string, min: number, max: number): number | undefined {
    return this.read(key, (n, p) => this.reader.integer(n, p, min, max));
  }

  boolean(key: string): boolean | undefined {
    return this.read(key, (n, p) => this.reader.boolean(n, p));
  }

  address(key: string): number | undefined {
    return this.read(key, (n, p) => this.reader.address(n, p));
  }

  list(key: string): Item[] | undefined {
    return this.read(key, (n, p) => this.reader.list(n, p));
  }

  pairs(key: string): ReturnType<YamlReader['pairs']> {
    return this.read(key, (n, p) => this.reader.pairs(n, p));
  }

  /** Each item an address; bad items are reported and left out. */
  addressList(key: string): (Item & { value: number })[] | undefined {
    const items = this.list(key);
    if (!items) return undefined;
    const out: (Item & { value: number })[] = [];
    for (const item of items) {
      const value = this.reader.address(item.node, item.path);
      if (value !== undefined) out.push({ ...item, value });
    }
    return out;
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const text = this.string(key);
    if (text === undefined) return undefined;
    if ((choices as readonly string[]).includes(text)) return text as T;
    this.report(key, `expected ${choices.join(' or ')}, found ${JSON.stringify(text)}`);
    return undefined;
  }

  private read<T>(key: string, parse: (node: Node, path: string) => T | undefined): T | undefined {
    const node = this.node(key);
    return node === undefined ? undefined : parse(node, this.pathOf(key));
  }
}

function suggestion(key: string, names: string[]): string {
  const hint = closestName(key, names);
  return hint ? ` (did you mean ${hint}?)` : ` (expected one of: ${names.join(', ')})`;
}

/** What an operator wrote instead, for "expected X, found Y". */
export function found(node: Node | undefined): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (!isScalar(node) || node.value === null || node.value === undefined) return 'nothing';
  if (typeof node.value === 'string') {
    const text = node.value.length > 40 ? `${node.value.slice(0, 37)}...` : node.value;
    return JSON.stringify(text);
  }
  return isScalar(node) && typeof node.value === 'number' ? (node.source ?? String(node.value)) : String(node.value);
}

/** What kind of node was found, without its text: for files not yet known to be pod files. */
export function shapeOf(node: Node | undefined): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (!isScalar(node) || node.value === null || node.value === undefined) return 'nothing';
  const type = typeof node.value;
  return type === 'string' ? 'a string' : type === 'number' ? 'a number' : type === 'boolean' ? 'a boolean' : 'a value';
}
