/**
 * The shared state of an HTTP/2 connection (RFC 9113): settings, streams and their
 * transitions, errors (§5.4), receive-side flow-control credit (§6.9) and the queue of
 * frames owed to the peer. The receive path (receive.ts) and the send path and user API
 * (connection.ts) build on it.
 */
import { Counters, silentTrace, type TraceBus } from '@stepwire/wire';
import { HpackDecoder, HpackEncoder } from '../hpack/codec.ts';
import type { HeaderField } from '../hpack/table.ts';
import { ErrorCode, errorCodeName, Http2Error } from './errors.ts';
import { CONNECTION_PREFACE, encodeFrame, FrameReader, frameSummary, type Http2Frame } from './frames.ts';
import type { HeaderKind } from './message.ts';
import { DEFAULT_SETTINGS, type Http2Settings, settingsToFrame } from './settings.ts';
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

export type OutItem =
  | { kind: 'headers'; fields: HeaderField[]; endStream: boolean }
  | { kind: 'data'; data: Uint8Array; endStream: boolean };

export interface Stream {
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

export interface TokenBucket {
  tokens: number;
  last: number;
}

/** An in-progress header block (HEADERS or PUSH_PROMISE then CONTINUATIONs, RFC 9113 §6.10). */
export interface PendingBlock {
  frame: Extract<Http2Frame, { type: 'HEADERS' } | { type: 'PUSH_PROMISE' }>;
  fragments: Uint8Array[];
  size: number;
  continuations: number;
}

/** One SETTINGS frame of ours awaiting its ACK. */
export interface UnackedSettings {
  /** Our full settings once the peer has applied this frame. */
  settings: Http2Settings;
  /** When the driver took the frame's bytes (output(now)); undefined while still queued. */
  sentAt: number | undefined;
}

export const MAX_STREAM_ID = 0x7fffffff;

export abstract class Http2ConnectionBase {
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

  protected readonly trace: TraceBus;
  protected readonly host: string;
  protected readonly reader: FrameReader;
  protected readonly encoder: HpackEncoder;
  protected readonly decoder: HpackDecoder;
  protected readonly streams = new Map<number, Stream>();
  /** Recently closed streams: id → whether we closed it with RST_STREAM (RFC 9113 §5.1). */
  protected readonly closed = new Map<number, boolean>();
  protected prefaceNeeded: number;
  protected firstFrameSeen = false;
  protected nextLocalId: number;
  /** Highest stream id the peer opened (RFC 9113 §5.1.1) and the last we processed. */
  protected lastRemoteId = 0;
  protected lastPromisedId = 0;
  protected connSendWindow = 65_535;
  protected connRecvWindow = 65_535;
  protected connUnacked = 0;
  protected readonly connWindowTarget: number;
  protected control: (Uint8Array | { streamId: number; promisedStreamId: number; fields: HeaderField[] })[] =
    [];
  protected controlFrames = 0;
  protected waitingOpen: number[] = [];
  protected events: Http2Event[] = [];
  protected pendingBlock: PendingBlock | undefined;
  /**
   * Our SETTINGS frames not yet acknowledged, oldest first (the peer ACKs in order, RFC 9113
   * §6.5.3): the full local settings each one leaves in force, and when its bytes left.
   */
  protected settingsUnacked: UnackedSettings[] = [];
  protected goawaySent: { lastStreamId: number } | undefined;
  protected goawayReceived: { lastStreamId: number } | undefined;
  protected emptyFrames = 0;
  protected readonly buckets: Record<'reset' | 'settings' | 'ping' | 'windowUpdate', TokenBucket>;
  protected now = 0;
  protected connBlockedSince: number | undefined;
  protected closeReported = false;
  protected rrCursor = 0;
  protected goawayAfterOpen = false;

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
    this.sendSettings(this.localSettings, true);
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
    if (now > this.now) this.now = now;
    Object.assign(this.localSettings, settings);
    this.sendSettings(settings, false);
  }

  protected sendSettings(s: Partial<Http2Settings>, all: boolean): void {
    const params = all ? settingsToFrame(this.diffFromDefault(s as Http2Settings)) : settingsToFrame(s);
    this.queueFrame({ type: 'SETTINGS', ack: false, settings: params }, false);
    // Not yet sent: the SETTINGS_TIMEOUT clock starts when the driver takes the bytes
    // (output(now)), which it does once the transport can carry them (see stampSent).
    this.settingsUnacked.push({ settings: { ...this.localSettings }, sentAt: undefined });
  }

  /**
   * The control queue has just been handed to the driver at `now`: every SETTINGS frame in
   * it has left. RFC 9113 §6.5.3 gives the peer "a reasonable amount of time" to acknowledge
   * a SETTINGS frame, counted from when it is sent — not from when it was queued, which for
   * a client is before the TCP and TLS handshakes that must finish before any byte leaves.
   */
  protected stampSent(now: number): void {
    for (const u of this.settingsUnacked) u.sentAt ??= now;
  }

  protected diffFromDefault(s: Http2Settings): Partial<Http2Settings> {
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

  protected isIdle(id: number): boolean {
    const local = (id % 2 === 1) === (this.role === 'client');
    if (local) return id >= this.nextLocalId;
    return id > this.lastRemoteId && !(id % 2 === 0 && id <= this.lastPromisedId);
  }
  /** The stream's record while it is known (not idle, not yet retired after closing). */
  protected lookup(id: number): Stream | undefined {
    return this.streams.get(id);
  }
  /** Applies the transition table for a received frame; returns false when the frame is dropped. */
  protected recvTransition(id: number, ev: Exclude<StreamEvent, '*'>): Stream | undefined {
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
  protected setState(s: Stream, next: StreamState, rfc: string): void {
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
  protected retire(s: Stream, resetSent: boolean): void {
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
  protected newStream(id: number, local: boolean): Stream {
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
  protected chargeReset(): void {
    if (!this.take('reset', this.limits.resetsPerSecond, this.limits.resetBurst)) {
      this.counters.inc('h2.flood.rapid-reset');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'too many reset streams (CVE-2023-44487)');
    }
  }
  /** RFC 9218 §4: `u=N` (0..7, default 3) and `i` (incremental) from a structured dictionary. */
  protected applyPriority(s: Stream, value: string): void {
    for (const part of value.split(',')) {
      const [k, v] = part.trim().split('=');
      if (k === 'u' && v !== undefined && /^[0-7]$/.test(v)) s.urgency = Number(v);
      else if (k === 'i') s.incremental = v === undefined || v === '?1';
    }
  }
  // ---- errors ---------------------------------------------------------------------------

  /** RFC 9113 §5.4.2: RST_STREAM, and the stream is closed (reset sent). */
  protected streamError(id: number, code: number, reason: string): void {
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
  protected connectionError(e: Http2Error): void {
    this.counters.inc(`h2.connection-error.${errorCodeName(e.code)}`);
    if (this.phase === 'closed') return;
    const debug = new TextEncoder().encode(e.message.slice(0, 200));
    this.queueFrame(
      { type: 'GOAWAY', lastStreamId: this.lastRemoteId, errorCode: e.code, debugData: debug },
      false,
    );
    this.finish(e.code, e.message, false);
  }

  protected finish(code: number, reason: string, remote: boolean): void {
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

  protected maybeFinishClosing(): void {
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

  protected take(which: keyof typeof this.buckets, rate: number, burst: number): boolean {
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

  protected maybeUpdateStreamWindow(s: Stream): void {
    if (s.unacked > 0 && s.unacked >= this.ackedLocalSettings.initialWindowSize / 4) {
      this.queueFrame({ type: 'WINDOW_UPDATE', streamId: s.id, windowSizeIncrement: s.unacked }, false);
      s.recvWindow += s.unacked;
      s.unacked = 0;
    }
  }

  protected creditConnection(n: number): void {
    if (n <= 0) return;
    this.connUnacked += n;
    if (this.connUnacked >= this.connWindowTarget / 4) {
      this.queueFrame({ type: 'WINDOW_UPDATE', streamId: 0, windowSizeIncrement: this.connUnacked }, false);
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
  }

  protected queueFrame(f: Http2Frame, owed: boolean): void {
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
  protected queueControl(bytes: Uint8Array, owed: boolean): void {
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
  /** Events caused by user calls (resets, closes) since the last receive/onTimeout. */
  takeEvents(): Http2Event[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  protected remoteOpenStreams(): number {
    let n = 0;
    for (const s of this.streams.values())
      if (!s.initiatedLocally && (s.state === 'open' || s.state.startsWith('half-closed'))) n++;
    return n;
  }
}
