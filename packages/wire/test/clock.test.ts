import { describe, expect, it } from 'vitest';
import { hexdump, Prng, TraceBus, VirtualClock } from '../src/index.ts';

describe('VirtualClock', () => {
  it('fires timers only when advanced, in time order, ties in creation order', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.setTimer(20, () => log.push('b'));
    c.setTimer(10, () => log.push('a'));
    c.setTimer(20, () => log.push('c'));
    const t = c.setTimer(15, () => log.push('cancelled'));
    t.cancel();
    expect(log).toEqual([]);
    c.advance(10);
    expect(log).toEqual(['a']);
    c.advanceTo(100);
    expect(log).toEqual(['a', 'b', 'c']);
    expect(c.now()).toBe(100);
  });
  it('timers set while firing run in the same advance when due', () => {
    const c = new VirtualClock();
    const at: number[] = [];
    c.setTimer(1, () => c.setTimer(c.now() + 1, () => at.push(c.now())));
    c.advance(5);
    expect(at).toEqual([2]);
  });
  it('runUntil throws when the condition cannot be met', () => {
    const c = new VirtualClock();
    expect(() => c.runUntil(() => false, 1000)).toThrow(/not met/);
  });
});

describe('Prng', () => {
  it('repeats for a seed and differs across seeds', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const sa = Array.from({ length: 8 }, () => a.u32());
    expect(Array.from({ length: 8 }, () => b.u32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.u32())).not.toEqual(sa);
  });
  it('is roughly uniform', () => {
    const p = new Prng(1);
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (p.chance(0.2)) hits++;
    expect(hits / 100_000).toBeGreaterThan(0.19);
    expect(hits / 100_000).toBeLessThan(0.21);
  });
});

describe('TraceBus and hexdump', () => {
  it('is disabled until someone listens', () => {
    const bus = new TraceBus();
    expect(bus.enabled).toBe(false);
    const seen: string[] = [];
    const off = bus.on((e) => seen.push(e.summary));
    expect(bus.enabled).toBe(true);
    bus.emit({ t: 0, host: 'A', layer: 'x', dir: 'out', summary: 'hello' });
    off();
    expect(bus.enabled).toBe(false);
    expect(seen).toEqual(['hello']);
  });
  it('dumps 16 bytes per line with ASCII', () => {
    const out = hexdump(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x'));
    expect(out.split('\n')[0]).toBe(
      '00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  |GET / HTTP/1.1..|',
    );
  });
});
