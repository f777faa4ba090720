import type { Writable } from 'node:stream';
import { type Clock, RealClock, type Timer, TimerGroup } from '@stepwire/wire';
import { encodeComment, encodeEvent, type ServerSentEvent } from './stream.ts';

/** What the writer needs of a response: node:http's ServerResponse fits, so does ours. */
export type SseResponse = Writable & {
  writeHead?: (status: number, headers: Record<string, string>) => unknown;
  flushHeaders?: () => void;
};

export interface SseWriterOptions {
  /** Send a comment line this often (ms) so idle proxies and clients keep the stream. 0 disables. Default 15 s. */
  heartbeat?: number;
  /** Ask clients to wait this long before reconnecting (`retry:`, sent first). */
  retry?: number;
  clock?: Clock;
}

/** The request's Last-Event-ID (HTML §9.2.4), for resuming a stream; '' when absent. */
export function lastEventIdOf(req: { headers: Record<string, string | string[] | undefined> }): string {
  const v = req.headers['last-event-id'];
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

/**
 * A `text/event-stream` response: headers, events, heartbeat comments, end. Writes go
 * straight to the response; `send` returns the stream's backpressure answer.
 */
export class SseWriter {
  private readonly timers: TimerGroup;
  private heartbeatTimer: Timer | undefined;
  private closed = false;
  eventsSent = 0;

  constructor(
    readonly res: SseResponse,
    readonly options: SseWriterOptions = {},
  ) {
    this.timers = new TimerGroup(options.clock ?? new RealClock());
    res.writeHead?.(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      // No cache may hold a live stream back (HTML §9.2.8 notes on proxies).
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders?.();
    if (options.retry !== undefined) res.write(`retry: ${options.retry}\n\n`);
    res.once('close', () => this.stop());
    this.armHeartbeat();
  }

  get timersArmed(): number {
    return this.timers.armed;
  }

  send(e: ServerSentEvent): boolean {
    if (this.closed) return false;
    this.eventsSent++;
    this.armHeartbeat();
    return this.res.write(encodeEvent(e));
  }

  comment(text = ''): boolean {
    if (this.closed) return false;
    return this.res.write(encodeComment(text));
  }

  end(): void {
    if (this.closed) return;
    this.stop();
    this.res.end();
  }

  private stop(): void {
    this.closed = true;
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = undefined;
  }

  private armHeartbeat(): void {
    const ms = this.options.heartbeat ?? 15_000;
    if (!ms || this.closed) return;
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.timers.setTimer(this.timers.now() + ms, () => {
      this.heartbeatTimer = undefined;
      this.comment();
      this.armHeartbeat();
    });
  }
}
