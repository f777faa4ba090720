import { describe, expect, it } from 'vitest';
import { TimerGroup, VirtualClock } from '../src/index.ts';

describe('TimerGroup', () => {
  it('counts a timer as armed until it fires or is cancelled, once', () => {
    const clock = new VirtualClock();
    const g = new TimerGroup(clock);
    let fired = 0;
    const a = g.setTimer(10, () => fired++);
    const b = g.setTimer(20, () => fired++);
    expect(g.armed).toBe(2);
    a.cancel();
    a.cancel();
    expect(g.armed).toBe(1);
    clock.advanceTo(15);
    expect(fired).toBe(0);
    clock.advanceTo(20);
    expect(fired).toBe(1);
    expect(g.armed).toBe(0);
    b.cancel();
    expect(g.armed).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('a VirtualClock does not hoard cancelled timers while time stands still', () => {
    const clock = new VirtualClock();
    const g = new TimerGroup(clock);
    let t = g.setTimer(5_000, () => {});
    for (let i = 0; i < 100_000; i++) {
      t.cancel();
      t = g.setTimer(5_000, () => {});
    }
    expect(g.armed).toBe(1);
    expect(clock.pending).toBe(1);
    expect(clock.queued).toBeLessThanOrEqual(2 + 64 * 2);
    let fired = 0;
    t.cancel();
    g.setTimer(10, () => fired++);
    clock.advanceTo(10_000);
    expect(fired).toBe(1);
    expect(clock.queued).toBe(0);
  });
});
