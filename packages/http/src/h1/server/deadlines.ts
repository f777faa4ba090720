import type { Timer, TimerGroup } from '@stepwire/wire';

/**
 * The server's connection deadlines (headers, request and keep-alive timeouts, RFC 9112
 * §9.5; the linger after a close, §9.6) under one timer, as node:http checks its
 * connections from one interval instead of a timer each. Unlike a coarse interval, the one
 * timer is armed at the earliest deadline, so each still fires at its exact time (the
 * slowloris tests on a virtual clock hold to the millisecond).
 *
 * Why: a timer per connection cost, under `wrk -H 'Connection: close'`, a setTimeout with a
 * duration of its own (Node keeps a timer list per distinct duration, so each one made a
 * list and a priority-queue entry) plus the TimerGroup's closures — ~1.2 KB allocated per
 * connection, most of the young-generation garbage that sets our accept path behind
 * node:http's. Here a deadline is a number on its holder: moving it later (every request
 * on a busy keep-alive connection) costs nothing; the timer is only re-armed for a deadline
 * earlier than the one it waits for, and when it fires early (the holder of that deadline
 * moved on or closed) it scans the holders once and re-arms at the earliest left.
 */

/** A connection that may hold a deadline. Both fields belong to the wheel: only it writes them. */
export interface DeadlineHolder {
  /** When its deadline comes; +Infinity while it holds none. */
  deadlineAt: number;
  /** Where the wheel keeps it (-1: it holds no deadline). */
  deadlineSlot: number;
  /** The deadline came (the holder no longer holds one; it may set a new one). */
  onDeadline(now: number): void;
}

export class DeadlineWheel {
  /**
   * The holders, each knowing its slot: added at the end, removed by moving the last into
   * its slot. (A Set rebuilt its hash table as connections came and went: ~1.4 KB of
   * garbage per connection under load.)
   */
  private readonly held: DeadlineHolder[] = [];
  private timer: Timer | undefined;
  /** When the armed timer fires; +Infinity when none is armed. */
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly fire: () => void;
  /** Holders due at one firing (reused: no array per firing). */
  private readonly due: DeadlineHolder[] = [];

  constructor(private readonly timers: TimerGroup) {
    this.fire = () => this.expire();
  }

  /** Deadlines held now (one per connection with a deadline): a leak shows as growth. */
  get size(): number {
    return this.held.length;
  }

  /** Timers the wheel has armed now: 0 or 1 (armed while a deadline is held, and at most until that time after). */
  get armedTimers(): number {
    return this.timer === undefined ? 0 : 1;
  }

  /** Set (or move) `h`'s deadline to `at`. */
  set(h: DeadlineHolder, at: number): void {
    if (h.deadlineSlot < 0) {
      h.deadlineSlot = this.held.length;
      this.held.push(h);
    }
    h.deadlineAt = at;
    if (at < this.timerAt) this.arm(at);
  }

  /** `h` holds no deadline any more. */
  clear(h: DeadlineHolder): void {
    if (h.deadlineSlot >= 0) this.remove(h);
    // The timer stays armed even when no deadline is left: it fires once, finds nothing and
    // is not re-armed. Cancelling it here made a timer per connection again whenever the
    // server went idle between connections (wrk -c1, a quiet server).
  }

  private remove(h: DeadlineHolder): void {
    const held = this.held;
    const slot = h.deadlineSlot;
    const last = held.pop() as DeadlineHolder;
    if (last !== h) {
      held[slot] = last;
      last.deadlineSlot = slot;
    }
    h.deadlineSlot = -1;
    h.deadlineAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.timers.setTimer(at, this.fire);
  }

  private expire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.timers.now();
    const due = this.due;
    const held = this.held;
    for (let i = 0; i < held.length; i++) {
      const h = held[i] as DeadlineHolder;
      if (h.deadlineAt <= now) due.push(h);
    }
    for (let i = 0; i < due.length; i++) {
      const h = due[i] as DeadlineHolder;
      // an earlier holder's handler may have cleared or moved this one's deadline
      if (h.deadlineSlot < 0 || h.deadlineAt > now) continue;
      this.remove(h);
      h.onDeadline(now);
    }
    due.length = 0;
    // a handler may have armed the timer for a new, earlier deadline already
    let next = Number.POSITIVE_INFINITY;
    for (let i = 0; i < held.length; i++) {
      const at = (held[i] as DeadlineHolder).deadlineAt;
      if (at < next) next = at;
    }
    if (next < this.timerAt) this.arm(next);
  }
}
