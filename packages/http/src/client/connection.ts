import type { IncomingHttpHeaders } from 'node:http';
import { type Duplex, Readable } from 'node:stream';
import type { Timer } from '@stepwire/wire';
import type { Field, RequestHead, ResponseHead } from '../h1/codec.ts';
import {
  type ClientTimeoutKind,
  Http1Connection,
  type Http1Event,
  type Http1Limits,
  type Http1Timeouts,
} from '../h1/connection.ts';
import { headersObject } from '../h1/messages.ts';

/**
 * A response as node:http's client sees it (IncomingMessage): a Readable of the body with
 * statusCode, headers, rawHeaders and, at the end, trailers.
 */
export class ClientResponse extends Readable {
  statusCode: number;
  statusMessage: string;
  httpVersion: string;
  httpVersionMajor: number;
  httpVersionMinor: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  trailers: Record<string, string | undefined> = {};
  rawTrailers: string[] = [];
  /** The whole body arrived. */
  complete = false;
  readonly socket: Duplex;
  /** Called when the reader wants more after a push said stop. */
  onRead: (() => void) | undefined;

  constructor(socket: Duplex, head: ResponseHead) {
    super();
    this.socket = socket;
    this.statusCode = head.status;
    this.statusMessage = head.reason;
    this.httpVersionMajor = head.version.major;
    this.httpVersionMinor = head.version.minor;
    this.httpVersion = `${head.version.major}.${head.version.minor}`;
    this.headers = headersObject(head.fields);
    this.rawHeaders = head.fields.flat();
  }

  get headersDistinct(): Record<string, string[]> {
    const out: Record<string, string[]> = Object.create(null);
    for (let i = 0; i + 1 < this.rawHeaders.length; i += 2) {
      const n = (this.rawHeaders[i] ?? '').toLowerCase();
      (out[n] ??= []).push(this.rawHeaders[i + 1] ?? '');
    }
    return out;
  }

  override _read(): void {
    this.onRead?.();
  }

  private pendingError: Error | undefined;

  /**
   * The body was cut short: hand the reader every byte that did arrive, then the error
   * (destroying at once would drop what is still buffered here).
   */
  failAfterDrain(err: Error): void {
    this.emit('aborted');
    if (this.readableLength === 0) this.destroy(err);
    else this.pendingError = err;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // As node:http: an error reaches 'error' only when someone listens for it (a reader that
    // comes later sees a premature close instead of crashing the process).
    cb(err && this.listenerCount('error') > 0 ? err : null);
  }

  override read(n?: number): unknown {
    const chunk = super.read(n);
    const err = this.pendingError;
    if (err && this.readableLength === 0) {
      this.pendingError = undefined;
      queueMicrotask(() => this.destroy(err));
    }
    return chunk;
  }

  /** @internal */
  setTrailers(fields: readonly Field[]): void {
    this.rawTrailers = fields.flat();
    this.trailers = headersObject(fields) as Record<string, string | undefined>;
  }
}

/** What one request/response exchange hears from its connection. */
export interface ExchangeHandlers {
  onInformational(head: ResponseHead): void;
  onResponse(head: ResponseHead): void;
  onData(data: Uint8Array): boolean;
  onEnd(trailers: readonly Field[]): void;
  /** The server accepted an Upgrade (101) or CONNECT (2xx): the socket is the caller's now. */
  onUpgrade(head: ResponseHead, rest: Uint8Array): void;
  onError(err: Error): void;
  /** The response head, or the next body bytes, are late (the exchange's own timeouts). */
  onTimeout?(kind: 'response' | 'body'): void;
}

/** The client's deadlines that an exchange or a pool sets (ms; 0 is off). */
export type ClientTimeouts = Pick<Http1Timeouts, 'responseTimeout' | 'bodyTimeout' | 'keepAliveTimeout'>;

export interface ClientConnectionOptions {
  /**
   * Arms the one timer this connection keeps for the core's next deadline (absolute time
   * on the `now` clock). Without it no deadline is watched.
   */
  setTimer?: (at: number, fn: () => void) => Timer;
  /**
   * Deadlines of the connection (an exchange may set its own response and body timeouts).
   * keepAliveTimeout closes the connection when it stays idle that long between exchanges;
   * default 0 here, as the pool (Agent) closes its idle connections itself.
   */
  timeouts?: Partial<ClientTimeouts>;
}

let nextId = 1;

/**
 * One HTTP/1.1 client connection: the sans-I/O Http1Connection (client role) driven over a
 * Duplex. One exchange at a time (no pipelining, as node:http and browsers); when both the
 * request and the response are done and the connection may persist, `onReusable` hands it
 * back to the pool.
 */
export class ClientConnection {
  readonly id = nextId++;
  readonly core: Http1Connection;
  private exchange: ExchangeHandlers | undefined;
  private responseDone = false;
  private responseStarted = false;
  private requestDone = false;
  /** The transport is gone (closed, errored, or handed to an upgrade). */
  dead = false;
  requests = 0;
  onReusable: (() => void) | undefined;
  onDead: (() => void) | undefined;
  /** Deadlines that fired on this connection, by kind. */
  readonly timeoutCounts: Record<ClientTimeoutKind, number> = { response: 0, body: 0, 'keep-alive': 0 };
  private setTimerFn: ((at: number, fn: () => void) => Timer) | undefined;
  /** The connection's own deadlines; an exchange's replace response/body while it runs. */
  private readonly defaults: ClientTimeouts;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private paused = false;

  constructor(
    readonly socket: Duplex,
    readonly now: () => number = () => 0,
    limits: Partial<Http1Limits> = {},
    options: ClientConnectionOptions = {},
  ) {
    this.defaults = { responseTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 0, ...options.timeouts };
    this.setTimerFn = options.setTimer;
    // Response heads, field lines and (if set) bodies are bounded: a server cannot grow our buffers without end.
    this.core = new Http1Connection({ role: 'client', limits, timeouts: this.defaults, now: now() });
    socket.on('data', (b: Buffer) => {
      this.dispatch(this.core.receive(b, this.now()));
      this.arm();
    });
    socket.on('end', () => {
      this.dispatch(this.core.receiveEof(this.now()));
      this.kill(new Error('socket hang up'), 'ECONNRESET');
    });
    socket.on('error', (e) => this.kill(e));
    socket.on('close', () => this.kill(new Error('socket hang up'), 'ECONNRESET'));
  }

  get busy(): boolean {
    return this.exchange !== undefined;
  }

  /** Watch deadlines on this clock from now on (a connection made without one). */
  useTimers(setTimer: (at: number, fn: () => void) => Timer): void {
    this.setTimerFn ??= setTimer;
    this.arm();
  }

  /**
   * Start an exchange: write the head; body writes follow through writeData/writeEnd.
   * `timeouts` are this exchange's response and body deadlines (node:http's `timeout`).
   */
  begin(
    head: RequestHead,
    handlers: ExchangeHandlers,
    timeouts: Partial<Pick<ClientTimeouts, 'responseTimeout' | 'bodyTimeout'>> = {},
  ): void {
    if (this.exchange) throw new Error('connection busy');
    this.exchange = handlers;
    this.requests++;
    this.responseDone = false;
    this.responseStarted = false;
    this.requestDone = false;
    this.setExchangeTimeouts(timeouts);
    this.write(this.core.send({ type: 'request', head }, this.now()));
    this.arm();
  }

  /** The running exchange's response and body timeouts (req.setTimeout after the start). */
  setExchangeTimeouts(t: Partial<Pick<ClientTimeouts, 'responseTimeout' | 'bodyTimeout'>>): void {
    const core = this.core.timeouts;
    core.responseTimeout = t.responseTimeout ?? this.defaults.responseTimeout;
    core.bodyTimeout = t.bodyTimeout ?? this.defaults.bodyTimeout;
    this.rearm();
  }

  writeData(data: Uint8Array, cb: (err?: Error | null) => void): void {
    if (this.dead) {
      cb(new Error('socket closed'));
      return;
    }
    const bytes = this.core.send({ type: 'data', data }, this.now());
    if (bytes.length === 0) cb();
    else this.socket.write(bytes, cb);
  }

  writeEnd(trailers: readonly Field[], cb: (err?: Error | null) => void): void {
    if (this.dead) {
      cb(new Error('socket closed'));
      return;
    }
    const bytes = this.core.send({ type: 'end', trailers }, this.now());
    this.requestDone = true;
    if (bytes.length > 0) this.socket.write(bytes, cb);
    else cb();
    this.maybeFinish();
    // the request is out: the response deadline starts
    this.arm();
  }

  private write(bytes: Uint8Array): void {
    if (bytes.length > 0 && !this.dead) this.socket.write(bytes);
  }

  /**
   * Stop reading while the response's reader is full; resume when it asks for more. The
   * silence while we do not read is ours, not the server's: no body deadline runs then.
   */
  pause(): void {
    this.paused = true;
    this.socket.pause();
    this.rearm();
  }
  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.core.resumeReading(this.now());
    }
    this.socket.resume();
    this.arm();
  }

  private dispatch(events: Http1Event[]): void {
    for (const e of events) {
      const x = this.exchange;
      switch (e.type) {
        case 'informational':
          x?.onInformational(e.head);
          break;
        case 'response':
          this.responseStarted = true;
          x?.onResponse(e.head);
          break;
        case 'data':
          if (x && !x.onData(e.data)) this.pause();
          break;
        case 'trailers':
          break;
        case 'end': {
          this.responseDone = true;
          x?.onEnd(this.pendingTrailers);
          this.pendingTrailers = [];
          this.maybeFinish();
          break;
        }
        case 'upgrade':
          this.dead = true;
          this.exchange = undefined;
          this.disarm();
          this.detachListeners();
          // The socket is the caller's now: its pool slot is free.
          this.onDead?.();
          x?.onUpgrade(e.head, e.rest);
          break;
        case 'error':
          if (e.error.kind === 'truncated') {
            // The peer closed mid-message: node:http calls this a hang-up (ECONNRESET).
            this.kill(
              Object.assign(
                new Error(this.responseStarted ? 'aborted' : 'socket hang up', { cause: e.error }),
                {
                  code: 'ECONNRESET',
                },
              ),
            );
          } else this.kill(e.error);
          break;
        case 'timeout':
          this.onTimeout(e.kind as ClientTimeoutKind);
          break;
        case 'closed':
          break;
      }
      if (e.type === 'trailers') this.pendingTrailers = e.fields;
    }
  }

  private pendingTrailers: readonly Field[] = [];

  private onTimeout(kind: ClientTimeoutKind): void {
    this.timeoutCounts[kind]++;
    if (kind === 'keep-alive') {
      // RFC 9112 §9.3: idle too long between exchanges; the pool no longer offers it.
      if (!this.exchange) this.close();
      return;
    }
    this.exchange?.onTimeout?.(kind);
  }

  /**
   * Keep one timer at or before the core's next deadline (a later deadline keeps the armed
   * timer, which re-arms when it fires early): one timer per connection, never one per read.
   */
  private arm(): void {
    const set = this.setTimerFn;
    if (this.dead || !set) return;
    const at = this.paused && this.core.theirState === 'SEND_BODY' ? undefined : this.core.nextTimeout();
    if (this.timer && (at === undefined || (this.timerAt !== undefined && this.timerAt <= at))) return;
    if (!this.timer && at === undefined) return;
    this.disarm();
    if (at === undefined) return;
    this.timerAt = at;
    this.timer = set(at, () => {
      this.timer = undefined;
      this.timerAt = undefined;
      if (this.dead) return;
      if (!(this.paused && this.core.theirState === 'SEND_BODY'))
        this.dispatch(this.core.onTimeout(this.now()));
      this.arm();
    });
  }

  /** The deadline may have moved earlier (new timeouts) or gone: start over. */
  private rearm(): void {
    this.disarm();
    this.arm();
  }

  private disarm(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = undefined;
  }

  private maybeFinish(): void {
    if (!this.exchange || !this.responseDone || !this.requestDone) return;
    this.exchange = undefined;
    // back to the connection's own deadlines for the idle time and the next exchange
    this.core.timeouts.responseTimeout = this.defaults.responseTimeout;
    this.core.timeouts.bodyTimeout = this.defaults.bodyTimeout;
    // RFC 9112 §9.3: the connection persists unless either side said close.
    if (this.core.ourState === 'IDLE' && this.core.theirState === 'IDLE' && !this.dead) {
      this.onReusable?.();
    } else {
      this.close();
    }
  }

  private detachListeners(): void {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('error');
  }

  /** Close the transport (idle timeout, pool shutdown, no keep-alive). */
  close(): void {
    if (this.dead) return;
    this.socket.end();
    this.socket.destroy();
    this.kill(new Error('connection closed'));
  }

  private kill(err: Error & { code?: string }, code?: string): void {
    if (this.dead) return;
    this.dead = true;
    this.disarm();
    const x = this.exchange;
    this.exchange = undefined;
    if (!this.socket.destroyed) this.socket.destroy();
    if (x && !this.responseDone) {
      if (code && !err.code) err.code = code;
      x.onError(err);
    }
    this.onDead?.();
  }
}
