import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Interop tests share namespaces, TUN devices and peer processes; files run in
    // parallel workers but each file names its own namespace.
    pool: 'forks',
    // Kernel sockets of the test process may only reach loopback (see packages/cli/src/safety.ts).
    setupFiles: ['test/support/setup-safety.ts'],
  },
});
