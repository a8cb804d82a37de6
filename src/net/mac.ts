// MAC addresses are kept in one canonical text form everywhere (lower case,
// colon separated) so the inventory, the lease store and logs agree.

export function normalizeMac(text: string): string | undefined {
  const hex = text.trim().toLowerCase().replace(/[-:.]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

export function macFromBytes(buf: Uint8Array, offset = 0, length = 6): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    if (i) out += ':';
    out += buf[offset + i]!.toString(16).padStart(2, '0');
  }
  return out;
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}
