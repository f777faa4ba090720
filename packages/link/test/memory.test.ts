import { Counters, markWriteOnce, TraceBus, type TraceEvent, toHex, VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { type Impairments, impair } from '../src/impair.ts';
import type { Link } from '../src/link.ts';
import { MemoryLink } from '../src/memory.ts';

/** Packet i: 4-byte big-endian index followed by `size - 4` filler bytes. */
function numbered(i: number, size = 64): Uint8Array {
  const p = new Uint8Array(size);
  new DataView(p.buffer).setUint32(0, i);
  for (let k = 4; k < size; k++) p[k] = (i * 7 + k) & 0xff;
  return p;
}
const indexOf = (p: Uint8Array): number => new DataView(p.buffer, p.byteOffset).getUint32(0);

interface Arrival {
  t: number;
  packet: Uint8Array;
}

/** Send `count` numbered packets a->b, one every `gap` ms, and collect what b receives. */
function runTraffic(opts: {
  impairments?: Impairments;
  seed?: number;
  count: number;
  gap?: number;
  size?: number;
  mtu?: number;
}): { arrivals: Arrival[]; sent: Uint8Array[]; a: Link; b: Link; clock: VirtualClock } {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({
    clock,
    seed: opts.seed ?? 1,
    mtu: opts.mtu ?? 1500,
    impairments: opts.impairments ?? {},
  });
  const arrivals: Arrival[] = [];
  b.onPacket((packet) => arrivals.push({ t: clock.now(), packet }));
  const sent: Uint8Array[] = [];
  const gap = opts.gap ?? 0;
  for (let i = 0; i < opts.count; i++) {
    clock.setTimer(i * gap, () => {
      const p = numbered(i, opts.size);
      sent.push(p);
      a.send(p);
    });
  }
  clock.runUntilIdle(Number.POSITIVE_INFINITY, 1_000_000);
  return { arrivals, sent, a, b, clock };
}

describe('MemoryLink delivery', () => {
  it('delivers a copy through a clock timer, never inside send()', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock });
    const got: Uint8Array[] = [];
    b.onPacket((p) => got.push(p));
    const p = numbered(7);
    a.send(p);
    expect(got).toHaveLength(0);
    p[0] = 0xff; // the sender reusing its buffer must not change what is delivered
    clock.runUntilIdle();
    expect(got).toHaveLength(1);
    expect(indexOf(got[0]!)).toBe(7);
    expect(clock.now()).toBe(0);
    expect(a.counters.get('tx')).toBe(1);
    expect(b.counters.get('rx')).toBe(1);
  });

  it('keeps a packet of a write-once buffer itself (no copy), and copies any other', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock });
    const got: Uint8Array[] = [];
    b.onPacket((p) => got.push(p));
    const slab = new ArrayBuffer(256);
    markWriteOnce(slab);
    const sealed = new Uint8Array(slab, 64, 64);
    sealed.set(numbered(3));
    const plain = numbered(4);
    a.send(sealed);
    a.send(plain);
    plain[0] = 0xff;
    clock.runUntilIdle();
    expect(got).toHaveLength(2);
    // The same bytes in the sender's buffer, not a copy of them.
    expect(got[0]!.buffer).toBe(slab);
    expect(got[0]!.byteOffset).toBe(64);
    expect(indexOf(got[0]!)).toBe(3);
    expect(got[1]!.buffer).not.toBe(plain.buffer);
    expect(indexOf(got[1]!)).toBe(4);
  });

  it('carries both directions and lets a handler answer without re-entrancy', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, impairments: { delay: 1 } });
    const log: string[] = [];
    let depth = 0;
    b.onPacket((p) => {
      depth++;
      expect(depth).toBe(1);
      log.push(`b got ${indexOf(p)} at ${clock.now()}`);
      if (indexOf(p) < 3) b.send(numbered(indexOf(p) + 1));
      depth--;
    });
    a.onPacket((p) => {
      log.push(`a got ${indexOf(p)} at ${clock.now()}`);
      a.send(numbered(indexOf(p) + 1));
    });
    a.send(numbered(0));
    clock.runUntilIdle(100, 1000);
    expect(log).toEqual(['b got 0 at 1', 'a got 1 at 2', 'b got 2 at 3', 'a got 3 at 4', 'b got 4 at 5']);
  });

  it('drops packets larger than the MTU and counts them', () => {
    const { arrivals, a } = runTraffic({ count: 3, size: 1501, mtu: 1500 });
    expect(arrivals).toHaveLength(0);
    expect(a.counters.get('drop.mtu')).toBe(3);
    expect(a.counters.get('tx')).toBe(0);
    const ok = runTraffic({ count: 3, size: 1500, mtu: 1500 });
    expect(ok.arrivals).toHaveLength(3);
  });

  it('counts sends after close and cancels packets in flight', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, impairments: { delay: 10 } });
    const got: Uint8Array[] = [];
    b.onPacket((p) => got.push(p));
    a.send(numbered(1));
    a.close();
    a.send(numbered(2));
    clock.runUntilIdle();
    expect(got).toHaveLength(0);
    expect(a.counters.get('drop.closed')).toBe(2);
  });
});

describe("MemoryLink batches: the 'more' hint", () => {
  it('a run of packets to one end says more until its last; packets of another end break the run', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock });
    const log: string[] = [];
    b.onPacket((p, _info, more) => log.push(`b ${indexOf(p)}${more ? ' more' : ''}`));
    a.onPacket((p, _info, more) => log.push(`a ${indexOf(p)}${more ? ' more' : ''}`));
    for (const i of [0, 1, 2]) a.send(numbered(i));
    b.send(numbered(3));
    a.send(numbered(4));
    clock.runUntilIdle();
    expect(log).toEqual(['b 0 more', 'b 1 more', 'b 2', 'a 3', 'b 4']);
  });

  it('a burst delayed alike arrives as one run; receive-side impairments break runs up', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, impairments: { delay: 1 } });
    const hints: (boolean | undefined)[] = [];
    b.onPacket((_p, _info, more) => hints.push(more));
    for (const i of [0, 1, 2]) a.send(numbered(i));
    clock.runUntilIdle();
    expect(hints).toEqual([true, true, undefined]);
    const [c, d] = MemoryLink.pair({ clock });
    const late = impair(d, { seed: 1, receive: { delay: 1 } }, clock);
    const lateHints: (boolean | undefined)[] = [];
    late.onPacket((_p, _info, more) => lateHints.push(more));
    for (const i of [0, 1, 2]) c.send(numbered(i));
    clock.runUntilIdle();
    expect(lateHints).toEqual([undefined, undefined, undefined]);
  });
});

describe('MemoryLink determinism', () => {
  const rough: Impairments = {
    loss: 0.1,
    duplicate: 0.05,
    reorder: 0.1,
    delay: 5,
    jitter: 4,
    corrupt: 0.05,
    rateBps: 2_000_000,
  };
  const fingerprint = (arrivals: Arrival[]): string[] =>
    arrivals.map((x) => `${x.t.toFixed(6)} ${toHex(x.packet)}`);

  it('the same seed gives the same packets at the same times', () => {
    const one = runTraffic({ impairments: rough, seed: 42, count: 300, gap: 0.5 });
    const two = runTraffic({ impairments: rough, seed: 42, count: 300, gap: 0.5 });
    expect(one.arrivals.length).toBeGreaterThan(200);
    expect(fingerprint(two.arrivals)).toEqual(fingerprint(one.arrivals));
    expect(two.a.counters.snapshot()).toEqual(one.a.counters.snapshot());
  });

  it('different seeds give different runs', () => {
    const one = runTraffic({ impairments: rough, seed: 42, count: 300, gap: 0.5 });
    const two = runTraffic({ impairments: rough, seed: 43, count: 300, gap: 0.5 });
    expect(fingerprint(two.arrivals)).not.toEqual(fingerprint(one.arrivals));
  });
});

describe('impairments do what they say', () => {
  const N = 10_000;

  it('loss: the loss rate is within tolerance and every loss is counted', () => {
    const { arrivals, a } = runTraffic({ impairments: { loss: 0.1 }, count: N });
    const lost = N - arrivals.length;
    // Binomial sd = sqrt(N p (1-p)) = 30 packets; allow 5 sd.
    expect(Math.abs(lost - 0.1 * N)).toBeLessThan(150);
    expect(a.counters.get('drop.loss')).toBe(lost);
    expect(a.counters.get('tx')).toBe(arrivals.length);
  });

  it('duplicate: about the given share arrives twice, adjacent copies', () => {
    const { arrivals, a } = runTraffic({ impairments: { duplicate: 0.2 }, count: N });
    const dups = arrivals.length - N;
    expect(Math.abs(dups - 0.2 * N)).toBeLessThan(200);
    expect(a.counters.get('duplicate')).toBe(dups);
    const seen = new Set(arrivals.map((x) => indexOf(x.packet)));
    expect(seen.size).toBe(N);
  });

  it('corrupt: about the given share differs from what was sent, by exactly the flipped bits', () => {
    const { arrivals, sent, a } = runTraffic({ impairments: { corrupt: 0.3 }, count: 2000, size: 40 });
    expect(arrivals).toHaveLength(2000);
    let corrupted = 0;
    arrivals.forEach((x, i) => {
      const orig = sent[i]!;
      let bitsDiffer = 0;
      for (let k = 0; k < orig.length; k++) {
        let d = orig[k]! ^ x.packet[k]!;
        while (d) {
          bitsDiffer += d & 1;
          d >>= 1;
        }
      }
      expect(bitsDiffer === 0 || bitsDiffer === 1).toBe(true);
      if (bitsDiffer) corrupted++;
    });
    // sd = sqrt(2000 * .3 * .7) ~ 20.5
    expect(Math.abs(corrupted - 600)).toBeLessThan(105);
    expect(a.counters.get('corrupt')).toBe(corrupted);
    // The sender's buffers are untouched.
    for (const [i, p] of sent.entries()) expect(toHex(p)).toBe(toHex(numbered(i, 40)));
  });

  it('delay: every packet arrives exactly `delay` ms after it was sent', () => {
    const { arrivals } = runTraffic({ impairments: { delay: 25 }, count: 10, gap: 3 });
    expect(arrivals.map((x) => x.t)).toEqual([...Array(10).keys()].map((i) => i * 3 + 25));
  });

  it('jitter: delays spread over [delay, delay + jitter) and order is kept', () => {
    const { arrivals } = runTraffic({ impairments: { delay: 20, jitter: 10 }, count: 500, gap: 5 });
    expect(arrivals).toHaveLength(500);
    const extra = arrivals.map((x) => x.t - indexOf(x.packet) * 5 - 20);
    for (const e of extra) {
      expect(e).toBeGreaterThanOrEqual(0);
      expect(e).toBeLessThan(10);
    }
    // A uniform spread: mean near 5, some near each end.
    const mean = extra.reduce((s, e) => s + e, 0) / extra.length;
    expect(Math.abs(mean - 5)).toBeLessThan(0.6);
    expect(Math.min(...extra)).toBeLessThan(1);
    expect(Math.max(...extra)).toBeGreaterThan(9);
    expect(arrivals.map((x) => indexOf(x.packet))).toEqual([...arrivals.keys()]);
  });

  it('jitter with packets closer than the jitter still keeps them in order', () => {
    const { arrivals } = runTraffic({ impairments: { jitter: 10 }, count: 200, gap: 1 });
    expect(arrivals.map((x) => indexOf(x.packet))).toEqual([...arrivals.keys()]);
  });

  it('reorder: held-back packets are overtaken, and only those', () => {
    const { arrivals, a } = runTraffic({
      impairments: { reorder: 0.1, reorderDelay: 10 },
      count: 2000,
      gap: 1,
    });
    expect(arrivals).toHaveLength(2000);
    const order = arrivals.map((x) => indexOf(x.packet));
    // A packet was held back when a later-sent packet arrived before it.
    let late = 0;
    let maxSoFar = -1;
    for (const i of order) {
      if (i < maxSoFar) late++;
      maxSoFar = Math.max(maxSoFar, i);
    }
    const reordered = a.counters.get('reorder');
    expect(Math.abs(reordered - 200)).toBeLessThan(70);
    expect(late).toBe(reordered);
    for (const x of arrivals) {
      const d = x.t - indexOf(x.packet);
      expect(d === 0 || d === 10).toBe(true);
    }
  });

  it('rate: serialisation spaces packets at size*8/rate, and the queue is drop-tail', () => {
    // 1000-byte packets at 8 Mbit/s: one per millisecond.
    const fast = runTraffic({
      impairments: { rateBps: 8_000_000, queueLimit: 1000 },
      count: 100,
      size: 1000,
    });
    expect(fast.arrivals.map((x) => x.t)).toEqual([...Array(100).keys()].map((i) => i + 1));

    const bounded = runTraffic({
      impairments: { rateBps: 8_000_000, queueLimit: 10 },
      count: 100,
      size: 1000,
    });
    expect(bounded.arrivals.map((x) => indexOf(x.packet))).toEqual([...Array(10).keys()]);
    expect(bounded.a.counters.get('drop.queue')).toBe(90);

    // Sent at exactly the line rate, the queue never grows: nothing is dropped.
    const paced = runTraffic({
      impairments: { rateBps: 8_000_000, queueLimit: 2 },
      count: 100,
      size: 1000,
      gap: 1,
    });
    expect(paced.arrivals).toHaveLength(100);
    expect(paced.a.counters.get('drop.queue')).toBe(0);
  });

  it('rate plus delay: throughput is bounded by the rate, latency adds on top', () => {
    const { arrivals } = runTraffic({ impairments: { rateBps: 1_000_000, delay: 50 }, count: 50, size: 500 });
    // 500 bytes at 1 Mbit/s = 4 ms each.
    expect(arrivals.at(-1)!.t).toBeCloseTo(50 * 4 + 50, 9);
  });

  it('receive-side impairments apply to packets coming in', () => {
    const clock = new VirtualClock();
    const [a, bRaw] = MemoryLink.pair({ clock });
    const b = impair(bRaw, { receive: { loss: 0.5, delay: 3 }, seed: 9 }, clock);
    const got: number[] = [];
    b.onPacket(() => got.push(clock.now()));
    for (let i = 0; i < 1000; i++) a.send(numbered(i));
    clock.runUntilIdle();
    expect(Math.abs(got.length - 500)).toBeLessThan(80);
    expect(b.counters.get('drop.loss')).toBe(1000 - got.length);
    for (const t of got) expect(t).toBe(3);
  });

  it('wraps any Link, not only MemoryLink', () => {
    // A hand-made link that records synchronously, as a TUN link's write would.
    const written: number[] = [];
    const counters = new Counters();
    const bare: Link = {
      name: 'bare',
      mtu: 100,
      counters,
      send: (p) => {
        counters.inc('tx');
        written.push(indexOf(p));
      },
      onPacket: () => {},
      close: () => {},
    };
    const clock = new VirtualClock();
    const l = impair(bare, { loss: 0.25, delay: 2, seed: 5 }, clock);
    for (let i = 0; i < 400; i++) l.send(numbered(i, 50));
    l.send(numbered(999, 101));
    expect(written).toHaveLength(0);
    clock.advance(2);
    expect(Math.abs(written.length - 300)).toBeLessThan(45);
    expect(counters.get('drop.loss') + written.length).toBe(400);
    expect(counters.get('drop.mtu')).toBe(1);
  });

  it('drops and impairments are traced with their reason when someone listens', () => {
    const clock = new VirtualClock();
    const trace = new TraceBus();
    const events: TraceEvent[] = [];
    trace.on((e) => events.push(e));
    const [a] = MemoryLink.pair({ clock, trace, seed: 3, impairments: { loss: 0.5, corrupt: 0.5 } });
    for (let i = 0; i < 40; i++) a.send(numbered(i));
    clock.runUntilIdle();
    const drops = events.filter((e) => e.dir === 'drop');
    expect(drops).toHaveLength(a.counters.get('drop.loss'));
    expect(drops.length).toBeGreaterThan(0);
    for (const e of drops) expect(e).toMatchObject({ layer: 'link', host: 'mem:a', reason: 'drop.loss' });
    const corrupt = events.filter((e) => e.summary.startsWith('corrupt'));
    expect(corrupt).toHaveLength(a.counters.get('corrupt'));
  });

  it('rejects nonsense settings', () => {
    const clock = new VirtualClock();
    expect(() => MemoryLink.pair({ clock, impairments: { loss: 1.5 } })).toThrow(RangeError);
    expect(() => MemoryLink.pair({ clock, impairments: { delay: -1 } })).toThrow(RangeError);
    expect(() => MemoryLink.pair({ clock, impairments: { rateBps: 1, queueLimit: 0 } })).toThrow(RangeError);
    expect(() => MemoryLink.pair({ clock, mtu: 0 })).toThrow(RangeError);
  });
});
