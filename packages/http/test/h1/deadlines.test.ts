import { fc, test as fcTest } from '@fast-check/vitest';
import { TimerGroup, VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { type DeadlineHolder, DeadlineWheel } from '../../src/h1/server/deadlines.ts';

/**
 * The server's deadlines under one timer (deadlines.ts): each still fires at its exact time,
 * moving one costs no timer, and nothing stays armed once no connection holds one.
 */
function holder(log: [string, number][], name: string): DeadlineHolder {
  return {
    deadlineAt: Number.POSITIVE_INFINITY,
    deadlineSlot: -1,
    onDeadline(now) {
      log.push([name, now]);
    },
  };
}

function setup() {
  const clock = new VirtualClock();
  const timers = new TimerGroup(clock);
  const wheel = new DeadlineWheel(timers);
  return { clock, timers, wheel };
}

describe('DeadlineWheel', () => {
  it('fires each deadline at its own time, with one timer for all', () => {
    const { clock, timers, wheel } = setup();
    const log: [string, number][] = [];
    const a = holder(log, 'a');
    const b = holder(log, 'b');
    const c = holder(log, 'c');
    wheel.set(a, 300);
    wheel.set(b, 100);
    wheel.set(c, 200);
    expect(timers.armed).toBe(1);
    expect(wheel.size).toBe(3);
    clock.advance(99);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual([['b', 100]]);
    clock.advance(200);
    expect(log).toEqual([
      ['b', 100],
      ['c', 200],
      ['a', 300],
    ]);
    expect(wheel.size).toBe(0);
    expect(timers.armed).toBe(0);
  });

  it('a deadline moved later arms no new timer; the early firing re-arms at the earliest left', () => {
    const { clock, timers, wheel } = setup();
    const log: [string, number][] = [];
    const a = holder(log, 'a');
    wheel.set(a, 100);
    expect(clock.pending).toBe(1);
    for (let at = 150; at <= 1000; at += 50) wheel.set(a, at);
    // still the one timer, for 100
    expect(clock.pending).toBe(1);
    expect(clock.nextTimerAt()).toBe(100);
    clock.advance(100);
    expect(log).toEqual([]);
    expect(clock.nextTimerAt()).toBe(1000);
    expect(timers.armed).toBe(1);
    clock.advance(900);
    expect(log).toEqual([['a', 1000]]);
  });

  it('an earlier deadline re-arms the timer for it', () => {
    const { clock, wheel } = setup();
    const log: [string, number][] = [];
    const a = holder(log, 'a');
    const b = holder(log, 'b');
    wheel.set(a, 500);
    wheel.set(b, 50);
    expect(clock.nextTimerAt()).toBe(50);
    clock.advance(50);
    expect(log).toEqual([['b', 50]]);
  });

  it('with every deadline cleared, the timer fires once at its time and is not re-armed', () => {
    const { clock, timers, wheel } = setup();
    const log: [string, number][] = [];
    const a = holder(log, 'a');
    const b = holder(log, 'b');
    wheel.set(a, 100);
    wheel.set(b, 200);
    wheel.clear(a);
    wheel.clear(b);
    wheel.clear(b);
    expect(wheel.size).toBe(0);
    expect(timers.armed).toBe(1);
    clock.advance(100);
    expect(timers.armed).toBe(0);
    expect(clock.pending).toBe(0);
    clock.advance(1000);
    expect(log).toEqual([]);
    // a holder cleared and set again is held once
    wheel.set(a, 1500);
    wheel.set(a, 1600);
    expect(wheel.size).toBe(1);
    clock.advance(500);
    expect(log).toEqual([['a', 1600]]);
  });

  it('a handler may set a new deadline, for itself or another holder', () => {
    const { clock, wheel } = setup();
    const log: [string, number][] = [];
    const b = holder(log, 'b');
    const a: DeadlineHolder = {
      deadlineAt: Number.POSITIVE_INFINITY,
      deadlineSlot: -1,
      onDeadline(now) {
        log.push(['a', now]);
        if (now < 300) wheel.set(a, now + 100);
        wheel.clear(b);
      },
    };
    wheel.set(a, 100);
    wheel.set(b, 100);
    clock.advance(100);
    // a ran first (set first) and cleared b, due at the same instant: b does not fire
    expect(log).toEqual([['a', 100]]);
    clock.advance(300);
    expect(log).toEqual([
      ['a', 100],
      ['a', 200],
      ['a', 300],
    ]);
    expect(wheel.size).toBe(0);
  });

  // Against a model: every holder's deadline fires exactly once, at the first instant the
  // clock reaches it, unless it was cleared or moved first; nothing fires that was not due.
  fcTest.prop([
    fc.array(
      fc.oneof(
        fc.record({ op: fc.constant('set' as const), h: fc.nat(4), at: fc.integer({ min: 0, max: 2000 }) }),
        fc.record({ op: fc.constant('clear' as const), h: fc.nat(4) }),
        fc.record({ op: fc.constant('advance' as const), by: fc.integer({ min: 0, max: 400 }) }),
      ),
      { maxLength: 60 },
    ),
  ])('fires as a model of one deadline per holder says', (ops) => {
    const { clock, timers, wheel } = setup();
    const fired: [number, number][] = [];
    const holders: DeadlineHolder[] = [0, 1, 2, 3, 4].map((i) => ({
      deadlineAt: Number.POSITIVE_INFINITY,
      deadlineSlot: -1,
      onDeadline(now: number) {
        fired.push([i, now]);
      },
    }));
    const model = new Map<number, number>();
    const expected: [number, number][] = [];
    const step = (to: number): void => {
      // the model: each deadline the clock reaches fires then, at its own instant
      for (const [i, at] of [...model]) {
        if (at <= to) {
          model.delete(i);
          expected.push([i, at]);
        }
      }
      clock.advanceTo(to);
    };
    for (const o of ops) {
      if (o.op === 'set') {
        const h = holders[o.h] as DeadlineHolder;
        const at = Math.max(o.at, clock.now() + 1);
        model.set(o.h, at);
        wheel.set(h, at);
      } else if (o.op === 'clear') {
        model.delete(o.h);
        wheel.clear(holders[o.h] as DeadlineHolder);
      } else step(clock.now() + o.by);
    }
    step(clock.now() + 5000);
    expect(fired.map(([i, t]) => `${i}@${t}`).sort()).toEqual(expected.map(([i, t]) => `${i}@${t}`).sort());
    expect(wheel.size).toBe(0);
    // past every deadline set, the timer is not left armed
    expect(timers.armed).toBe(0);
  });
});
