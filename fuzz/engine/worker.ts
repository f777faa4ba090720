/**
 * The fuzzing loop, bundled with one target into a worker (see build.ts). It runs the target
 * on corpus inputs and their mutations, keeps every input that reaches a new edge bucket
 * (AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+), and stops at the first
 * finding. Before each run it publishes the input in shared memory and bumps a counter, so
 * the parent can tell a hang (the counter stops) or a death (out of memory) and still knows
 * which input caused it.
 */
import { parentPort, workerData } from 'node:worker_threads';

declare const __swcov: Uint8Array;

export interface FuzzTargetModule {
  /** Runs one input; throws only on a bug (the target swallows its expected errors). */
  fuzz(data: Uint8Array): void;
  /** Longest input worth trying (default 4096). */
  maxLen?: number;
}

export interface WorkerInput {
  seed: number;
  corpus: Uint8Array[];
  dictionary: Uint8Array[];
  /** This bundle's edge counter ids, [start, end) each. */
  ranges: [number, number][];
  maxLen: number;
  /** Stop after this many executions, or at this wall-clock time (ms since epoch), whichever first. */
  runs: number;
  deadline: number;
  /** Int32 [execs, current input length] then the current input's bytes. */
  shared: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'new'; input: Uint8Array }
  | { type: 'crash'; input: Uint8Array; error: string }
  | { type: 'done'; execs: number; corpus: number; covered: number };

/** xorshift32: the same seed replays the same mutations (given the same corpus). */
class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0xffffffff];

function bucket(c: number): number {
  if (c <= 3) return 1 << (c - 1);
  if (c <= 7) return 8;
  if (c <= 15) return 16;
  if (c <= 31) return 32;
  if (c <= 127) return 64;
  return 128;
}

function mutate(
  r: Rand,
  input: Uint8Array,
  corpus: Uint8Array[],
  dict: Uint8Array[],
  maxLen: number,
): Uint8Array {
  let b = Array.from(input);
  const stack = 1 << r.below(4);
  for (let k = 0; k < stack; k++) {
    const n = b.length;
    switch (r.below(12)) {
      case 0: // flip a bit
        if (n) {
          const at = r.below(n);
          b[at] = (b[at] ?? 0) ^ (1 << r.below(8));
        }
        break;
      case 1: // a random byte
        if (n) b[r.below(n)] = r.below(256);
        break;
      case 2: {
        // an interesting value, 1, 2 or 4 bytes big-endian (lengths, limits)
        const v = INTERESTING[r.below(INTERESTING.length)]!;
        const w = [1, 2, 4][r.below(3)]!;
        const at = r.below(Math.max(1, n - w + 1));
        for (let i = 0; i < w && at + i < n; i++) b[at + i] = (v >>> (8 * (w - 1 - i))) & 0xff;
        break;
      }
      case 3: {
        // add or subtract a little from a big-endian u16 (a length field, usually)
        if (n < 2) break;
        const at = r.below(n - 1);
        const v = (((b[at]! << 8) | b[at + 1]!) + (r.below(33) - 16)) & 0xffff;
        b[at] = v >> 8;
        b[at + 1] = v & 0xff;
        break;
      }
      case 4: {
        // erase a run
        if (!n) break;
        const at = r.below(n);
        b.splice(at, 1 + r.below(Math.min(n - at, 16)));
        break;
      }
      case 5: {
        // insert random bytes
        const at = r.below(n + 1);
        const ins = Array.from({ length: 1 + r.below(8) }, () => r.below(256));
        b.splice(at, 0, ...ins);
        break;
      }
      case 6: {
        // duplicate a run
        if (!n) break;
        const at = r.below(n);
        const len = 1 + r.below(Math.min(n - at, 64));
        b.splice(r.below(n + 1), 0, ...b.slice(at, at + len));
        break;
      }
      case 7:
      case 8: {
        // overwrite or insert a dictionary word (a constant our code compares with)
        if (!dict.length) break;
        const w = dict[r.below(dict.length)]!;
        const at = r.below(n + 1);
        if (r.below(2)) b.splice(at, Math.min(w.length, n - at), ...w);
        else b.splice(at, 0, ...w);
        break;
      }
      case 9: {
        // splice with another corpus entry
        const o = corpus[r.below(corpus.length)];
        if (!o?.length) break;
        const cut = r.below(n + 1);
        const from = r.below(o.length);
        b = b.slice(0, cut).concat(Array.from(o.subarray(from)));
        break;
      }
      case 10: // truncate
        if (n) b.length = r.below(n);
        break;
      case 11: {
        // copy a run over another place
        if (n < 2) break;
        const from = r.below(n);
        const len = 1 + r.below(Math.min(n - from, 32));
        const to = r.below(n);
        const run = b.slice(from, from + len);
        for (let i = 0; i < run.length && to + i < n; i++) b[to + i] = run[i]!;
        break;
      }
    }
  }
  if (b.length > maxLen) b.length = maxLen;
  return Uint8Array.from(b);
}

export function workerMain(target: FuzzTargetModule): void {
  if (!parentPort) return;
  const port = parentPort;
  const w = workerData as WorkerInput;
  const beat = new Int32Array(w.shared, 0, 2);
  const current = new Uint8Array(w.shared, 8);
  const virgin = new Uint8Array(w.ranges.reduce((m, [, hi]) => Math.max(m, hi), 0));
  const r = new Rand(w.seed);
  const corpus: Uint8Array[] = [];
  let execs = 0;
  let covered = 0;

  /** Runs one input: 'crash' with the error, or whether it reached a new edge bucket. */
  const execute = (input: Uint8Array): { fresh: boolean; error?: string } => {
    current.set(input.subarray(0, current.length));
    Atomics.store(beat, 1, input.length);
    Atomics.add(beat, 0, 1);
    execs++;
    for (const [lo, hi] of w.ranges) __swcov.fill(0, lo, hi);
    try {
      target.fuzz(input);
    } catch (e) {
      return { fresh: false, error: e instanceof Error ? (e.stack ?? String(e)) : String(e) };
    }
    let fresh = false;
    for (const [lo, hi] of w.ranges) {
      for (let i = lo; i < hi; i++) {
        const c = __swcov[i]!;
        if (c === 0) continue;
        const bit = bucket(c);
        if ((virgin[i]! & bit) === 0) {
          if (virgin[i] === 0) covered++;
          virgin[i]! |= bit;
          fresh = true;
        }
      }
    }
    return { fresh };
  };

  const finish = (): void =>
    port.postMessage({ type: 'done', execs, corpus: corpus.length, covered } satisfies WorkerMessage);
  const crash = (input: Uint8Array, error: string): void => {
    port.postMessage({ type: 'crash', input, error } satisfies WorkerMessage);
    finish();
  };

  // The seeds first: every one stays in the queue (they are the committed corpus), and the
  // empty input is always tried.
  for (const seed of [new Uint8Array(0), ...w.corpus]) {
    const res = execute(seed.subarray(0, w.maxLen));
    if (res.error !== undefined) {
      crash(seed, res.error);
      return;
    }
    corpus.push(seed.subarray(0, w.maxLen));
  }
  while (execs < w.runs && Date.now() < w.deadline) {
    // Recent finds are tried more often: they sit at the edge of what is covered.
    const pick =
      r.below(2) && corpus.length > w.corpus.length + 1
        ? corpus.length - 1 - r.below(Math.min(16, corpus.length))
        : r.below(corpus.length);
    const input = mutate(r, corpus[pick]!, corpus, w.dictionary, w.maxLen);
    const res = execute(input);
    if (res.error !== undefined) {
      crash(input, res.error);
      return;
    }
    if (res.fresh) {
      corpus.push(input);
      port.postMessage({ type: 'new', input } satisfies WorkerMessage);
    }
  }
  finish();
}
