/** The fuzz targets (one file each in fuzz/targets/) and where their inputs live. */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const TARGETS_DIR = join(here, 'targets');
/** Committed seeds, one directory per target. */
export const CORPUS_DIR = join(here, 'corpus');
/** Every input that ever failed, one directory per target; replayed by test/fuzz-regressions.test.ts. */
export const REGRESSIONS_DIR = join(here, 'regressions');

/** Helper modules in targets/ that are not targets themselves. */
const HELPERS = new Set(['expect', 'tls-peers', 'tls-identity']);

/** Every target's name, sorted. */
export function targetNames(): string[] {
  return readdirSync(TARGETS_DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => !HELPERS.has(n))
    .sort();
}
