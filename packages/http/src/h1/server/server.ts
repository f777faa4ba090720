import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { SecureServer } from '@stepwire/tls';
import {
  type Clock,
  type Counter,
  Counters,
  RealClock,
  TimerGroup,
  type TraceBus,
  type TraceDirection,
} from '@stepwire/wire';
import type { IncomingHeaders } from '../../h2/message.ts';
import type { Http2Server, Http2Stream } from '../../h2/session.ts';
import type { HttpErrorKind } from '../codec.ts';
import {
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUTS,
  type Http1Limits,
  type Http1Timeouts,
  type ServerTimeoutKind,
} from '../connection.ts';
import type { IncomingMessage, ServerResponse } from '../messages.ts';
import { H1ServerConnection } from './connection.ts';
import { DeadlineWheel } from './deadlines.ts';
import { acceptHttp2 } from './h2.ts';

/**
 * An HTTP/1.1 server shaped like node:http's: `createServer((req, res) => …)`, fed byte
 * streams from any source — `server.emit('connection', duplex)` / `handle(duplex)`, or
 * `listen(source)` on our TcpServer, our TLS server, a node:net or node:tls server — or
 * `listen(port, host)` on a node:net server of its own.
 *
 * Each connection is an Http1Connection (the sans-I/O core) driven here: socket bytes in,
 * events out to IncomingMessage/ServerResponse, response bytes out, and the core's
 * deadlines held by one DeadlineWheel (one timer, through a TimerGroup) so `stats()` shows them.
 */

export interface HttpServerOptions {
  limits?: Partial<Http1Limits>;
  /** headersTimeout, requestTimeout, keepAliveTimeout (ms; 0 turns one off). Node's defaults. */
  timeouts?: Partial<Http1Timeouts>;
  /**
   * Answer HTTP/2 too (default true): by ALPN 'h2' on TLS sockets, by the connection preface
   * on cleartext ones (h2c with prior knowledge), with the same request handler.
   */
  http2?: boolean;
  /**
   * Offered each h2 stream before it becomes a (req, res); return true to keep it (for
   * example gRPC's `isGrpcRequest` + `handleStream`, so one port serves web routes and RPC).
   */
  onHttp2Stream?: (stream: Http2Stream, headers: IncomingHeaders) => boolean;
  /** TCP_NODELAY on every connection, as node:http's default; false leaves Nagle on. */
  noDelay?: boolean;
  /** Close a connection after this many requests (0: no limit), as Node's maxRequestsPerSocket. */
  maxRequestsPerSocket?: number;
  /** Pipelined bytes buffered before the socket is paused. */
  maxPipelineBuffer?: number;
  clock?: Clock;
  trace?: TraceBus;
  /** Host name in trace events. */
  hostName?: string;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Anything that announces incoming byte streams. */
export interface HttpConnectionSource {
  on(event: string, listener: (socket: Duplex) => void): unknown;
  off?(event: string, listener: (socket: Duplex) => void): unknown;
  removeListener?(event: string, listener: (socket: Duplex) => void): unknown;
}

export interface HttpServerStats {
  /** Connections open now. */
  connections: number;
  /**
   * Deadlines armed now (one per connection with a deadline; they share one timer, see
   * deadlines.ts), plus any other timer of the server.
   */
  armedTimers: number;
  /** Bytes received and not yet parsed, plus bytes queued on the sockets. */
  bufferedBytes: number;
  accepted: number;
  requests: number;
  responses: number;
  upgrades: number;
  /** Parse errors by kind (te-and-cl, header-too-large, ...). */
  parseErrors: Record<string, number>;
  timeouts: Record<ServerTimeoutKind, number>;
  counters: Record<string, number>;
}

/** An error handed to 'clientError', in node:http's shape (code, bytesParsed, rawPacket). */
export interface HttpClientError extends Error {
  code: string;
  status: number;
  kind: HttpErrorKind | 'timeout';
}

export class HttpServer extends EventEmitter {
  readonly options: HttpServerOptions;
  readonly timers: TimerGroup;
  /** @internal Every connection's deadline, under one timer. */
  readonly deadlines: DeadlineWheel;
  readonly counters = new Counters();
  /**
   * @internal The counters every connection or request touches, taken from `counters` on
   * first use (so they show in its snapshot only once counted): an increment in place, no
   * lookup by name per request.
   */
  hot: { accepted?: Counter; requests?: Counter; responses?: Counter } = {};
  /** @internal Limits and timeouts merged with the defaults once, shared by every connection's core. */
  readonly shared: { limits: Http1Limits; timeouts: Http1Timeouts };
  maxRequestsPerSocket: number;
  /**
   * The open connections, each knowing its slot (`openSlot`): added at the end, removed by
   * moving the last into its slot, as the DeadlineWheel keeps its holders. A Set's hash
   * table, with a connection added and deleted per Connection: close request, is rebuilt
   * (a new backing store) every few dozen connections.
   */
  private readonly open: H1ServerConnection[] = [];
  private readonly sources: { source: HttpConnectionSource; event: string; listener: (s: Duplex) => void }[] =
    [];
  private netServer: net.Server | undefined;
  private closing = false;
  private nextId = 1;

  constructor(options: HttpServerOptions = {}, listener?: RequestListener) {
    super();
    this.options = options;
    this.shared = {
      limits: options.limits === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...options.limits },
      timeouts: { ...DEFAULT_TIMEOUTS, ...options.timeouts },
    };
    this.timers = new TimerGroup(options.clock ?? new RealClock());
    this.deadlines = new DeadlineWheel(this.timers);
    this.maxRequestsPerSocket = options.maxRequestsPerSocket ?? 0;
    if (listener) this.on('request', listener);
    this.on('connection', (socket: Duplex) => this.accept(socket));
  }

  get listening(): boolean {
    return this.netServer?.listening === true || this.sources.length > 0;
  }

  /** Serve one byte stream (a TCP or TLS socket, a node:net socket, a Duplex pair). */
  handle(socket: Duplex): void {
    this.emit('connection', socket);
  }

  private accept(socket: Duplex): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // RFC 9113 §3.2: over TLS the version is chosen by ALPN; in cleartext a client with prior
    // knowledge starts with the connection preface (§3.4), which no HTTP/1.1 request can.
    const alpn = (socket as { alpnProtocol?: string | false }).alpnProtocol;
    if (this.options.http2 === false || (typeof alpn === 'string' && alpn !== 'h2')) this.acceptHttp1(socket);
    else if (alpn === 'h2') acceptHttp2(this, socket);
    // cleartext: the connection's first bytes tell h2 prior knowledge from HTTP/1.1
    else this.acceptHttp1(socket, undefined, true);
  }

  /** @internal The h2 side (see ./h2.ts): the same 'request' handler, fed by h2 streams. */
  h2: Http2Server | undefined;

  /** @internal */
  /**
   * @internal `sniff`: cleartext with HTTP/2 on, the connection looks at its first bytes for
   * the h2 preface and counts itself accepted (as HTTP/1.1) only when they are not it.
   */
  acceptHttp1(socket: Duplex, acceptedAt = this.timers.now(), sniff = false): H1ServerConnection {
    // node:http servers default to noDelay (Node ≥ 18): a response written as head, then
    // body, then TLS records would otherwise wait out the peer's delayed ACK behind Nagle
    // (measured: 40–48 ms per HTTPS request on our TCP against the kernel). Sockets handed
    // over with 'connection' never pass through a net.Server that would set it.
    if (this.options.noDelay !== false)
      (socket as Partial<Pick<net.Socket, 'setNoDelay'>>).setNoDelay?.(true);
    const c = new H1ServerConnection(this, socket, this.nextId++, acceptedAt, sniff);
    c.openSlot = this.open.length;
    this.open.push(c);
    if (!sniff) (this.hot.accepted ??= this.counters.counter('accepted')).value++;
    return c;
  }

  /** @internal */
  forget(c: H1ServerConnection): void {
    const slot = c.openSlot;
    if (slot >= 0) {
      const open = this.open;
      const last = open.pop() as H1ServerConnection;
      if (last !== c) {
        open[slot] = last;
        last.openSlot = slot;
      }
      c.openSlot = -1;
    }
    if (this.closing && this.open.length === 0) this.finishClose();
  }

  /**
   * listen(source[, event]) takes connections from a connection source: our TcpServer or a
   * node:net Server ('connection'), our TLS SecureServer or a node:tls Server
   * ('secureConnection'). listen(port[, host][, cb]) opens a node:net server of its own.
   */
  listen(source: HttpConnectionSource, event?: string): this;
  listen(port?: number, host?: string, cb?: () => void): this;
  listen(port: number, cb?: () => void): this;
  listen(...args: unknown[]): this {
    const first = args[0];
    if (
      first !== null &&
      typeof first === 'object' &&
      typeof (first as HttpConnectionSource).on === 'function'
    ) {
      const source = first as HttpConnectionSource;
      const event =
        (args[1] as string | undefined) ??
        (source instanceof tls.Server || source instanceof SecureServer ? 'secureConnection' : 'connection');
      const listener = (s: Duplex) => {
        if (!this.closing) this.handle(s);
        else s.destroy();
      };
      source.on(event, listener);
      this.sources.push({ source, event, listener });
      this.closing = false;
      return this;
    }
    const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
    const port = typeof first === 'number' ? first : 0;
    const host = typeof args[1] === 'string' ? args[1] : undefined;
    this.closing = false;
    // allowHalfOpen as node:http: a client's FIN does not cut the response in progress.
    // noDelay here too: net.Server sets it on the handle as it accepts, so acceptHttp1's
    // setNoDelay finds it done (no second trip through Socket.setNoDelay per connection).
    const srv = net.createServer({ allowHalfOpen: true, noDelay: this.options.noDelay !== false }, (s) =>
      this.handle(s),
    );
    this.netServer = srv;
    srv.on('error', (e) => this.emit('error', e));
    srv.listen(port, host, () => {
      this.emit('listening');
      cb?.();
    });
    return this;
  }

  address(): net.AddressInfo | string | null {
    return this.netServer?.address() ?? null;
  }

  /**
   * Stop taking connections, close the idle ones (as Node ≥ 19 does), and call back once
   * every connection has ended. Busy connections close after their current response.
   */
  close(cb?: (err?: Error) => void): this {
    this.closing = true;
    for (const { source, event, listener } of this.sources.splice(0)) {
      if (source.off) source.off(event, listener);
      else source.removeListener?.(event, listener);
    }
    if (cb) this.once('close', cb);
    const srv = this.netServer;
    this.netServer = undefined;
    this.pendingNetClose = srv !== undefined;
    if (srv)
      srv.close(() => {
        this.pendingNetClose = false;
        if (this.open.length === 0) this.finishClose();
      });
    this.closeIdleConnections();
    // h2 sessions shut down gracefully: GOAWAY, in-flight streams finish (RFC 9113 §6.8).
    this.h2?.close();
    if (this.open.length === 0 && !this.pendingNetClose) this.finishClose();
    return this;
  }

  private pendingNetClose = false;
  private closeEmitted = false;

  private finishClose(): void {
    if (this.pendingNetClose || this.closeEmitted) return;
    this.closeEmitted = true;
    process.nextTick(() => this.emit('close'));
  }

  get isClosing(): boolean {
    return this.closing;
  }

  closeIdleConnections(): void {
    for (const c of [...this.open]) if (c.idle) c.destroy();
  }

  closeAllConnections(): void {
    for (const c of [...this.open]) c.destroy();
  }

  getConnections(cb: (err: Error | null, n: number) => void): void {
    process.nextTick(() => cb(null, this.open.length));
  }

  stats(): HttpServerStats {
    const snap = this.counters.snapshot();
    const parseErrors: Record<string, number> = {};
    for (const [k, v] of Object.entries(snap)) if (k.startsWith('parse-error.')) parseErrors[k.slice(12)] = v;
    let buffered = 0;
    for (const c of this.open) buffered += c.bufferedBytes;
    return {
      connections: this.open.length,
      armedTimers: this.deadlines.size + this.timers.armed - this.deadlines.armedTimers,
      bufferedBytes: buffered,
      accepted: this.counters.get('accepted'),
      requests: this.counters.get('requests'),
      responses: this.counters.get('responses'),
      upgrades: this.counters.get('upgrades'),
      parseErrors,
      timeouts: {
        headers: this.counters.get('timeout.headers'),
        request: this.counters.get('timeout.request'),
        'keep-alive': this.counters.get('timeout.keep-alive'),
      },
      counters: snap,
    };
  }

  /** @internal Tracing costs nothing when no one listens: callers check this first. */
  get tracing(): boolean {
    return this.options.trace?.enabled === true;
  }

  /** @internal */
  trace(
    conn: number,
    dir: TraceDirection,
    summary: string,
    fields?: Record<string, unknown>,
    rfc?: string,
    reason?: string,
    state?: { from: string; to: string },
  ): void {
    const bus = this.options.trace;
    if (!bus?.enabled) return;
    bus.emit({
      t: this.timers.now(),
      host: this.options.hostName ?? 'http',
      layer: 'http',
      dir,
      summary,
      fields: { conn, ...fields },
      ...(rfc ? { rfc } : {}),
      ...(reason ? { reason } : {}),
      ...(state ? { state } : {}),
    });
  }
}

/** node:http's createServer: `createServer((req, res) => …)` or `createServer(options, listener)`. */
export function createServer(listener?: RequestListener): HttpServer;
export function createServer(options: HttpServerOptions, listener?: RequestListener): HttpServer;
export function createServer(a?: HttpServerOptions | RequestListener, b?: RequestListener): HttpServer {
  return typeof a === 'function' ? new HttpServer({}, a) : new HttpServer(a ?? {}, b);
}

/** The package-wide name of createServer (HTTP/2 has its own). */
export const createHttpServer = createServer;
