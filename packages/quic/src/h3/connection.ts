import {
  ByteReader,
  ByteWriter,
  Counters,
  concatBytes,
  ParseError,
  silentTrace,
  type TraceBus,
} from '@stepwire/wire';
import { readVarintLimit, writeVarint } from '../packet/varint.ts';
import { type Field, type FieldSectionResult, QpackDecoder } from '../qpack/decoder.ts';
import { QpackEncoder } from '../qpack/encoder.ts';
import { QpackError } from '../qpack/instructions.ts';
import { H3ConnectionError, H3ErrorCode, type H3ErrorName, H3StreamError } from './errors.ts';
import {
  encodeH3Frame,
  encodeH3FrameHeader,
  type H3Frame,
  H3FrameReader,
  H3FrameTooLarge,
  H3FrameType,
  type H3Setting,
  H3SettingId,
  type H3StreamItem,
  H3StreamType,
  HTTP2_ONLY_FRAME_TYPES,
  HTTP2_ONLY_SETTING_IDS,
  summarizeH3Frame,
} from './frames.ts';
import { fieldSectionSize, h3ContentLengthOf, h3MalformedReason, h3StatusOf } from './message.ts';
import { FRAME_ON_STREAM, MESSAGE_TRANSITIONS, type MessageInput, type MessageState } from './state.ts';
import {
  DEFAULT_H3_LIMITS,
  type H3Event,
  type H3Limits,
  type H3LocalSettings,
  type H3SectionEventKind,
  type H3Transport,
  type H3TransportEvent,
  type Http3ConnectionOptions,
} from './types.ts';

export * from './types.ts';

interface RequestStream {
  readonly id: number;
  readonly reader: H3FrameReader;
  recv: MessageState;
  /** Set while a field section waits for dynamic table inserts (RFC 9204 §2.2.1). */
  blocked: { queue: (H3StreamItem | { kind: 'fin' })[]; bytes: number } | undefined;
  /** Content-Length of the message being received, to check against DATA (RFC 9114 §4.1.2). */
  contentLength: number | undefined;
  received: number;
  /** The request was HEAD: its response has no content whatever Content-Length says. */
  head: boolean;
  /** Our sending side: headers not sent, sending, or ended/reset. */
  send: 'idle' | 'open' | 'done';
  /** Incoming bytes are ignored from here on (the stream was answered early or reset). */
  discard: boolean;
}

type UniStream =
  | { kind: 'pending'; buffer: Uint8Array }
  | { kind: 'control'; reader: H3FrameReader; settingsSeen: boolean }
  | { kind: 'encoder' }
  | { kind: 'decoder' }
  | { kind: 'ignored' };

/** Client-initiated bidirectional stream IDs are 0 mod 4 (RFC 9000 §2.1). */
const isClientBidi = (id: number) => id % 4 === 0;
const isUni = (id: number) => (id & 2) !== 0;
const isServerInitiated = (id: number) => (id & 1) !== 0;

/**
 * RFC 9114 §5.2: the first GOAWAY of a two-phase shutdown names an ID above any the client
 * could have used. The RFC suggests 2^62-4; IDs here are exact JavaScript numbers, and
 * 2^53-4 (a client bidirectional ID too) is beyond any stream a connection will open.
 */
export const H3_GOAWAY_MAX_ID = 2 ** 53 - 4;

/**
 * A sans-I/O HTTP/3 connection (RFC 9114), client or server, over any H3Transport.
 * Feed it the transport's events with handle(); it writes frames through the transport
 * and returns what the application should see. It owns no timer: HTTP/3 has none.
 */
export class Http3Connection {
  readonly role: 'client' | 'server';
  readonly counters: Counters;
  readonly limits: H3Limits;
  /** The peer's SETTINGS, once its control stream delivered them. */
  peerSettings: Map<number, number> | undefined;
  /** The GOAWAY ID we received (RFC 9114 §5.2), if any. */
  goawayReceived: number | undefined;
  /** The GOAWAY ID we sent, if any. */
  goawaySent: number | undefined;
  closed = false;
  /** How the connection ended: our close (local) or the transport's report. */
  closeInfo: { code?: number; reason?: string; local: boolean } | undefined;
  readonly decoder: QpackDecoder;
  encoder: QpackEncoder;

  private readonly transport: H3Transport;
  private readonly settings: Required<H3LocalSettings>;
  private readonly trace: TraceBus;
  private readonly host: string;
  private readonly grease: boolean;
  private readonly encoderCapacity: number;
  private readonly streams = new Map<number, RequestStream>();
  private readonly uni = new Map<number, UniStream>();
  /** Request streams that have ended, so late bytes for them are not read as a new request. */
  private readonly retired = new Set<number>();
  private events: H3Event[] = [];
  private controlId: number | undefined;
  private encoderId: number | undefined;
  private decoderId: number | undefined;
  private peerControl = false;
  private peerEncoder = false;
  private peerDecoder = false;
  /** Peer streams of unknown type we were told about and that have not ended yet. */
  private ignoredStreams = 0;
  /** The largest client bidirectional stream a server has accepted, for its GOAWAY. */
  private largestAccepted = -1;
  private now = 0;

  constructor(transport: H3Transport, opts: Http3ConnectionOptions) {
    this.transport = transport;
    this.role = opts.role;
    this.counters = opts.counters ?? new Counters();
    this.trace = opts.trace ?? silentTrace;
    this.host = opts.host ?? opts.role;
    this.grease = opts.grease ?? true;
    this.limits = { ...DEFAULT_H3_LIMITS, ...opts.limits };
    this.settings = {
      qpackMaxTableCapacity: opts.settings?.qpackMaxTableCapacity ?? 4096,
      qpackBlockedStreams: opts.settings?.qpackBlockedStreams ?? 16,
      maxFieldSectionSize: opts.settings?.maxFieldSectionSize ?? 65536,
      enableConnectProtocol: opts.settings?.enableConnectProtocol ?? false,
    };
    this.encoderCapacity = opts.qpackEncoderCapacity ?? 4096;
    this.decoder = new QpackDecoder({
      maxTableCapacity: this.settings.qpackMaxTableCapacity,
      maxBlockedStreams: this.settings.qpackBlockedStreams,
      maxFieldSectionSize: this.settings.maxFieldSectionSize,
    });
    // RFC 9204 §3.2.3: until the peer's SETTINGS arrive, its table capacity is 0: static table only.
    this.encoder = new QpackEncoder();
  }

  /** Request streams open in either direction. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Events produced by calls other than handle(); clears them. */
  takeEvents(): H3Event[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  /** One transport event in; the application's events out. */
  handle(e: H3TransportEvent, now = this.now): H3Event[] {
    this.now = now;
    if (this.closed) return this.takeEvents();
    try {
      switch (e.type) {
        case 'connected':
          this.start();
          break;
        case 'stream-opened':
          this.onStreamOpened(e.id);
          break;
        case 'stream-data':
          this.onStreamData(e.id, e.data, e.fin);
          break;
        case 'stream-reset':
          this.onStreamReset(e.id, e.code);
          break;
        case 'stop-sending':
          this.onStopSending(e.id, e.code);
          break;
        case 'closed':
          this.closed = true;
          this.closeInfo = { local: false, ...closeInfo(e.error) };
          this.events.push({ type: 'closed', ...this.closeInfo });
          break;
        case 'streams-available':
          if (e.direction === 'bidi') this.events.push({ type: 'streams-available' });
          break;
      }
      this.flushQpack();
    } catch (err) {
      this.fail(err);
    }
    return this.takeEvents();
  }

  /** Opens the control stream with our SETTINGS and the QPACK streams (RFC 9114 §6.2). */
  start(): void {
    if (this.controlId !== undefined) return;
    this.controlId = this.transport.openStream('uni');
    const settings: H3Setting[] = [
      { id: H3SettingId.QPACK_MAX_TABLE_CAPACITY, value: this.settings.qpackMaxTableCapacity },
      { id: H3SettingId.QPACK_BLOCKED_STREAMS, value: this.settings.qpackBlockedStreams },
      { id: H3SettingId.MAX_FIELD_SECTION_SIZE, value: this.settings.maxFieldSectionSize },
    ];
    if (this.settings.enableConnectProtocol)
      settings.push({ id: H3SettingId.ENABLE_CONNECT_PROTOCOL, value: 1 });
    // §7.2.4.1: reserved settings exercise the requirement that unknown ones are ignored.
    if (this.grease) settings.push({ id: 0x1f * 7 + 0x21, value: 0x5157 });
    // §6.2.1: SETTINGS is the first frame of the control stream.
    this.writeStreamType(this.controlId, H3StreamType.CONTROL);
    this.writeFrame(this.controlId, { type: 'SETTINGS', settings });
    if (this.grease)
      this.writeFrame(this.controlId, {
        type: 'unknown',
        frameType: 0x1f * 3 + 0x21,
        payload: new Uint8Array([0x68, 0x33]),
      });
    this.encoderId = this.transport.openStream('uni');
    this.writeStreamType(this.encoderId, H3StreamType.QPACK_ENCODER);
    this.decoderId = this.transport.openStream('uni');
    this.writeStreamType(this.decoderId, H3StreamType.QPACK_DECODER);
    this.events.push({ type: 'ready' });
  }

  // ---- sending ----

  /** A client's new request: opens a stream and sends its header section. Returns the stream ID. */
  sendRequest(fields: readonly Field[], end = false): number {
    if (this.role !== 'client') throw new Error('only a client sends requests');
    if (this.closed) throw new Error('connection closed');
    // RFC 9114 §5.2: no new request on a connection that received GOAWAY.
    if (this.goawayReceived !== undefined) throw new Error('the server sent GOAWAY: open a new connection');
    if (this.controlId === undefined) throw new Error('not started: wait for the transport to connect');
    this.checkPeerFieldSectionSize(fields);
    const id = this.transport.openStream('bidi');
    const s = this.newStream(id);
    s.head = fields.some(([n, v]) => n === ':method' && v === 'HEAD');
    this.sendHeaders(id, fields, end);
    return id;
  }

  /** Whether sendRequest can open a stream now (false while the peer's MAX_STREAMS is used up). */
  canOpenRequest(): boolean {
    return this.transport.canOpenStream?.('bidi') ?? true;
  }

  /** A header section (response, interim, or trailers when the body has begun) on a request stream. */
  sendHeaders(id: number, fields: readonly Field[], end = false): void {
    const s = this.sendable(id);
    this.checkPeerFieldSectionSize(fields);
    const section = this.encoder.encodeFieldSection(id, fields);
    // The inserts this section references go out first; QUIC may still deliver them later
    // than the HEADERS (the peer's decoder then blocks the stream, RFC 9204 §2.2.1).
    this.flushQpack();
    this.writeFrame(id, { type: 'HEADERS', fieldSection: section }, end);
    s.send = end ? 'done' : 'open';
    if (end) this.maybeRetire(s);
  }

  /** RFC 9114 §4.2.2: a section larger than the peer's limit would be refused: it is not sent. */
  private checkPeerFieldSectionSize(fields: readonly Field[]): void {
    const peerMax = this.peerSettings?.get(H3SettingId.MAX_FIELD_SECTION_SIZE);
    const size = fieldSectionSize(fields);
    if (peerMax !== undefined && size > peerMax)
      throw new RangeError(
        `field section of ${size} bytes exceeds the peer's SETTINGS_MAX_FIELD_SECTION_SIZE ${peerMax}`,
      );
  }

  sendData(id: number, data: Uint8Array, end = false): void {
    const s = this.sendable(id);
    if (s.send !== 'open') throw new Error(`stream ${id}: DATA before HEADERS`);
    if (data.length > 0) this.writeFrame(id, { type: 'DATA', data }, end);
    else if (end) this.transport.write(id, new Uint8Array(0), true);
    if (end) {
      s.send = 'done';
      this.maybeRetire(s);
    }
  }

  /** Ends our side of the stream (after the body or trailers). */
  endStream(id: number): void {
    const s = this.sendable(id);
    this.transport.write(id, new Uint8Array(0), true);
    s.send = 'done';
    this.maybeRetire(s);
  }

  /** Abandons a request stream in both directions (RFC 9114 §4.1.1: H3_REQUEST_CANCELLED and friends). */
  resetStream(id: number, code: number = H3ErrorCode.H3_REQUEST_CANCELLED): void {
    const s = this.streams.get(id);
    if (!s) return;
    this.abandon(s, code);
  }

  /**
   * Graceful shutdown (RFC 9114 §5.2): a server names the first request it will not
   * process, a client the first push (we allow none: 0). The connection closes with
   * H3_NO_ERROR once the requests in flight are done. `id` overrides the computed ID
   * (H3_GOAWAY_MAX_ID for the first step of a two-phase shutdown).
   */
  shutdown(id?: number): void {
    if (this.closed || this.controlId === undefined) return;
    const goaway = id ?? (this.role === 'server' ? this.largestAccepted + 4 : 0);
    // §5.2: an endpoint MUST NOT increase the ID in a later GOAWAY.
    if (this.goawaySent !== undefined && goaway > this.goawaySent) return;
    this.goawaySent = goaway;
    this.writeFrame(this.controlId, { type: 'GOAWAY', id: goaway });
    // §5.2: requests the server will not process are rejected.
    if (this.role === 'server')
      for (const s of [...this.streams.values()]) if (s.id >= goaway) this.reject(s.id, 'goaway');
    this.maybeFinishShutdown();
  }

  /** Closes the connection at once with an HTTP/3 error code (§5.4). */
  close(code: number = H3ErrorCode.H3_NO_ERROR, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    this.closeInfo = { code, reason, local: true };
    this.transport.close(code, reason);
    this.events.push({ type: 'closed', code, reason, local: true });
  }

  /** Whether our side of request stream `id` is open (not ended, reset, rejected or closed). */
  canSend(id: number): boolean {
    const s = this.streams.get(id);
    return s !== undefined && !this.closed && s.send !== 'done';
  }

  private sendable(id: number): RequestStream {
    const s = this.streams.get(id);
    if (!s || this.closed) throw new Error(`stream ${id} is not open`);
    if (s.send === 'done') throw new Error(`stream ${id}: our side has ended`);
    return s;
  }

  private writeStreamType(id: number, type: number): void {
    const w = new ByteWriter(8);
    writeVarint(w, type);
    this.transport.write(id, w.finish());
  }

  private writeFrame(id: number, f: H3Frame, fin = false): void {
    if (this.trace.enabled) this.traceFrame('out', id, f);
    if (f.type === 'DATA' && f.data.length > 4096) {
      // A large body is not copied just to prefix it.
      this.transport.write(id, encodeH3FrameHeader(H3FrameType.DATA, f.data.length));
      this.transport.write(id, f.data, fin);
      return;
    }
    this.transport.write(id, encodeH3Frame(f), fin);
  }

  private flushQpack(): void {
    if (this.closed || this.encoderId === undefined || this.decoderId === undefined) return;
    const enc = this.encoder.takeEncoderStreamData();
    if (enc.length > 0) this.transport.write(this.encoderId, enc);
    const dec = this.decoder.takeDecoderStreamData();
    if (dec.length > 0) this.transport.write(this.decoderId, dec);
  }

  private traceFrame(dir: 'in' | 'out', id: number, f: H3Frame): void {
    this.trace.emit({
      t: this.now,
      host: this.host,
      layer: 'h3',
      dir,
      summary: `${summarizeH3Frame(f)} stream=${id}`,
      fields: { streamId: id, frame: f.type },
      rfc: 'RFC 9114 §7.2',
    });
  }

  // ---- receiving ----

  private newStream(id: number): RequestStream {
    const s: RequestStream = {
      id,
      reader: new H3FrameReader(this.limits.maxFramePayload),
      recv: 'HEADERS',
      blocked: undefined,
      contentLength: undefined,
      received: 0,
      head: false,
      send: 'idle',
      discard: false,
    };
    this.streams.set(id, s);
    return s;
  }

  private onStreamOpened(id: number): void {
    if (isUni(id)) {
      if (!this.uni.has(id)) this.uni.set(id, { kind: 'pending', buffer: new Uint8Array(0) });
      return;
    }
    this.acceptRequestStream(id);
  }

  /** A peer-initiated bidirectional stream: a request, if this is a server and there is room. */
  private acceptRequestStream(id: number): RequestStream | undefined {
    const existing = this.streams.get(id);
    if (existing) return existing;
    if (this.retired.has(id)) return undefined;
    // RFC 9114 §6.1: servers do not open bidirectional streams.
    if (isServerInitiated(id))
      throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', `server-initiated bidirectional stream ${id}`);
    // A client's own request stream that it has finished with: late bytes are dropped.
    if (this.role === 'client') return undefined;
    // §5.2: after our GOAWAY, requests at or above its ID are not processed.
    if (this.goawaySent !== undefined && id >= this.goawaySent) {
      this.reject(id, 'goaway');
      return undefined;
    }
    if (this.streams.size >= this.limits.maxConcurrentRequests) {
      this.reject(id, 'limit');
      return undefined;
    }
    this.largestAccepted = Math.max(this.largestAccepted, id);
    return this.newStream(id);
  }

  /** RFC 9114 §4.1.1: H3_REQUEST_REJECTED tells the client the request was not processed and may be retried. */
  private reject(id: number, why: 'goaway' | 'limit'): void {
    this.counters.inc(`h3.request-rejected.${why}`);
    const code = H3ErrorCode.H3_REQUEST_REJECTED;
    this.transport.stopSending(id, code);
    this.transport.resetStream(id, code);
    const s = this.streams.get(id);
    if (s) {
      if (s.blocked) this.decoder.cancelStream(id);
      this.streams.delete(id);
      this.events.push({ type: 'stream-error', streamId: id, code, reason: `rejected (${why})` });
    }
    this.retire(id);
  }

  private onStreamData(id: number, data: Uint8Array, fin: boolean): void {
    if (isUni(id)) {
      this.onUniData(id, data, fin);
      return;
    }
    const s = this.acceptRequestStream(id);
    if (!s || s.discard) return;
    try {
      let items: H3StreamItem[];
      try {
        items = s.reader.push(data);
      } catch (e) {
        // §7.1: a frame whose payload does not parse is H3_FRAME_ERROR; one too large to
        // hold is refused for this stream only.
        if (e instanceof H3FrameTooLarge) {
          this.counters.inc('h3.limit.frame-size');
          throw new H3StreamError('H3_EXCESSIVE_LOAD', e.message);
        }
        throw e;
      }
      for (const item of items) {
        this.onRequestItem(s, item);
        if (s.discard || !this.streams.has(id)) return;
      }
      if (fin) {
        // §7.1: a stream that ends inside a frame is H3_FRAME_ERROR.
        if (!s.reader.atFrameBoundary)
          throw new H3ConnectionError('H3_FRAME_ERROR', `stream ${id} ended inside a frame`);
        this.onRequestItem(s, { kind: 'fin' });
      }
    } catch (e) {
      if (e instanceof H3StreamError) this.streamError(s, e);
      else throw e;
    }
  }

  private onRequestItem(s: RequestStream, item: H3StreamItem | { kind: 'fin' }): void {
    if (s.blocked) {
      // RFC 9204 §2.2.1: nothing after a blocked section is read until it is decoded.
      s.blocked.queue.push(item);
      s.blocked.bytes += queuedSize(item);
      if (s.blocked.bytes > this.limits.maxBlockedStreamBuffer) {
        this.counters.inc('h3.limit.blocked-buffer');
        throw new H3StreamError('H3_EXCESSIVE_LOAD', 'too much data behind a blocked field section');
      }
      return;
    }
    switch (item.kind) {
      case 'fin': {
        this.step(s, 'fin');
        // §4.1.2: content-length must match the content received.
        if (s.contentLength !== undefined && s.received !== s.contentLength)
          throw new H3StreamError(
            'H3_MESSAGE_ERROR',
            `content-length ${s.contentLength} but ${s.received} byte(s) received`,
          );
        this.events.push({ type: 'end', streamId: s.id });
        this.maybeRetire(s);
        return;
      }
      case 'data': {
        if (s.recv !== 'DATA') this.step(s, 'data');
        s.received += item.data.length;
        if (this.trace.enabled && item.data.length > 0)
          this.trace.emit({
            t: this.now,
            host: this.host,
            layer: 'h3',
            dir: 'in',
            summary: `DATA len=${item.data.length}${item.last ? '' : '…'} stream=${s.id}`,
            fields: { streamId: s.id, frame: 'DATA' },
            rfc: 'RFC 9114 §7.2.1',
          });
        if (s.contentLength !== undefined && s.received > s.contentLength)
          throw new H3StreamError('H3_MESSAGE_ERROR', `more than content-length ${s.contentLength} byte(s)`);
        if (item.data.length > 0) this.events.push({ type: 'data', streamId: s.id, data: item.data });
        return;
      }
      case 'skipped':
        this.onUnknownFrame(item.frameType);
        return;
      case 'frame':
        break;
    }
    const f = item.frame;
    if (this.trace.enabled) this.traceFrame('in', s.id, f);
    if (f.type === 'unknown') return;
    // §7.2.5: "A server MUST treat the receipt of a PUSH_PROMISE frame as a connection error of type H3_FRAME_UNEXPECTED."
    if (f.type === 'PUSH_PROMISE' && this.role === 'server')
      throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'PUSH_PROMISE from a client');
    if (f.type === 'PUSH_PROMISE' && this.role === 'client')
      // §7.2.5: a push ID above the maximum (we never sent MAX_PUSH_ID) is H3_ID_ERROR.
      throw new H3ConnectionError('H3_ID_ERROR', 'PUSH_PROMISE without MAX_PUSH_ID');
    const rule = FRAME_ON_STREAM[f.type]?.request;
    if (rule && 'error' in rule)
      throw new H3ConnectionError(rule.error, `${f.type} on a request stream (${rule.rfc})`);
    if (f.type !== 'HEADERS') return;
    const result = this.decodeSection(s, f.fieldSection);
    if (result.status === 'blocked') {
      this.counters.inc('h3.qpack.blocked');
      s.blocked = { queue: [], bytes: 0 };
      return;
    }
    this.onSection(s, result);
  }

  private decodeSection(s: RequestStream, section: Uint8Array): FieldSectionResult {
    return this.decoder.decodeFieldSection(s.id, section);
  }

  /** A decoded field section on a request stream. */
  private onSection(s: RequestStream, result: FieldSectionResult): void {
    if (result.status === 'blocked') return;
    if (result.status === 'too-large') {
      this.counters.inc('h3.limit.field-section');
      // RFC 9114 §4.2.2: a request whose header section is too large may get 431; a
      // response (or trailers) that is too large cannot be used.
      if (this.role === 'server' && s.recv === 'HEADERS' && s.send === 'idle') {
        this.sendHeaders(s.id, [[':status', '431']], true);
        // §4.1.1: a complete response before the complete request: STOP_SENDING with H3_NO_ERROR.
        this.transport.stopSending(s.id, H3ErrorCode.H3_NO_ERROR);
        s.discard = true;
        this.events.push({
          type: 'stream-error',
          streamId: s.id,
          code: H3ErrorCode.H3_NO_ERROR,
          reason: `request header section of ${result.size} bytes answered with 431`,
        });
        this.streams.delete(s.id);
        this.retire(s.id);
        this.maybeFinishShutdown();
        return;
      }
      throw new H3StreamError('H3_EXCESSIVE_LOAD', `field section of ${result.size} bytes exceeds our limit`);
    }
    const fields = result.fields;
    const status = h3StatusOf(fields);
    const kind: H3SectionEventKind =
      s.recv !== 'HEADERS'
        ? 'trailers'
        : this.role === 'server'
          ? 'request'
          : status >= 100 && status < 200
            ? 'informational'
            : 'response';
    this.step(s, kind === 'informational' ? 'informational' : 'headers');
    const why = h3MalformedReason(fields, kind, this.settings.enableConnectProtocol);
    if (why !== undefined) throw new H3StreamError('H3_MESSAGE_ERROR', why);
    if (kind === 'request' || kind === 'response') {
      const cl = h3ContentLengthOf(fields);
      if (Number.isNaN(cl)) throw new H3StreamError('H3_MESSAGE_ERROR', 'malformed content-length');
      // RFC 9110 §9.3.2, §15.4.5: a response to HEAD, or a 304, carries no content.
      const bodiless = kind === 'response' && (s.head || status === 304 || status === 204);
      s.contentLength = bodiless ? 0 : cl;
      if (kind === 'request') s.head = fields.some(([n, v]) => n === ':method' && v === 'HEAD');
    }
    if (this.trace.enabled) this.traceSection(s.id, kind, fields);
    this.events.push({ type: 'headers', streamId: s.id, kind, fields });
  }

  /** The decoded section as a ladder line: "request GET /path", "response 200", "trailers 2 fields". */
  private traceSection(id: number, kind: H3SectionEventKind, fields: readonly Field[]): void {
    const get = (n: string) => fields.find(([k]) => k === n)?.[1] ?? '';
    const what =
      kind === 'request'
        ? `${get(':method')} ${get(':path') || get(':authority')}`
        : kind === 'trailers'
          ? `${fields.length} field(s)`
          : get(':status');
    this.trace.emit({
      t: this.now,
      host: this.host,
      layer: 'h3',
      dir: 'in',
      summary: `${kind} ${what} stream=${id}`,
      fields: { streamId: id, kind, fields: fields.map(([n, v]) => `${n}: ${v}`) },
      rfc: 'RFC 9114 §4.1',
    });
  }

  /** Applies one input to the stream's receive state by the table in state.ts. */
  private step(s: RequestStream, input: MessageInput): void {
    const o = MESSAGE_TRANSITIONS[s.recv][input];
    if ('error' in o) {
      const reason = `${input} in state ${s.recv} (${o.rfc})`;
      if (o.scope === 'connection') throw new H3ConnectionError(o.error, reason);
      throw new H3StreamError(o.error, reason);
    }
    s.recv = o.next;
  }

  /** §9: unknown frame types are ignored; HTTP/2's are an error (§7.2.8). */
  private onUnknownFrame(frameType: number): void {
    if (HTTP2_ONLY_FRAME_TYPES.has(frameType))
      throw new H3ConnectionError(
        'H3_FRAME_UNEXPECTED',
        `HTTP/2 frame type 0x${frameType.toString(16)} (RFC 9114 §7.2.8)`,
      );
    this.counters.inc('h3.frames.unknown');
  }

  private onUniData(id: number, data: Uint8Array, fin: boolean): void {
    let u = this.uni.get(id);
    if (!u) {
      u = { kind: 'pending', buffer: new Uint8Array(0) };
      this.uni.set(id, u);
    }
    if (u.kind === 'pending') {
      const buf = u.buffer.length === 0 ? data : concatBytes(u.buffer, data);
      const r = new ByteReader(buf, 'h3');
      let type: number;
      try {
        // §6.2: the stream type; reserved types may be any 62-bit value.
        type = readVarintLimit(r, 'Stream Type');
      } catch {
        if (fin) {
          // A stream that ends before its type is ignored (§6.2: an unknown stream).
          this.uni.delete(id);
          return;
        }
        this.uni.set(id, { kind: 'pending', buffer: buf });
        return;
      }
      u = this.openUni(id, type);
      this.uni.set(id, u);
      data = buf.subarray(r.offset);
    }
    switch (u.kind) {
      case 'control': {
        let items: H3StreamItem[];
        try {
          items = u.reader.push(data);
        } catch (e) {
          if (e instanceof H3FrameTooLarge) throw new H3ConnectionError('H3_EXCESSIVE_LOAD', e.message);
          throw e;
        }
        for (const item of items) this.onControlItem(id, u, item);
        break;
      }
      case 'encoder':
        for (const { streamId, result } of this.decoder.onEncoderStream(data))
          this.onUnblocked(streamId, result);
        break;
      case 'decoder':
        this.encoder.onDecoderStream(data);
        break;
      case 'ignored':
      case 'pending':
        break;
    }
    if (fin) this.onUniEnd(id, u);
  }

  /** §6.2: the stream type decides what the stream is; critical streams exist once each. */
  private openUni(id: number, type: number): UniStream {
    switch (type) {
      case H3StreamType.CONTROL:
        // §6.2.1: only one control stream per peer.
        if (this.peerControl)
          throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'a second control stream');
        this.peerControl = true;
        return {
          kind: 'control',
          reader: new H3FrameReader(this.limits.maxFramePayload),
          settingsSeen: false,
        };
      case H3StreamType.QPACK_ENCODER:
        // RFC 9204 §4.2: one encoder and one decoder stream per peer.
        if (this.peerEncoder)
          throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'a second QPACK encoder stream');
        this.peerEncoder = true;
        return { kind: 'encoder' };
      case H3StreamType.QPACK_DECODER:
        if (this.peerDecoder)
          throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'a second QPACK decoder stream');
        this.peerDecoder = true;
        return { kind: 'decoder' };
      case H3StreamType.PUSH:
        // §6.2.2: only servers push; a client that sent no MAX_PUSH_ID allowed no push ID (§4.6).
        if (this.role === 'server')
          throw new H3ConnectionError('H3_STREAM_CREATION_ERROR', 'push stream from a client');
        throw new H3ConnectionError('H3_ID_ERROR', 'push stream without MAX_PUSH_ID');
      default:
        // §6.2: unknown and reserved types: abort reading with H3_STREAM_CREATION_ERROR.
        this.counters.inc('h3.streams.unknown-type');
        this.ignoredStreams++;
        if (this.ignoredStreams > this.limits.maxIgnoredStreams) {
          throw new H3ConnectionError(
            'H3_EXCESSIVE_LOAD',
            `more than ${this.limits.maxIgnoredStreams} unknown unidirectional streams open at once`,
          );
        }
        this.transport.stopSending(id, H3ErrorCode.H3_STREAM_CREATION_ERROR);
        return { kind: 'ignored' };
    }
  }

  private onUniEnd(id: number, u: UniStream): void {
    if (u.kind === 'control' || u.kind === 'encoder' || u.kind === 'decoder')
      // RFC 9114 §6.2.1, RFC 9204 §4.2: closing a critical stream is a connection error.
      throw new H3ConnectionError('H3_CLOSED_CRITICAL_STREAM', `the peer's ${u.kind} stream ended`);
    if (u.kind === 'ignored') this.ignoredStreams--;
    this.uni.delete(id);
  }

  private onControlItem(id: number, u: { kind: 'control'; settingsSeen: boolean }, item: H3StreamItem): void {
    const typeName =
      item.kind === 'data'
        ? 'DATA'
        : item.kind === 'skipped'
          ? `0x${item.frameType.toString(16)}`
          : item.frame.type;
    // §6.2.1: "If the first frame of the control stream is any other frame type, this MUST
    // be treated as a connection error of type H3_MISSING_SETTINGS."
    if (!u.settingsSeen && !(item.kind === 'frame' && item.frame.type === 'SETTINGS'))
      throw new H3ConnectionError('H3_MISSING_SETTINGS', `${typeName} before SETTINGS on the control stream`);
    if (item.kind === 'data')
      throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'DATA on the control stream (RFC 9114 §7.2.1)');
    if (item.kind === 'skipped') {
      this.onUnknownFrame(item.frameType);
      return;
    }
    const f = item.frame;
    if (this.trace.enabled) this.traceFrame('in', id, f);
    if (f.type === 'unknown') return;
    const rule = FRAME_ON_STREAM[f.type]?.control;
    if (rule && 'error' in rule)
      throw new H3ConnectionError(rule.error, `${f.type} on the control stream (${rule.rfc})`);
    switch (f.type) {
      case 'SETTINGS':
        // §7.2.4: a second SETTINGS is H3_FRAME_UNEXPECTED.
        if (u.settingsSeen) throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'a second SETTINGS frame');
        u.settingsSeen = true;
        this.onSettings(f.settings);
        return;
      case 'GOAWAY':
        this.onGoaway(f.id);
        return;
      case 'MAX_PUSH_ID':
        // §7.2.7: only a client sends MAX_PUSH_ID.
        if (this.role === 'client')
          throw new H3ConnectionError('H3_FRAME_UNEXPECTED', 'MAX_PUSH_ID from a server');
        return;
      case 'CANCEL_PUSH':
        // §7.2.3: we promised nothing (server) and allowed nothing (client): any push ID is unknown.
        throw new H3ConnectionError('H3_ID_ERROR', `CANCEL_PUSH for push ${f.pushId}, which does not exist`);
      default:
        return;
    }
  }

  private onSettings(settings: H3Setting[]): void {
    const seen = new Map<number, number>();
    for (const { id, value } of settings) {
      // §7.2.4: the same identifier twice is H3_SETTINGS_ERROR.
      if (seen.has(id))
        throw new H3ConnectionError('H3_SETTINGS_ERROR', `setting 0x${id.toString(16)} repeated`);
      // §7.2.4.1: HTTP/2's identifiers with no HTTP/3 meaning are H3_SETTINGS_ERROR.
      if (HTTP2_ONLY_SETTING_IDS.has(id))
        throw new H3ConnectionError('H3_SETTINGS_ERROR', `HTTP/2 setting 0x${id.toString(16)}`);
      // RFC 9220 §3: ENABLE_CONNECT_PROTOCOL is 0 or 1.
      if (id === H3SettingId.ENABLE_CONNECT_PROTOCOL && value > 1)
        throw new H3ConnectionError('H3_SETTINGS_ERROR', `SETTINGS_ENABLE_CONNECT_PROTOCOL ${value}`);
      seen.set(id, value);
    }
    this.peerSettings = seen;
    // RFC 9204 §3.2.3: the encoder may now use a table up to the peer's maximum.
    const peerMaxTableCapacity = seen.get(H3SettingId.QPACK_MAX_TABLE_CAPACITY) ?? 0;
    if (peerMaxTableCapacity > 0) {
      this.encoder = new QpackEncoder({
        peerMaxTableCapacity,
        peerMaxBlockedStreams: seen.get(H3SettingId.QPACK_BLOCKED_STREAMS) ?? 0,
        capacity: Math.min(this.encoderCapacity, peerMaxTableCapacity),
      });
    }
    this.events.push({ type: 'settings', settings });
  }

  private onGoaway(id: number): void {
    // §5.2 / §7.2.6: a server's GOAWAY names a client-initiated bidirectional stream.
    if (this.role === 'client' && !isClientBidi(id))
      throw new H3ConnectionError(
        'H3_ID_ERROR',
        `GOAWAY with stream ${id}, not a client bidirectional stream`,
      );
    // §5.2: an endpoint MUST NOT increase the ID it sent in a previous GOAWAY.
    if (this.goawayReceived !== undefined && id > this.goawayReceived)
      throw new H3ConnectionError('H3_ID_ERROR', `GOAWAY ${id} after GOAWAY ${this.goawayReceived}`);
    this.goawayReceived = id;
    this.events.push({ type: 'goaway', id });
    if (this.role === 'client') {
      // §5.2: requests at or above the ID were not and will not be processed: they may be retried.
      for (const s of [...this.streams.values()]) {
        if (s.id < id) continue;
        this.streams.delete(s.id);
        if (s.blocked) this.decoder.cancelStream(s.id);
        this.retire(s.id);
        this.events.push({ type: 'stream-reset', streamId: s.id, code: H3ErrorCode.H3_REQUEST_REJECTED });
      }
    }
    this.maybeFinishShutdown();
  }

  /** Sections the encoder stream unblocked: decode, then read what queued behind them. */
  private onUnblocked(id: number, result: FieldSectionResult): void {
    const s = this.streams.get(id);
    if (!s?.blocked) return;
    const queue = s.blocked.queue;
    s.blocked = undefined;
    try {
      this.onSection(s, result);
      for (const [i, item] of queue.entries()) {
        if (!this.streams.has(id) || s.discard) return;
        // onRequestItem may have blocked the stream again (TypeScript narrowed it to undefined above).
        const again = s.blocked as RequestStream['blocked'];
        if (again) {
          // Blocked again (on trailers): what is left waits behind that section.
          again.queue.push(...queue.slice(i));
          return;
        }
        this.onRequestItem(s, item);
      }
    } catch (e) {
      if (e instanceof H3StreamError) this.streamError(s, e);
      else throw e;
    }
  }

  private onStreamReset(id: number, code: number): void {
    const u = this.uni.get(id);
    if (u) {
      this.onUniEnd(id, u);
      return;
    }
    const s = this.streams.get(id);
    if (!s) return;
    // RFC 9204 §4.4.2: a section we will never decode is cancelled.
    if (s.blocked || s.recv === 'HEADERS') this.decoder.cancelStream(id);
    // RFC 9114 §4.1.1: the exchange is over; our side is abandoned too, so neither the
    // stream nor its QUIC state outlives it.
    if (s.send !== 'done') this.transport.resetStream(id, H3ErrorCode.H3_REQUEST_CANCELLED);
    this.streams.delete(id);
    this.retire(id);
    this.events.push({ type: 'stream-reset', streamId: id, code });
    this.maybeFinishShutdown();
  }

  private onStopSending(id: number, code: number): void {
    const s = this.streams.get(id);
    if (!s) return;
    // RFC 9000 §3.5: STOP_SENDING is answered with RESET_STREAM.
    if (s.send !== 'done') this.transport.resetStream(id, code);
    s.send = 'done';
    this.events.push({ type: 'stop-sending', streamId: id, code });
    this.maybeRetire(s);
  }

  // ---- errors and ending ----

  private streamError(s: RequestStream, e: H3StreamError): void {
    const code = H3ErrorCode[e.code];
    this.counters.inc(`h3.stream-error.${e.code}`);
    if (this.trace.enabled)
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'h3',
        dir: 'drop',
        summary: `stream ${s.id} reset: ${e.message}`,
        reason: `h3.stream-error.${e.code}`,
      });
    this.abandon(s, code);
    this.events.push({ type: 'stream-error', streamId: s.id, code, reason: e.reason });
  }

  private abandon(s: RequestStream, code: number): void {
    if (s.recv !== 'DONE') {
      this.transport.stopSending(s.id, code);
      if (s.blocked || s.recv === 'HEADERS') this.decoder.cancelStream(s.id);
    }
    if (s.send !== 'done') this.transport.resetStream(s.id, code);
    s.send = 'done';
    s.discard = true;
    this.streams.delete(s.id);
    this.retire(s.id);
    this.maybeFinishShutdown();
  }

  private fail(err: unknown): void {
    let name: H3ErrorName;
    let reason: string;
    if (err instanceof H3ConnectionError) {
      name = err.code;
      reason = err.reason;
    } else if (err instanceof QpackError) {
      // RFC 9204 §6: QPACK errors are connection errors with the QPACK codes.
      name = err.code;
      reason = err.message;
    } else if (err instanceof ParseError) {
      // RFC 9114 §7.1: a frame that does not parse is H3_FRAME_ERROR.
      name = 'H3_FRAME_ERROR';
      reason = err.message;
    } else {
      throw err;
    }
    this.counters.inc(`h3.connection-error.${name}`);
    if (this.trace.enabled)
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'h3',
        dir: 'drop',
        summary: `connection error ${name}: ${reason}`,
        reason: `h3.connection-error.${name}`,
      });
    this.close(H3ErrorCode[name], reason);
  }

  private maybeRetire(s: RequestStream): void {
    if (s.send === 'done' && s.recv === 'DONE') {
      this.streams.delete(s.id);
      this.retire(s.id);
      this.maybeFinishShutdown();
    }
  }

  private retire(id: number): void {
    if (this.role === 'client' || isServerInitiated(id)) return;
    this.retired.add(id);
    // Bounded: the oldest are forgotten (QUIC itself drops data for streams long closed).
    if (this.retired.size > 4096) {
      const first = this.retired.values().next();
      if (!first.done) this.retired.delete(first.value);
    }
  }

  /**
   * §5.2: once GOAWAY has been sent or received and nothing is in flight, the connection
   * can close. The client closes it: it knows when the last response has arrived, where a
   * server that closed after writing its last bytes could discard them unacknowledged
   * (a CONNECTION_CLOSE ends all streams, RFC 9000 §10.2).
   */
  private maybeFinishShutdown(): void {
    if (this.closed || this.streams.size > 0 || this.role !== 'client') return;
    if (this.goawaySent !== undefined || this.goawayReceived !== undefined)
      this.close(H3ErrorCode.H3_NO_ERROR, 'graceful shutdown complete');
  }
}

/** What an item held behind a blocked section costs (its bytes, or a small fixed size). */
function queuedSize(item: H3StreamItem | { kind: 'fin' }): number {
  if (item.kind === 'data') return item.data.length;
  if (item.kind !== 'frame') return 16;
  const f = item.frame;
  return 16 + (f.type === 'HEADERS' || f.type === 'PUSH_PROMISE' ? f.fieldSection.length : 0);
}

function closeInfo(error: unknown): { code?: number; reason?: string } {
  if (error === undefined || error === null) return {};
  if (typeof error === 'object') {
    const e = error as { code?: unknown; reason?: unknown; message?: unknown };
    const out: { code?: number; reason?: string } = {};
    if (typeof e.code === 'number') out.code = e.code;
    if (typeof e.reason === 'string') out.reason = e.reason;
    else if (typeof e.message === 'string') out.reason = e.message;
    return out;
  }
  return { reason: String(error) };
}
