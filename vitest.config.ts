import { defineConfig } from 'vitest/config';

// Integration tests build network namespaces and spawn real daemons (dhcrelay,
// dhclient, perfdhcp, tftp-hpa, nginx, qemu); running files in parallel on a
// 2-core machine makes them starve each other, so files run one at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // builds stage1 into .cache/stage1 for the QEMU boot tests (cached; see test/global-setup.ts)
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
