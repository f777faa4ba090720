/**
 * What docs/debugging.md promises: under `--import tsx`, a debugger that reads source maps
 * (as Chrome DevTools and VS Code do) stops on a TypeScript line and steps line by line.
 * docs/step-check.ts drives V8 over the inspector protocol like such a debugger.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');

describe('stepping through tsx-compiled sources with their source maps', () => {
  it('breaks on a line of tcp.ts and steps over the following statements of the TypeScript', () => {
    const r = spawnSync(
      process.execPath,
      ['--experimental-websocket', '--import', 'tsx', join(root, 'docs/step-check.ts')],
      { cwd: root, encoding: 'utf8', timeout: 150_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    // V8 itself sees a handful of generated lines for a file of hundreds: why `node inspect` cannot step.
    const generated = Number(/V8 sees (\d+) generated line/.exec(r.stdout)?.[1]);
    const source = readFileSync(join(root, 'packages/tcp/src/tcp.ts'), 'utf8').split('\n').length;
    expect(generated).toBeLessThan(10);
    expect(source).toBeGreaterThan(200);
    const want = Number(/breakpoint at packages\/tcp\/src\/tcp\.ts:(\d+)/.exec(r.stdout)?.[1]);
    const stops = [...r.stdout.matchAll(/^ {2}packages\/tcp\/src\/tcp\.ts:(\d+)$/gm)].map((m) =>
      Number(m[1]),
    );
    expect(stops, r.stdout).toHaveLength(5);
    expect(stops[0]).toBe(want);
    // Each step moves forward through the method, one statement at a time.
    for (let i = 1; i < stops.length; i++) {
      expect(stops[i]).toBeGreaterThan(stops[i - 1] ?? 0);
      expect((stops[i] ?? 0) - (stops[i - 1] ?? 0)).toBeLessThan(8);
    }
    // Starting a program under the inspector compiles every module: slow on a busy machine.
  }, 180_000);
});
