/**
 * The fuzzing engine finds what it must (fuzz/engine/selftest/): a crash behind nested checks
 * that only coverage feedback and the dictionary reach, a hang, and runaway memory, each
 * reported with an input that really triggers it. Without this, a green fuzz run could mean
 * a blind fuzzer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTarget } from '../fuzz/engine/build.ts';
import { fuzzBuilt } from '../fuzz/engine/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'stepwire-fuzz-selftest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const selftest = (name: string) =>
  buildTarget(name, dir, { entry: `./engine/selftest/${name}.ts`, instrument: /[\\/]selftest[\\/].*\.ts$/ });

describe('the fuzzing engine', () => {
  it('reaches a bug behind five nested checks (coverage-guided, with the dictionary)', async () => {
    const r = await fuzzBuilt(await selftest('planted-crash'), {
      seed: 1,
      runs: 2_000_000,
      seconds: 40,
      corpus: [],
    });
    expect(r.finding?.kind).toBe('crash');
    expect(r.finding?.error).toMatch(/TypeError: planted bug reached/);
    expect(Array.from(r.finding?.input.subarray(0, 6) ?? [])).toEqual([0x46, 0x55, 0x5a, 0x12, 0x34, 0x7f]);
    // Each level of the nest was a new edge on the way.
    expect(r.found.length).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('reports a hang with the input that hangs, and stops the worker', async () => {
    const r = await fuzzBuilt(await selftest('planted-hang'), {
      seed: 2,
      runs: 2_000_000,
      seconds: 40,
      timeoutMs: 1000,
      corpus: [],
    });
    expect(r.finding?.kind).toBe('timeout');
    expect(Array.from(r.finding?.input.subarray(0, 2) ?? [])).toEqual([0x42, 0x43]);
  }, 60_000);

  it('reports memory past the worker limit with the input that allocates', async () => {
    const r = await fuzzBuilt(await selftest('planted-oom'), {
      seed: 3,
      runs: 2_000_000,
      seconds: 40,
      memoryMb: 48,
      corpus: [],
    });
    expect(r.finding?.kind).toBe('oom');
    expect(Array.from(r.finding?.input.subarray(0, 2) ?? [])).toEqual([0x4d, 0x4d]);
  }, 60_000);
});
