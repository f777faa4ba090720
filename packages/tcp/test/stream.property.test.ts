import { Prng } from '@stepwire/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pair, type Side } from './harness.ts';

/** A deterministic byte stream: byte i of stream `tag` is a hash of (tag, i). */
function streamBytes(tag: number, from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.imul((from + i) ^ (tag * 0x9e3779b9), 0x85ebca6b);
    out[i] = (x ^ (x >>> 13)) & 0xff;
  }
  return out;
}

function checkStream(tag: number, got: Uint8Array, total: number): void {
  expect(got.length).toBe(total);
  const want = streamBytes(tag, 0, total);
  for (let i = 0; i < total; i++) {
    if (got[i] !== want[i]) throw new Error(`stream ${tag}: byte ${i} is ${got[i]}, want ${want[i]}`);
  }
}

export interface Scenario {
  seed: number;
  loss: number;
  duplicate: number;
  reorder: number;
  corrupt: number;
  delay: number;
  aBytes: number;
  bBytes: number;
  sack: boolean;
  timestamps: boolean;
  cubic: boolean;
  noDelay: boolean;
  receiveBuffer: number;
  readMax: number;
}

let totalChecksumDrops = 0;

export function runScenario(s: Scenario, debug = false): Pair {
  const common = {
    sack: s.sack,
    timestamps: s.timestamps,
    congestion: s.cubic ? ('cubic' as const) : ('newreno' as const),
    noDelay: s.noDelay,
    receiveBuffer: s.receiveBuffer,
    rto: { min: 200 },
    maxRetries: 30,
    synRetries: 30,
    msl: 1000,
  };
  const p = new Pair(common, common, s.seed, {
    loss: s.loss,
    duplicate: s.duplicate,
    reorder: s.reorder,
    corrupt: s.corrupt,
    delay: s.delay,
    jitter: s.delay / 2,
  });
  const rng = new Prng(s.seed ^ 0x5a5a);
  const total: Record<Side, number> = { a: s.aBytes, b: s.bBytes };
  const written: Record<Side, number> = { a: 0, b: 0 };
  const closed: Record<Side, boolean> = { a: false, b: false };
  p.keepWire = debug;
  p.readMax = s.readMax;
  p.useCodec = true;
  p.open();
  // Writers: random sizes at random times; readers pause at random.
  const tick = (side: Side) => {
    const c = p.conns[side];
    if (c.state === 'CLOSED' || c.state === 'TIME-WAIT') return;
    if (
      written[side] < total[side] &&
      c.sendQueued < 256 * 1024 &&
      c.state !== 'SYN-SENT' &&
      c.state !== 'LISTEN'
    ) {
      const n = Math.min(total[side] - written[side], rng.int(1, 20000));
      p.send(side, streamBytes(side === 'a' ? 1 : 2, written[side], n));
      written[side] += n;
    }
    if (
      written[side] === total[side] &&
      !closed[side] &&
      (c.state === 'ESTABLISHED' || c.state === 'CLOSE-WAIT')
    ) {
      closed[side] = true;
      p.close(side);
    }
    const wasReading = p.reading[side];
    p.reading[side] = rng.chance(0.8);
    if (p.reading[side] && !wasReading) p.drain(side);
    p.clock.setTimer(p.clock.now() + rng.int(1, 50), () => tick(side));
  };
  tick('a');
  tick('b');
  const deadline = p.clock.now() + 3_600_000;
  let steps = 0;
  while (steps++ < 5_000_000) {
    const at = p.clock.nextTimerAt();
    if (at === undefined || at > deadline) break;
    p.clock.advanceTo(at);
    if (p.conns.a.state === 'CLOSED' && p.conns.b.state === 'CLOSED') break;
  }
  p.reading.a = p.reading.b = true;
  p.drain('a');
  p.drain('b');
  if (debug) return p;
  checkStream(1, p.concat('b'), s.aBytes);
  checkStream(2, p.concat('a'), s.bBytes);
  expect(p.conns.a.state).toBe('CLOSED');
  expect(p.conns.b.state).toBe('CLOSED');
  expect(p.events.a.filter((e) => e.type === 'error')).toEqual([]);
  expect(p.events.b.filter((e) => e.type === 'error')).toEqual([]);
  totalChecksumDrops += p.checksumDrops;
  return p;
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
  duplicate: fc.double({ min: 0, max: 0.1, noNaN: true }),
  reorder: fc.double({ min: 0, max: 0.2, noNaN: true }),
  corrupt: fc.double({ min: 0, max: 0.05, noNaN: true }),
  delay: fc.integer({ min: 1, max: 50 }),
  aBytes: fc.integer({ min: 0, max: 300_000 }),
  bBytes: fc.integer({ min: 0, max: 100_000 }),
  sack: fc.boolean(),
  timestamps: fc.boolean(),
  cubic: fc.boolean(),
  noDelay: fc.boolean(),
  receiveBuffer: fc.constantFrom(4096, 65535, 256 * 1024),
  readMax: fc.constantFrom(1, 100, 1460, 65536, Number.MAX_SAFE_INTEGER),
});

describe('two connections over a lossy, duplicating, reordering, corrupting channel', () => {
  it('deliver both byte streams complete, in order, exactly once, and both reach CLOSED', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        try {
          runScenario(s);
        } catch (e) {
          throw new Error(`scenario ${JSON.stringify(s)}: ${(e as Error).message}`);
        }
      }),
      { numRuns: Number(process.env.RUNS ?? 80), seed: Number(process.env.SEED ?? 20261125) },
    );
    // Corrupted bytes really went through the codec and were caught by the checksum.
    expect(totalChecksumDrops).toBeGreaterThan(0);
  });
});

describe('simultaneous open over a lossy channel', () => {
  it('both ends get from SYN-SENT to ESTABLISHED and move data, for 30 seeds', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const o = { rto: { min: 200 }, synRetries: 20 };
      const p = new Pair(o, o, seed, { loss: 0.2, duplicate: 0.05, reorder: 0.1, delay: 5 });
      p.handle('a', p.conns.a.open(0));
      p.handle('b', p.conns.b.open(0));
      p.clock.runUntil(() => p.conns.a.state === 'ESTABLISHED' && p.conns.b.state === 'ESTABLISHED', 600_000);
      p.send('a', streamBytes(1, 0, 5000));
      p.send('b', streamBytes(2, 0, 7000));
      p.clock.runUntil(() => p.receivedBytes.a === 7000 && p.receivedBytes.b === 5000, 600_000);
      checkStream(1, p.concat('b'), 5000);
      checkStream(2, p.concat('a'), 7000);
    }
  });
});
