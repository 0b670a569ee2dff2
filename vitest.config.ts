import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/globalSetup.ts'],
    // Each file builds its own database and queue prefix, so files run in parallel: two at a time
    // (vitest's default is one fewer than the cores, which on a 2-core machine runs them one by
    // one; most files spend their time waiting on outages, locks and timers, not on the CPU).
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
