import type { Clock, Timer } from '@stepwire/wire';

/**
 * The stack's timers on a RealClock are unref'd (a stray retransmission timer must never
 * keep a program from exiting), so a script that awaits an exchange on our sockets and
 * nothing else would see Node exit at once with code 13 ("unsettled top-level await").
 *
 * KeepAlive holds one ref'd handle while the network is busy, like an open node:net socket
 * or a listening server holds the process, and lets go once nothing is pending. It is taken
 * when the stack arms a timer or opens a listener/socket (`poke`), and checked every
 * `pollMs` while held; the check is cheap (counts and table sizes).
 */
export class KeepAlive {
  private handle: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly busy: () => boolean,
    private readonly pollMs = 20,
  ) {}

  /** Something may have become pending: hold the process if it has. */
  poke(): void {
    if (this.handle || this.closed) return;
    this.handle = setInterval(() => this.check(), this.pollMs);
  }

  /** Whether the process is being held right now. */
  get held(): boolean {
    return this.handle !== undefined;
  }

  private check(): void {
    if (!this.busy()) this.release();
  }

  release(): void {
    if (this.handle) clearInterval(this.handle);
    this.handle = undefined;
  }

  close(): void {
    this.closed = true;
    this.release();
  }
}

/** A clock that tells `onArm` after each timer it sets (for KeepAlive.poke). */
export class WatchedClock implements Clock {
  constructor(
    private readonly inner: Clock,
    private readonly onArm: () => void,
  ) {}
  now(): number {
    return this.inner.now();
  }
  setTimer(at: number, fn: () => void): Timer {
    const t = this.inner.setTimer(at, fn);
    this.onArm();
    return t;
  }
}
