import type { Clock, Timer } from './clock.ts';

/**
 * One layer's view of a clock that knows how many of its timers are armed. Each stack
 * object (a TCP driver, a UDP socket table, an HTTP server) keeps its own group and shows
 * `armed` in its stats: a timer leak then shows as a number that grows under load and
 * does not come back to its idle value.
 */
export class TimerGroup implements Clock {
  private count = 0;

  constructor(readonly clock: Clock) {}

  /** Timers set through this group that have neither fired nor been cancelled. */
  get armed(): number {
    return this.count;
  }

  now(): number {
    return this.clock.now();
  }

  setTimer(at: number, fn: () => void): Timer {
    let live = true;
    this.count++;
    const settle = (): boolean => {
      if (!live) return false;
      live = false;
      this.count--;
      return true;
    };
    const inner = this.clock.setTimer(at, () => {
      if (settle()) fn();
    });
    return {
      cancel: () => {
        if (settle()) inner.cancel();
      },
    };
  }
}
