import { type Clock, RealClock, type Timer, TimerGroup } from '@stepwire/wire';
import { fetch as ourFetch } from '../client/fetch.ts';
import { EventStreamParser, type EventStreamParserOptions, type StreamItem } from './stream.ts';

/** The fetch this client needs: WHATWG-shaped, so global fetch (undici), ours, or a test double fit. */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal; method?: string },
) => Promise<Response>;

export interface EventSourceOptions extends EventStreamParserOptions {
  /** The HTTP client; default our fetch (packages/http/src/client) over the global agent. */
  fetch?: FetchLike;
  headers?: Record<string, string>;
  /** Initial reconnection time (ms) until the server sends `retry:` (§9.2.2: "a user-agent-defined value"). Default 3000. */
  reconnectionTime?: number;
  /** Cap of the exponential backoff after repeated failures. Default 60 s. */
  maxReconnectionTime?: number;
  /**
   * Treat the connection as lost when nothing (event or comment heartbeat) arrives for this
   * long (ms); 0 or undefined disables. Servers send comments as heartbeats for exactly this.
   */
  heartbeatTimeout?: number;
  /** A Last-Event-ID to resume from on the first connection. */
  lastEventId?: string;
  clock?: Clock;
}

export interface EventSourceStats {
  connections: number;
  reconnections: number;
  events: number;
  comments: number;
  timersArmed: number;
}

/**
 * An EventSource (WHATWG HTML §9.2.2) over any fetch: readyState, onopen / onmessage /
 * onerror and addEventListener per event type, MessageEvent with data and lastEventId.
 * On a dropped connection it reconnects after the reconnection time, sending Last-Event-ID
 * (§9.2.4), with exponential backoff while attempts keep failing. A response that is not
 * 200 text/event-stream fails the connection for good (§9.2.3).
 */
export class EventSource extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSED = 2;

  readonly url: string;
  readonly withCredentials = false;
  readyState: 0 | 1 | 2 = 0;
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  /** §9.2.2: the reconnection time, changed by `retry:` fields. */
  reconnectionTime: number;
  /** The last event ID string (§9.2.4), sent back as Last-Event-ID on reconnect. */
  lastEventId: string;

  private readonly fetcher: FetchLike;
  private readonly options: EventSourceOptions;
  private readonly timers: TimerGroup;
  private controller: AbortController | undefined;
  private reconnectTimer: Timer | undefined;
  private heartbeatTimer: Timer | undefined;
  private failures = 0;
  private readonly counters = { connections: 0, reconnections: 0, events: 0, comments: 0 };

  constructor(url: string | URL, options: EventSourceOptions = {}) {
    super();
    this.url = new URL(url).href;
    this.options = options;
    this.fetcher = options.fetch ?? (ourFetch as FetchLike);
    this.timers = new TimerGroup(options.clock ?? new RealClock());
    this.reconnectionTime = options.reconnectionTime ?? 3000;
    this.lastEventId = options.lastEventId ?? '';
    void this.connect();
  }

  get stats(): EventSourceStats {
    return { ...this.counters, timersArmed: this.timers.armed };
  }

  /** A method, not a field read, so TypeScript does not narrow it away across awaits and callbacks. */
  private isClosed(): boolean {
    return this.readyState === 2;
  }

  close(): void {
    this.readyState = 2;
    this.controller?.abort();
    this.reconnectTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.reconnectTimer = undefined;
    this.heartbeatTimer = undefined;
  }

  private fire(e: Event): void {
    if (e.type === 'open') this.onopen?.(e);
    else if (e.type === 'error') this.onerror?.(e);
    else if (e.type === 'message') this.onmessage?.(e as MessageEvent);
    this.dispatchEvent(e);
  }

  private async connect(): Promise<void> {
    if (this.readyState === 2) return;
    const controller = new AbortController();
    this.controller = controller;
    this.counters.connections++;
    const headers: Record<string, string> = {
      ...(this.options.headers ?? {}),
      Accept: 'text/event-stream',
      'Cache-Control': 'no-store',
    };
    // §9.2.4: "If the EventSource object's last event ID string is not the empty string, set `Last-Event-ID`".
    if (this.lastEventId !== '') headers['Last-Event-ID'] = this.lastEventId;
    let res: Response;
    try {
      this.armHeartbeat(controller);
      res = await this.fetcher(this.url, { headers, signal: controller.signal });
    } catch {
      this.reestablish(controller);
      return;
    }
    if (controller.signal.aborted && this.isClosed()) return;
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    // §9.2.3: anything but 200 with text/event-stream "fails the connection" (no reconnect).
    if (res.status !== 200 || type !== 'text/event-stream' || !res.body) {
      void res.body?.cancel().catch(() => {});
      this.failConnection();
      return;
    }
    // §9.2.3 "announce the connection".
    this.readyState = 1;
    this.failures = 0;
    this.fire(new Event('open'));
    const parser = new EventStreamParser(this.options);
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.armHeartbeat(controller);
        for (const item of parser.push(value)) this.onItem(item);
        if (this.isClosed()) {
          await reader.cancel().catch(() => {});
          return;
        }
      }
    } catch {
      // A network error mid-stream: reestablish below.
    }
    parser.end();
    this.reestablish(controller);
  }

  private onItem(item: StreamItem): void {
    switch (item.type) {
      case 'comment':
        this.counters.comments++;
        return;
      case 'retry':
        this.reconnectionTime = item.ms;
        return;
      case 'event': {
        this.lastEventId = item.event.lastEventId;
        this.counters.events++;
        // §9.2.6: a MessageEvent of the event's type, with data, origin and lastEventId.
        this.fire(
          new MessageEvent(item.event.type, {
            data: item.event.data,
            origin: new URL(this.url).origin,
            lastEventId: item.event.lastEventId,
          }),
        );
      }
    }
  }

  private armHeartbeat(controller: AbortController): void {
    const ms = this.options.heartbeatTimeout;
    if (!ms) return;
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.timers.setTimer(this.timers.now() + ms, () => {
      this.heartbeatTimer = undefined;
      controller.abort();
    });
  }

  /** §9.2.3 "reestablish the connection": CONNECTING, error event, wait, try again. */
  private reestablish(controller: AbortController): void {
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = undefined;
    if (this.readyState === 2 || controller !== this.controller) return;
    controller.abort();
    this.readyState = 0;
    this.fire(new Event('error'));
    if (this.readyState !== 0) return;
    // Exponential backoff (§9.2.3 allows "some additional delay"): reconnection time × 2^(failures), capped.
    const delay = Math.min(
      this.reconnectionTime * 2 ** this.failures,
      this.options.maxReconnectionTime ?? 60_000,
    );
    this.failures++;
    this.reconnectTimer = this.timers.setTimer(this.timers.now() + delay, () => {
      this.reconnectTimer = undefined;
      this.counters.reconnections++;
      void this.connect();
    });
  }

  /** §9.2.3 "fail the connection": CLOSED and an error event; no reconnect. */
  private failConnection(): void {
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = undefined;
    this.readyState = 2;
    this.fire(new Event('error'));
  }
}
