// The choice both management address stores make (SQLite and in memory), so
// they cannot pick differently: the lowest free address of the pool.
import { formatIPv4 } from '../net/ipv4.js';
import type { AddressRange } from './types.js';

/** No address of the pool is left: every one is held by another server or is a fixed address. */
export class ManagementPoolExhausted extends Error {
  constructor(readonly pool: AddressRange) {
    const size = pool.end - pool.start + 1;
    super(`management pool ${formatIPv4(pool.start)}-${formatIPv4(pool.end)} (spec.managementNetwork.pool) is exhausted: all ${size} addresses are held or fixed`);
    this.name = 'ManagementPoolExhausted';
  }
}

export function inRange(pool: AddressRange, address: number): boolean {
  return address >= pool.start && address <= pool.end;
}

/** The lowest address of `pool` in neither set; throws when there is none. */
export function lowestFree(pool: AddressRange, held: ReadonlySet<number>, reserved: ReadonlySet<number>): number {
  for (let a = pool.start; a <= pool.end; a++) if (!held.has(a) && !reserved.has(a)) return a;
  throw new ManagementPoolExhausted(pool);
}
