/**
 * A bounded hand-off between an HTTP/2 stream's 'data' events and an async iterator: the
 * stream is paused while `highWaterMark` messages wait, so a peer that sends faster than
 * the application reads is held back by HTTP/2 flow control, not by memory.
 */
export class MessageQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private error: unknown;
  private waiter: (() => void) | undefined;

  constructor(
    private readonly onFull: () => void,
    private readonly onRoom: () => void,
    readonly highWaterMark = 16,
  ) {}

  push(item: T): void {
    if (this.done) return;
    this.items.push(item);
    if (this.items.length >= this.highWaterMark) this.onFull();
    this.wake();
  }

  /** No more items; with an error, the iterator throws it after the queued items. */
  end(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        if (this.items.length === this.highWaterMark - 1) this.onRoom();
        yield item;
        continue;
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((r) => {
        this.waiter = r;
      });
    }
  }
}
