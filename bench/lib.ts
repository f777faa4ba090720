/**
 * The benchmark harness: every benchmark measures our code and its best available peer in
 * the same run and reports the ratio, since absolute figures on a shared 2-core machine are
 * noise. A result line is printed as `BENCH name value unit peer peerValue ratio` so that a
 * script can read it; `pnpm bench --json FILE` also writes the array.
 */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  peer: string | null;
  peerValue: number | null;
  /** value / peerValue for rates (higher is better) — >1 means we are faster. */
  ratio: number | null;
}

export interface Benchmark {
  name: string;
  /** Benchmarks that need root, TUN or peer programs say so; the runner reports why not run. */
  requires?: () => string | undefined;
  run(): Promise<BenchResult[]>;
}

/** Run fn repeatedly for about `ms` milliseconds after a warm-up; returns ops per second. */
export function rate(fn: () => void, ms = 1000, opsPerCall = 1): number {
  const warm = performance.now() + ms / 5;
  while (performance.now() < warm) fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
    now = performance.now();
  }
  return (calls * opsPerCall) / ((now - start) / 1000);
}

export async function rateAsync(fn: () => Promise<number>, ms = 1000): Promise<number> {
  await fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    ops += await fn();
    now = performance.now();
  }
  return ops / ((now - start) / 1000);
}

export function result(
  name: string,
  value: number,
  unit: string,
  peer: string | null = null,
  peerValue: number | null = null,
): BenchResult {
  return { name, value, unit, peer, peerValue, ratio: peerValue ? value / peerValue : null };
}
