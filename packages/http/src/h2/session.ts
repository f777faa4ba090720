/**
 * A node:http2-shaped face on the sans-I/O connection, over any Duplex (our TCP or TLS
 * socket, a node:net or node:tls socket, an in-memory pair):
 *
 *   const session = connect('http://127.0.0.1:8080', { createConnection: () => net.connect(8080, '127.0.0.1') });
 *   const req = session.request({ ':path': '/' });
 *   req.on('response', (headers) => ...); req.on('data', ...); req.end();
 *
 *   const server = createServer();
 *   server.on('stream', (stream, headers) => stream.respond({ ':status': 200 }) && stream.end('hi'));
 *   net.createServer((socket) => server.handle(socket)).listen(8080);
 *
 * The driver owns the I/O and the clock: it feeds socket bytes to the connection, writes
 * what the connection outputs, turns connection events into stream events, and arms one
 * timer (through a TimerGroup) for the connection's next deadline.
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import { type Clock, RealClock, type Timer, TimerGroup, type TraceBus } from '@stepwire/wire';
import type { HeaderField } from '../hpack/table.ts';
import {
  Http2Connection,
  type Http2ConnectionOptions,
  type Http2Event,
  type Http2Limits,
} from './connection.ts';
import { ErrorCode, errorCodeName, Http2Error } from './errors.ts';
import { type IncomingHeaders, type OutgoingHeaders, toHeaderList, toHeaderObject } from './message.ts';
import type { Http2Settings } from './settings.ts';

// The two ways a session starts — connect() for a client, Http2Server for a server — live in
// endpoints.ts; re-exported so that this module stays the one face of the driver.
export { type ConnectOptions, connect, createServer, Http2Server } from './endpoints.ts';

export interface SessionOptions {
  settings?: Partial<Http2Settings>;
  limits?: Partial<Http2Limits>;
  connectionWindow?: number;
  trace?: TraceBus;
  hostName?: string;
  /** The clock for deadlines; real time by default. */
  clock?: Clock;
  /** Bytes a stream may queue before write() returns false (backpressure). Default 64 KiB. */
  highWaterMark?: number;
  /**
   * Client: request body octets kept per stream so that a request the server refused
   * unprocessed (REFUSED_STREAM, or above a GOAWAY's last stream id, RFC 9113 §8.7) can be
   * sent again; a longer body makes its request not retryable. Default 64 KiB; 0 keeps none.
   */
  maxReplayBytes?: number;
}

export type PingCallback = (err: Error | null, ms: number, payload: Uint8Array) => void;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface StreamFlags {
  endStream: boolean;
}

/** One HTTP/2 stream as a Duplex: writes are its DATA, reads the peer's DATA. */
export class Http2Stream extends Duplex {
  /** Response (client) or request (server) headers, once received. */
  headers: IncomingHeaders | undefined;
  trailers: IncomingHeaders | undefined;
  rstCode: number | undefined;
  headersSent = false;
  private creditOwed = 0;
  private pendingWrite: (() => void) | undefined;
  private wantTrailers = false;
  private finalCallback: ((e?: Error | null) => void) | undefined;
  /** @internal Our side of the stream has ended (END_STREAM queued). */
  ended = false;

  /** The session and stream id carrying this stream: both change when a refused request moves (see migrate). */
  session: Http2Session;
  id: number;

  constructor(session: Http2Session, id: number) {
    super({ allowHalfOpen: true, highWaterMark: session.highWaterMark });
    this.session = session;
    this.id = id;
  }

  // ---- a client request refused unprocessed, sent again elsewhere (RFC 9113 §8.7) ----------

  /**
   * Client: what it takes to send this request again — its header section, the body written
   * so far (up to the session's maxReplayBytes) and its trailers. Dropped once a response
   * arrives (the server processed it), or when the body outgrows the bound (not replayable).
   */
  private replay:
    | { headers: OutgoingHeaders; chunks: Uint8Array[]; bytes: number; trailers?: OutgoingHeaders }
    | undefined;
  /** Writes and end() that came while the request waits for its new session. */
  private moving:
    | { writes: [Uint8Array, (e?: Error | null) => void][]; final?: (e?: Error | null) => void }
    | undefined;
  /** Times this request was sent again. */
  retries = 0;

  /** @internal */
  recordRequest(headers: OutgoingHeaders): void {
    this.replay = { headers, chunks: [], bytes: 0 };
  }

  /** @internal A response came: the server processed the request, which is no longer retried. */
  dropReplay(): void {
    this.replay = undefined;
  }

  /** @internal Whether the request can be sent again: no response yet, and its body is all kept. */
  canRetry(maxRetries: number): boolean {
    return (
      this.replay !== undefined && this.headers === undefined && this.retries < maxRetries && !this.destroyed
    );
  }

  /** @internal The request leaves its session: writes and end() wait for migrate() or failRetry(). */
  beginRetry(): void {
    this.moving ??= { writes: [] };
    this.session.waitingWriters.delete(this);
    this.retries++;
    this.emit('retry', this.retries);
  }

  /**
   * @internal Sends the request again on `session` (another connection to the same origin):
   * the same header section, the body written so far, the end or trailers if they were
   * sent; writes made meanwhile follow. The stream object stays the one the user holds.
   */
  migrate(session: Http2Session): void {
    const r = this.replay;
    const m = this.moving;
    if (!r || !m || this.destroyed) return;
    this.session = session;
    const endAtOpen = r.chunks.length === 0 && this.ended && r.trailers === undefined;
    let id: number;
    try {
      id = session.connection.request(toHeaderList(r.headers), endAtOpen);
    } catch (e) {
      this.failRetry(e as Error);
      return;
    }
    this.id = id;
    session.attach(this, id);
    for (const c of r.chunks) session.connection.sendData(id, c, false);
    if (this.ended && !endAtOpen) {
      if (r.trailers) session.connection.sendTrailers(id, toHeaderList(r.trailers));
      else session.connection.sendData(id, new Uint8Array(0), true);
    }
    this.moving = undefined;
    // A write that waited for room on the old session waits for room here.
    if (this.pendingWrite) session.waitingWriters.add(this);
    for (const [chunk, cb] of m.writes) this._write(chunk, 'buffer' as BufferEncoding, cb);
    if (m.final) this._final(m.final);
    session.flush();
  }

  /** @internal No new session for the refused request: it fails as the refusal said. */
  failRetry(cause?: Error): void {
    const m = this.moving;
    this.moving = undefined;
    this.rstCode = ErrorCode.REFUSED_STREAM;
    const err =
      cause ?? new Http2Error(ErrorCode.REFUSED_STREAM, 'stream refused and could not be retried', this.id);
    for (const [, cb] of m?.writes ?? []) cb(err);
    m?.final?.(err);
    if (this.listenerCount('error') > 0) this.destroy(err);
    else {
      this.push(null);
      this.destroy();
    }
  }

  /** Server: send the response header section (RFC 9113 §8.1). */
  respond(
    headers: OutgoingHeaders = { ':status': 200 },
    options: { endStream?: boolean; waitForTrailers?: boolean } = {},
  ): void {
    if (this.headersSent) throw new Error('ERR_HTTP2_HEADERS_SENT');
    // A stream the peer reset (or that failed) while the handler ran: nothing to answer.
    if (!this.session.connection.canSend(this.id)) return;
    const h = { ...headers };
    if (h[':status'] === undefined) h[':status'] = 200;
    this.headersSent = Number(h[':status']) >= 200;
    this.wantTrailers = options.waitForTrailers === true;
    this.session.connection.respond(this.id, toHeaderList(h), options.endStream === true);
    if (options.endStream) {
      this.ended = true;
      this.end();
    }
    // Body data usually follows at once: one flush for the head and the first DATA.
    this.session.scheduleFlush();
  }

  /** Informational 1xx response (e.g. 103 Early Hints). */
  additionalHeaders(headers: OutgoingHeaders): void {
    if (!this.session.connection.canSend(this.id)) return;
    this.session.connection.respond(this.id, toHeaderList(headers), false);
    this.session.flush();
  }

  /** Trailers end the stream (RFC 9113 §8.1); call from 'wantTrailers' or instead of end(). */
  sendTrailers(headers: OutgoingHeaders): void {
    if (this.replay) this.replay.trailers = headers;
    if (this.moving) {
      this.ended = true;
      return;
    }
    if (!this.session.connection.canSend(this.id)) {
      const cb = this.finalCallback;
      this.finalCallback = undefined;
      cb?.();
      return;
    }
    const list = toHeaderList(headers);
    // No trailers after all: END_STREAM on an empty DATA frame is the shorter way to end.
    if (list.length === 0) this.session.connection.sendData(this.id, new Uint8Array(0), true);
    else this.session.connection.sendTrailers(this.id, list);
    this.ended = true;
    this.session.flush();
    const cb = this.finalCallback;
    this.finalCallback = undefined;
    cb?.();
  }

  /** RST_STREAM with `code` (default NO_ERROR, as node:http2's close()). */
  close(code: number = ErrorCode.NO_ERROR): void {
    this.rstCode = code;
    this.session.connection.reset(this.id, code);
    this.session.flush();
    this.destroy();
  }

  /** Whether a push may be promised on this stream now: the client allows push and our side is open. */
  get pushAllowed(): boolean {
    return (
      this.session.role === 'server' &&
      this.session.remoteSettings.enablePush &&
      this.id % 2 === 1 &&
      !this.ended &&
      this.session.connection.canSend(this.id)
    );
  }

  /** Server push (RFC 9113 §8.4), only when the client allows it. */
  pushStream(
    headers: OutgoingHeaders,
    callback: (err: Error | null, pushStream?: Http2Stream, headers?: OutgoingHeaders) => void,
  ): void {
    try {
      // RFC 9113 §8.4.1: the promised request is one the client could have made on this
      // connection: its authority and scheme default to the associated request's.
      const h: OutgoingHeaders = {
        ':method': 'GET',
        ':scheme': this.headers?.[':scheme'] ?? 'https',
        ...headers,
      };
      if (h[':authority'] === undefined && this.headers?.[':authority'])
        h[':authority'] = this.headers[':authority'];
      if (!this.session.remoteSettings.enablePush)
        throw Object.assign(new Error('the client disabled push (SETTINGS_ENABLE_PUSH = 0)'), {
          code: 'ERR_HTTP2_PUSH_DISABLED',
        });
      const id = this.session.connection.push(this.id, toHeaderList(h));
      const s = this.session.adopt(id);
      // RFC 9113 §8.4: a pushed stream is half-closed (remote) from its start; nothing will be read.
      s.push(null);
      this.session.flush();
      callback(null, s, h);
    } catch (e) {
      callback(e as Error);
    }
  }

  override _write(chunk: Buffer | Uint8Array, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.moving) {
      this.moving.writes.push([chunk, cb]);
      return;
    }
    if (this.replay && this.headers === undefined) {
      // Kept while the request may still be sent again; past the bound it cannot be.
      this.replay.bytes += chunk.length;
      if (this.replay.bytes > this.session.maxReplayBytes) this.replay = undefined;
      else this.replay.chunks.push(chunk);
    }
    if (!this.headersSent && this.session.role === 'server') this.respond({ ':status': 200 });
    // Written to a stream that was reset meanwhile: the bytes have nowhere to go.
    if (!this.session.connection.canSend(this.id)) {
      cb();
      return;
    }
    this.session.connection.sendData(
      this.id,
      new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length),
      false,
    );
    // Flushed a little later, so that an end() right after this write puts END_STREAM on
    // the same DATA frame.
    this.session.scheduleFlush();
    if (this.session.connection.bufferedAmount(this.id) < this.writableHighWaterMark) cb();
    else {
      this.pendingWrite = () => cb();
      this.session.waitingWriters.add(this);
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.moving) {
      this.moving.final = cb;
      return;
    }
    if (this.ended) {
      cb();
      return;
    }
    if (!this.headersSent && this.session.role === 'server')
      this.respond({ ':status': 200 }, { endStream: !this.wantTrailers });
    if (this.ended) {
      cb();
      return;
    }
    if (!this.session.connection.canSend(this.id)) {
      cb();
      return;
    }
    if (this.wantTrailers) {
      this.finalCallback = cb;
      this.emit('wantTrailers');
      return;
    }
    this.session.connection.sendData(this.id, new Uint8Array(0), true);
    this.ended = true;
    this.session.scheduleFlush();
    cb();
  }

  override _read(): void {
    if (this.creditOwed > 0) {
      const n = this.creditOwed;
      this.creditOwed = 0;
      this.session.connection.consumed(this.id, n);
      this.session.flush();
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // A stream that ended both ways finishes on its own (queued DATA still drains);
    // anything else destroyed early is cancelled.
    const done = this.ended && this.readableEnded;
    if (!done && !this.session.connection.streamState(this.id).startsWith('closed')) {
      this.session.connection.reset(this.id, err ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL);
      this.session.flush();
    }
    this.session.forget(this.id);
    this.session.waitingWriters.delete(this);
    this.pendingWrite = undefined;
    cb(err);
  }

  /** @internal */
  onData(data: Uint8Array, endStream: boolean): void {
    if (data.length > 0) {
      // Flow control follows the reader: credit is returned when the app reads (RFC 9113 §5.2).
      if (this.push(Buffer.from(data.buffer, data.byteOffset, data.length)))
        this.session.connection.consumed(this.id, data.length);
      else this.creditOwed += data.length;
    }
    if (endStream) this.push(null);
  }

  /** @internal */
  onDrain(): void {
    const w = this.pendingWrite;
    if (w && this.session.connection.bufferedAmount(this.id) < this.writableHighWaterMark) {
      this.pendingWrite = undefined;
      this.session.waitingWriters.delete(this);
      w();
    }
  }
}

/** One HTTP/2 connection over a Duplex, for either role. */
export class Http2Session extends EventEmitter {
  readonly connection: Http2Connection;
  readonly timers: TimerGroup;
  readonly highWaterMark: number;
  readonly maxReplayBytes: number;
  /**
   * Client: called with a request the server refused unprocessed (RFC 9113 §8.7) — above
   * its GOAWAY's last stream id, reset with REFUSED_STREAM, or made after GOAWAY arrived —
   * when the request can be sent again. The handler later calls stream.migrate(otherSession)
   * or stream.failRetry(). Unset, such requests fail with REFUSED_STREAM (the Agent sets it).
   */
  retryRefused: ((stream: Http2Stream) => void) | undefined;
  /** Times a refused request may be sent again. */
  maxRetries = 2;
  private readonly streams = new Map<number, Http2Stream>();
  private timer: Timer | undefined;
  /** Bounds how long a closing session waits for its last bytes to drain. */
  private linger: Timer | undefined;
  private timerAt: number | undefined;
  private destroyed = false;
  private flushing = false;
  /** Delivering a received chunk's events: flushes wait for the one after them. */
  private receiving = false;
  /**
   * The transport can carry bytes now (connected; TLS handshake done). Until then the
   * connection's frames stay in it: taking them is what starts their clocks (see flush).
   */
  private transportReady = false;
  /** Our PINGs awaiting their ACK: the RTT counts from when the PING left (see flush). */
  private pings: { payload: Uint8Array; sentAt: number | undefined; cb: PingCallback }[] = [];
  closed = false;
  alpnProtocol: string | undefined;

  constructor(
    readonly socket: Duplex,
    readonly role: 'client' | 'server',
    options: SessionOptions = {},
  ) {
    super();
    this.highWaterMark = options.highWaterMark ?? 64 * 1024;
    this.maxReplayBytes = options.maxReplayBytes ?? 64 * 1024;
    this.timers = new TimerGroup(options.clock ?? new RealClock());
    const o: Http2ConnectionOptions = { role };
    if (options.settings) o.settings = options.settings;
    if (options.limits) o.limits = options.limits;
    if (options.connectionWindow) o.connectionWindow = options.connectionWindow;
    if (options.trace) o.trace = options.trace;
    if (options.hostName) o.hostName = options.hostName;
    this.connection = new Http2Connection(o);
    this.connection.start(this.timers.now());
    // Frames are already batched per flush; Nagle would only add delayed-ACK stalls.
    (socket as Partial<net.Socket>).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.destroyed) return;
      // Handlers run for this chunk's events may each end a response (and ask for a flush):
      // one flush after them all writes every answer at once, not one write per stream.
      this.receiving = true;
      try {
        this.dispatch(
          this.connection.receive(
            new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length),
            this.timers.now(),
          ),
        );
      } finally {
        this.receiving = false;
      }
      this.flush();
    });
    // The peer's FIN: it sends nothing more, but may still read our last frames (GOAWAY).
    socket.on('end', () => {
      this.peerEnded = true;
      this.shutdownTransport();
    });
    socket.on('close', () => this.destroy());
    // A transport reset once either side said GOAWAY is how many peers hang up (node:http2
    // destroys its socket after the GOAWAY exchange): the session ends quietly.
    socket.on('error', (e) => this.destroy(this.goingAway() ? undefined : e));
    this.awaitTransport();
    this.flush();
  }

  /**
   * A client's transport is usually still connecting when the session starts (connect()
   * hands us the socket at once), and over TLS its handshake follows. Bytes written before
   * then only wait in the socket, so their time has not started: the connection's SETTINGS
   * ACK deadline (RFC 9113 §6.5.3) and a PING's RTT would count the TCP and TLS handshakes
   * too — on a slow path the session died of SETTINGS_TIMEOUT though the ACK came one RTT
   * after the frame could leave. So the session takes no output until the transport is up:
   * not `connecting` (net.Socket, our TCP socket), not `secureConnecting` (node:tls), and
   * for a TLS socket an `alpnProtocol` that is no longer null (both node:tls and ours keep
   * it null until the handshake is done). node:http2 waits on the same flags.
   */
  private awaitTransport(): void {
    const t = this.socket as Duplex & {
      connecting?: boolean;
      secureConnecting?: boolean;
      alpnProtocol?: string | false | null;
    };
    const tlsPending = t.secureConnecting === true || ('alpnProtocol' in t && t.alpnProtocol === null);
    if (t.connecting !== true && !tlsPending) {
      this.transportReady = true;
      return;
    }
    const events = ['connect', 'secureConnect', 'secure'] as const;
    const recheck = () => {
      for (const e of events) t.off(e, recheck);
      if (this.destroyed) return;
      this.awaitTransport();
      if (this.transportReady) {
        // A close asked for while connecting starts its linger now that bytes can drain.
        if (this.shuttingDown && !this.linger) this.armLinger();
        this.flush();
      }
    };
    for (const e of events) t.on(e, recheck);
  }

  get remoteSettings(): Http2Settings {
    return this.connection.remoteSettings;
  }
  get localSettings(): Http2Settings {
    return this.connection.localSettings;
  }

  /** Client: a request stream (node:http2's ClientHttp2Session.request). */
  request(headers: OutgoingHeaders, options: { endStream?: boolean } = {}): Http2Stream {
    const h: OutgoingHeaders = { ':method': 'GET', ':path': '/', ':scheme': this.scheme, ...headers };
    if (h[':authority'] === undefined && this.authority) h[':authority'] = this.authority;
    const method = String(h[':method']);
    const endStream = options.endStream ?? (method === 'GET' || method === 'HEAD');
    let id: number;
    try {
      id = this.connection.request(toHeaderList(h), endStream);
    } catch (e) {
      // GOAWAY came before this request went out (RFC 9113 §6.8): it was never sent, so
      // it may go on another connection.
      if (!(e instanceof Http2Error) || e.code !== ErrorCode.REFUSED_STREAM || !this.retryRefused) throw e;
      const s = new Http2Stream(this, 0);
      s.recordRequest(h);
      if (endStream) {
        s.ended = true;
        s.end();
      }
      s.beginRetry();
      const retry = this.retryRefused;
      queueMicrotask(() => retry(s));
      return s;
    }
    const s = this.adopt(id);
    if (this.retryRefused) s.recordRequest(h);
    if (endStream) {
      s.ended = true;
      s.end();
    }
    this.flush();
    return s;
  }

  /** Set by connect(): the default :authority and :scheme. */
  authority: string | undefined;
  scheme = 'http';

  /**
   * PING (RFC 9113 §6.7); `cb` gets the round-trip time in ms, from when the PING left (not
   * from this call: a session whose transport is still connecting holds it until then).
   */
  ping(payload: Uint8Array = new Uint8Array(8), cb?: PingCallback): void {
    if (cb) {
      // Bounded as the PINGs a peer may send us: a peer that never ACKs cannot grow it.
      if (this.pings.length >= this.connection.limits.pingBurst) {
        cb(new Error('too many PINGs awaiting an ACK'), 0, payload);
        return;
      }
      this.pings.push({ payload, sentAt: undefined, cb });
    }
    this.connection.ping(payload);
    this.flush();
  }

  /** A PING ACK: the oldest of our PINGs with this payload (RFC 9113 §6.7: the ACK echoes it). */
  private onPingAck(payload: Uint8Array): void {
    const i = this.pings.findIndex((p) => sameBytes(p.payload, payload));
    if (i < 0) return;
    const [p] = this.pings.splice(i, 1);
    if (!p) return;
    const now = this.timers.now();
    p.cb(null, now - (p.sentAt ?? now), payload);
  }

  settings(s: Partial<Http2Settings>): void {
    this.connection.updateSettings(s, this.timers.now());
    this.flush();
  }

  /** GOAWAY (RFC 9113 §6.8); NO_ERROR lets in-flight streams finish. */
  goaway(code: number = ErrorCode.NO_ERROR, _lastStreamId?: number, data?: Uint8Array): void {
    this.connection.goaway(code, data);
    this.flush();
  }

  /** Graceful close: no new streams; the transport ends once every stream has finished. */
  close(cb?: () => void): void {
    if (cb) this.once('close', cb);
    if (this.connection.isClosed) this.destroy();
    else this.goaway(ErrorCode.NO_ERROR);
  }

  private peerEnded = false;
  private shuttingDown = false;

  /** GOAWAY sent or received, or the transport is being shut down. */
  private goingAway(): boolean {
    return this.shuttingDown || this.connection.phase === 'closing' || this.connection.phase === 'closed';
  }

  /**
   * Ends the transport in order: our FIN once the last frames are handed over, then destroy
   * when the peer's FIN has come too. Destroying right after our own FIN made the TCP below
   * answer the peer's closing GOAWAY with a RST (data for a socket already closed); a second
   * of linger bounds a peer that never closes its side or never reads.
   */
  private shutdownTransport(): void {
    if (this.destroyed) return;
    if (this.socket.destroyed || (this.peerEnded && this.socket.writableFinished)) {
      this.destroy();
      return;
    }
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    // The linger bounds draining, which cannot begin before the transport is up: a close
    // asked for while connecting arms it then (awaitTransport).
    if (this.transportReady) this.armLinger();
    this.socket.once('finish', () => this.shutdownTransport());
    if (!this.socket.writableEnded) this.socket.end();
  }

  private armLinger(): void {
    this.linger = this.timers.setTimer(this.timers.now() + 1000, () => this.destroy());
  }

  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.linger?.cancel();
    this.linger = undefined;
    for (const s of this.streams.values())
      s.destroy(
        s.listenerCount('error') > 0
          ? (err ?? new Error('ERR_HTTP2_STREAM_CANCEL: session closed'))
          : undefined,
      );
    this.streams.clear();
    for (const p of this.pings.splice(0))
      p.cb(
        err ?? Object.assign(new Error('HTTP2 ping cancelled'), { code: 'ERR_HTTP2_PING_CANCEL' }),
        0,
        p.payload,
      );
    if (!this.socket.destroyed) this.socket.destroy();
    if (err) this.emit('error', err);
    this.emit('close');
  }

  /** @internal */
  adopt(id: number): Http2Stream {
    const s = new Http2Stream(this, id);
    this.streams.set(id, s);
    return s;
  }

  /** @internal The h2c upgrade's request as stream 1 (see Http2Server.handleUpgrade). */
  acceptUpgrade(settingsPayload: Uint8Array, request: HeaderField[]): void {
    this.connection.acceptUpgrade(settingsPayload, request, this.timers.now());
    this.dispatch(this.connection.takeEvents());
    this.flush();
  }

  /** @internal A stream moved here from another session (a retried request). */
  attach(s: Http2Stream, id: number): void {
    this.streams.set(id, s);
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
  }

  private flushScheduled = false;
  /** @internal A flush after the current synchronous work (coalesces writes and end()). */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** @internal Streams whose last write waits for queued data to leave (backpressure). */
  readonly waitingWriters = new Set<Http2Stream>();
  private corked = false;
  /**
   * Writes are corked until the end of the current tick: the many small flushes one batch
   * of requests causes leave as one writev, not one system call each.
   */
  private write(bytes: Uint8Array): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  /** Writes whatever the connection has ready, delivers its events, re-arms the timer. */
  flush(): void {
    if (this.flushing || this.destroyed || this.receiving) return;
    this.flushing = true;
    try {
      for (let i = 0; i < 64; i++) {
        // Taking output is sending it (it starts the SETTINGS ACK clock): not before the
        // transport is up; the frames wait in the connection meanwhile.
        const out = this.transportReady ? this.connection.output(this.timers.now()) : new Uint8Array(0);
        if (out.length > 0) {
          // Any PING of ours was in it (the connection writes its control queue whole).
          for (const p of this.pings) p.sentAt ??= this.timers.now();
          if (!this.socket.destroyed) this.write(out);
        }
        const evs = this.connection.takeEvents();
        this.dispatch(evs);
        if (out.length === 0 && evs.length === 0) break;
      }
      // Written data frees room in stream queues even without a WINDOW_UPDATE.
      for (const w of [...this.waitingWriters]) w.onDrain();
    } finally {
      this.flushing = false;
    }
    this.arm();
  }

  private arm(): void {
    const at = this.connection.nextTimeout();
    if (at === this.timerAt) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined || this.destroyed) return;
    this.timer = this.timers.setTimer(at, () => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.dispatch(this.connection.onTimeout(this.timers.now()));
      this.flush();
    });
  }

  private dispatch(evs: Http2Event[]): void {
    for (const e of evs) {
      switch (e.type) {
        case 'remoteSettings':
          this.emit('remoteSettings', e.settings);
          if (!this.connectedOnce) {
            this.connectedOnce = true;
            this.emit('connect', this, this.socket);
          }
          break;
        case 'settingsAck':
          this.emit('localSettings', this.connection.localSettings);
          break;
        case 'headers': {
          const h = toHeaderObject(e.headers);
          let s = this.streams.get(e.streamId);
          if (e.kind === 'request') {
            s = this.adopt(e.streamId);
            s.headers = h;
            if (e.endStream) s.push(null);
            this.emit('stream', s, h, { endStream: e.endStream });
            break;
          }
          if (!s) break;
          if (e.kind === 'informational') s.emit('headers', h);
          else if (e.kind === 'response') {
            s.headers = h;
            s.dropReplay();
            s.emit('response', h, { endStream: e.endStream });
          } else {
            s.trailers = h;
            s.emit('trailers', h);
          }
          if (e.endStream) s.push(null);
          break;
        }
        case 'data':
          this.streams.get(e.streamId)?.onData(e.data, e.endStream);
          break;
        case 'push': {
          const parent = this.streams.get(e.streamId);
          const s = this.adopt(e.promisedStreamId);
          const h = toHeaderObject(e.headers);
          s.headers = undefined;
          if (parent && parent.listenerCount('push') > 0) parent.emit('push', s, h);
          else if (this.listenerCount('stream') > 0) this.emit('stream', s, h, { endStream: false });
          else s.close(ErrorCode.REFUSED_STREAM);
          break;
        }
        case 'streamReset': {
          const s = this.streams.get(e.streamId);
          if (!s) break;
          // RFC 9113 §8.7: a request refused before any processing may be retried.
          const retry = this.retryRefused;
          if (
            retry &&
            this.role === 'client' &&
            e.remote &&
            e.errorCode === ErrorCode.REFUSED_STREAM &&
            s.canRetry(this.maxRetries)
          ) {
            this.streams.delete(e.streamId);
            s.beginRetry();
            retry(s);
            break;
          }
          s.rstCode = e.errorCode;
          this.streams.delete(e.streamId);
          // As node:http's messages: an error reaches 'error' only when someone listens, so a
          // handler that does not care about resets cannot crash the process.
          const quiet = e.errorCode === ErrorCode.NO_ERROR || e.errorCode === ErrorCode.CANCEL;
          if (quiet || s.listenerCount('error') === 0) {
            s.push(null);
            s.destroy();
          } else
            s.destroy(new Http2Error(e.errorCode, `stream reset: ${errorCodeName(e.errorCode)}`, e.streamId));
          break;
        }
        case 'streamClosed': {
          const s = this.streams.get(e.streamId);
          if (s) {
            this.streams.delete(e.streamId);
            s.emit('streamClosed');
          }
          break;
        }
        case 'drain':
          this.streams.get(e.streamId)?.onDrain();
          break;
        case 'goaway':
          this.emit('goaway', e.errorCode, e.lastStreamId, e.debugData);
          break;
        case 'ping':
          this.emit('ping', e.payload);
          break;
        case 'pingAck':
          this.onPingAck(e.payload);
          break;
        case 'priorityUpdate':
          break;
        case 'close': {
          // Let the last frames (GOAWAY) reach the socket, then end it (a socket still
          // connecting holds them until it can send).
          const out = this.connection.output(this.timers.now());
          if (out.length > 0 && !this.socket.destroyed) this.socket.write(out);
          this.emit('connectionClose', e.errorCode, e.reason);
          if (this.socket.destroyed || this.socket.writableFinished) {
            setImmediate(() => this.destroy());
            break;
          }
          this.shutdownTransport();
          break;
        }
      }
    }
  }
  private connectedOnce = false;
}
