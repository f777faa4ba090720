/**
 * The receive path of an HTTP/2 connection (RFC 9113 §4–§8): the preface, frame by frame
 * dispatch, header blocks with CONTINUATION, DATA with flow control, SETTINGS, PING,
 * GOAWAY, WINDOW_UPDATE, RST_STREAM and PRIORITY_UPDATE, each checked against the stream
 * state table and the flood limits.
 */
import { concatBytes } from '@stepwire/wire';
import { HeaderListTooLargeError } from '../hpack/codec.ts';
import type { HeaderField } from '../hpack/table.ts';
import { Http2ConnectionBase, type Http2Event, MAX_STREAM_ID, type PendingBlock } from './connection-base.ts';
import { ErrorCode, errorCodeName, Http2Error } from './errors.ts';
import {
  CONNECTION_PREFACE,
  decodeFramePayload,
  type FrameHeader,
  frameSummary,
  type Http2Frame,
  MAX_WINDOW,
} from './frames.ts';
import { contentLengthOf, type HeaderKind, malformedReason, statusOf } from './message.ts';
import { applySettings } from './settings.ts';
import { isClosed } from './state.ts';

export abstract class Http2ConnectionReceiver extends Http2ConnectionBase {
  /** The user API (connection.ts) answers a too-large request with 431. */
  abstract respond(id: number, fields: HeaderField[], endStream: boolean): void;

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

  protected onFrame(h: FrameHeader, payload: Uint8Array): void {
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

  protected onData(f: Extract<Http2Frame, { type: 'DATA' }>, length: number): void {
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

  protected emptyFrame(): void {
    this.emptyFrames++;
    if (this.emptyFrames > this.limits.maxEmptyFrames) {
      this.counters.inc('h2.flood.empty-frames');
      throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'too many frames without payload (CVE-2019-9518)');
    }
  }

  protected onHeaderBlockStart(f: Extract<Http2Frame, { type: 'HEADERS' } | { type: 'PUSH_PROMISE' }>): void {
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

  protected headerBlockTooLarge(): never {
    this.counters.inc('h2.flood.header-block');
    throw new Http2Error(ErrorCode.ENHANCE_YOUR_CALM, 'header block larger than our limit');
  }

  protected onContinuation(f: Extract<Http2Frame, { type: 'CONTINUATION' }>): void {
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
  protected onHeaderBlock(block: PendingBlock): void {
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

  protected onHeaders(
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

  protected onPushPromise(
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

  protected onRstStream(id: number, code: number): void {
    const s = this.lookup(id);
    const wasOpen = s !== undefined && !isClosed(s.state);
    const mark = this.events.length;
    const st = this.recvTransition(id, 'RST_STREAM');
    if (!st) return;
    if (wasOpen) {
      // Rapid reset (CVE-2023-44487): streams the peer opens and cancels cost us work each.
      if (!st.initiatedLocally) this.chargeReset();
      st.out = [];
      st.outBytes = 0;
      // The reset goes before the transition's 'streamClosed': a session unmaps a stream when
      // it hears it closed, and would otherwise never learn the peer's error code.
      this.events.splice(mark, 0, { type: 'streamReset', streamId: id, errorCode: code, remote: true });
      this.retire(st, false);
    }
  }

  /** `acknowledge` false: settings that came in an h2c upgrade's HTTP2-Settings field (no frame to ACK, RFC 7540 §3.2.1). */
  protected onSettings(f: Extract<Http2Frame, { type: 'SETTINGS' }>, acknowledge = true): void {
    if (f.ack) {
      // An ACK for a SETTINGS we never sent: RFC 9113 §6.5.3 leaves it open; we treat it
      // as a PROTOCOL_ERROR, as nghttp2 does.
      const oldest = this.settingsUnacked.shift();
      if (oldest === undefined) throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'unexpected SETTINGS ACK');
      const acked = oldest.settings;
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
    if (acknowledge) this.queueFrame({ type: 'SETTINGS', ack: true, settings: [] }, true);
    this.events.push({ type: 'remoteSettings', settings: next });
    if (delta > 0)
      for (const s of this.streams.values())
        if (s.outBytes > 0) this.events.push({ type: 'drain', streamId: s.id });
  }

  protected onPing(f: Extract<Http2Frame, { type: 'PING' }>): void {
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

  protected onGoaway(f: Extract<Http2Frame, { type: 'GOAWAY' }>): void {
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
        // The refusal first: the stream is still known to the driver when it hears of it
        // (retire() announces it closed, after which drivers forget it).
        this.events.push({
          type: 'streamReset',
          streamId: s.id,
          errorCode: ErrorCode.REFUSED_STREAM,
          remote: true,
        });
        this.retire(s, false);
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

  protected onWindowUpdate(id: number, inc: number): void {
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

  protected onPriorityUpdate(id: number, value: string): void {
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
}
