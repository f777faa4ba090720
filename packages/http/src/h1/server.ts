import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { SecureServer } from '@stepwire/tls';
import {
  type Clock,
  Counters,
  RealClock,
  type Timer,
  TimerGroup,
  type TraceBus,
  type TraceDirection,
} from '@stepwire/wire';
import { h2RequestResponse } from '../h2/compat.ts';
import { CONNECTION_PREFACE } from '../h2/frames.ts';
import type { IncomingHeaders } from '../h2/message.ts';
import { createServer as createHttp2Server, type Http2Server, type Http2Stream } from '../h2/session.ts';
import { type Field, type HttpErrorKind, type HttpParseError, listTokens, STATUS_TEXT } from './codec.ts';
import {
  DEFAULT_TIMEOUTS,
  Http1Connection,
  type Http1Event,
  type Http1Limits,
  type Http1Timeouts,
  type RequestInfo,
  type TimeoutKind,
} from './connection.ts';
import { IncomingMessage, type ResponseChannel, ServerResponse } from './messages.ts';

const PREFACE = Buffer.from(CONNECTION_PREFACE);

/**
 * An HTTP/1.1 server shaped like node:http's: `createServer((req, res) => …)`, fed byte
 * streams from any source — `server.emit('connection', duplex)` / `handle(duplex)`, or
 * `listen(source)` on our TcpServer, our TLS server, a node:net or node:tls server — or
 * `listen(port, host)` on a node:net server of its own.
 *
 * Each connection is an Http1Connection (the sans-I/O core) driven here: socket bytes in,
 * events out to IncomingMessage/ServerResponse, response bytes out, and the core's
 * deadlines armed through a TimerGroup so `stats()` shows them.
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
  /** Timers armed now (one per connection with a deadline). */
  armedTimers: number;
  /** Bytes received and not yet parsed, plus bytes queued on the sockets. */
  bufferedBytes: number;
  accepted: number;
  requests: number;
  responses: number;
  upgrades: number;
  /** Parse errors by kind (te-and-cl, header-too-large, ...). */
  parseErrors: Record<string, number>;
  timeouts: Record<TimeoutKind, number>;
  counters: Record<string, number>;
}

/** An error handed to 'clientError', in node:http's shape (code, bytesParsed, rawPacket). */
export interface HttpClientError extends Error {
  code: string;
  status: number;
  kind: HttpErrorKind | 'timeout';
}

function clientError(e: HttpParseError): HttpClientError {
  const code = e.status === 431 ? 'HPE_HEADER_OVERFLOW' : `HPE_${e.kind.toUpperCase().replace(/-/g, '_')}`;
  return Object.assign(new Error(`Parse Error: ${e.reason}`), { code, status: e.status, kind: e.kind });
}

export class HttpServer extends EventEmitter {
  readonly options: HttpServerOptions;
  readonly timers: TimerGroup;
  readonly counters = new Counters();
  maxRequestsPerSocket: number;
  private readonly open = new Set<H1ServerConnection>();
  private readonly sources: { source: HttpConnectionSource; event: string; listener: (s: Duplex) => void }[] =
    [];
  private netServer: net.Server | undefined;
  private closing = false;
  private nextId = 1;

  constructor(options: HttpServerOptions = {}, listener?: RequestListener) {
    super();
    this.options = options;
    this.timers = new TimerGroup(options.clock ?? new RealClock());
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
    else if (alpn === 'h2') this.acceptHttp2(socket);
    else this.sniffPreface(socket);
  }

  /** The h2 side: the same 'request' handler, fed by h2 streams as IncomingMessage/ServerResponse. */
  private h2: Http2Server | undefined;

  private acceptHttp2(socket: Duplex): void {
    this.h2 ??= createHttp2Server(
      {
        ...(this.options.clock ? { clock: this.options.clock } : {}),
        ...(this.options.trace ? { trace: this.options.trace } : {}),
        ...(this.options.hostName ? { hostName: this.options.hostName } : {}),
      },
      (stream, headers) => {
        // A stream the application takes itself (gRPC, say) never becomes a (req, res).
        if (this.options.onHttp2Stream?.(stream, headers)) return;
        const { req, res } = h2RequestResponse(stream, headers);
        this.emit('request', req, res);
      },
    );
    this.counters.inc('accepted.h2');
    this.h2.handle(socket);
  }

  /**
   * Read until the first octets match or rule out the h2 preface, put them back, and hand the
   * socket on. A client that sends nothing is cut at the headers timeout, as HTTP/1.1's is.
   */
  private sniffPreface(socket: Duplex): void {
    const preface = PREFACE;
    const acceptedAt = this.timers.now();
    let seen: Buffer = Buffer.alloc(0);
    const limit = this.options.timeouts?.headersTimeout ?? DEFAULT_TIMEOUTS.headersTimeout;
    // Silence until the headers timeout is HTTP/1.1's case: its connection, created with the
    // accept time, finds its deadline passed and answers 408 as usual.
    const timer = limit > 0 ? this.timers.setTimer(acceptedAt + limit, () => done(false)) : undefined;
    const done = (h2: boolean) => {
      timer?.cancel();
      this.sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (!h2) {
        // HTTP/1.1 (nearly every cleartext connection): the bytes seen go straight to the
        // new connection's parser. Putting them back with unshift() and resuming would
        // re-deliver them a tick later through the stream's read machinery, a measurable
        // part of a one-request connection's cost.
        const c = this.acceptHttp1(socket, acceptedAt);
        if (seen.length > 0) c.receiveFirst(seen);
        return;
      }
      socket.pause();
      if (seen.length > 0) socket.unshift(seen);
      this.acceptHttp2(socket);
      // pause() above left the stream paused; a reader that listens for 'data' wants it flowing.
      if (socket.listenerCount('data') > 0) socket.resume();
    };
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, preface.length);
      const match = seen.subarray(0, n).equals(preface.subarray(0, n));
      if (match && seen.length < preface.length) return;
      done(match);
    };
    const onClose = () => {
      timer?.cancel();
      this.sniffing.delete(socket);
    };
    // A peer that resets before its first byte (ECONNRESET) must not become an unhandled
    // 'error' that takes the whole server down.
    const onError = () => {
      this.counters.inc('error.before-first-byte');
      socket.destroy();
    };
    this.sniffing.add(socket);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', onClose);
  }

  /** Connections whose first bytes have not yet said which HTTP version they speak (idle). */
  private readonly sniffing = new Set<Duplex>();

  private acceptHttp1(socket: Duplex, acceptedAt = this.timers.now()): H1ServerConnection {
    // node:http servers default to noDelay (Node ≥ 18): a response written as head, then
    // body, then TLS records would otherwise wait out the peer's delayed ACK behind Nagle
    // (measured: 40–48 ms per HTTPS request on our TCP against the kernel). Sockets handed
    // over with 'connection' never pass through a net.Server that would set it.
    if (this.options.noDelay !== false)
      (socket as Partial<Pick<net.Socket, 'setNoDelay'>>).setNoDelay?.(true);
    const c = new H1ServerConnection(this, socket, this.nextId++, acceptedAt);
    this.open.add(c);
    this.counters.inc('accepted');
    return c;
  }

  /** @internal */
  forget(c: H1ServerConnection): void {
    this.open.delete(c);
    if (this.closing && this.open.size === 0) this.finishClose();
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
    const srv = net.createServer({ allowHalfOpen: true }, (s) => this.handle(s));
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
        if (this.open.size === 0) this.finishClose();
      });
    this.closeIdleConnections();
    // h2 sessions shut down gracefully: GOAWAY, in-flight streams finish (RFC 9113 §6.8).
    this.h2?.close();
    if (this.open.size === 0 && !this.pendingNetClose) this.finishClose();
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
    for (const s of [...this.sniffing]) s.destroy();
    for (const c of [...this.open]) if (c.idle) c.destroy();
  }

  closeAllConnections(): void {
    for (const s of [...this.sniffing]) s.destroy();
    for (const c of [...this.open]) c.destroy();
  }

  getConnections(cb: (err: Error | null, n: number) => void): void {
    process.nextTick(() => cb(null, this.open.size));
  }

  stats(): HttpServerStats {
    const snap = this.counters.snapshot();
    const parseErrors: Record<string, number> = {};
    for (const [k, v] of Object.entries(snap)) if (k.startsWith('parse-error.')) parseErrors[k.slice(12)] = v;
    let buffered = 0;
    for (const c of this.open) buffered += c.bufferedBytes;
    return {
      connections: this.open.size,
      armedTimers: this.timers.armed,
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

/** One connection: the driver of an Http1Connection over a Duplex. */
class H1ServerConnection {
  private readonly conn: Http1Connection;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private req: IncomingMessage | undefined;
  private res: ServerResponse | undefined;
  private info: RequestInfo | undefined;
  private pausedForReader = false;
  private pausedForPipeline = false;
  private dumping = false;
  private detached = false;
  private closed = false;
  private handled = 0;
  private depth = 0;
  private wantPump = false;
  private eofPending = false;

  constructor(
    private readonly server: HttpServer,
    private readonly socket: Duplex,
    private readonly id: number,
    /** When the connection was accepted: its first head's deadline counts from here. */
    acceptedAt: number,
  ) {
    this.conn = new Http1Connection({
      role: 'server',
      limits: server.options.limits,
      timeouts: server.options.timeouts,
      now: acceptedAt,
    });
    if (server.tracing) {
      // remoteAddress asks the kernel (getpeername): only when someone reads the trace
      const remote = (socket as { remoteAddress?: string }).remoteAddress;
      const port = (socket as { remotePort?: number }).remotePort;
      server.trace(id, 'in', `accept${remote ? ` ${remote}:${port}` : ''}`, { remote, port });
    }
    // State changes of both sides, each with the rule that made it, for the ladder.
    this.conn.state.onChange = (role, from, to, rfc) => {
      if (server.tracing)
        server.trace(id, 'local', `${role} ${from} -> ${to}`, { role }, rfc, undefined, { from, to });
    };
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    this.arm();
  }

  get idle(): boolean {
    return this.req === undefined && this.conn.bufferedBytes === 0 && this.conn.theirState === 'IDLE';
  }

  get bufferedBytes(): number {
    return this.conn.bufferedBytes + (this.socket.writableLength ?? 0);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The bytes the server read while it looked for the h2 preface: this connection's first. */
  receiveFirst(d: Buffer): void {
    this.onData(d);
  }

  private readonly onData = (d: Buffer): void => {
    if (this.detached || this.closed) return;
    if (this.server.tracing) this.server.trace(this.id, 'in', `read ${d.length} bytes`, { bytes: d.length });
    if (this.depth > 0) {
      // bytes delivered while we are inside a handler (an in-memory pair writes through):
      // buffer them, the outer loop parses them in order
      this.conn.feed(d, this.server.timers.now());
      this.wantPump = true;
    } else this.handle(this.conn.receive(d, this.server.timers.now()));
    const max = this.server.options.maxPipelineBuffer ?? 1024 * 1024;
    if (!this.detached && this.conn.bufferedBytes > max && !this.pausedForPipeline) {
      this.pausedForPipeline = true;
      this.socket.pause();
    }
  };

  private readonly onEnd = (): void => {
    if (this.detached || this.closed) return;
    if (this.depth > 0) {
      this.eofPending = true;
      this.wantPump = true;
      return;
    }
    this.handle(this.conn.receiveEof(this.server.timers.now()));
  };

  private readonly onError = (e: Error): void => {
    this.server.counters.inc('socket-errors');
    if (this.server.tracing)
      this.server.trace(
        this.id,
        'drop',
        `socket error ${(e as { code?: string }).code ?? e.message}`,
        undefined,
        undefined,
        'socket-errors',
      );
  };

  private readonly onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.disarm();
    if (this.detached) {
      this.server.forget(this);
      return;
    }
    if (this.server.tracing) this.server.trace(this.id, 'local', 'connection closed');
    const req = this.req;
    if (req && !req.complete) req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    const res = this.res;
    if (res && !res.writableFinished) res.destroy();
    this.server.forget(this);
  };

  /**
   * Dispatch events, then parse what waits. Never recursive: a response finished inside a
   * handler, or bytes a socket delivers while we write, only set `wantPump`, and the
   * outermost call parses the next pipelined request in a loop (thousands of pipelined
   * requests with a synchronous handler would otherwise grow the stack without bound).
   */
  private handle(events: Http1Event[]): void {
    this.depth++;
    try {
      this.dispatch(events);
    } finally {
      this.depth--;
    }
    if (this.depth === 0) this.drain();
    this.arm();
  }

  private drain(): void {
    while (this.wantPump && !this.closed && !this.detached) {
      this.wantPump = false;
      const now = this.server.timers.now();
      const events = this.eofPending ? this.conn.receiveEof(now) : this.conn.pump(now);
      this.eofPending = false;
      if (events.length === 0) continue;
      this.depth++;
      try {
        this.dispatch(events);
      } finally {
        this.depth--;
      }
    }
  }

  private dispatch(events: Http1Event[]): void {
    for (const e of events) {
      if (this.detached || this.closed) return;
      switch (e.type) {
        case 'request':
          this.onRequest(e);
          break;
        case 'data':
          if (this.req && !this.dumping && !this.req.destroyed) {
            if (!this.req.push(e.data) && !this.pausedForReader) {
              this.pausedForReader = true;
              this.socket.pause();
            }
          }
          break;
        case 'trailers':
          this.req?.setTrailers(e.fields);
          break;
        case 'end':
          this.onRequestEnd();
          break;
        case 'error':
          this.onParseError(e.error);
          return;
        case 'timeout':
          this.onTimeout(e.kind);
          return;
        case 'closed':
          // The peer is done sending. With nothing in progress, close our side too.
          // (end() on a socket already ending builds an ERR_STREAM_ALREADY_FINISHED error
          // with its stack: a cost on every Connection: close exchange.)
          if (!this.req && !this.res && !this.socket.writableEnded) this.socket.end();
          break;
        case 'informational':
        case 'response':
        case 'upgrade':
          break;
      }
    }
  }

  private onRequest(e: Extract<Http1Event, { type: 'request' }>): void {
    const s = this.server;
    s.counters.inc('requests');
    this.handled++;
    const h = e.head;
    if (s.tracing)
      s.trace(
        this.id,
        'in',
        `parse ${h.method} ${h.target} HTTP/${h.version.major}.${h.version.minor}`,
        {
          method: h.method,
          target: h.target,
          fields: h.fields.length,
          framing: e.framing.kind === 'length' ? e.framing.length : e.framing.kind,
        },
        'RFC 9112 §3',
      );
    const req = new IncomingMessage(this.socket, {
      method: h.method,
      url: h.target,
      httpVersionMajor: h.version.major,
      httpVersionMinor: h.version.minor,
      fields: h.fields,
      onRead: this.onReqRead,
    });
    this.req = req;
    this.info = e;
    this.dumping = false;
    // Node's hand-offs: an Upgrade or CONNECT request goes to its listener with the socket
    // and the bytes that followed the head; the listener speaks from there on.
    const handOff = h.method === 'CONNECT' ? 'connect' : e.upgrade ? 'upgrade' : undefined;
    if (handOff && (s.listenerCount(handOff) > 0 || handOff === 'connect')) {
      if (s.listenerCount(handOff) === 0) {
        // Node closes a CONNECT it has no listener for.
        this.socket.destroy();
        return;
      }
      const rest = this.conn.detach();
      this.detach();
      s.counters.inc('upgrades');
      if (s.tracing)
        s.trace(
          this.id,
          'local',
          `${handOff} ${e.upgrade?.join(',') ?? h.target}: stream handed over`,
          undefined,
          'RFC 9110 §7.8',
        );
      req.complete = true;
      req.push(null);
      s.emit(handOff, req, this.socket, Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength));
      return;
    }
    const res = new ServerResponse(
      req,
      new H1ResponseChannel(this.conn, this.socket, s, this.id, this, h.method, h.version.minor),
    );
    this.res = res;
    if (
      !e.keepAlive ||
      (s.maxRequestsPerSocket > 0 && this.handled >= s.maxRequestsPerSocket) ||
      s.isClosing
    ) {
      // tell the core now, so the head says Connection: close
      this.conn.state.noKeepAlive();
    }
    res.once('finish', this.onResFinish);
    if (s.tracing) s.trace(this.id, 'local', `process ${h.method} ${h.target}`);
    try {
      if (e.expectContinue) {
        if (s.listenerCount('checkContinue') > 0) s.emit('checkContinue', req, res);
        else {
          res.writeContinue();
          s.emit('request', req, res);
        }
      } else if (h.version.minor >= 1 && hasExpectation(h.fields)) {
        // RFC 9110 §10.1.1: an expectation we do not know is answered 417.
        if (s.listenerCount('checkExpectation') > 0) s.emit('checkExpectation', req, res);
        else {
          res.writeHead(417, { 'content-length': 0, connection: 'close' });
          res.end();
        }
      } else {
        s.emit('request', req, res);
      }
    } catch (err) {
      s.counters.inc('handler-errors');
      if (s.tracing)
        s.trace(
          this.id,
          'drop',
          `handler threw: ${(err as Error).message}`,
          undefined,
          undefined,
          'handler-errors',
        );
      if (!res.headersSent) {
        res.writeHead(500, { 'content-length': 0, connection: 'close' });
        res.end();
      } else this.socket.destroy();
    }
  }

  /** @internal For the response channel. */
  get isClosed(): boolean {
    return this.closed;
  }

  private readonly onReqRead = (): void => this.resumeForReader();
  private readonly onResFinish = (): void => this.onResponseDone();

  private resumeForReader(): void {
    if (!this.pausedForReader) return;
    this.pausedForReader = false;
    if (!this.pausedForPipeline && !this.closed) this.socket.resume();
  }

  private onRequestEnd(): void {
    const req = this.req;
    if (req) {
      req.complete = true;
      if (!this.dumping) req.push(null);
    }
    this.afterCycleStep();
  }

  /** The response went out entirely. */
  private onResponseDone(): void {
    // RFC 9110 §10.1.1: we answered without reading a body the client still waits to send (no 100 was sent):
    // keep the connection only if the client goes on; dump whatever body comes.
    const req = this.req;
    if (req && !req.complete) {
      this.dumping = true;
      if (this.info?.expectContinue) {
        this.closeAfterResponse();
        return;
      }
      this.resumeForReader();
      req.resume();
    }
    this.afterCycleStep();
  }

  private closeAfterResponse(): void {
    if (!this.socket.writableEnded) this.socket.end();
    this.disarm();
  }

  /** Called when either side of the cycle finishes: start the next one or close. */
  private afterCycleStep(): void {
    const conn = this.conn;
    const them = conn.theirState;
    const us = conn.ourState;
    if (us === 'MUST_CLOSE' || us === 'CLOSED') {
      // our response is out and the connection ends with it (RFC 9112 §9.6)
      if (this.server.tracing)
        this.server.trace(this.id, 'local', 'close after response', undefined, 'RFC 9112 §9.6');
      this.req = undefined;
      this.res = undefined;
      this.closeAfterResponse();
      return;
    }
    if (them === 'CLOSED' && us === 'DONE') {
      // the client closed its side after its request; our answer is out, so close too
      this.req = undefined;
      this.res = undefined;
      this.closeAfterResponse();
      return;
    }
    if (us === 'IDLE' && them === 'IDLE') {
      this.req = undefined;
      this.res = undefined;
      this.info = undefined;
      this.dumping = false;
      if (this.server.isClosing) {
        this.socket.end();
        return;
      }
      if (this.pausedForPipeline) {
        this.pausedForPipeline = false;
        if (!this.pausedForReader) this.socket.resume();
      }
      if (conn.bufferedBytes > 0) {
        // the next pipelined request, after the response before it (RFC 9112 §9.3.2)
        this.wantPump = true;
        if (this.depth === 0) this.handle([]);
        return;
      }
    }
    this.arm();
  }

  private onParseError(e: HttpParseError): void {
    const s = this.server;
    s.counters.inc(`parse-error.${e.kind}`);
    if (s.tracing)
      s.trace(
        this.id,
        'drop',
        `parse error ${e.status} ${e.kind}: ${e.reason}`,
        { offset: e.offset },
        undefined,
        `parse-error.${e.kind}`,
      );
    const req = this.req;
    if (req && !req.complete) req.destroy(clientError(e));
    const err = clientError(e);
    if (s.listenerCount('clientError') > 0) {
      s.emit('clientError', err, this.socket);
      this.disarm();
      return;
    }
    this.answerAndClose(e.status);
  }

  /** Default 'clientError' handling, as Node: an error status with Connection: close, then close. */
  private answerAndClose(status: number): void {
    const us = this.conn.ourState;
    const res = this.res;
    this.disarm();
    if ((us === 'IDLE' || us === 'SEND_RESPONSE') && !res?.headersSent && this.socket.writable) {
      const head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
      this.res = undefined;
      this.socket.end(head);
      // a client that never reads its answer does not keep the socket
      const t = this.server.timers.setTimer(this.server.timers.now() + 1000, () => this.socket.destroy());
      this.socket.once('close', () => t.cancel());
    } else {
      this.socket.destroy();
    }
  }

  private onTimeout(kind: TimeoutKind): void {
    const s = this.server;
    s.counters.inc(`timeout.${kind}`);
    if (s.tracing) s.trace(this.id, 'drop', `timeout ${kind}`, undefined, 'RFC 9112 §9.5', `timeout.${kind}`);
    if (kind === 'keep-alive') {
      this.disarm();
      this.socket.destroy();
      return;
    }
    const err = Object.assign(new Error(`${kind} timeout`), {
      code: 'ERR_HTTP_REQUEST_TIMEOUT',
      status: 408,
      kind: 'timeout' as const,
    });
    if (this.req && !this.req.complete) this.req.destroy(err);
    if (s.listenerCount('clientError') > 0) {
      s.emit('clientError', err, this.socket);
      return;
    }
    this.answerAndClose(408);
  }

  private detach(): void {
    this.detached = true;
    this.disarm();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.once('close', () => this.server.forget(this));
    this.socket.off('close', this.onClose);
  }

  /**
   * Keep one timer at or before the core's next deadline. A later deadline keeps the armed
   * timer (it re-arms when it fires early), so a busy keep-alive connection does not set
   * and clear a timer per request.
   */
  private arm(): void {
    if (this.closed || this.detached) return;
    const at = this.conn.nextTimeout();
    if (this.timer && (at === undefined || (this.timerAt !== undefined && this.timerAt <= at))) return;
    if (!this.timer && at === undefined) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    this.timer = this.server.timers.setTimer(at, () => {
      this.timer = undefined;
      this.timerAt = undefined;
      if (this.closed || this.detached) return;
      this.handle(this.conn.onTimeout(this.server.timers.now()));
      this.arm();
    });
  }

  private disarm(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = undefined;
  }
}

const HTTP11 = { major: 1, minor: 1 };
const EMPTY = new Uint8Array(0);

/** An Expect field with at least one expectation in it (list parsed only when one is there). */
function hasExpectation(fields: readonly Field[]): boolean {
  for (const [n] of fields)
    if (n.length === 6 && n.toLowerCase() === 'expect') return listTokens(fields, 'expect').length > 0;
  return false;
}
const NO_TOKENS: readonly string[] = [];
const CONNECTION_CLOSE: Field = ['Connection', 'close'];
const CONNECTION_KEEP_ALIVE: Field = ['Connection', 'keep-alive'];
let keepAliveCache: { ms: number; field: Field } | undefined;

/** `Keep-Alive: timeout=N` (the same for every response of a server): made once. */
function keepAliveField(ms: number): Field {
  if (keepAliveCache?.ms !== ms)
    keepAliveCache = { ms, field: ['Keep-Alive', `timeout=${Math.floor(ms / 1000)}`] };
  return keepAliveCache.field;
}

function flushPending(ch: H1ResponseChannel): void {
  ch.flushHead();
}

/** One response's way to the wire over an HTTP/1.1 connection (see ResponseChannel). */
class H1ResponseChannel implements ResponseChannel {
  /** The head waits for the first body bytes (or the next tick): a small response leaves in one write, as node:http's does. */
  private pendingHead: string | undefined;

  constructor(
    private readonly conn: Http1Connection,
    private readonly socket: Duplex,
    private readonly server: HttpServer,
    private readonly id: number,
    private readonly owner: { readonly isClosed: boolean },
    private readonly method: string,
    private readonly requestMinor: number,
  ) {}

  sendHead(
    status: number,
    reason: string,
    fields: Field[],
    knownLength: number | undefined,
    followed = false,
  ): void {
    const conn = this.conn;
    const s = this.server;
    const bodiless = this.method === 'HEAD' || status === 204 || status === 304;
    // One look at the application's fields for the framing and connection fields we may add.
    let framed = false;
    let hasConnection = false;
    let hasKeepAlive = false;
    for (const [n] of fields) {
      const l = n.length;
      if (l === 14 || l === 17) {
        const lower = n.toLowerCase();
        if (lower === 'content-length' || lower === 'transfer-encoding') framed = true;
      } else if (l === 10) {
        // 'connection' and 'keep-alive' are both ten letters
        const lower = n.toLowerCase();
        if (lower === 'connection') hasConnection = true;
        else if (lower === 'keep-alive') hasKeepAlive = true;
      }
    }
    if (!framed && status !== 204 && status !== 304) {
      if (knownLength !== undefined) fields.push(['Content-Length', String(knownLength)]);
      else if (bodiless) {
        // a HEAD response that does not know the GET's length says nothing about it
      } else if (this.requestMinor >= 1) fields.push(['Transfer-Encoding', 'chunked']);
      else conn.state.noKeepAlive(); // HTTP/1.0: the body ends with the connection
    }
    // a server that is closing ends each connection after the response in progress
    if (s.isClosing) conn.state.noKeepAlive();
    const connTokens = hasConnection ? listTokens(fields, 'connection') : NO_TOKENS;
    if (!connTokens.includes('close')) {
      if (!conn.keepAlive) fields.push(CONNECTION_CLOSE);
      else if (!connTokens.includes('keep-alive')) {
        fields.push(CONNECTION_KEEP_ALIVE);
        const ka = conn.timeouts.keepAliveTimeout;
        if (ka > 0 && !hasKeepAlive) fields.push(keepAliveField(ka));
      }
    }
    try {
      // latin1 text: write() joins it with the first body bytes in one buffer
      this.pendingHead = conn.sendResponseText({ version: HTTP11, status, reason, fields });
    } catch (err) {
      this.localError(err as Error);
      return;
    }
    // flushHeaders(): the head goes out on the next tick unless body bytes join it first
    if (!followed) process.nextTick(flushPending, this);
    s.counters.inc('responses');
    if (s.tracing)
      s.trace(
        this.id,
        'out',
        `respond ${status} ${reason}`,
        { status, fields: fields.length },
        'RFC 9112 §4',
      );
  }

  sendInformational(status: number, reason: string, fields: Field[]): void {
    if (this.conn.ourState !== 'SEND_RESPONSE') return;
    let bytes: Uint8Array;
    try {
      bytes = this.conn.send({ type: 'informational', head: { version: HTTP11, status, reason, fields } });
    } catch (err) {
      this.localError(err as Error);
      return;
    }
    this.write(bytes);
    if (this.server.tracing)
      this.server.trace(this.id, 'out', `respond ${status} ${reason}`, { status }, 'RFC 9110 §15.2');
  }

  sendData(chunk: Uint8Array, done: (err?: Error | null) => void): void {
    if (this.owner.isClosed) {
      done();
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.conn.send({ type: 'data', data: chunk });
    } catch (err) {
      this.localError(err as Error);
      done(err as Error);
      return;
    }
    this.write(bytes, done);
  }

  sendEnd(trailers: Field[], done: (err?: Error | null) => void): void {
    if (this.owner.isClosed) {
      done();
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.conn.send({ type: 'end', trailers }, this.server.timers.now());
    } catch (err) {
      this.localError(err as Error);
      done(err as Error);
      return;
    }
    this.write(bytes, done);
  }

  abort(): void {
    if (!this.owner.isClosed) this.socket.destroy();
  }

  /**
   * The application broke the framing (more bytes than its Content-Length, a response after
   * the response, ...): what the client has seen can no longer be trusted to end where it
   * should, so the connection goes. Counted and traced; the server carries on.
   */
  private localError(err: Error): void {
    this.server.counters.inc('local-protocol-errors');
    if (this.server.tracing)
      this.server.trace(
        this.id,
        'drop',
        `application error: ${err.message}`,
        undefined,
        'RFC 9112 §6.3',
        'local-protocol-errors',
      );
    this.pendingHead = undefined;
    this.socket.destroy();
  }

  flushHead(): void {
    if (this.pendingHead !== undefined) this.write(EMPTY);
  }

  private write(data: Uint8Array, done?: (err?: Error | null) => void): void {
    let bytes = data;
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      // head and body in one buffer, one socket write (a small response is one segment)
      const n = head.length;
      const joined = Buffer.allocUnsafe(n + data.length);
      joined.write(head, 0, n, 'latin1');
      if (data.length > 0) joined.set(data, n);
      bytes = joined;
    }
    const socket = this.socket;
    if (bytes.length === 0 || socket.destroyed || !socket.writable) {
      done?.();
      return;
    }
    if (socket.write(bytes) || !done) done?.();
    else socket.once('drain', () => done());
  }
}
