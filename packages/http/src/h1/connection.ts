import {
  decodeChunkHeader,
  decodeRequestHead,
  decodeResponseHead,
  decodeTrailerSection,
  encodeChunkHeader,
  encodeRequestHead,
  encodeResponseHead,
  encodeResponseHeadText,
  encodeTrailerSection,
  type Field,
  HttpParseError,
  type RequestHead,
  type ResponseHead,
  responseHeadSize,
} from './codec.ts';
import type { Http1ConnectionOptions, Http1Event, Http1SendEvent } from './events.ts';
import {
  type Framing,
  frameOf,
  LocalProtocolError,
  type RequestInfo,
  requestInfo,
  responseFraming,
  responseKeepAlive,
} from './framing.ts';
import {
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUTS,
  type Http1Limits,
  type Http1Timeouts,
  type TimeoutKind,
} from './limits.ts';
import {
  ConnectionState,
  type MessageEvent,
  ProtocolStateError,
  type Role,
  type SideState,
  type SwitchKind,
} from './state.ts';

// The events in and out, the framing rules (RFC 9112 §6, §9.3) and the limits/timeouts
// live in their own files; re-exported here, where they were first defined, for existing
// imports.
export type { Http1ConnectionOptions, Http1Event, Http1SendEvent } from './events.ts';
export {
  type Framing,
  LocalProtocolError,
  type RequestInfo,
  requestInfo,
  responseFraming,
  responseKeepAlive,
} from './framing.ts';
export {
  type ClientTimeoutKind,
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUTS,
  type Http1Limits,
  type Http1Timeouts,
  type ServerTimeoutKind,
  type TimeoutKind,
} from './limits.ts';

/**
 * A sans-I/O HTTP/1.1 connection for either role: bytes in → events out, events in →
 * bytes out. No socket, no timer, no clock: `now` comes in with every call and the next
 * deadline goes out through `nextTimeout()`. The state rules live in state.ts.
 */

type BodyReader =
  | { kind: 'length'; remaining: number }
  | { kind: 'close' }
  | { kind: 'chunked'; phase: 'size' | 'data' | 'data-crlf' | 'trailers'; remaining: number };

type BodyWriter =
  | { kind: 'length'; remaining: number }
  | { kind: 'chunked' }
  | { kind: 'close' }
  | { kind: 'none' };

const EMPTY = new Uint8Array(0);
/**
 * The empty receive buffer, shared: Buffer.alloc(0) makes an ArrayBuffer of its own, and
 * one per connection (and per drop) is work for every scavenge. A zero-length buffer
 * cannot be written through, so sharing it is safe.
 */
const NO_BYTES: Buffer = Buffer.alloc(0);
/** The writer of no body, shared (only a length writer changes as it counts). */
const NO_WRITER: BodyWriter = { kind: 'none' };
/** No trailer fields (shared: finishBody only reads it). */
const NO_FIELDS: Field[] = [];
const CRLF_BUF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n');

/**
 * The 'request' event. A class, not an object literal: V8 tracks a literal's allocation
 * site, and once the objects of a site outlive a few scavenges (a driver keeps this event
 * for a whole cycle, and keep-alive cycles wait on the network) it allocates every later
 * one straight into the old generation; short-lived ones then cost a mark-compact each to
 * reclaim. With a literal here and in ConnectionState's facts, GC was half the CPU of an
 * in-memory Connection: close request (V8's --trace-pretenuring-statistics showed the
 * sites tenured; --no-allocation-site-pretenuring halved the CPU per request).
 */
class RequestEvent {
  readonly type = 'request' as const;
  readonly framing: Framing;
  readonly keepAlive: boolean;
  readonly expectContinue: boolean;
  readonly upgrade: string[] | undefined;
  constructor(
    readonly head: RequestHead,
    info: RequestInfo,
  ) {
    this.framing = info.framing;
    this.keepAlive = info.keepAlive;
    this.expectContinue = info.expectContinue;
    this.upgrade = info.upgrade;
  }
}

export class Http1Connection {
  readonly role: Role;
  readonly state = new ConnectionState();
  readonly limits: Http1Limits;
  readonly timeouts: Http1Timeouts;
  private buf: Buffer = NO_BYTES;
  private scanFrom = 0;
  private reader: BodyReader | undefined;
  private writer: BodyWriter = NO_WRITER;
  private bodyBytes = 0;
  /** The method of the request in this cycle (a response to HEAD has no body, §6.3). */
  private method = '';
  private eof = false;
  /** Server role: when the current request began, when the connection last went idle. */
  private requestStart: number | undefined;
  private idleSince: number;
  private startedAt: number;
  private timedOut = false;
  /** Client role: when our request ended (or the last 1xx came): the response is awaited since. */
  private waitingSince: number | undefined;
  /** Client role: when the server's last bytes came. */
  private lastByteAt = 0;
  /** Client role: a response or body deadline that fired; not returned again until progress moves it. */
  private firedAt: number | undefined;
  private switchedRest: Uint8Array | undefined;
  private clockHint = 0;
  /** Bytes received after a message that ended the connection, dropped. */
  droppedBytes = 0;

  constructor(options: Http1ConnectionOptions) {
    this.role = options.role;
    // no limits given (every connection of a default server): the defaults themselves, not
    // a copy per connection (nothing writes to a connection's limits)
    const shared = options.shared;
    this.limits =
      shared?.limits ??
      (options.limits === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...options.limits });
    this.timeouts = shared?.timeouts ?? { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.startedAt = options.now ?? 0;
    this.idleSince = this.startedAt;
  }

  private get peer(): Role {
    return this.role === 'server' ? 'client' : 'server';
  }

  get ourState(): SideState {
    return this.state.get(this.role);
  }

  get theirState(): SideState {
    return this.state.get(this.peer);
  }

  /** Bytes received and not yet turned into events (pipelined requests wait here). */
  get bufferedBytes(): number {
    return this.buf.length;
  }

  /** True while the connection may carry another request after this one. */
  get keepAlive(): boolean {
    return this.state.facts.keepAlive;
  }

  /** Requests (server) or responses (client) completed on this connection. */
  get cycles(): number {
    return this.state.cycles;
  }

  /** Feed bytes from the peer; returns the events they complete. */
  receive(data: Uint8Array, now = 0): Http1Event[] {
    this.feed(data, now);
    return this.pump(now);
  }

  /** Buffer bytes without parsing them yet (pump() parses). */
  feed(data: Uint8Array, now = 0): void {
    if (data.length > 0) {
      if (this.role === 'server') {
        if (this.requestStart === undefined && this.theirState === 'IDLE') this.requestStart = now;
      } else this.lastByteAt = now;
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    }
  }

  /** The peer closed its side (TCP FIN). */
  receiveEof(now = 0): Http1Event[] {
    this.eof = true;
    return this.pump(now);
  }

  /**
   * Parse what is buffered as far as the state allows. Call it after the cycle moves on
   * (a response finished) to get the next pipelined request.
   */
  pump(now = 0): Http1Event[] {
    this.clockHint = now;
    const out: Http1Event[] = [];
    try {
      for (;;) {
        const them = this.theirState;
        if (them === 'IDLE' && this.role === 'server') {
          if (this.buf.length === 0) break;
          if (this.requestStart === undefined) this.requestStart = now;
          if (!this.readRequestHead(out)) break;
        } else if (this.role === 'client' && them === 'SEND_RESPONSE' && this.state.client !== 'IDLE') {
          if (this.buf.length === 0) break;
          if (!this.readResponseHead(out)) break;
        } else if (them === 'SEND_BODY' && this.reader) {
          if (!this.readBody(out)) break;
        } else {
          // RFC 9112 §9.6: after a message that ends the connection nothing more is read;
          // dropping it keeps a peer from growing our buffer.
          if ((them === 'MUST_CLOSE' || them === 'CLOSED' || them === 'ERROR') && this.buf.length > 0) {
            this.droppedBytes += this.buf.length;
            this.buf = NO_BYTES;
          }
          break;
        }
      }
      if (this.eof) this.handleEof(out);
    } catch (e) {
      if (!(e instanceof HttpParseError)) throw e;
      this.state.fail(this.peer);
      this.reader = undefined;
      this.buf = NO_BYTES;
      out.push({ type: 'error', error: e });
    }
    return out;
  }

  private handleEof(out: Http1Event[]): void {
    const them = this.theirState;
    if (them === 'SEND_BODY' && this.reader?.kind === 'close') {
      // RFC 9112 §6.3 rule 8: a close-delimited body ends with the connection.
      this.reader = undefined;
      out.push({ type: 'end' });
      this.state.process(this.peer, 'end');
    }
    const s = this.theirState;
    if (s === 'IDLE' && this.buf.length > 0)
      throw new HttpParseError(
        'truncated',
        'head',
        this.buf.length,
        'connection closed inside a message head',
      );
    if (s === 'SEND_BODY' || (s === 'SEND_RESPONSE' && this.role === 'client'))
      throw new HttpParseError('truncated', 'body', this.bodyBytes, 'connection closed inside a message');
    if (s === 'IDLE' || s === 'DONE' || s === 'MUST_CLOSE' || s === 'CLOSED') {
      if (s !== 'CLOSED') {
        this.state.process(this.peer, 'closed');
        out.push({ type: 'closed' });
      }
    } else if (s !== 'ERROR') {
      out.push({ type: 'closed' });
    }
  }

  /** Find the end of a head: index just past its empty line, or −1 (limits checked). */
  private headEnd(isRequest: boolean): number {
    const b = this.buf;
    // RFC 9112 §2.2: ignore empty lines before a request-line.
    let skip = 0;
    if (isRequest) {
      while (b[skip] === 0x0d && b[skip + 1] === 0x0a && skip < this.limits.maxRequestLineSize) skip += 2;
    }
    if (isRequest) {
      const lf = b.indexOf(0x0a, skip);
      const lineLen = (lf < 0 ? b.length : lf) - skip;
      if (lineLen > this.limits.maxRequestLineSize)
        throw new HttpParseError(
          'uri-too-long',
          'request-line',
          skip,
          `request-line over ${this.limits.maxRequestLineSize} bytes`,
        );
    }
    const from = Math.max(skip, this.scanFrom - 3);
    // The section ends at the first empty line; LF-only endings are found too so that the
    // codec can reject them at once rather than waiting for a limit.
    let end = -1;
    for (let i = b.indexOf(0x0a, from); i >= 0; i = b.indexOf(0x0a, i + 1)) {
      if (b[i + 1] === 0x0a) {
        end = i + 2;
        break;
      }
      if (b[i + 1] === 0x0d && b[i + 2] === 0x0a) {
        end = i + 3;
        break;
      }
      if (i + 2 >= b.length) break;
    }
    if (end < 0) {
      this.scanFrom = b.length;
      if (b.length > this.limits.maxHeaderSize)
        throw new HttpParseError(
          'header-too-large',
          'header-section',
          this.limits.maxHeaderSize,
          `head over ${this.limits.maxHeaderSize} bytes`,
        );
      return -1;
    }
    if (end > this.limits.maxHeaderSize)
      throw new HttpParseError(
        'header-too-large',
        'header-section',
        this.limits.maxHeaderSize,
        `head over ${this.limits.maxHeaderSize} bytes`,
      );
    this.scanFrom = 0;
    return end;
  }

  private checkFields(fields: Field[]): void {
    if (fields.length > this.limits.maxFieldCount)
      throw new HttpParseError(
        'too-many-fields',
        'header-section',
        0,
        `more than ${this.limits.maxFieldCount} field lines`,
      );
    for (const [n, v] of fields)
      if (n.length + v.length + 2 > this.limits.maxFieldLineSize)
        throw new HttpParseError(
          'field-line-too-large',
          n,
          0,
          `field line over ${this.limits.maxFieldLineSize} bytes`,
        );
  }

  private take(n: number): Buffer {
    const b = this.buf;
    // a read that was exactly one head (most are) leaves no view of its end behind
    if (n === b.length) {
      this.buf = NO_BYTES;
      return b;
    }
    this.buf = b.subarray(n);
    return b.subarray(0, n);
  }

  private readRequestHead(out: Http1Event[]): boolean {
    const end = this.headEnd(true);
    if (end < 0) return false;
    const head = decodeRequestHead(this.take(end));
    this.checkFields(head.fields);
    const info = requestInfo(head, this.limits);
    this.method = head.method;
    this.bodyBytes = 0;
    if (info.upgrade) this.state.proposeSwitch('upgrade');
    else if (head.method === 'CONNECT') this.state.proposeSwitch('connect');
    this.state.process('client', 'request');
    if (!info.keepAlive) this.state.noKeepAlive();
    const bodiless = info.framing.kind === 'length' && info.framing.length === 0;
    // no reader for a request without a body (most): finishBody below ends it at once
    if (!bodiless) this.setReader(info.framing);
    // one object of a fixed shape, made by a class (the driver keeps it for the whole
    // cycle; an object literal here would have V8 pretenure it, see RequestEvent)
    out.push(new RequestEvent(head, info));
    if (bodiless) this.finishBody(out, NO_FIELDS);
    return true;
  }

  private readResponseHead(out: Http1Event[]): boolean {
    const end = this.headEnd(false);
    if (end < 0) return false;
    const head = decodeResponseHead(this.take(end));
    this.checkFields(head.fields);
    const pending = this.state.facts.pendingSwitch;
    if (head.status < 200) {
      if (head.status === 101 && pending === 'upgrade') {
        this.state.process('server', 'informational', 'upgrade');
        out.push({ type: 'upgrade', head, rest: this.takeAll() });
        return true;
      }
      // RFC 9110 §15.2: 1xx responses are interim; the final response follows (and its
      // deadline counts from this one).
      this.state.process('server', 'informational');
      this.waitingSince = this.clockHint;
      out.push({ type: 'informational', head });
      return true;
    }
    if (pending === 'connect' && head.status < 300) {
      this.state.process('server', 'response', 'connect');
      out.push({ type: 'upgrade', head, rest: this.takeAll() });
      return true;
    }
    this.state.declineSwitch();
    const framing = responseFraming(this.method, head, this.limits);
    if (!responseKeepAlive(head, framing)) this.state.noKeepAlive();
    this.state.process('server', 'response');
    this.setReader(framing);
    out.push({ type: 'response', head, framing });
    if (framing.kind === 'length' && framing.length === 0) this.finishBody(out, NO_FIELDS);
    return true;
  }

  private takeAll(): Uint8Array {
    const rest = this.buf;
    this.buf = NO_BYTES;
    return rest;
  }

  private setReader(f: Framing): void {
    this.reader =
      f.kind === 'length'
        ? { kind: 'length', remaining: f.length }
        : f.kind === 'chunked'
          ? { kind: 'chunked', phase: 'size', remaining: 0 }
          : { kind: 'close' };
  }

  private countBody(n: number): void {
    this.bodyBytes += n;
    if (this.bodyBytes > this.limits.maxBodySize)
      throw new HttpParseError(
        'body-too-large',
        'body',
        this.bodyBytes,
        `body over ${this.limits.maxBodySize} bytes`,
      );
  }

  private finishBody(out: Http1Event[], trailers: Field[]): void {
    this.reader = undefined;
    if (trailers.length > 0) out.push({ type: 'trailers', fields: trailers });
    out.push({ type: 'end' });
    this.state.process(this.peer, 'end');
    if (this.role === 'server') this.requestStart = undefined;
    // the cycle is over (both sides IDLE): idle from now, for either role's keep-alive
    if (this.state.client === 'IDLE') this.idleSince = this.clockHint;
  }

  /** Returns false when more bytes are needed. */
  private readBody(out: Http1Event[]): boolean {
    const r = this.reader;
    if (!r) return false;
    if (r.kind === 'length') {
      if (this.buf.length === 0) return false;
      const n = Math.min(r.remaining, this.buf.length);
      out.push({ type: 'data', data: this.take(n) });
      r.remaining -= n;
      if (r.remaining === 0) this.finishBody(out, NO_FIELDS);
      return true;
    }
    if (r.kind === 'close') {
      if (this.buf.length === 0) return false;
      this.countBody(this.buf.length);
      out.push({ type: 'data', data: this.takeAll() });
      return true;
    }
    // RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF
    switch (r.phase) {
      case 'size': {
        const lf = this.buf.indexOf(0x0a);
        if (lf < 0) {
          if (this.buf.length > this.limits.maxChunkLineSize)
            throw new HttpParseError('chunk-ext-too-large', 'chunk-size', 0, 'chunk-size line too long');
          return false;
        }
        if (lf === 0 || this.buf[lf - 1] !== 0x0d)
          throw new HttpParseError('bare-lf', 'chunk-size', lf, 'LF without CR');
        if (lf > this.limits.maxChunkLineSize)
          throw new HttpParseError('chunk-ext-too-large', 'chunk-size', 0, 'chunk-size line too long');
        const line = this.take(lf + 1).subarray(0, lf - 1);
        const cr = line.indexOf(0x0d);
        if (cr >= 0) throw new HttpParseError('bare-cr', 'chunk-size', cr, 'CR inside a chunk-size line');
        const { size } = decodeChunkHeader(line);
        if (size === 0) {
          r.phase = 'trailers';
        } else {
          this.countBody(size);
          r.phase = 'data';
          r.remaining = size;
        }
        return true;
      }
      case 'data': {
        if (this.buf.length === 0) return false;
        const n = Math.min(r.remaining, this.buf.length);
        out.push({ type: 'data', data: this.take(n) });
        r.remaining -= n;
        if (r.remaining === 0) r.phase = 'data-crlf';
        return true;
      }
      case 'data-crlf': {
        if (this.buf.length < 2) {
          if (this.buf.length === 1 && this.buf[0] !== 0x0d)
            throw new HttpParseError('bad-chunk-crlf', 'chunk-data', 0, 'no CRLF after chunk data');
          return false;
        }
        if (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a)
          throw new HttpParseError('bad-chunk-crlf', 'chunk-data', 0, 'no CRLF after chunk data');
        this.take(2);
        r.phase = 'size';
        return true;
      }
      case 'trailers': {
        let end: number;
        if (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) end = 2;
        else {
          if (this.buf.length >= 1 && (this.buf[0] === 0x20 || this.buf[0] === 0x09))
            throw new HttpParseError('obs-fold', 'trailer-section', 0, 'trailer starts with whitespace');
          const i = this.buf.indexOf('\r\n\r\n');
          if (i < 0) {
            const lfOnly = this.buf.indexOf('\n\n');
            if (lfOnly >= 0) end = lfOnly + 2;
            else {
              if (this.buf.length > this.limits.maxHeaderSize)
                throw new HttpParseError(
                  'header-too-large',
                  'trailer-section',
                  0,
                  'trailer section too large',
                );
              return false;
            }
          } else end = i + 4;
          if (end > this.limits.maxHeaderSize)
            throw new HttpParseError('header-too-large', 'trailer-section', 0, 'trailer section too large');
        }
        const fields = decodeTrailerSection(this.take(end));
        this.checkFields(fields);
        this.finishBody(out, fields);
        return true;
      }
    }
  }

  // --- sending ---

  /** Encode an event of our role; returns the bytes to write (possibly none). */
  send(ev: Http1SendEvent, now = 0): Uint8Array {
    const role = this.role;
    switch (ev.type) {
      case 'request': {
        if (role !== 'client') throw new LocalProtocolError('only a client sends requests');
        const info = requestInfo(ev.head, this.limits, true);
        if (this.state.client !== 'IDLE')
          throw new LocalProtocolError(`client cannot request in state ${this.state.client}`);
        if (info.upgrade) this.state.proposeSwitch('upgrade');
        else if (ev.head.method === 'CONNECT') this.state.proposeSwitch('connect');
        this.step('client', 'request');
        if (!info.keepAlive) this.state.noKeepAlive();
        this.method = ev.head.method;
        this.waitingSince = undefined;
        this.firedAt = undefined;
        this.writer =
          info.framing.kind === 'length'
            ? { kind: 'length', remaining: info.framing.length }
            : { kind: 'chunked' };
        return encodeRequestHead(ev.head);
      }
      case 'informational': {
        if (role !== 'server') throw new LocalProtocolError('only a server sends responses');
        if (ev.head.status >= 200 || ev.head.status < 100)
          throw new LocalProtocolError('informational status is 1xx');
        const bytes = encodeResponseHead(ev.head);
        const upgrade = ev.head.status === 101 && this.state.facts.pendingSwitch === 'upgrade';
        this.step('server', 'informational', upgrade ? 'upgrade' : undefined);
        if (upgrade) this.switchedRest = this.takeAll();
        return bytes;
      }
      case 'response':
        return Buffer.from(this.sendResponseText(ev.head), 'latin1');
      case 'data': {
        const side = this.ourState;
        if (side !== 'SEND_BODY') throw new LocalProtocolError(`cannot send data in state ${side}`);
        const w = this.writer;
        const d = ev.data;
        if (d.length === 0) return EMPTY;
        if (w.kind === 'none') return EMPTY;
        if (w.kind === 'length') {
          if (d.length > w.remaining)
            throw new LocalProtocolError(`body longer than Content-Length by ${d.length - w.remaining}`);
          w.remaining -= d.length;
          return d;
        }
        if (w.kind === 'close') return d;
        return Buffer.concat([encodeChunkHeader(d.length), d, CRLF_BUF]);
      }
      case 'end': {
        const side = this.ourState;
        if (side !== 'SEND_BODY') throw new LocalProtocolError(`cannot end a message in state ${side}`);
        const w = this.writer;
        let bytes: Uint8Array = EMPTY;
        if (w.kind === 'length' && w.remaining > 0)
          throw new LocalProtocolError(`body ${w.remaining} bytes short of Content-Length`);
        if (w.kind === 'chunked')
          bytes = Buffer.concat([LAST_CHUNK, encodeTrailerSection(ev.trailers ?? [])]);
        this.writer = NO_WRITER;
        this.step(role, 'end');
        if (this.state.get(role) === 'IDLE' || this.theirState === 'IDLE') this.idleSince = now;
        // the request is out: from here the client waits for the response head
        else if (role === 'client') this.waitingSince = now;
        return bytes;
      }
    }
  }

  /**
   * send({ type: 'response' }) with the head returned as latin1 text (one char per byte),
   * for a driver that joins it with the first body bytes in one buffer.
   */
  sendResponseText(head: ResponseHead): string {
    if (this.role !== 'server') throw new LocalProtocolError('only a server sends responses');
    if (head.status < 200) throw new LocalProtocolError('use informational for 1xx');
    const text = encodeResponseHeadText(head);
    this.responseSent(head);
    return text;
  }

  /**
   * send({ type: 'response' }) for a driver that writes the head itself (writeResponseHead,
   * into the buffer of its first body bytes): the head is checked and the state moves as
   * for sendResponseText; returns the head's size in bytes.
   */
  sendResponseSized(head: ResponseHead): number {
    if (this.role !== 'server') throw new LocalProtocolError('only a server sends responses');
    if (head.status < 200) throw new LocalProtocolError('use informational for 1xx');
    const size = responseHeadSize(head);
    this.responseSent(head);
    return size;
  }

  /** The state and writer after a final response head (checked) is sent. */
  private responseSent(head: ResponseHead): void {
    if (this.state.facts.pendingSwitch === 'connect' && head.status < 300) {
      this.step('server', 'response', 'connect');
      this.switchedRest = this.takeAll();
      return;
    }
    this.state.declineSwitch();
    const framing =
      this.state.server === 'IDLE'
        ? frameOf(head, false, true)
        : responseFraming(this.method, head, this.limits, true);
    if (!responseKeepAlive(head, framing)) this.state.noKeepAlive();
    this.step('server', 'response');
    this.writer =
      framing.kind === 'length'
        ? { kind: 'length', remaining: framing.length }
        : framing.kind === 'chunked'
          ? { kind: 'chunked' }
          : { kind: 'close' };
    // A response to HEAD and 1xx/204/304 have no body whatever the fields say (RFC 9110 §9.3.2, §6.4.1).
    if (this.method === 'HEAD' || head.status === 204 || head.status === 304) this.writer = NO_WRITER;
  }

  /** A state change for what we send: a missing row is the caller's mistake. */
  private step(role: Role, on: MessageEvent, accepts?: SwitchKind): void {
    try {
      this.state.process(role, on, accepts);
    } catch (e) {
      if (e instanceof ProtocolStateError) throw new LocalProtocolError(e.message);
      throw e;
    }
  }

  /** True when our message's framing is set by the connection's close (we must close after). */
  get closeDelimited(): boolean {
    return this.writer.kind === 'close';
  }

  /**
   * Node-style hand-off: switch at once (server role, after an Upgrade or CONNECT request)
   * and take the bytes that followed the request head. The caller speaks the new protocol,
   * 101 or 200 included.
   */
  detach(): Uint8Array {
    this.state.switchNow();
    this.reader = undefined;
    return this.switchedRest ?? this.takeAll();
  }

  /** After we sent a 101 (or 2xx to CONNECT): the bytes that already belong to the new protocol. */
  takeRemainder(): Uint8Array {
    const r = this.switchedRest ?? this.takeAll();
    this.switchedRest = undefined;
    return r;
  }

  /** We are closing (sent or will send FIN). */
  close(): void {
    const role = this.role;
    const s = this.state.get(role);
    if (s === 'DONE' || s === 'MUST_CLOSE' || s === 'IDLE' || s === 'CLOSED')
      this.state.process(role, 'closed');
    else this.state.fail(role);
  }

  // --- time ---

  /**
   * The next deadline, left in `dueAt` (+Infinity when none applies) with what it is for in
   * `dueKind`: two fields rather than an object per question (the server's driver asks after
   * every read and every response).
   */
  private dueAt = Number.POSITIVE_INFINITY;
  private dueKind: TimeoutKind = 'headers';

  /** Take start + ms as the deadline if it comes before the one found so far (0 ms: off). */
  private consider(start: number, ms: number, kind: TimeoutKind): void {
    if (ms <= 0) return;
    const at = start + ms;
    if (at < this.dueAt) {
      this.dueAt = at;
      this.dueKind = kind;
    }
  }

  /** Sets dueAt/dueKind to the next deadline (dueAt +Infinity when none applies). */
  private deadline(): void {
    this.dueAt = Number.POSITIVE_INFINITY;
    if (this.timedOut) return;
    if (this.role === 'client') {
      this.clientDeadline();
      return;
    }
    const t = this.timeouts;
    const them = this.theirState;
    if (them === 'IDLE' && this.state.server === 'IDLE') {
      if (this.requestStart === undefined) {
        // Waiting for a request's first byte: the first on a connection gets the headers
        // timeout (as Node does), later ones the keep-alive timeout.
        if (this.state.cycles > 0) {
          // The advertised timeout plus node:http's buffer (keepAliveTimeoutBuffer); 0 is off.
          if (t.keepAliveTimeout > 0)
            this.consider(this.idleSince, t.keepAliveTimeout + t.keepAliveTimeoutBuffer, 'keep-alive');
        } else this.consider(this.startedAt, t.headersTimeout, 'headers');
        return;
      }
      this.consider(this.requestStart, t.headersTimeout, 'headers');
      this.consider(this.requestStart, t.requestTimeout, 'request');
      return;
    }
    if (them === 'SEND_BODY' && this.requestStart !== undefined)
      this.consider(this.requestStart, t.requestTimeout, 'request');
  }

  /**
   * The client's deadlines, one per phase of an exchange: the kept connection idle between
   * exchanges (RFC 9112 §9.3), the response head awaited after the request went out, the
   * silence inside a response body. A response or body deadline that fired is not given
   * again until the server's progress moves it (node:http's 'timeout' fires once per quiet
   * spell, and the caller decides whether to give up).
   */
  private clientDeadline(): void {
    const t = this.timeouts;
    const c = this.state.client;
    const s = this.state.server;
    if (c === 'IDLE' && s === 'IDLE') {
      this.consider(this.idleSince, t.keepAliveTimeout, 'keep-alive');
      return;
    }
    if (s === 'SEND_RESPONSE' && c !== 'IDLE' && c !== 'SEND_BODY' && this.waitingSince !== undefined)
      this.consider(this.waitingSince, t.responseTimeout, 'response');
    else if (s === 'SEND_BODY') this.consider(this.lastByteAt, t.bodyTimeout, 'body');
    if (this.dueAt === this.firedAt) this.dueAt = Number.POSITIVE_INFINITY;
  }

  /**
   * Client role: the caller stopped reading the response (its reader was full) and reads
   * again: the body's silence counts from now, not from the server's last bytes.
   */
  resumeReading(now: number): void {
    if (this.role === 'client') this.lastByteAt = Math.max(this.lastByteAt, now);
  }

  /** The next deadline (ms on the caller's clock), or undefined when none is armed. */
  nextTimeout(): number | undefined {
    this.deadline();
    const at = this.dueAt;
    return at === Number.POSITIVE_INFINITY ? undefined : at;
  }

  /**
   * Wake at or after nextTimeout(): returns the timeout that fired, if any. Server role, and
   * a client's idle keep-alive: the connection is over (the peer's side failed, no keep-alive).
   * A client's response or body timeout only reports; its driver decides.
   */
  onTimeout(now: number): Http1Event[] {
    this.deadline();
    const at = this.dueAt;
    const kind = this.dueKind;
    if (at === Number.POSITIVE_INFINITY || now < at) return [];
    if (this.role === 'client' && kind !== 'keep-alive') {
      this.firedAt = at;
      return [{ type: 'timeout', kind }];
    }
    this.timedOut = true;
    this.state.fail(this.peer);
    this.state.noKeepAlive();
    return [{ type: 'timeout', kind }];
  }
}
