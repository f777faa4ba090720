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
import { concatBytes } from '@stepwire/wire';
import type { HeaderField } from '../hpack/table.ts';
import { type Http2Event, MAX_STREAM_ID, type OutItem, type Stream } from './connection-base.ts';
import { ErrorCode, Http2Error } from './errors.ts';
import {
  decodeFramePayload,
  encodeDataHeader,
  encodeFrame,
  FrameType,
  frameSummary,
  type Http2Frame,
} from './frames.ts';
import { malformedReason } from './message.ts';
import { Http2ConnectionReceiver } from './receive.ts';
import { isClosed, type StreamEvent, transition } from './state.ts';

export {
  DEFAULT_LIMITS,
  type Http2ConnectionOptions,
  type Http2Event,
  type Http2Limits,
  type Role,
} from './connection-base.ts';

export class Http2Connection extends Http2ConnectionReceiver {
  /**
   * Server, h2c upgrade (RFC 7540 §3.2; RFC 9113 §3.1 deprecates it, yet `curl --http2`
   * sends it for http URLs): after the 101, the HTTP/1.1 request that asked is stream 1,
   * half-closed (remote) — its request is complete — and the HTTP2-Settings field's
   * SETTINGS payload binds us as a SETTINGS frame would, without an ACK (§3.2.1: the 101
   * acknowledges it). The client's preface follows as usual. Throws Http2Error for a
   * malformed payload (the caller answers HTTP/1.1 400 then).
   */
  acceptUpgrade(settingsPayload: Uint8Array, request: HeaderField[], now = this.now): void {
    if (this.role !== 'server') throw new TypeError('only a server accepts an h2c upgrade');
    if (this.lastRemoteId !== 0 || this.streams.size > 0) throw new TypeError('the upgrade comes first');
    const f = decodeFramePayload(
      { length: settingsPayload.length, type: FrameType.SETTINGS, flags: 0, streamId: 0 },
      settingsPayload,
    );
    if (f.type !== 'SETTINGS')
      throw new Http2Error(ErrorCode.PROTOCOL_ERROR, 'HTTP2-Settings is not a SETTINGS payload');
    this.now = now;
    this.onSettings(f, false);
    const s = this.newStream(1, false);
    this.lastRemoteId = 1;
    s.headerBlocks = 1;
    this.setState(
      s,
      'half-closed (remote)',
      'RFC 7540 §3.2: the upgraded request is stream 1, half-closed (remote)',
    );
    this.events.push({ type: 'headers', streamId: 1, kind: 'request', headers: request, endStream: true });
  }

  // ---- output ---------------------------------------------------------------------------

  /** Whether output() would return anything now. */
  get hasOutput(): boolean {
    if (this.control.length > 0 || this.waitingOpen.length > 0) return true;
    for (const s of this.streams.values()) if (s.out.length > 0) return true;
    return false;
  }

  /**
   * Frames ready to write, as one buffer (empty when nothing is ready). Taking them is
   * sending them: call it only when the transport can carry the bytes now (connected, TLS
   * handshake done), with the time — the SETTINGS ACK deadline counts from this call.
   */
  output(now: number = this.now): Uint8Array {
    if (now > this.now) this.now = now;
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
    if (this.control.length > 0) this.stampSent(this.now);
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
    // A message without a body ends on its header section (RFC 9113 §8.1), when that is
    // still queued and is a final one (a 1xx cannot end a stream, §8.1.1).
    if (data.length === 0 && endStream && last?.kind === 'headers' && !isInformational(last.fields)) {
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

  /**
   * When our oldest unacknowledged SETTINGS times out (RFC 9113 §6.5.3): settingsTimeoutMs
   * after its bytes left; none while it is still queued (the transport is not up yet).
   */
  private settingsDeadline(): number | undefined {
    const sentAt = this.settingsUnacked[0]?.sentAt;
    return sentAt === undefined ? undefined : sentAt + this.limits.settingsTimeoutMs;
  }

  /** The next deadline (ms), or undefined: SETTINGS ACK (RFC 9113 §6.5.3) and stall limits. */
  nextTimeout(): number | undefined {
    let t: number | undefined;
    const min = (x: number | undefined) => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    if (this.phase !== 'closed') min(this.settingsDeadline());
    if (this.connBlockedSince !== undefined) min(this.connBlockedSince + this.limits.stallTimeoutMs);
    for (const s of this.streams.values())
      if (s.blockedSince !== undefined) min(s.blockedSince + this.limits.stallTimeoutMs);
    return t;
  }

  onTimeout(now: number): Http2Event[] {
    this.now = now;
    if (this.phase === 'closed') return this.takeEvents();
    const settingsDeadline = this.settingsDeadline();
    if (settingsDeadline !== undefined && now >= settingsDeadline) {
      this.counters.inc('h2.settings-timeout');
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
}

function isInformational(fields: HeaderField[]): boolean {
  const status = fields.find((f) => f.name === ':status');
  return status !== undefined && status.value.length === 3 && status.value.startsWith('1');
}
