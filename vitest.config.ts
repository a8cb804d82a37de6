import { defineConfig } from 'vitest/config';

// Integration tests build network namespaces and spawn real daemons (dhcrelay,
// dhclient, perfdhcp, tftp-hpa, nginx, qemu); running files in parallel on a
// 2-core machine makes them starve each other, so files run one at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
