/**
 * Every input that ever failed a fuzz target (fuzz/regressions/<target>/) and every committed
 * seed (fuzz/corpus/<target>/) replayed in process through the target itself: each must run
 * without a finding. Also checks that each target has seeds and a place in the CI budget.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CI_GROUPS } from '../fuzz/ci.ts';
import { readInputs } from '../fuzz/engine/run.ts';
import { CORPUS_DIR, REGRESSIONS_DIR, targetNames } from '../fuzz/targets.ts';

const names = targetNames();

describe('fuzz regressions and seeds, replayed', () => {
  it('every target has committed seeds and runs in exactly one CI group', () => {
    const inCi = Object.values(CI_GROUPS).flatMap((g) => Object.keys(g.targets));
    expect([...inCi].sort()).toEqual(names);
    for (const n of names) expect(readdirSync(join(CORPUS_DIR, n)).length, n).toBeGreaterThan(0);
  });

  for (const name of names) {
    it(`${name}: every past finding and every seed runs clean`, async () => {
      const target = (await import(`../fuzz/targets/${name}.ts`)) as { fuzz(d: Uint8Array): void };
      const inputs = [...readInputs(join(REGRESSIONS_DIR, name)), ...readInputs(join(CORPUS_DIR, name))];
      for (const input of inputs) {
        expect(() => target.fuzz(input), Buffer.from(input).toString('hex')).not.toThrow();
      }
    });
  }
});
