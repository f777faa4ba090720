/** One target's run from its name: build, seeds (corpus and past findings), fuzz, and where a finding goes. */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CORPUS_DIR, REGRESSIONS_DIR } from '../targets.ts';
import { buildTarget } from './build.ts';
import { type Finding, type FuzzOptions, type FuzzResult, fuzzBuilt, readInputs } from './run.ts';

export type { Finding, FuzzResult } from './run.ts';

export async function runTarget(name: string, opts: Omit<FuzzOptions, 'corpus'>): Promise<FuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), `stepwire-fuzz-${name}-`));
  try {
    const built = await buildTarget(name, dir);
    const corpus = [...readInputs(join(CORPUS_DIR, name)), ...readInputs(join(REGRESSIONS_DIR, name))];
    return await fuzzBuilt(built, { ...opts, corpus });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

/** Saves a finding as fuzz/regressions/<target>/<kind>-<sha1>, which the regression test replays. */
export function saveFinding(name: string, f: Finding): string {
  const dir = join(REGRESSIONS_DIR, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${f.kind}-${sha1(f.input).slice(0, 16)}`);
  writeFileSync(file, f.input);
  return file;
}

/** Adds inputs that reached new coverage to the committed corpus (`pnpm fuzz --merge`). */
export function mergeIntoCorpus(name: string, inputs: Uint8Array[]): number {
  const dir = join(CORPUS_DIR, name);
  mkdirSync(dir, { recursive: true });
  for (const b of inputs) writeFileSync(join(dir, sha1(b).slice(0, 16)), b);
  return inputs.length;
}

/** One line per run, for people and for scripts. */
export function summary(r: FuzzResult, ms: number): string {
  const rate = Math.round(r.execs / Math.max(0.001, ms / 1000));
  return (
    `fuzz ${r.name}: seed=${r.seed} execs=${r.execs} exec/s=${rate} edges=${r.covered}/${r.edges} ` +
    `corpus=${r.corpus} new=${r.found.length} ${r.finding ? `FINDING ${r.finding.kind}` : 'ok'}`
  );
}

export function describeFinding(name: string, f: Finding): string {
  const hex = Buffer.from(f.input.subarray(0, 512)).toString('hex');
  return `${name}: ${f.kind} on a ${f.input.length}-byte input\n  input (hex${f.input.length > 512 ? ', first 512 bytes' : ''}): ${hex}\n  ${f.error.split('\n').slice(0, 8).join('\n  ')}`;
}
