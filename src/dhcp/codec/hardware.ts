// Does a packet's hardware address fit its hardware type? RFC 2131 §2: chaddr
// holds `hlen` bytes of an address of type `htype` (ARP hardware types, IANA).
// The pod keys leases, reservations and install state by that address, so a
// packet whose length cannot be right for its type is not a client we can
// name: hlen 0 made every such client the same empty MAC (one address for
// two clients, a node row with no MAC). Pure.

export type HardwareReason = 'bad-hlen' | 'zero-hlen' | 'htype-hlen-mismatch';

/** chaddr is 16 bytes */
export const MAX_HLEN = 16;

/**
 * Hardware types whose addresses have one length: Ethernet (1) and IEEE 802
 * (6) are 48-bit MACs. Other types are only held to 1..16 bytes.
 */
const FIXED_HLEN: ReadonlyMap<number, number> = new Map([
  [1, 6],
  [6, 6],
]);

/**
 * Why (htype, hlen) cannot name a client, or undefined when it can. hlen 0
 * is refused for every type, InfiniBand's RFC 4390 form included (htype 32,
 * hlen 0, identity only in option 61): a pod names its servers by hardware
 * address and could neither match nor record such a client.
 */
export function hardwareProblem(htype: number, hlen: number): { reason: HardwareReason; detail: string } | undefined {
  if (hlen > MAX_HLEN) return { reason: 'bad-hlen', detail: `hlen ${hlen} > ${MAX_HLEN}` };
  if (hlen === 0) return { reason: 'zero-hlen', detail: `htype ${htype} with hlen 0: no hardware address` };
  const want = FIXED_HLEN.get(htype);
  if (want !== undefined && hlen !== want) return { reason: 'htype-hlen-mismatch', detail: `htype ${htype} addresses are ${want} bytes, hlen ${hlen}` };
  return undefined;
}
