/**
 * A sans-I/O HTTP/2 connection (RFC 9113) for either role. It owns no socket and no timer:
 *
 *   const c = new Http2Connection({ role: 'server' });
 *   c.start(now);                       // queues our preface / SETTINGS
 *   const events = c.receive(bytes, now);  // peer bytes in, events out
 *   socket.write(c.output());           // whatever is ready to send
 *   c.nextTimeout() / c.onTimeout(now)  // deadlines (SETTINGS ACK, stalled windows)
 *
 * Stream lifecycles follow the table in state.ts; frames are coded in frames.ts; header
 * blocks through one HPACK encoder and decoder per connection, encoded when their frames
 * are written so the peer's decoder sees blocks in the order they were encoded.
 *
 * Every resource a peer can grow is bounded (see Http2Limits); abuse is answered with
 * GOAWAY ENHANCE_YOUR_CALM or RST_STREAM, counted in `counters`.
 */
import { Counters, concatBytes, silentTrace, type TraceBus } from '@stepwire/wire';
import { HeaderListTooLargeError, HpackDecoder, HpackEncoder } from '../hpack/codec.ts';
import type { HeaderField } from '../hpack/table.ts';
import { ErrorCode, errorCodeName, Http2Error } from './errors.ts';
import {
  CONNECTION_PREFACE,
  decodeFramePayload,
  encodeDataHeader,
  encodeFrame,
  type FrameHeader,
  FrameReader,
  frameSummary,
  type Http2Frame,
  MAX_WINDOW,
} from './frames.ts';
import { contentLengthOf, type HeaderKind, malformedReason, statusOf } from './message.ts';
import { applySettings, DEFAULT_SETTINGS, type Http2Settings, settingsToFrame } from './settings.ts';
import { isClosed, type StreamEvent, type StreamState, transition } from './state.ts';

export type Role = 'client' | 'server';

/** Bounds on what a peer can make us hold or do; each is a named defense with a test. */
export interface Http2Limits {
  /** Encoded header block octets across HEADERS/PUSH_PROMISE + CONTINUATION (CONTINUATION flood). */
  maxHeaderBlockSize: number;
  /** CONTINUATION frames in one header block (CVE-2024-27316 family). */
  maxContinuationFrames: number;
  /** Streams the peer may reset, or we reset for its errors, in a burst, and refill per second (CVE-2023-44487). */
  resetBurst: number;
  resetsPerSecond: number;
  /** SETTINGS frames in a burst and per second (SETTINGS flood, CVE-2019-9515). */
  settingsBurst: number;
  settingsPerSecond: number;
  /** PINGs in a burst and per second (PING flood, CVE-2019-9512). */
  pingBurst: number;
  pingsPerSecond: number;
  /** DATA/HEADERS/CONTINUATION frames without payload nor END_STREAM in a row (CVE-2019-9518). */
  maxEmptyFrames: number;
  /** WINDOW_UPDATE frames in a burst and per second. */
  windowUpdateBurst: number;
  windowUpdatesPerSecond: number;
  /** Frames we may owe the peer (ACKs, RST_STREAMs) while it does not read (CVE-2019-9512/9515/9517). */
  maxQueuedControlFrames: number;
  /** A stream with data queued behind a zero window for this long is reset; the connection likewise closed. */
  stallTimeoutMs: number;
  /** RFC 9113 §6.5.3: how long the peer has to acknowledge our SETTINGS. */
  settingsTimeoutMs: number;
  /** Closed stream ids remembered for the §5.1 closed-state rules. */
  closedStreamMemory: number;
}

export const DEFAULT_LIMITS: Readonly<Http2Limits> = {
  maxHeaderBlockSize: 256 * 1024,
  maxContinuationFrames: 64,
  resetBurst: 200,
  resetsPerSecond: 100,
  settingsBurst: 64,
  settingsPerSecond: 16,
  pingBurst: 64,
  pingsPerSecond: 16,
  maxEmptyFrames: 100,
  windowUpdateBurst: 10_000,
  windowUpdatesPerSecond: 5_000,
  maxQueuedControlFrames: 10_000,
  stallTimeoutMs: 30_000,
  settingsTimeoutMs: 10_000,
  closedStreamMemory: 256,
};

export interface Http2ConnectionOptions {
  role: Role;
  /** Our settings, announced in our first SETTINGS frame. */
  settings?: Partial<Http2Settings>;
  /**
   * Our connection-level receive window (RFC 9113 §6.9.2 starts it at 65 535; we raise it
   * with a WINDOW_UPDATE on stream 0). Sized for bandwidth × delay so a fast sender on a
   * long link is not held back. Default 16 MiB.
   */
  connectionWindow?: number;
  limits?: Partial<Http2Limits>;
  trace?: TraceBus;
  hostName?: string;
  /** The first stream id we open (default 1 for a client, 2 for a server's pushes); tests of id exhaustion start near 2^31. */
  firstStreamId?: number;
}

/** What the connection tells its user. */
export type Http2Event =
  | { type: 'remoteSettings'; settings: Http2Settings }
  | { type: 'settingsAck' }
  | {
      type: 'headers';
      streamId: number;
      kind: HeaderKind;
      headers: HeaderField[];
      endStream: boolean;
    }
  | { type: 'data'; streamId: number; data: Uint8Array; endStream: boolean }
  | { type: 'push'; streamId: number; promisedStreamId: number; headers: HeaderField[] }
  | { type: 'streamReset'; streamId: number; errorCode: number; remote: boolean }
  | { type: 'streamClosed'; streamId: number }
  /** Flow-control credit arrived: queued data may move; drivers use it to resume writers. */
  | { type: 'drain'; streamId: number }
  | { type: 'goaway'; lastStreamId: number; errorCode: number; debugData: Uint8Array }
  | { type: 'ping'; payload: Uint8Array }
  | { type: 'pingAck'; payload: Uint8Array }
  | { type: 'priorityUpdate'; streamId: number; urgency: number; incremental: boolean }
  /** The connection is finished: drivers write the last output and close the transport. */
  | { type: 'close'; errorCode: number; reason: string; remote: boolean };

type OutItem =
  | { kind: 'headers'; fields: HeaderField[]; endStream: boolean }
  | { kind: 'data'; data: Uint8Array; endStream: boolean };

interface Stream {
  id: number;
  state: StreamState;
  sendWindow: number;
  recvWindow: number;
  /** Octets delivered to the user and not yet credited back with WINDOW_UPDATE. */
  unacked: number;
  /** What the user queued and the windows have not let out yet: header sections and DATA, in order. */
  out: OutItem[];
  /** DATA octets in `out` (for backpressure and the stall defense). */
  outBytes: number;
  /** The user queued END_STREAM (or RST): no more sends accepted. */
  localEnded: boolean;
  /** Header sections received: the first is the request/response, later ones trailers or 1xx. */
  headerBlocks: number;
  finalResponseSeen: boolean;
  contentLength?: number;
  received: number;
  /** Client: the request was HEAD, so a response content-length is not a body length. */
  head: boolean;
  /** RFC 9218 §4 priority parameters. */
  urgency: number;
  incremental: boolean;
  /** Since when data waits on a zero window (for the stall defense). */
  blockedSince?: number;
  initiatedLocally: boolean;
}

interface TokenBucket {
  tokens: number;
  last: number;
}

/** An in-progress header block (HEADERS or PUSH_PROMISE then CONTINUATIONs, RFC 9113 §6.10). */
interface PendingBlock {
  frame: Extract<Http2Frame, { type: 'HEADERS' } | { type: 'PUSH_PROMISE' }>;
  fragments: Uint8Array[];
  size: number;
  continuations: number;
}

const MAX_STREAM_ID = 0x7fffffff;

export class Http2Connection {
  readonly role: Role;
  readonly counters = new Counters();
  /** What we announced (after it is acknowledged, it binds the peer). */
  readonly localSettings: Http2Settings;
  /** What binds the peer now: our settings as of the last SETTINGS it acknowledged (RFC 9113 §6.5.3). */
  ackedLocalSettings: Http2Settings = { ...DEFAULT_SETTINGS };
  /** What the peer announced (DEFAULT_SETTINGS until its SETTINGS frame). */
  remoteSettings: Http2Settings = { ...DEFAULT_SETTINGS };
  readonly limits: Http2Limits;
  /** 'preface': waiting for the peer's preface and SETTINGS; 'closing' after GOAWAY. */
  phase: 'idle' | 'preface' | 'open' | 'closing' | 'closed' = 'idle';

  private readonly trace: TraceBus;
  private readonly host: string;
  private readonly reader: FrameReader;
  private readonly encoder: HpackEncoder;
  private readonly decoder: HpackDecoder;
  private readonly streams = new Map<number, Stream>();
  /** Recently closed streams: id → whether we closed it with RST_STREAM (RFC 9113 §5.1). */
  private readonly closed = new Map<number, boolean>();
  private prefaceNeeded: number;
  private firstFrameSeen = false;
  private nextLocalId: number;
  /** Highest stream id the peer opened (RFC 9113 §5.1.1) and the last we processed. */
  private lastRemoteId = 0;
  private lastPromisedId = 0;
  private connSendWindow = 65_535;
  private connRecvWindow = 65_535;
  private connUnacked = 0;
  private readonly connWindowTarget: number;
  private control: (Uint8Array | { streamId: number; promisedStreamId: number; fields: HeaderField[] })[] =
    [];
  private controlFrames = 0;
  private waitingOpen: number[] = [];
  private events: Http2Event[] = [];
  private pendingBlock: PendingBlock | undefined;
  private settingsSentAt: number[] = [];
  /** The full local settings as each unacknowledged SETTINGS frame left them. */
  private settingsInFlight: Http2Settings[] = [];
  private goawaySent: { lastStreamId: number } | undefined;
  private goawayReceived: { lastStreamId: number } | undefined;
  private emptyFrames = 0;
  private readonly buckets: Record<'reset' | 'settings' | 'ping' | 'windowUpdate', TokenBucket>;
  private now = 0;
  private connBlockedSince: number | undefined;
  private closeReported = false;
  private rrCursor = 0;
  private goawayAfterOpen = false;

  constructor(options: Http2ConnectionOptions) {
    this.role = options.role;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.trace = options.trace ?? silentTrace;
    this.host = options.hostName ?? options.role;
    this.localSettings = {
      ...DEFAULT_SETTINGS,
      // Our defaults: bounded concurrency and header lists (RFC 9113 §10.5), a 1 MiB
      // stream window, and no push offered to servers.
      maxConcurrentStreams: 100,
      maxHeaderListSize: 64 * 1024,
      initialWindowSize: 1 << 20,
      enablePush: options.role === 'client' ? false : DEFAULT_SETTINGS.enablePush,
      ...options.settings,
    };
    this.connWindowTarget = options.connectionWindow ?? 16 << 20;
    this.reader = new FrameReader(this.localSettings.maxFrameSize);
    this.encoder = new HpackEncoder();
    this.decoder = new HpackDecoder({ maxHeaderListSize: this.localSettings.maxHeaderListSize });
    this.prefaceNeeded = this.role === 'server' ? CONNECTION_PREFACE.length : 0;
    this.nextLocalId = options.firstStreamId ?? (this.role === 'client' ? 1 : 2);
    const bucket = (burst: number): TokenBucket => ({ tokens: burst, last: 0 });
    this.buckets = {
      reset: bucket(this.limits.resetBurst),
      settings: bucket(this.limits.settingsBurst),
      ping: bucket(this.limits.pingBurst),
      windowUpdate: bucket(this.limits.windowUpdateBurst),
    };
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** Queues the connection preface (RFC 9113 §3.4): client magic, then SETTINGS, both roles. */
  start(now = 0): void {
    if (this.phase !== 'idle') return;
    this.now = now;
    this.phase = 'preface';
    if (this.role === 'client') this.queueControl(CONNECTION_PREFACE, false);
    this.sendSettings(this.localSettings, now, true);
    // RFC 9113 §6.9.2: the connection window can only be changed by WINDOW_UPDATE.
    if (this.connWindowTarget > this.connRecvWindow) {
      this.queueFrame(
        {
          type: 'WINDOW_UPDATE',
          streamId: 0,
          windowSizeIncrement: this.connWindowTarget - this.connRecvWindow,
        },
        false,
      );
      this.connRecvWindow = this.connWindowTarget;
    }
  }

  /** Announces changed settings (applied to the peer's obligations once it ACKs). */
  updateSettings(settings: Partial<Http2Settings>, now = this.now): void {
    Object.assign(this.localSettings, settings);
    this.sendSettings(settings, now, false);
  }

  private sendSettings(s: Partial<Http2Settings>, now: number, all: boolean): void {
    const params = all ? settingsToFrame(this.diffFromDefault(s as Http2Settings)) : settingsToFrame(s);
    this.queueFrame({ type: 'SETTINGS', ack: false, settings: params }, false);
    this.settingsSentAt.push(now);
    this.settingsInFlight.push({ ...this.localSettings });
  }

  private diffFromDefault(s: Http2Settings): Partial<Http2Settings> {
    const out: Partial<Http2Settings> = {};
    for (const k of Object.keys(DEFAULT_SETTINGS) as (keyof Http2Settings)[]) {
      if (s[k] !== DEFAULT_SETTINGS[k]) (out as Record<string, unknown>)[k] = s[k];
    }
    // RFC 9113 §8.4: a client that does not want push says so explicitly.
    if (this.role === 'client') out.enablePush = s.enablePush;
    return out;
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** Streams currently known (not closed). */
  get activeStreams(): number {
    let n = 0;
    for (const s of this.streams.values()) if (!isClosed(s.state)) n++;
    return n;
  }

  streamState(id: number): StreamState {
    const s = this.streams.get(id);
    if (s) return s.state;
    const c = this.closed.get(id);
    if (c !== undefined) return c ? 'closed (reset sent)' : 'closed';
    return this.isIdle(id) ? 'idle' : 'closed';
  }

  // ---- input ----------------------------------------------------------------------------

  /** Feeds bytes from the peer; returns the events they caused. */
  receive(bytes: Uint8Array, now = this.now): Http2Event[] {
    this.now = now;
    if (this.phase === 'closed') return this.takeEvents();
    if (this.phase === 'idle') this.start(now);
    let at = 0;
    // RFC 9113 §3.4: the server first reads the 24-octet client preface.
    while (this.prefaceNeeded > 0 && at < bytes.length) {
      const i = CONNECTION_PREFACE.length - this.prefaceNeeded;
      if (bytes[at] !== CONNECTION_PREFACE[i]) {
        this.counters.inc('h2.bad-preface');
        this.connectionError(new Http2Error(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface'));
        return this.takeEvents();
      }
      at++;
      this.prefaceNeeded--;
    }
    if (at < bytes.length) this.reader.push(at === 0 ? bytes : bytes.subarray(at));
    try {
      for (;;) {
        if (this.isClosed) break;
        const next = this.reader.next();
        if (!next) break;
        this.onFrame(next.header, next.payload);
      }
    } catch (e) {
      if (e instanceof Http2Error && !e.isStreamError) this.connectionError(e);
      else if (e instanceof Http2Error) this.connectionError(new Http2Error(e.code, e.message));
      else throw e;
    }
    return this.takeEvents();
  }

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    let f: Http2Frame;
    try {
      f = decodeFramePayload(h, payload);
    } catch (e) {
      if (e instanceof Http2Error && e.streamId !== undefined) {
        this.counters.inc('h2.frame-stream-error');
        this.streamError(e.streamId, e.code, e.message);
        return;
      }
      throw e;
    }
    if (this.trace.enabled)
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'h2',
        dir: 'in',
        summary: frameSummary(f),
        fields: { frame: f },
      });
    // RFC 9113 §3.4: the first frame from the peer MUST be SETTINGS.
    if (!this.firstFrameSeen) {
      if (f.type !== 'SETTINGS' || f.ack)
        throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'first frame is not SETTINGS');
      this.firstFrameSeen = true;
      if (this.phase === 'preface') this.phase = 'open';
    }
    // RFC 9113 §6.10: inside a header block only CONTINUATION on the same stream may come.
    if (this.pendingBlock && f.type !== 'CONTINUATION')
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, `${f.type} inside a header block`);
    switch (f.type) {
      case 'DATA':
        this.onData(f, h.length);
        return;
      case 'HEADERS':
      case 'PUSH_PROMISE':
        this.onHeaderBlockStart(f);
        return;
      case 'CONTINUATION':
        this.onContinuation(f);
        return;
      case 'PRIORITY':
        // RFC 9113 §5.3.2: the RFC 7540 scheme is deprecated; we only check §5.3.1.
        if (f.priority.streamDependency === f.streamId)
          this.streamError(f.streamId, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself');
        return;
      case 'RST_STREAM':
        this.onRstStream(f.streamId, f.errorCode);
        return;
      case 'SETTINGS':
        this.onSettings(f);
        return;
      case 'PING':
        this.onPing(f);
        return;
      case 'GOAWAY':
        this.onGoaway(f);
        return;
      case 'WINDOW_UPDATE':
        this.onWindowUpdate(f.streamId, f.windowSizeIncrement);
        return;
      case 'PRIORITY_UPDATE':
        this.onPriorityUpdate(f.prioritizedStreamId, f.priorityFieldValue);
        return;
      case 'UNKNOWN':
        // RFC 9113 §5.5: unknown frame types are ignored.
        this.counters.inc('h2.unknown-frame');
        return;
    }
  }

  private isIdle(id: number): boolean {
    const local = (id % 2 === 1) === (this.role === 'client');
    if (local) return id >= this.nextLocalId;
    return id > this.lastRemoteId && !(id % 2 === 0 && id <= this.lastPromisedId);
  }

  /** The stream's record while it is known (not idle, not yet retired after closing). */
  private lookup(id: number): Stream | undefined {
    return this.streams.get(id);
  }

  /** Applies the transition table for a received frame; returns false when the frame is dropped. */
  private recvTransition(id: number, ev: Exclude<StreamEvent, '*'>): Stream | undefined {
    const s = this.lookup(id);
    const state = s ? s.state : this.streamState(id);
    const { outcome, rfc } = transition(state, 'recv', ev);
    if ('error' in outcome) {
      const reason = `${ev} on stream ${id} in state ${state} (${rfc})`;
      if (outcome.error === 'connection') throw new Http2Error(outcome.code, reason);
      this.streamError(id, outcome.code, reason);
      return undefined;
    }
    if ('ignore' in outcome || 'misuse' in outcome) {
      this.counters.inc(`h2.ignored.${ev}`);
      return undefined;
    }
    if (!s) return undefined;
    if (outcome.next !== 'same') this.setState(s, outcome.next, rfc);
    return s;
  }

  private setState(s: Stream, next: StreamState, rfc: string): void {
    const from = s.state;
    s.state = next;
    if (this.trace.enabled)
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'h2',
        dir: 'local',
        summary: `stream ${s.id} ${from} → ${next}`,
        state: { from, to: next },
        rfc,
      });
    if (isClosed(next)) this.retire(s, next === 'closed (reset sent)');
  }

  /** A closed stream leaves the map once its queued frames are written. */
  private retire(s: Stream, resetSent: boolean): void {
    if (s.out.length > 0 && !resetSent) return;
    this.streams.delete(s.id);
    this.closed.set(s.id, resetSent);
    if (this.closed.size > this.limits.closedStreamMemory) {
      const oldest = this.closed.keys().next();
      if (!oldest.done) this.closed.delete(oldest.value);
    }
    this.events.push({ type: 'streamClosed', streamId: s.id });
    this.maybeFinishClosing();
  }

  private newStream(id: number, local: boolean): Stream {
    const s: Stream = {
      id,
      state: 'idle',
      sendWindow: this.remoteSettings.initialWindowSize,
      recvWindow: this.ackedLocalSettings.initialWindowSize,
      unacked: 0,
      out: [],
      outBytes: 0,
      localEnded: false,
      headerBlocks: 0,
      finalResponseSeen: false,
      received: 0,
      head: false,
      urgency: 3,
      incremental: false,
      initiatedLocally: local,
    };
    this.streams.set(id, s);
    return s;
  }

  private onData(f: Extract<Http2Frame, { type: 'DATA' }>, length: number): void {
    // RFC 9113 §6.9.1: the whole payload, padding included, counts against both windows,
    // even on a stream we will not accept data for.
    if (length > this.connRecvWindow)
      throw new Http2Error(ErrorCode.FLOW_CONTROL_ERROR, 'DATA exceeds the connection window');
    this.connRecvWindow -= length;
    // Padding and refused data are credited back at once.
    const padding = length - f.data.length;
    this.creditConnection(padding);
    if (f.data.length === 0 && !f.endStream) this.emptyFrame();
    else if (f.data.length > 0) this.emptyFrames = 0;
    const s = this.recvTransition(f.streamId, 'DATA');
    if (!s) {
      this.creditConnection(f.data.length);
      return;
    }
    if (s.state === 'half-closed (remote)' || isClosed(s.state)) return;
    if (f.data.length > s.recvWindow) {
      this.creditConnection(f.data.length);
      this.streamError(s.id, ErrorCode.FLOW_CONTROL_ERROR, 'DATA exceeds the stream window');
      return;
    }
    s.recvWindow -= f.data.length;
    s.received += f.data.length;
    // RFC 9113 §8.1.1: a content-length that the DATA frames contradict is malformed.
    if (
      s.contentLength !== undefined &&
      !s.head &&
      (s.received > s.contentLength || (f.endStream && s.received !== s.contentLength))
    ) {
      this.creditConnection(f.data.length);
      this.streamError(s.id, ErrorCode.PROTOCOL_ERROR, 'DATA length differs from content-length');
      return;
    }
    if (f.data.length > 0 || f.endStream)
      this.events.push({ type: 'data', streamId: s.id, data: f.data, endStream: f.endStream });
    if (f.endStream) this.recvTransition(s.id, 'END_STREAM');
  }

  private emptyFrame(): void {
    this.emptyFrames++;
    if (this.emptyFrames > this.limits.maxEmptyFrames) {
      this.counters.inc('h2.flood.empty-frames');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'too many frames without payload (CVE-2019-9518)');
    }
  }

  private onHeaderBlockStart(f: Extract<Http2Frame, { type: 'HEADERS' } | { type: 'PUSH_PROMISE' }>): void {
    if (f.headerBlockFragment.length === 0 && !(f.type === 'HEADERS' && f.endStream)) this.emptyFrame();
    const block: PendingBlock = {
      frame: f,
      fragments: [f.headerBlockFragment],
      size: f.headerBlockFragment.length,
      continuations: 0,
    };
    if (block.size > this.limits.maxHeaderBlockSize) this.headerBlockTooLarge();
    if (f.endHeaders) this.onHeaderBlock(block);
    else this.pendingBlock = block;
  }

  private headerBlockTooLarge(): never {
    this.counters.inc('h2.flood.header-block');
    throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'header block larger than our limit');
  }

  private onContinuation(f: Extract<Http2Frame, { type: 'CONTINUATION' }>): void {
    const block = this.pendingBlock;
    // RFC 9113 §6.10: CONTINUATION only after HEADERS/PUSH_PROMISE/CONTINUATION without END_HEADERS, same stream.
    if (!block || block.frame.streamId !== f.streamId)
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    block.continuations++;
    block.size += f.headerBlockFragment.length;
    block.fragments.push(f.headerBlockFragment);
    if (f.headerBlockFragment.length === 0 && !f.endHeaders) this.emptyFrame();
    if (block.continuations > this.limits.maxContinuationFrames) {
      this.counters.inc('h2.flood.continuation');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'too many CONTINUATION frames (CVE-2024-27316)');
    }
    if (block.size > this.limits.maxHeaderBlockSize) this.headerBlockTooLarge();
    if (f.endHeaders) {
      this.pendingBlock = undefined;
      this.onHeaderBlock(block);
    }
  }

  /** Decodes a complete block (always, to keep HPACK state in step) and dispatches it. */
  private onHeaderBlock(block: PendingBlock): void {
    const bytes =
      block.fragments.length === 1 ? (block.fragments[0] as Uint8Array) : concatBytes(...block.fragments);
    let fields: HeaderField[] | undefined;
    let tooLarge = false;
    try {
      fields = this.decoder.decode(bytes);
    } catch (e) {
      if (e instanceof HeaderListTooLargeError) {
        this.counters.inc('h2.header-list-too-large');
        tooLarge = true;
      } else {
        // RFC 9113 §4.3: a block that cannot be decompressed is a connection error COMPRESSION_ERROR.
        throw new Http2Error(ErrorCode.COMPRESSION_ERROR, e instanceof Error ? e.message : String(e));
      }
    }
    const f = block.frame;
    if (f.type === 'PUSH_PROMISE') this.onPushPromise(f, fields, tooLarge);
    else this.onHeaders(f, fields, tooLarge);
  }

  private onHeaders(
    f: Extract<Http2Frame, { type: 'HEADERS' }>,
    fields: HeaderField[] | undefined,
    tooLarge: boolean,
  ): void {
    const id = f.streamId;
    if (f.priority && f.priority.streamDependency === id) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself (RFC 9113 §5.3.1)');
      return;
    }
    let s = this.lookup(id);
    // RFC 9113 §5.1.1: a new stream id lower than one already used (and not a stream we
    // know as closed) is a connection error PROTOCOL_ERROR.
    if (!s && !this.isIdle(id) && !this.closed.has(id) && (id % 2 === 1) === (this.role === 'server'))
      throw new Http2Error(
        ErrorCode.PROTOCOL_ERROR,
        `stream ${id} is below the last opened stream ${this.lastRemoteId}`,
      );
    if (!s && this.isIdle(id)) {
      // A new stream from the peer (RFC 9113 §5.1.1).
      const remoteParity = this.role === 'server' ? 1 : 0;
      if (id % 2 !== remoteParity)
        throw new Http2Error(
          ErrorCode.PROTOCOL_ERROR,
          `peer opened stream ${id} with our parity (RFC 9113 §5.1.1)`,
        );
      if (this.role === 'client')
        throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'server opened a stream with HEADERS (RFC 9113 §8.4)');
      // Streams with lower ids that were never used are closed implicitly (§5.1.1).
      this.lastRemoteId = id;
      // RFC 9113 §6.8: after our GOAWAY, new streams above its last id are ignored.
      if (this.goawaySent && id > this.goawaySent.lastStreamId) {
        this.counters.inc('h2.ignored.after-goaway');
        return;
      }
      // RFC 9113 §5.1.2: beyond our SETTINGS_MAX_CONCURRENT_STREAMS, REFUSED_STREAM.
      if (this.remoteOpenStreams() >= this.localSettings.maxConcurrentStreams) {
        this.counters.inc('h2.refused.concurrency');
        this.closed.set(id, true);
        this.queueFrame({ type: 'RST_STREAM', streamId: id, errorCode: ErrorCode.REFUSED_STREAM }, true);
        this.chargeReset();
        return;
      }
      s = this.newStream(id, false);
    }
    const before = s?.state ?? this.streamState(id);
    const st = this.recvTransition(id, 'HEADERS');
    if (!st) return;
    if (tooLarge || !fields) {
      // RFC 9113 §10.5.1: a server may answer 431; either way the stream ends here.
      if (this.role === 'server' && before === 'idle') {
        this.respond(id, [{ name: ':status', value: '431' }], true);
      } else
        this.streamError(
          id,
          ErrorCode.PROTOCOL_ERROR,
          'header list larger than SETTINGS_MAX_HEADER_LIST_SIZE',
        );
      return;
    }
    let kind: HeaderKind;
    if (st.headerBlocks === 0 || (this.role === 'client' && !st.finalResponseSeen)) {
      if (this.role === 'server') kind = 'request';
      else kind = statusOf(fields) >= 100 && statusOf(fields) < 200 ? 'informational' : 'response';
    } else kind = 'trailers';
    // RFC 9113 §8.1: trailers end the stream; a 1xx cannot end it.
    let reason = malformedReason(fields, kind, this.localSettings.enableConnectProtocol);
    if (!reason && kind === 'trailers' && !f.endStream) reason = 'trailers without END_STREAM';
    if (!reason && kind === 'informational' && f.endStream) reason = '1xx response with END_STREAM';
    if (reason) {
      this.streamError(id, ErrorCode.PROTOCOL_ERROR, `malformed: ${reason} (RFC 9113 §8.1.1)`);
      return;
    }
    st.headerBlocks++;
    if (kind === 'response' || kind === 'request') {
      st.finalResponseSeen = kind === 'response';
      const cl = contentLengthOf(fields);
      if (cl !== undefined) {
        if (Number.isNaN(cl)) {
          this.streamError(id, ErrorCode.PROTOCOL_ERROR, 'malformed: invalid content-length');
          return;
        }
        st.contentLength = cl;
        if (f.endStream && cl !== 0 && !st.head && statusOf(fields) !== 304) {
          this.streamError(id, ErrorCode.PROTOCOL_ERROR, 'malformed: content-length with no DATA');
          return;
        }
      }
      if (kind === 'request') {
        const p = fields.find((x) => x.name === 'priority');
        if (p) this.applyPriority(st, p.value);
      }
    }
    this.events.push({ type: 'headers', streamId: id, kind, headers: fields, endStream: f.endStream });
    if (f.endStream) this.recvTransition(id, 'END_STREAM');
  }

  private onPushPromise(
    f: Extract<Http2Frame, { type: 'PUSH_PROMISE' }>,
    fields: HeaderField[] | undefined,
    tooLarge: boolean,
  ): void {
    // RFC 9113 §8.4: only servers push, and only when we allowed it.
    if (this.role === 'server') throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
    if (!this.localSettings.enablePush)
      throw new Http2Error(
        ErrorCode.PROTOCOL_ERROR,
        'PUSH_PROMISE with SETTINGS_ENABLE_PUSH 0 (RFC 9113 §6.6)',
      );
    const pid = f.promisedStreamId;
    // RFC 9113 §6.6: the promised id must be a new, even id.
    if (pid % 2 !== 0 || pid <= this.lastPromisedId || pid === 0)
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, `invalid promised stream id ${pid}`);
    this.lastPromisedId = pid;
    // RFC 9113 §8.4: the associated stream must be open or half-closed (local) for us.
    const parent = this.lookup(f.streamId);
    if (!parent || (parent.state !== 'open' && parent.state !== 'half-closed (local)'))
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE on a stream that is not open');
    const s = this.newStream(pid, false);
    this.recvTransition(pid, 'PUSH_PROMISE');
    const reason =
      tooLarge || !fields ? 'promised request too large' : malformedReason(fields, 'push-request', false);
    if (reason || !fields) {
      this.streamError(pid, ErrorCode.PROTOCOL_ERROR, `malformed: ${reason}`);
      return;
    }
    s.head = fields.some((x) => x.name === ':method' && x.value === 'HEAD');
    this.events.push({ type: 'push', streamId: f.streamId, promisedStreamId: pid, headers: fields });
  }

  private onRstStream(id: number, code: number): void {
    const s = this.lookup(id);
    const wasOpen = s !== undefined && !isClosed(s.state);
    const st = this.recvTransition(id, 'RST_STREAM');
    if (!st) return;
    if (wasOpen) {
      // Rapid reset (CVE-2023-44487): streams the peer opens and cancels cost us work each.
      if (!st.initiatedLocally) this.chargeReset();
      st.out = [];
      st.outBytes = 0;
      this.retire(st, false);
      this.events.push({ type: 'streamReset', streamId: id, errorCode: code, remote: true });
    }
  }

  private chargeReset(): void {
    if (!this.take('reset', this.limits.resetsPerSecond, this.limits.resetBurst)) {
      this.counters.inc('h2.flood.rapid-reset');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'too many reset streams (CVE-2023-44487)');
    }
  }

  private onSettings(f: Extract<Http2Frame, { type: 'SETTINGS' }>): void {
    if (f.ack) {
      // An ACK for a SETTINGS we never sent: RFC 9113 §6.5.3 leaves it open; we treat it
      // as a PROTOCOL_ERROR, as nghttp2 does.
      if (this.settingsSentAt.length === 0)
        throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'unexpected SETTINGS ACK');
      this.settingsSentAt.shift();
      const acked = this.settingsInFlight.shift() ?? this.localSettings;
      // Our settings bind the peer from now on. RFC 9113 §6.9.2: a changed initial window
      // changes every open stream's window by the difference; the peer applied it before
      // sending this ACK, so data it sends after the ACK may use it, and data before it not.
      const delta = acked.initialWindowSize - this.ackedLocalSettings.initialWindowSize;
      this.ackedLocalSettings = acked;
      if (delta !== 0)
        for (const s of this.streams.values()) {
          s.recvWindow += delta;
          this.maybeUpdateStreamWindow(s);
        }
      this.decoder.setMaxTableSize(acked.headerTableSize);
      this.decoder.maxHeaderListSize = acked.maxHeaderListSize;
      this.reader.maxFrameSize = acked.maxFrameSize;
      this.events.push({ type: 'settingsAck' });
      return;
    }
    if (!this.take('settings', this.limits.settingsPerSecond, this.limits.settingsBurst)) {
      this.counters.inc('h2.flood.settings');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'SETTINGS flood');
    }
    const prev = this.remoteSettings;
    const next = applySettings(prev, f.settings);
    // RFC 9113 §6.9.2: a new initial window applies to every stream's send window.
    const delta = next.initialWindowSize - prev.initialWindowSize;
    if (delta !== 0) {
      for (const s of this.streams.values()) {
        if (s.sendWindow + delta > MAX_WINDOW)
          throw new Http2Error(
            ErrorCode.FLOW_CONTROL_ERROR,
            'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window',
          );
        s.sendWindow += delta;
      }
    }
    if (next.headerTableSize !== prev.headerTableSize) this.encoder.setMaxTableSize(next.headerTableSize);
    // RFC 8441 §3: ENABLE_CONNECT_PROTOCOL cannot be withdrawn.
    if (prev.enableConnectProtocol && !next.enableConnectProtocol)
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_CONNECT_PROTOCOL withdrawn');
    this.remoteSettings = next;
    // RFC 9113 §6.5.3: acknowledge at once.
    this.queueFrame({ type: 'SETTINGS', ack: true, settings: [] }, true);
    this.events.push({ type: 'remoteSettings', settings: next });
    if (delta > 0)
      for (const s of this.streams.values())
        if (s.outBytes > 0) this.events.push({ type: 'drain', streamId: s.id });
  }

  private onPing(f: Extract<Http2Frame, { type: 'PING' }>): void {
    if (f.ack) {
      this.events.push({ type: 'pingAck', payload: f.opaqueData });
      return;
    }
    if (!this.take('ping', this.limits.pingsPerSecond, this.limits.pingBurst)) {
      this.counters.inc('h2.flood.ping');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'PING flood');
    }
    // RFC 9113 §6.7: answer with the same payload and ACK, ahead of other frames.
    this.queueFrame({ type: 'PING', ack: true, opaqueData: f.opaqueData }, true);
    this.events.push({ type: 'ping', payload: f.opaqueData });
  }

  private onGoaway(f: Extract<Http2Frame, { type: 'GOAWAY' }>): void {
    // RFC 9113 §6.8: the last id can only go down.
    const last = Math.min(f.lastStreamId, this.goawayReceived?.lastStreamId ?? MAX_STREAM_ID);
    this.goawayReceived = { lastStreamId: last };
    this.events.push({ type: 'goaway', lastStreamId: last, errorCode: f.errorCode, debugData: f.debugData });
    // Our streams above `last` were not processed: they fail and may be retried elsewhere.
    for (const s of [...this.streams.values()]) {
      if (s.initiatedLocally && s.id > last && !isClosed(s.state)) {
        s.out = [];
        s.outBytes = 0;
        s.state = 'closed';
        this.retire(s, false);
        this.events.push({
          type: 'streamReset',
          streamId: s.id,
          errorCode: ErrorCode.REFUSED_STREAM,
          remote: true,
        });
      }
    }
    this.waitingOpen = this.waitingOpen.filter((id) => id <= last);
    if (f.errorCode !== ErrorCode.NO_ERROR) {
      this.finish(f.errorCode, `peer GOAWAY ${errorCodeName(f.errorCode)}`, true);
      return;
    }
    if (this.phase === 'open' || this.phase === 'preface') this.phase = 'closing';
    this.maybeFinishClosing();
  }

  private onWindowUpdate(id: number, inc: number): void {
    if (!this.take('windowUpdate', this.limits.windowUpdatesPerSecond, this.limits.windowUpdateBurst)) {
      this.counters.inc('h2.flood.window-update');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'WINDOW_UPDATE flood');
    }
    if (id === 0) {
      // RFC 9113 §6.9.1: beyond 2^31-1 is a connection FLOW_CONTROL_ERROR.
      if (this.connSendWindow + inc > MAX_WINDOW)
        throw new Http2Error(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.connSendWindow += inc;
      this.connBlockedSince = undefined;
      for (const s of this.streams.values())
        if (s.outBytes > 0) this.events.push({ type: 'drain', streamId: s.id });
      return;
    }
    const s = this.recvTransition(id, 'WINDOW_UPDATE');
    if (!s) return;
    if (s.sendWindow + inc > MAX_WINDOW) {
      this.streamError(id, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1 (RFC 9113 §6.9.1)');
      return;
    }
    s.sendWindow += inc;
    s.blockedSince = undefined;
    this.events.push({ type: 'drain', streamId: id });
  }

  private onPriorityUpdate(id: number, value: string): void {
    // RFC 9218 §7.1: a server applies it; for a stream not yet open, it is remembered... we
    // apply it to open streams only and ignore the rest (a bounded choice, §7.1 allows it).
    if (this.role !== 'server')
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'PRIORITY_UPDATE sent to a client');
    if (id % 2 === 0) throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'PRIORITY_UPDATE for a push stream id');
    const s = this.lookup(id);
    if (!s) return;
    this.applyPriority(s, value);
    this.events.push({
      type: 'priorityUpdate',
      streamId: id,
      urgency: s.urgency,
      incremental: s.incremental,
    });
  }

  /** RFC 9218 §4: `u=N` (0..7, default 3) and `i` (incremental) from a structured dictionary. */
  private applyPriority(s: Stream, value: string): void {
    for (const part of value.split(',')) {
      const [k, v] = part.trim().split('=');
      if (k === 'u' && v !== undefined && /^[0-7]$/.test(v)) s.urgency = Number(v);
      else if (k === 'i') s.incremental = v === undefined || v === '?1';
    }
  }

  // ---- errors ---------------------------------------------------------------------------

  /** RFC 9113 §5.4.2: RST_STREAM, and the stream is closed (reset sent). */
  private streamError(id: number, code: number, reason: string): void {
    this.counters.inc(`h2.stream-error.${errorCodeName(code)}`);
    if (this.trace.enabled)
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'h2',
        dir: 'drop',
        summary: `stream error ${id}: ${reason}`,
        reason,
      });
    this.chargeReset();
    const s = this.lookup(id);
    this.queueFrame({ type: 'RST_STREAM', streamId: id, errorCode: code }, true);
    if (s) {
      s.out = [];
      s.outBytes = 0;
      s.localEnded = true;
      const wasOpen = !isClosed(s.state);
      this.setState(s, 'closed (reset sent)', 'RFC 9113 §5.4.2');
      if (wasOpen) this.events.push({ type: 'streamReset', streamId: id, errorCode: code, remote: false });
    } else {
      this.closed.set(id, true);
      if (id > this.lastRemoteId && (id % 2 === 1) === (this.role === 'server')) this.lastRemoteId = id;
    }
  }

  /** RFC 9113 §5.4.1: GOAWAY with the last stream we processed, then close. */
  private connectionError(e: Http2Error): void {
    this.counters.inc(`h2.connection-error.${errorCodeName(e.code)}`);
    if (this.phase === 'closed') return;
    const debug = new TextEncoder().encode(e.message.slice(0, 200));
    this.queueFrame(
      { type: 'GOAWAY', lastStreamId: this.lastRemoteId, errorCode: e.code, debugData: debug },
      false,
    );
    this.finish(e.code, e.message, false);
  }

  private finish(code: number, reason: string, remote: boolean): void {
    this.phase = 'closed';
    for (const s of this.streams.values()) {
      if (!isClosed(s.state))
        this.events.push({
          type: 'streamReset',
          streamId: s.id,
          errorCode: code || ErrorCode.CANCEL,
          remote,
        });
    }
    this.streams.clear();
    if (!this.closeReported) {
      this.closeReported = true;
      this.events.push({ type: 'close', errorCode: code, reason, remote });
    }
  }

  private maybeFinishClosing(): void {
    if (this.phase !== 'closing') return;
    if (this.streams.size > 0 || this.waitingOpen.length > 0) return;
    // RFC 9113 §6.8: endpoints SHOULD send GOAWAY before closing, also after the peer's.
    if (!this.goawaySent) {
      const last = this.role === 'server' ? this.lastRemoteId : this.lastPromisedId;
      this.goawaySent = { lastStreamId: last };
      this.queueFrame(
        { type: 'GOAWAY', lastStreamId: last, errorCode: ErrorCode.NO_ERROR, debugData: new Uint8Array(0) },
        false,
      );
    }
    this.finish(ErrorCode.NO_ERROR, 'graceful shutdown complete', this.goawaySent === undefined);
  }

  private take(which: keyof typeof this.buckets, rate: number, burst: number): boolean {
    const b = this.buckets[which];
    b.tokens = Math.min(burst, b.tokens + ((this.now - b.last) * rate) / 1000);
    b.last = this.now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  // ---- flow control (receive side) ------------------------------------------------------

  /**
   * The user consumed `n` octets of stream `id`'s data: credit them back. WINDOW_UPDATE is
   * sent once a quarter of a window is owed, so the sender always has at least three
   * quarters of the window in flight: on a long link it keeps sending while our updates
   * travel (RFC 9113 §6.9.1 leaves the policy to us).
   */
  consumed(id: number, n: number): void {
    if (n <= 0) return;
    this.creditConnection(n);
    const s = this.lookup(id);
    if (!s || isClosed(s.state) || s.state === 'half-closed (remote)') return;
    s.unacked += n;
    this.maybeUpdateStreamWindow(s);
  }

  private maybeUpdateStreamWindow(s: Stream): void {
    if (s.unacked > 0 && s.unacked >= this.ackedLocalSettings.initialWindowSize / 4) {
      this.queueFrame({ type: 'WINDOW_UPDATE', streamId: s.id, windowSizeIncrement: s.unacked }, false);
      s.recvWindow += s.unacked;
      s.unacked = 0;
    }
  }

  private creditConnection(n: number): void {
    if (n <= 0) return;
    this.connUnacked += n;
    if (this.connUnacked >= this.connWindowTarget / 4) {
      this.queueFrame({ type: 'WINDOW_UPDATE', streamId: 0, windowSizeIncrement: this.connUnacked }, false);
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
  }

  // ---- output ---------------------------------------------------------------------------

  private queueFrame(f: Http2Frame, owed: boolean): void {
    if (this.phase === 'closed' && f.type !== 'GOAWAY') return;
    this.queueControl(encodeFrame(f), owed);
    if (this.trace.enabled)
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'h2',
        dir: 'out',
        summary: frameSummary(f),
        fields: { frame: f },
      });
  }

  /**
   * Frames we owe the peer (ACKs, RST_STREAM) are bounded: a peer that provokes them but
   * does not read our output would otherwise grow this queue without end.
   */
  private queueControl(bytes: Uint8Array, owed: boolean): void {
    this.control.push(bytes);
    if (owed && ++this.controlFrames > this.limits.maxQueuedControlFrames) {
      this.counters.inc('h2.flood.control-queue');
      this.control = [];
      this.controlFrames = 0;
      this.connectionError(
        new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'peer does not read the frames it provokes'),
      );
    }
  }

  /** Whether output() would return anything now. */
  get hasOutput(): boolean {
    if (this.control.length > 0 || this.waitingOpen.length > 0) return true;
    for (const s of this.streams.values()) if (s.out.length > 0) return true;
    return false;
  }

  /** Frames ready to write, as one buffer (empty when nothing is ready). */
  output(): Uint8Array {
    const parts: Uint8Array[] = [];
    this.flushControl(parts);
    this.openWaiting(parts);
    if (this.goawayAfterOpen && this.waitingOpen.length === 0) {
      this.goawayAfterOpen = false;
      this.goaway(ErrorCode.NO_ERROR);
    }
    this.flushControl(parts);
    this.flushStreams(parts);
    if (parts.length === 0) return new Uint8Array(0);
    return parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(...parts);
  }

  private flushControl(parts: Uint8Array[]): void {
    for (const item of this.control) {
      if (item instanceof Uint8Array) parts.push(item);
      else this.writePushPromise(item, parts);
    }
    this.control = [];
    this.controlFrames = 0;
  }

  /** Our new streams open in id order, within the peer's concurrency limit (RFC 9113 §5.1.1, §5.1.2). */
  private openWaiting(parts: Uint8Array[]): void {
    while (
      this.waitingOpen.length > 0 &&
      this.localOpenStreams() < this.remoteSettings.maxConcurrentStreams
    ) {
      const id = this.waitingOpen.shift() as number;
      const s = this.lookup(id);
      if (!s) continue;
      const first = s.out[0];
      if (first?.kind !== 'headers') continue;
      s.out.shift();
      this.writeHeaders(s, first.fields, first.endStream, parts);
    }
  }

  private writeHeaders(s: Stream, fields: HeaderField[], endStream: boolean, parts: Uint8Array[]): void {
    this.sendTransition(s, 'HEADERS');
    const block = this.encoder.encode(fields);
    this.writeBlock(parts, block, (frag, endHeaders) => ({
      type: 'HEADERS',
      streamId: s.id,
      endStream,
      endHeaders,
      headerBlockFragment: frag,
    }));
    if (endStream) this.sendTransition(s, 'END_STREAM');
  }

  /** RFC 9113 §4.3: one block, split over HEADERS/PUSH_PROMISE and CONTINUATION frames back to back. */
  private writeBlock(
    parts: Uint8Array[],
    block: Uint8Array,
    first: (frag: Uint8Array, endHeaders: boolean) => Http2Frame,
    room = 0,
  ): void {
    const max = this.remoteSettings.maxFrameSize - room;
    const head = block.subarray(0, max);
    const f = first(head, block.length <= max);
    parts.push(encodeFrame(f));
    if (this.trace.enabled)
      this.trace.emit({ t: this.now, host: this.host, layer: 'h2', dir: 'out', summary: frameSummary(f) });
    for (let at = max; at < block.length; at += this.remoteSettings.maxFrameSize) {
      const frag = block.subarray(at, at + this.remoteSettings.maxFrameSize);
      parts.push(
        encodeFrame({
          type: 'CONTINUATION',
          streamId: f.type === 'HEADERS' || f.type === 'PUSH_PROMISE' ? f.streamId : 0,
          endHeaders: at + frag.length >= block.length,
          headerBlockFragment: frag,
        }),
      );
    }
  }

  private writePushPromise(
    item: { streamId: number; promisedStreamId: number; fields: HeaderField[] },
    parts: Uint8Array[],
  ): void {
    const parent = this.lookup(item.streamId);
    const promised = this.lookup(item.promisedStreamId);
    if (!parent || !promised || isClosed(parent.state)) {
      if (promised)
        this.setState(promised, 'closed', 'RFC 9113 §8.4: the associated stream closed before the promise');
      return;
    }
    this.sendTransition(promised, 'PUSH_PROMISE');
    const block = this.encoder.encode(item.fields);
    this.writeBlock(
      parts,
      block,
      (frag, endHeaders) => ({
        type: 'PUSH_PROMISE',
        streamId: item.streamId,
        endHeaders,
        promisedStreamId: item.promisedStreamId,
        headerBlockFragment: frag,
      }),
      4,
    );
  }

  private sendTransition(s: Stream, ev: Exclude<StreamEvent, '*'>): void {
    const { outcome, rfc } = transition(s.state, 'send', ev);
    if ('next' in outcome) {
      if (outcome.next !== 'same') this.setState(s, outcome.next, rfc);
      return;
    }
    // The API guards make this unreachable; fail loudly if they ever do not.
    throw new Error(`h2: cannot send ${ev} on stream ${s.id} in state ${s.state} (${rfc})`);
  }

  /**
   * RFC 9218 §10: lower urgency first; within one urgency, non-incremental streams one at
   * a time in id order, incremental ones round-robin, a frame each.
   */
  private flushStreams(parts: Uint8Array[]): void {
    const ready = [...this.streams.values()].filter(
      (s) => s.out.length > 0 && !this.waitingOpen.includes(s.id),
    );
    if (ready.length === 0) return;
    ready.sort(
      (a, b) => a.urgency - b.urgency || Number(a.incremental) - Number(b.incremental) || a.id - b.id,
    );
    let progress = true;
    while (progress) {
      progress = false;
      for (const u of new Set(ready.map((s) => s.urgency))) {
        const group = ready.filter((s) => s.urgency === u && s.out.length > 0);
        // Non-incremental first, each drained as far as the windows allow.
        for (const s of group.filter((x) => !x.incremental))
          if (this.drainStream(s, parts, Number.POSITIVE_INFINITY)) progress = true;
        const inc = group.filter((x) => x.incremental);
        for (let i = 0; i < inc.length; i++) {
          const s = inc[(i + this.rrCursor) % inc.length] as Stream;
          if (this.drainStream(s, parts, 1)) progress = true;
        }
        this.rrCursor++;
      }
    }
    for (const s of ready) {
      if (s.out.length === 0 && isClosed(s.state)) this.retire(s, false);
      else if (s.out.length > 0 && s.out[0]?.kind === 'data' && s.blockedSince === undefined)
        s.blockedSince = this.now;
    }
    if (this.connSendWindow <= 0 && ready.some((s) => s.outBytes > 0)) this.connBlockedSince ??= this.now;
  }

  /** Writes up to `maxFrames` frames of stream s; returns whether anything was written. */
  private drainStream(s: Stream, parts: Uint8Array[], maxFrames: number): boolean {
    let wrote = false;
    let frames = 0;
    while (s.out.length > 0 && frames < maxFrames) {
      const item = s.out[0] as OutItem;
      if (item.kind === 'headers') {
        s.out.shift();
        this.writeHeaders(s, item.fields, item.endStream, parts);
        wrote = true;
        frames++;
        continue;
      }
      const n = Math.min(
        item.data.length,
        s.sendWindow,
        this.connSendWindow,
        this.remoteSettings.maxFrameSize,
      );
      if (n <= 0 && item.data.length > 0) break;
      const chunk = item.data.subarray(0, n);
      const last = n === item.data.length;
      const endStream = last && item.endStream;
      parts.push(encodeDataHeader(s.id, n, endStream));
      if (n > 0) parts.push(chunk);
      if (this.trace.enabled)
        this.trace.emit({
          t: this.now,
          host: this.host,
          layer: 'h2',
          dir: 'out',
          summary: `DATA s=${s.id} len=${n}${endStream ? ' END_STREAM' : ''}`,
        });
      s.sendWindow -= n;
      this.connSendWindow -= n;
      s.outBytes -= n;
      if (last) s.out.shift();
      else item.data = item.data.subarray(n);
      this.sendTransition(s, 'DATA');
      if (endStream) this.sendTransition(s, 'END_STREAM');
      s.blockedSince = undefined;
      wrote = true;
      frames++;
    }
    return wrote;
  }

  private localOpenStreams(): number {
    let n = 0;
    for (const s of this.streams.values())
      if (
        s.initiatedLocally &&
        s.id % 2 === (this.role === 'client' ? 1 : 0) &&
        (s.state === 'open' || s.state.startsWith('half-closed'))
      )
        n++;
    return n;
  }

  private remoteOpenStreams(): number {
    let n = 0;
    for (const s of this.streams.values())
      if (!s.initiatedLocally && (s.state === 'open' || s.state.startsWith('half-closed'))) n++;
    return n;
  }

  // ---- the user's side ------------------------------------------------------------------

  private usable(id: number): Stream {
    const s = this.lookup(id);
    if (!s || s.localEnded) throw new Http2Error(ErrorCode.STREAM_CLOSED, `stream ${id} cannot send`, id);
    return s;
  }

  /** Client: opens a stream with a request header section; returns its id. */
  request(fields: HeaderField[], endStream: boolean): number {
    if (this.role !== 'client') throw new TypeError('only a client sends requests');
    if (this.phase === 'closing' || this.phase === 'closed' || this.goawayReceived)
      throw new Http2Error(ErrorCode.REFUSED_STREAM, 'connection is going away: open a new one');
    // Stream-id exhaustion (RFC 9113 §5.1.1): the client must open a new connection.
    if (this.nextLocalId > MAX_STREAM_ID) {
      this.counters.inc('h2.stream-ids-exhausted');
      // After the streams already queued have been opened (their HEADERS go first).
      this.goawayAfterOpen = true;
      throw new Http2Error(ErrorCode.REFUSED_STREAM, 'stream identifiers exhausted: open a new connection');
    }
    const id = this.nextLocalId;
    this.nextLocalId += 2;
    const s = this.newStream(id, true);
    s.head = fields.some((f) => f.name === ':method' && f.value === 'HEAD');
    const p = fields.find((f) => f.name === 'priority');
    if (p) this.applyPriority(s, p.value);
    s.out.push({ kind: 'headers', fields, endStream });
    s.localEnded = endStream;
    this.waitingOpen.push(id);
    return id;
  }

  /** Server: a response header section (1xx ones may precede the final one). */
  respond(id: number, fields: HeaderField[], endStream: boolean): void {
    const s = this.usable(id);
    s.out.push({ kind: 'headers', fields, endStream });
    if (endStream) s.localEnded = true;
  }

  /** Trailers: a header section that ends the stream (RFC 9113 §8.1). */
  sendTrailers(id: number, fields: HeaderField[]): void {
    this.respond(id, fields, true);
  }

  /** Queues body data; frames are cut to the windows and SETTINGS_MAX_FRAME_SIZE when written. */
  sendData(id: number, data: Uint8Array, endStream: boolean): void {
    const s = this.usable(id);
    if (data.length === 0 && !endStream) return;
    // END_STREAM rides on the last queued DATA frame rather than an empty one of its own.
    const last = s.out[s.out.length - 1];
    if (data.length === 0 && last?.kind === 'data') {
      last.endStream = true;
      s.localEnded = true;
      return;
    }
    s.out.push({ kind: 'data', data, endStream });
    s.outBytes += data.length;
    if (endStream) s.localEnded = true;
  }

  /** Whether our side of stream `id` may still send (not ended, not reset). */
  canSend(id: number): boolean {
    const s = this.lookup(id);
    return s !== undefined && !s.localEnded && !isClosed(s.state);
  }

  /** Octets queued on a stream and not yet written (for writers' backpressure). */
  bufferedAmount(id: number): number {
    return this.lookup(id)?.outBytes ?? 0;
  }

  /** The stream's current send window (for tests and stats). */
  sendWindow(id: number): number {
    return id === 0 ? this.connSendWindow : (this.lookup(id)?.sendWindow ?? 0);
  }

  /** RST_STREAM (RFC 9113 §6.4): e.g. CANCEL, or REFUSED_STREAM to refuse a pushed stream. */
  reset(id: number, code: number = ErrorCode.CANCEL): void {
    const s = this.lookup(id);
    if (!s || isClosed(s.state)) return;
    s.out = [];
    s.outBytes = 0;
    s.localEnded = true;
    this.waitingOpen = this.waitingOpen.filter((x) => x !== id);
    if (s.state === 'idle') {
      // Never sent: nothing to tell the peer.
      s.state = 'closed';
      this.retire(s, false);
      return;
    }
    this.queueFrame({ type: 'RST_STREAM', streamId: id, errorCode: code }, false);
    this.setState(s, 'closed (reset sent)', 'RFC 9113 §6.4');
  }

  /**
   * Server push (RFC 9113 §8.4): promises `requestFields` on stream `parentId` and returns
   * the promised stream id, on which `respond`/`sendData` send the pushed response. Only
   * when the client allows it (SETTINGS_ENABLE_PUSH).
   */
  push(parentId: number, requestFields: HeaderField[]): number {
    if (this.role !== 'server') throw new TypeError('only a server pushes');
    if (!this.remoteSettings.enablePush)
      throw new Http2Error(ErrorCode.REFUSED_STREAM, 'the client disabled push');
    const reason = malformedReason(requestFields, 'push-request', false);
    if (reason) throw new TypeError(`push: ${reason}`);
    const parent = this.usable(parentId);
    if (parent.initiatedLocally) throw new TypeError('push: the associated stream must be a client request');
    if (this.nextLocalId > MAX_STREAM_ID)
      throw new Http2Error(ErrorCode.REFUSED_STREAM, 'stream identifiers exhausted');
    const id = this.nextLocalId;
    this.nextLocalId += 2;
    this.newStream(id, true);
    this.control.push({ streamId: parentId, promisedStreamId: id, fields: requestFields });
    return id;
  }

  /** Client: re-prioritize a request (RFC 9218 §7.1), e.g. 'u=0' or 'u=5, i'. */
  priorityUpdate(id: number, priorityFieldValue: string): void {
    if (this.role !== 'client') throw new TypeError('only a client sends PRIORITY_UPDATE');
    this.queueFrame({ type: 'PRIORITY_UPDATE', prioritizedStreamId: id, priorityFieldValue }, false);
  }

  ping(payload: Uint8Array = new Uint8Array(8)): void {
    this.queueFrame({ type: 'PING', ack: false, opaqueData: payload }, false);
  }

  /**
   * GOAWAY (RFC 9113 §6.8). With NO_ERROR it is graceful: streams up to the last id we
   * processed finish, new ones are ignored, and 'close' comes once all are done. With an
   * error code the connection ends now.
   */
  goaway(code: number = ErrorCode.NO_ERROR, debugData: Uint8Array = new Uint8Array(0)): void {
    if (this.phase === 'closed') return;
    const last = this.role === 'server' ? this.lastRemoteId : this.lastPromisedId;
    this.goawaySent = { lastStreamId: last };
    this.queueFrame({ type: 'GOAWAY', lastStreamId: last, errorCode: code, debugData }, false);
    if (code !== ErrorCode.NO_ERROR) {
      this.finish(code, 'local GOAWAY', false);
      return;
    }
    this.phase = 'closing';
    this.maybeFinishClosing();
  }

  // ---- time -----------------------------------------------------------------------------

  /** The next deadline (ms), or undefined: SETTINGS ACK (RFC 9113 §6.5.3) and stall limits. */
  nextTimeout(): number | undefined {
    let t: number | undefined;
    const min = (x: number | undefined) => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    const first = this.settingsSentAt[0];
    if (first !== undefined && this.phase !== 'closed') min(first + this.limits.settingsTimeoutMs);
    if (this.connBlockedSince !== undefined) min(this.connBlockedSince + this.limits.stallTimeoutMs);
    for (const s of this.streams.values())
      if (s.blockedSince !== undefined) min(s.blockedSince + this.limits.stallTimeoutMs);
    return t;
  }

  onTimeout(now: number): Http2Event[] {
    this.now = now;
    if (this.phase === 'closed') return this.takeEvents();
    const first = this.settingsSentAt[0];
    if (first !== undefined && now >= first + this.limits.settingsTimeoutMs) {
      this.connectionError(new Http2Error(ErrorCode.SETTINGS_TIMEOUT, 'SETTINGS not acknowledged'));
      return this.takeEvents();
    }
    // Zero-window stalls (a peer that never opens its window holds our buffers): reset the
    // stream and free them; a connection window stuck at zero ends the connection.
    if (this.connBlockedSince !== undefined && now >= this.connBlockedSince + this.limits.stallTimeoutMs) {
      this.counters.inc('h2.stall.connection');
      this.connectionError(new Http2Error(ErrorCode.FLOW_CONTROL_ERROR, 'connection window stalled at zero'));
      return this.takeEvents();
    }
    for (const s of [...this.streams.values()]) {
      if (s.blockedSince !== undefined && now >= s.blockedSince + this.limits.stallTimeoutMs) {
        this.counters.inc('h2.stall.stream');
        const wasOpen = !isClosed(s.state);
        this.reset(s.id, ErrorCode.CANCEL);
        s.out = [];
        s.outBytes = 0;
        if (wasOpen)
          this.events.push({
            type: 'streamReset',
            streamId: s.id,
            errorCode: ErrorCode.CANCEL,
            remote: false,
          });
        else this.retire(s, true);
      }
    }
    return this.takeEvents();
  }

  /** Events caused by user calls (resets, closes) since the last receive/onTimeout. */
  takeEvents(): Http2Event[] {
    const e = this.events;
    this.events = [];
    return e;
  }
}
