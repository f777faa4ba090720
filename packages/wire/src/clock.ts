/**
 * Time for drivers. Protocol cores never read a clock: they take `now` (milliseconds)
 * as input and report their next deadline. Drivers own a Clock and wake cores on time.
 *
 * With a VirtualClock nothing happens until the driver advances time, so a whole
 * exchange is deterministic and a debugger can sit on a breakpoint without timers firing.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the clock's epoch (fractional allowed). */
  now(): number;
  /** Run fn at (or after) absolute time `at`. */
  setTimer(at: number, fn: () => void): Timer;
}

export class RealClock implements Clock {
  private readonly origin = performance.now();
  now(): number {
    return performance.now() - this.origin;
  }
  setTimer(at: number, fn: () => void): Timer {
    const h = setTimeout(fn, Math.max(0, at - this.now()));
    // Timers of the stack never keep the process alive on their own.
    h.unref?.();
    return { cancel: () => clearTimeout(h) };
  }
}

/**
 * A timer of a VirtualClock: its own Timer, so arming one makes one object and no closure
 * (a MemoryLink arms one per delivery run, a TCP driver one per deadline).
 */
class Pending implements Timer {
  cancelled = false;
  /** Taken out of the heap to fire. */
  fired = false;

  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
    private readonly clock: VirtualClock,
  ) {}

  cancel(): void {
    if (this.cancelled || this.fired) return;
    this.cancelled = true;
    this.clock.noteCancelled();
  }
}

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: Pending[] = [];
  /** Cancelled timers still in the heap (removed lazily when they reach the top). */
  private cancelledInHeap = 0;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(at: number, fn: () => void): Timer {
    const p = new Pending(Math.max(at, this.t), this.seq++, fn, this);
    this.push(p);
    return p;
  }

  /**
   * @internal A timer of this clock was cancelled. Lazy removal alone lets cancelled timers
   * pile up when time hardly moves (a zero-delay link under load re-arms an idle timer per
   * request, as node:http does): once they are half the heap, rebuild it without them, so
   * memory stays proportional to live timers.
   */
  noteCancelled(): void {
    this.cancelledInHeap++;
    if (this.cancelledInHeap > 64 && this.cancelledInHeap * 2 > this.heap.length) {
      const live = this.heap.filter((p) => !p.cancelled);
      this.heap = [];
      this.cancelledInHeap = 0;
      for (const p of live) this.push(p);
    }
  }

  /** Time of the earliest pending timer, or undefined when none is armed. */
  nextTimerAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  /** Entries held, cancelled ones not yet removed included (bounded at twice `pending` + 64). */
  get queued(): number {
    return this.heap.length;
  }

  get pending(): number {
    let n = 0;
    for (const p of this.heap) if (!p.cancelled) n++;
    return n;
  }

  /** Fire every timer due at or before `target`, in time order, then set now = target. */
  advanceTo(target: number): void {
    for (;;) {
      this.dropCancelled();
      const top = this.heap[0];
      if (!top || top.at > target) break;
      this.pop();
      top.fired = true;
      this.t = Math.max(this.t, top.at);
      top.fn();
    }
    this.t = Math.max(this.t, target);
  }

  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }

  /**
   * Fire timers one after another until none is left, time passes `until`, or `maxSteps`
   * timers have fired (a guard against self-rearming timers). Returns the steps taken.
   */
  runUntilIdle(until = Number.POSITIVE_INFINITY, maxSteps = 10_000_000): number {
    let steps = 0;
    for (; steps < maxSteps; steps++) {
      const at = this.nextTimerAt();
      if (at === undefined || at > until) break;
      this.advanceTo(at);
    }
    return steps;
  }

  /** Advance until `done()` holds, firing timers in order; throws past `limit` ms. */
  runUntil(done: () => boolean, limit = 600_000): void {
    const deadline = this.t + limit;
    while (!done()) {
      const at = this.nextTimerAt();
      if (at === undefined || at > deadline) {
        throw new Error(`VirtualClock.runUntil: condition not met by t=${this.t} (next timer ${at})`);
      }
      this.advanceTo(at);
    }
  }

  private dropCancelled(): void {
    while (this.heap[0]?.cancelled) {
      this.pop();
      this.cancelledInHeap--;
    }
  }

  private less(a: Pending, b: Pending): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(p: Pending): void {
    const h = this.heap;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): Pending | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
