import type { Bench } from './bench.js';

// One entry per `npm run bench -- NAME`.
export const benches: Bench[] = [
];
