/**
 * pnpm fuzz [target ...] [--seconds N] [--runs N] [--seed N] [--jobs N] [--merge]
 *           [--timeout-ms N] [--memory-mb N] [--max-len N] [--list]
 *
 * Coverage-guided fuzzing of our decoders and machines (see fuzz/README.md). Without target
 * names every target runs, `--jobs` at a time (default: the machine's cores). Each runs for
 * `--seconds` (default 10) or `--runs` executions, whichever ends first. A finding (an
 * exception other than the target's expected errors, an input running past --timeout-ms,
 * or the worker dying past --memory-mb) is saved under fuzz/regressions/<target>/, printed
 * with its input, and makes the exit code 1. `--merge` adds the inputs that reached new
 * coverage to fuzz/corpus/<target>/ (commit only small, useful ones).
 */
import { availableParallelism } from 'node:os';
import { describeFinding, mergeIntoCorpus, runTarget, saveFinding, summary } from './engine/campaign.ts';
import { targetNames } from './targets.ts';

const args = process.argv.slice(2);
const names: string[] = [];
const opt: Record<string, string> = {};
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--merge' || a === '--list') opt[a.slice(2)] = 'true';
  else if (a.startsWith('--')) {
    const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), args[++i]];
    if (v === undefined) throw new Error(`${a} needs a value`);
    opt[k!] = v;
  } else names.push(a);
}
const all = targetNames();
if (opt.list) {
  console.log(all.join('\n'));
  process.exit(0);
}
for (const n of names) if (!all.includes(n)) throw new Error(`no fuzz target ${n}; known: ${all.join(', ')}`);
const chosen = names.length ? names : all;
const num = (k: string, d: number): number => (opt[k] === undefined ? d : Number(opt[k]));
const seed = num('seed', Date.now() % 0x7fffffff);
const jobs = num('jobs', availableParallelism());
const common = {
  seed,
  seconds: num('seconds', opt.runs ? 1e9 : 10),
  runs: num('runs', Number.MAX_SAFE_INTEGER),
  timeoutMs: num('timeout-ms', 5000),
  memoryMb: num('memory-mb', 512),
  ...(opt['max-len'] ? { maxLen: num('max-len', 4096) } : {}),
};
console.log(`fuzzing ${chosen.length} target(s), seed ${seed}, ${jobs} at a time`);

let failed = 0;
const queue = [...chosen];
async function worker(): Promise<void> {
  for (let name = queue.shift(); name; name = queue.shift()) {
    const t0 = Date.now();
    const r = await runTarget(name, common);
    console.log(summary(r, Date.now() - t0));
    if (opt.merge && r.found.length)
      console.log(`  merged ${mergeIntoCorpus(name, r.found)} input(s) into fuzz/corpus/${name}/`);
    if (r.finding) {
      failed++;
      console.log(describeFinding(name, r.finding));
      console.log(`  saved as ${saveFinding(name, r.finding)}`);
    }
  }
}
await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
process.exit(failed ? 1 : 0);
