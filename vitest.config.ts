import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 30000,
    hookTimeout: 30000,
    // End-to-end tests start real processes; two cores, so keep file parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
    // The JSON report is what .ci/run counts ("N passed, N failed").
    reporters: ['default', 'json'],
    // Defence in depth: every process a test starts inherits an allow list that names no real
    // mount point, so even a buggy dry run cannot freeze this machine. Tests that freeze their
    // own loop images replace it with exactly those mounts.
    env: { HVGUEST_FREEZE_ALLOW: '/nonexistent/hvguest-tests-may-freeze-nothing' },
    outputFile: { json: '.vitest-results.json' },
  },
});
