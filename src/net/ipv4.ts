// IPv4 addresses as unsigned 32-bit integers: comparisons and ranges stay cheap
// and exact, and the string form is produced only at the edges (logs, YAML).

export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    // Leading zeros are ambiguous (octal in some parsers); refuse them.
    if (part.length > 1 && part.startsWith('0')) return undefined;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

export function formatIPv4(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

export function ipv4FromBytes(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

export function ipv4ToBytes(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

export interface Cidr {
  network: number;
  prefix: number;
  mask: number;
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (addr === undefined || !/^\d{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  const mask = prefixMask(prefix);
  return { network: (addr & mask) >>> 0, prefix, mask };
}

export function cidrContains(cidr: Cidr, addr: number): boolean {
  return (addr & cidr.mask) >>> 0 === cidr.network;
}

export function cidrBroadcast(cidr: Cidr): number {
  return (cidr.network | (~cidr.mask >>> 0)) >>> 0;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const mask = a.prefix < b.prefix ? a.mask : b.mask;
  return (a.network & mask) >>> 0 === (b.network & mask) >>> 0;
}
