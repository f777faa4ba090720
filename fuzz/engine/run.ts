/**
 * Runs one built target in a worker thread and watches it: a finding is an exception other
 * than the target's expected errors ('crash'), an input that runs longer than `timeoutMs`
 * ('timeout', the worker is terminated), or a worker that dies past its heap limit ('oom').
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { BuiltTarget } from './build.ts';
import type { WorkerInput, WorkerMessage } from './worker.ts';

export interface Finding {
  kind: 'crash' | 'timeout' | 'oom';
  input: Uint8Array;
  error: string;
}

export interface FuzzResult {
  name: string;
  seed: number;
  execs: number;
  corpus: number;
  /** Edges reached at least once, of `edges` instrumented. */
  covered: number;
  edges: number;
  /** Inputs that reached new coverage in this run (candidates for the corpus). */
  found: Uint8Array[];
  finding?: Finding;
}

export interface FuzzOptions {
  seed: number;
  seconds?: number;
  runs?: number;
  maxLen?: number;
  /** A single input running longer than this is a hang. Default 5000 ms (Jazzer.js's default). */
  timeoutMs?: number;
  /** Worker heap limit; dying past it is a finding. Default 512 MB. */
  memoryMb?: number;
  corpus: Uint8Array[];
}

/** Every file in a directory (sorted by name, so runs are reproducible); none if it is missing. */
export function readInputs(dir: string): Uint8Array[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && !f.endsWith('.md'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(join(dir, f))));
}

export function fuzzBuilt(target: BuiltTarget, opts: FuzzOptions): Promise<FuzzResult> {
  const maxLen = opts.maxLen ?? 4096;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const shared = new SharedArrayBuffer(8 + Math.max(maxLen, ...opts.corpus.map((c) => c.length)));
  const beat = new Int32Array(shared, 0, 2);
  const data: WorkerInput = {
    seed: opts.seed,
    corpus: opts.corpus,
    dictionary: target.dictionary,
    ranges: target.ranges,
    maxLen,
    runs: opts.runs ?? Number.MAX_SAFE_INTEGER,
    deadline: Date.now() + (opts.seconds ?? 1e9) * 1000,
    shared,
  };
  const worker = new Worker(target.file, {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: opts.memoryMb ?? 512 },
    stdout: true,
    stderr: true,
  });
  // What the target prints is noise here; a finding carries its own message.
  worker.stdout.resume();
  worker.stderr.resume();
  const current = (): Uint8Array => new Uint8Array(shared, 8, Atomics.load(beat, 1)).slice();
  const result: FuzzResult = {
    name: target.name,
    seed: opts.seed,
    execs: 0,
    corpus: 0,
    covered: 0,
    edges: target.edges,
    found: [],
  };
  return new Promise((resolve, reject) => {
    let lastExecs = -1;
    let lastChange = Date.now();
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      resolve(result);
    };
    const watch = setInterval(() => {
      const n = Atomics.load(beat, 0);
      if (n !== lastExecs) {
        lastExecs = n;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > timeoutMs) {
        result.finding = { kind: 'timeout', input: current(), error: `one input ran over ${timeoutMs} ms` };
        result.execs = n;
        void worker.terminate().then(settle, settle);
      }
    }, 50);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'new') result.found.push(m.input);
      else if (m.type === 'crash') result.finding = { kind: 'crash', input: m.input, error: m.error };
      else {
        result.execs = m.execs;
        result.corpus = m.corpus;
        result.covered = m.covered;
        void worker.terminate().then(settle, settle);
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        result.finding = { kind: 'oom', input: current(), error: e.message };
        result.execs = Atomics.load(beat, 0);
        settle();
      } else if (!settled) {
        settled = true;
        clearInterval(watch);
        reject(e);
      }
    });
    worker.on('exit', () => settle());
  });
}
