import type { Bench } from './bench.js';
import { dhcpBench } from './dhcp.js';
import { dhcpPackageEvidence } from './evidence/dhcp-package.js';

// One entry per `npm run bench -- NAME`.
export const benches: Bench[] = [
  dhcpBench,
  dhcpPackageEvidence,
];
