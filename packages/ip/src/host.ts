/**
 * The IP host: a sans-I/O core (host/core.ts and a file per concern beside it) and the
 * driver that gives it a clock, timers and links (host/driver.ts). Kept as a module so
 * `import { Host } from './host.ts'` still works.
 */
export * from './host/index.ts';
