/**
 * Runs one CI fuzz group (fuzz/ci.ts) as vitest tests: one test per target, failing on any
 * finding with the input in hex and the command that reproduces and saves it.
 */
import { expect, it } from 'vitest';
import { CI_GROUPS, CI_SEED } from './ci.ts';
import { describeFinding, runTarget, summary } from './engine/campaign.ts';

export function fuzzGroup(group: string): void {
  const g = CI_GROUPS[group];
  if (!g) throw new Error(`no fuzz group ${group}`);
  const names = Object.keys(g.targets);
  const seconds = g.seconds / names.length;
  for (const name of names) {
    const runs = g.targets[name]!.runs;
    it(`${name}: coverage-guided, ${runs} runs or ${seconds.toFixed(1)} s (seed ${CI_SEED})`, async () => {
      const t0 = Date.now();
      const r = await runTarget(name, { seed: CI_SEED, runs, seconds, timeoutMs: 10_000, memoryMb: 512 });
      console.log(summary(r, Date.now() - t0));
      const how = `reproduce and save it: pnpm fuzz ${name} --seed ${CI_SEED} --runs ${runs}`;
      expect(r.finding && `${describeFinding(name, r.finding)}\n  ${how}`).toBeUndefined();
      // The run really executed the target on the seeds and beyond, and reached our code.
      expect(r.execs).toBeGreaterThan(r.corpus);
      expect(r.covered).toBeGreaterThan(0);
    }, 60_000);
  }
}
