// Syntax of the small values a pod file holds: names, UUIDs, address ranges.
import { parseIPv4 } from '../net/ipv4.js';
import type { PoolRange } from './types.js';

/** A pod name becomes a directory, a log field and a certificate name: one lower-case DNS label. */
export function isPodName(text: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(text);
}

/** A host or domain name (RFC 1123): dot-separated labels of letters, digits and inner hyphens. */
export function isDnsName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  return text.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** SMBIOS UUID in its usual 8-4-4-4-12 hex form, lower-cased; undefined when malformed. */
export function normalizeUuid(text: string): string | undefined {
  const lower = text.trim().toLowerCase();
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(lower) ? lower : undefined;
}

/** "first-last" → the range, or a message saying what is wrong with it. */
export function parsePool(text: string): PoolRange | { error: string } {
  const parts = text.split('-').map((s) => s.trim());
  if (parts.length !== 2) return { error: `${text} is not a range first-last, e.g. 10.20.0.100-10.20.0.199` };
  const start = parseIPv4(parts[0]!);
  const end = parseIPv4(parts[1]!);
  if (start === undefined) return { error: `pool start ${parts[0]} is not an IPv4 address` };
  if (end === undefined) return { error: `pool end ${parts[1]} is not an IPv4 address` };
  if (start > end) return { error: `pool start ${parts[0]} is after its end ${parts[1]}` };
  return { start, end };
}

/**
 * Why `addr` cannot be a host's own address (0.0.0.0/8 "this network",
 * 224.0.0.0/4 multicast, 240.0.0.0/4 reserved and broadcast), or undefined
 * when it can. Loopback is allowed: the embedded pod and the tests use it.
 */
export function notUnicast(addr: number): string | undefined {
  const first = addr >>> 24;
  if (first === 0) return 'is in 0.0.0.0/8 ("this network"), not a host address';
  if (first >= 224 && first < 240) return 'is a multicast address';
  if (first >= 240) return 'is a reserved or broadcast address';
  return undefined;
}
