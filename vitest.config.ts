import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Interop tests share namespaces, TUN devices and peer processes; files run in
    // parallel workers but each file names its own namespace.
    pool: 'forks',
    // vitest 4 defaults to one worker fewer than the CPUs: on CI's 2 cores, one file at a time,
    // with ~1 s of worker start-up and imports per file on the critical path. Two workers keep
    // both cores busy (a full run: 871 s with one worker, 510 s with three, measured this session).
    maxWorkers: 2,
    // Kernel sockets of the test process may only reach loopback (see packages/cli/src/safety.ts).
    setupFiles: ['test/support/setup-safety.ts'],
  },
});
