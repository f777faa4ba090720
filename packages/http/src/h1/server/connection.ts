import type { Duplex } from 'node:stream';
import { type Field, type HttpParseError, listTokens, STATUS_TEXT } from '../codec.ts';
import { Http1Connection, type Http1Event, type RequestInfo, type TimeoutKind } from '../connection.ts';
import { IncomingMessage, ServerResponse } from '../messages.ts';
import type { DeadlineHolder } from './deadlines.ts';
import { handOffToHttp2, isPrefacePrefix, PREFACE_LENGTH, upgradeToHttp2 } from './h2.ts';
import { H1ResponseChannel } from './response.ts';
import type { HttpClientError, HttpServer } from './server.ts';

function clientError(e: HttpParseError): HttpClientError {
  const code = e.status === 431 ? 'HPE_HEADER_OVERFLOW' : `HPE_${e.kind.toUpperCase().replace(/-/g, '_')}`;
  return Object.assign(new Error(`Parse Error: ${e.reason}`), { code, status: e.status, kind: e.kind });
}

/**
 * What this connection's deadline (held by the server's DeadlineWheel) means when it comes:
 * the core's own (headers, request, keep-alive: its onTimeout says which); the end of the
 * linger after our close (RFC 9112 §9.6); or the end of the wait for a client to read the
 * error status we answered before closing.
 */
type DeadlineFor = 'core' | 'linger' | 'answered';

/** One connection: the driver of an Http1Connection over a Duplex. */
export class H1ServerConnection implements DeadlineHolder {
  private readonly conn: Http1Connection;
  /** @internal Written by the server's DeadlineWheel only. */
  deadlineAt = Number.POSITIVE_INFINITY;
  /** @internal Written by the server's DeadlineWheel only. */
  deadlineSlot = -1;
  private deadlineFor: DeadlineFor = 'core';
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
  /** @internal Written by the server only: where its list of open connections keeps this one. */
  openSlot = -1;
  /**
   * Cleartext connections where HTTP/2 is on: the first bytes, until they match or rule out
   * the h2 preface (RFC 9113 §3.4); undefined once this is known to be HTTP/1.1.
   */
  private sniffed: Buffer | undefined;
  /** For the request's reader: it wants more body (resume the socket). Made on the first request. */
  private onReqRead: (() => void) | undefined;

  constructor(
    private readonly server: HttpServer,
    private readonly socket: Duplex,
    private readonly id: number,
    /** When the connection was accepted: its first head's deadline counts from here. */
    acceptedAt: number,
    /** Look for the h2 preface in the first bytes first. */
    sniff = false,
  ) {
    if (sniff) this.sniffed = EMPTY;
    this.conn = new Http1Connection({
      role: 'server',
      shared: server.shared,
      now: acceptedAt,
    });
    if (server.tracing) {
      // remoteAddress asks the kernel (getpeername): only when someone reads the trace
      const remote = (socket as { remoteAddress?: string }).remoteAddress;
      const port = (socket as { remotePort?: number }).remotePort;
      server.trace(id, 'in', `accept${remote ? ` ${remote}:${port}` : ''}`, { remote, port });
    }
    // State changes of both sides, each with the rule that made it, for the ladder — only
    // on a server with a trace bus (no closure per connection otherwise).
    if (server.options.trace)
      this.conn.state.onChange = (role, from, to, rfc) => {
        if (server.tracing)
          server.trace(id, 'local', `${role} ${from} -> ${to}`, { role }, rfc, undefined, { from, to });
      };
    // The socket's listeners are functions shared by every connection, which find theirs on
    // the socket (as node:http's socketOnData finds its parser): no closures per connection.
    (socket as ConnSocket)[CONNECTION] = this;
    socket.on('data', socketOnData);
    socket.on('end', socketOnEnd);
    socket.on('error', socketOnError);
    socket.on('close', socketOnClose);
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

  /**
   * Until the first bytes rule out the h2 preface: undefined while they are (so far) the
   * preface — more are awaited, or the connection went to HTTP/2 — else the HTTP/1.1 bytes
   * to parse (what was held back, then `d`).
   */
  private sniff(d: Buffer): Buffer | undefined {
    const before = this.sniffed;
    if (before === undefined) return d;
    const seen = before.length === 0 ? d : Buffer.concat([before, d]);
    if (isPrefacePrefix(seen)) {
      if (seen.length < PREFACE_LENGTH) {
        this.sniffed = seen;
        return undefined;
      }
      // RFC 9113 §3.4: HTTP/2 with prior knowledge. The HTTP/1.1 driver steps aside.
      this.sniffed = undefined;
      this.detach();
      this.server.forget(this);
      handOffToHttp2(this.server, this.socket, seen);
      return undefined;
    }
    this.decidedHttp1();
    return seen;
  }

  /** The first bytes were not the h2 preface (or never came): an HTTP/1.1 connection. */
  private decidedHttp1(): void {
    if (this.sniffed === undefined) return;
    this.sniffed = undefined;
    const hot = this.server.hot;
    (hot.accepted ??= this.server.counters.counter('accepted')).value++;
  }

  /** @internal From the socket's listeners. */
  receiveData(chunk: Buffer): void {
    if (this.detached || this.closed) return;
    const d = this.sniffed === undefined ? chunk : this.sniff(chunk);
    if (d === undefined) return;
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
  }

  /** @internal From the socket's listeners. */
  receiveEnd(): void {
    if (this.detached || this.closed) return;
    const partial = this.sniffed;
    this.decidedHttp1();
    // part of a preface, then FIN: parsed as the HTTP/1.1 bytes they are (a 400)
    if (partial !== undefined && partial.length > 0) this.conn.feed(partial, this.server.timers.now());
    if (this.depth > 0) {
      this.eofPending = true;
      this.wantPump = true;
      return;
    }
    this.handle(this.conn.receiveEof(this.server.timers.now()));
  }

  /** @internal From the socket's listeners. */
  socketError(e: Error): void {
    if (this.sniffed?.length === 0) {
      // A peer that resets before its first byte (ECONNRESET): counted and closed.
      this.server.counters.inc('error.before-first-byte');
      this.socket.destroy();
      return;
    }
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
  }

  /** @internal From the socket's listeners. */
  socketClosed(): void {
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
    this.letGoOfObjects();
  }

  /**
   * After 'close' nothing of this connection is needed: the socket's link to it and its
   * links to the last exchange are cut. A closed socket can stay reachable a while from
   * objects V8 keeps in the old generation (an EventEmitter's listener table is allocated
   * there once long-lived emitters made its site pretenured): every scavenge until the
   * next mark-compact would otherwise copy and promote the whole connection with it, and
   * V8 would then pretenure our per-request objects too.
   */
  private letGoOfObjects(): void {
    (this.socket as ConnSocket)[CONNECTION] = undefined;
    this.req = undefined;
    this.res = undefined;
    this.info = undefined;
  }

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
    (s.hot.requests ??= s.counters.counter('requests')).value++;
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
      onRead: (this.onReqRead ??= () => this.resumeForReader()),
    });
    this.req = req;
    this.info = e;
    this.clientCloses = !e.keepAlive;
    this.dumping = false;
    // RFC 7540 §3.2: `Upgrade: h2c` continues as HTTP/2, with this request as stream 1.
    if (e.upgrade && upgradeToHttp2(s, this.socket, h, () => this.letGo())) return;
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
    // 'on', not 'once': a Writable emits 'finish' at most once, and once() wraps the
    // listener in a closure and a state object per response
    res.on('finish', responseOnFinish);
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

  /** @internal The response went out entirely ('finish' of this cycle's response). */
  onResponseDone(): void {
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

  /**
   * RFC 9112 §9.6: close in stages — our FIN after the response, then read (and drop) until
   * the client's FIN, so data it already sent does not turn our close into a reset. A client
   * that never closes does not keep the socket: it goes after LINGER_MS (nginx's
   * lingering_timeout), counted.
   */
  private closeAfterResponse(): void {
    if (this.lingering) return;
    this.disarm();
    if (this.closed) {
      if (!this.socket.writableEnded) this.socket.end();
      return;
    }
    if (this.clientCloses && this.conn.bufferedBytes === 0) {
      // The client said close (RFC 9112 §9.6: it then sends no further request) and sent
      // nothing after: nothing can turn our close into a reset, so the socket goes as soon
      // as the response is flushed, as node:http's destroySoon() — no wait for its FIN.
      this.lingering = true;
      if (this.socket.writableEnded) this.socket.destroy();
      else {
        // a shared listener, not a closure per connection ('finish' comes at most once)
        this.socket.on('finish', socketDestroy);
        this.socket.end();
      }
      return;
    }
    if (!this.socket.writableEnded) this.socket.end();
    this.lingering = true;
    this.deadlineFor = 'linger';
    this.server.deadlines.set(this, this.server.timers.now() + LINGER_MS);
  }

  /** @internal The server's DeadlineWheel: this connection's deadline came. */
  onDeadline(now: number): void {
    if (this.closed || this.detached) return;
    const s = this.server;
    switch (this.deadlineFor) {
      case 'core':
        // silent (or a preface never finished) until the headers timeout: HTTP/1.1's 408
        this.decidedHttp1();
        this.handle(this.conn.onTimeout(now));
        this.arm();
        return;
      case 'linger':
        s.counters.inc('linger-timeout');
        if (s.tracing)
          s.trace(
            this.id,
            'drop',
            'client did not close: connection dropped',
            undefined,
            'RFC 9112 §9.6',
            'linger-timeout',
          );
        this.socket.destroy();
        return;
      case 'answered':
        // a client that never reads its answer does not keep the socket
        this.socket.destroy();
        return;
    }
  }

  private lingering = false;
  /** The request of this cycle said Connection: close (or was HTTP/1.0 without keep-alive). */
  private clientCloses = false;

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
      // a client that never reads its answer does not keep the socket (the deadline goes
      // with the connection's close)
      this.deadlineFor = 'answered';
      this.server.deadlines.set(this, this.server.timers.now() + ANSWERED_MS);
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

  /** Stops driving the socket; returns the octets read past the current request. */
  private letGo(): Uint8Array {
    const rest = this.conn.detach();
    this.detach();
    return rest;
  }

  private detach(): void {
    this.detached = true;
    this.disarm();
    const socket = this.socket as ConnSocket;
    socket.off('data', socketOnData);
    socket.off('end', socketOnEnd);
    socket.off('error', socketOnError);
    socket.once('close', () => this.server.forget(this));
    socket.off('close', socketOnClose);
    socket[CONNECTION] = undefined;
  }

  /**
   * Hand the core's next deadline to the server's wheel: a number on this object, so a busy
   * keep-alive connection that moves it later with every request arms no timer for it.
   */
  private arm(): void {
    if (this.closed || this.detached || this.lingering || this.deadlineFor !== 'core') return;
    const at = this.conn.nextTimeout();
    if (at === undefined) this.server.deadlines.clear(this);
    else if (at !== this.deadlineAt) this.server.deadlines.set(this, at);
  }

  private disarm(): void {
    this.server.deadlines.clear(this);
  }
}

/** An Expect field with at least one expectation in it (list parsed only when one is there). */
function hasExpectation(fields: readonly Field[]): boolean {
  for (const [n] of fields)
    if (n.length === 6 && n.toLowerCase() === 'expect') return listTokens(fields, 'expect').length > 0;
  return false;
}

const EMPTY = Buffer.alloc(0);

/** Where a socket keeps the connection that drives it (for the shared listeners below). */
const CONNECTION: unique symbol = Symbol('stepwire.h1.connection');
type ConnSocket = Duplex & { [CONNECTION]?: H1ServerConnection | undefined };

function socketOnData(this: ConnSocket, d: Buffer): void {
  this[CONNECTION]?.receiveData(d);
}

function socketOnEnd(this: ConnSocket): void {
  this[CONNECTION]?.receiveEnd();
}

function socketOnError(this: ConnSocket, e: Error): void {
  this[CONNECTION]?.socketError(e);
}

function socketOnClose(this: ConnSocket): void {
  this[CONNECTION]?.socketClosed();
}

function socketDestroy(this: Duplex): void {
  this.destroy();
}

/** 'finish' of a response: the connection of its socket, if it still drives it, moves on. */
function responseOnFinish(this: ServerResponse): void {
  (this.socket as ConnSocket)[CONNECTION]?.onResponseDone();
}

/** How long a connection we closed waits for the client's FIN (ms). */
const LINGER_MS = 5000;
/** How long a client has to read the error status we answered before we close (ms). */
const ANSWERED_MS = 1000;
