import { type Frame, FrameType } from '../frames/frame.ts';
import { varintLength } from '../packet/varint.ts';
import { ReceiveCredit, SendCredit } from '../streams/flow-control.ts';
import {
  canReceive,
  canSend,
  type Role,
  type StreamDirection,
  streamDirection,
  streamIdOf,
  streamIndex,
  streamInitiator,
} from '../streams/stream-id.ts';
import { effectiveTransportParameters, type TransportParameters } from '../transport-parameters.ts';
import { type AddFrame, frameLength, type SentItem, transportError } from './frames.ts';
import { RecvStream, SendStream } from './streams.ts';
import type { QuicConnectionEvent, TransportConfig } from './types.ts';

/**
 * A connection's streams (RFC 9000 §2-§4): opening them (ours by count, the peer's
 * implicitly up to the highest ID seen, §3.2), stream and connection flow control (§4.1,
 * §4.2), stream limits (§4.6), the frames that carry each (STREAM, RESET_STREAM,
 * STOP_SENDING, MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS, and the *_BLOCKED frames), and what
 * a lost or acknowledged frame means for them.
 */

interface StreamEntry {
  id: number;
  send: SendStream | undefined;
  recv: RecvStream | undefined;
  /** The FIN has been handed to the application. */
  finDelivered: boolean;
}

export class StreamSet {
  private readonly streams = new Map<number, StreamEntry>();
  // Connection-level flow control (§4.1).
  private readonly connRecv: ReceiveCredit;
  private connRecvHighest = 0;
  private maxDataPending = false;
  private connSend = new SendCredit(0);
  private dataBlockedAt: number | undefined = undefined;
  // Stream counts (§4.6).
  private readonly opened: Record<StreamDirection, number> = { bidi: 0, uni: 0 };
  private readonly peerOpened: Record<StreamDirection, number> = { bidi: 0, uni: 0 };
  private peerMaxStreams: Record<StreamDirection, number> = { bidi: 0, uni: 0 };
  private readonly localMaxStreams: Record<StreamDirection, number>;
  private readonly peerClosed: Record<StreamDirection, number> = { bidi: 0, uni: 0 };
  private readonly maxStreamsPending: Record<StreamDirection, boolean> = { bidi: false, uni: false };
  /** STREAMS_BLOCKED to send, with the limit that blocked us (§4.6, §19.14). */
  private readonly streamsBlocked: Record<StreamDirection, number | undefined> = {
    bidi: undefined,
    uni: undefined,
  };
  /** Streams with something to send, round robin (§2.3 leaves priorities to the application). */
  private readonly sendOrder: number[] = [];
  private peerParams: TransportParameters | undefined = undefined;

  constructor(
    private readonly role: Role,
    private readonly config: TransportConfig,
    private readonly events: QuicConnectionEvent[],
  ) {
    this.connRecv = new ReceiveCredit(config.initialMaxData);
    this.localMaxStreams = { bidi: config.initialMaxStreamsBidi, uni: config.initialMaxStreamsUni };
  }

  /** Bytes written on stream `id` and not yet sent (0 for a stream without a sending side). */
  unsent(id: number): number {
    return this.streams.get(id)?.send?.unsent ?? 0;
  }

  get size(): number {
    return this.streams.size;
  }

  /** The peer's parameters arrived (RFC 9000 §7.4): its limits apply, also to streams already open. */
  applyPeerParams(params: TransportParameters): void {
    this.peerParams = params;
    const p = effectiveTransportParameters(params);
    // Bytes already sent (in 0-RTT, under remembered limits) still count (RFC 9000 §7.4.1).
    const alreadySent = this.connSend.sent;
    this.connSend = new SendCredit(p.initial_max_data);
    this.connSend.sent = alreadySent;
    this.peerMaxStreams = { bidi: p.initial_max_streams_bidi, uni: p.initial_max_streams_uni };
    for (const e of this.streams.values()) if (e.send) e.send.credit.onMaxData(this.initialSendWindow(e.id));
  }

  // ---- the application's side ----

  canOpen(direction: StreamDirection): boolean {
    return this.opened[direction] < this.peerMaxStreams[direction];
  }

  open(direction: StreamDirection): number {
    const n = this.opened[direction];
    if (n >= this.peerMaxStreams[direction]) {
      // §4.6: say we are blocked, so the peer knows to raise the limit.
      this.streamsBlocked[direction] = this.peerMaxStreams[direction];
      throw new Error(
        `stream limit reached: the peer allows ${this.peerMaxStreams[direction]} ${direction} streams (RFC 9000 §4.6)`,
      );
    }
    const id = streamIdOf(this.role, direction, n);
    this.opened[direction] = n + 1;
    this.create(id);
    return id;
  }

  write(id: number, data: Uint8Array, fin: boolean): void {
    const e = this.streams.get(id);
    // A stream that existed and is finished (reset, or done both ways while the application
    // still had its events to read) takes writes as a no-op; one never opened is a bug.
    if (!e && canSend(id, this.role) && this.existed(id)) return;
    if (!e?.send) throw new Error(`stream ${id} is not open for sending`);
    e.send.write(data, fin);
    this.markSendable(id);
  }

  reset(id: number, code: number): void {
    const e = this.streams.get(id);
    if (!e?.send) return;
    e.send.reset(code);
    this.markSendable(id);
  }

  stopSending(id: number, code: number): void {
    const r = this.streams.get(id)?.recv;
    if (!r || r.stopCode !== undefined || r.state !== 'Recv') return;
    r.stopCode = code;
    r.stopPending = true;
  }

  /** Whether the stream was opened at some point (ours by count, the peer's by the highest seen). */
  private existed(id: number): boolean {
    const dir = streamDirection(id);
    const n = streamInitiator(id) === this.role ? this.opened[dir] : this.peerOpened[dir];
    return streamIndex(id) < n;
  }

  private create(id: number): StreamEntry {
    const e: StreamEntry = {
      id,
      send: canSend(id, this.role)
        ? new SendStream(id, this.peerParams ? this.initialSendWindow(id) : 0)
        : undefined,
      recv: canReceive(id, this.role) ? new RecvStream(id, this.initialRecvWindow(id)) : undefined,
      finDelivered: false,
    };
    this.streams.set(id, e);
    return e;
  }

  private initialSendWindow(id: number): number {
    const p = effectiveTransportParameters(this.peerParams ?? {});
    if (streamDirection(id) === 'uni') return p.initial_max_stream_data_uni;
    // The peer's "local" limit applies to streams it opened, its "remote" limit to ours (§18.2).
    return streamInitiator(id) === this.role
      ? p.initial_max_stream_data_bidi_remote
      : p.initial_max_stream_data_bidi_local;
  }

  private initialRecvWindow(id: number): number {
    if (streamDirection(id) === 'uni') return this.config.initialMaxStreamDataUni;
    return streamInitiator(id) === this.role
      ? this.config.initialMaxStreamDataBidiLocal
      : this.config.initialMaxStreamDataBidiRemote;
  }

  // ---- frames from the peer ----

  /**
   * The stream a frame names, opening peer streams up to it (RFC 9000 §3.2), with the
   * errors of §19.4-§19.10: a stream of ours not yet opened or the wrong direction is a
   * STREAM_STATE_ERROR, a peer stream beyond our limit a STREAM_LIMIT_ERROR. Undefined when
   * the stream existed and is gone (late frames are ignored).
   */
  private streamFor(id: number, need: 'send' | 'recv', frameType: number): StreamEntry | undefined {
    const dir = streamDirection(id);
    const ok = need === 'send' ? canSend(id, this.role) : canReceive(id, this.role);
    if (!ok)
      throw transportError(
        'STREAM_STATE_ERROR',
        `stream ${id} cannot be used that way (RFC 9000 §19.8)`,
        frameType,
      );
    const index = streamIndex(id);
    if (streamInitiator(id) === this.role) {
      if (index >= this.opened[dir])
        throw transportError(
          'STREAM_STATE_ERROR',
          `stream ${id} was never opened (RFC 9000 §19.8)`,
          frameType,
        );
      return this.streams.get(id);
    }
    if (index >= this.localMaxStreams[dir])
      throw transportError(
        'STREAM_LIMIT_ERROR',
        `stream ${id} beyond our MAX_STREAMS (RFC 9000 §4.6)`,
        frameType,
      );
    while (this.peerOpened[dir] <= index) {
      const nid = streamIdOf(streamInitiator(id), dir, this.peerOpened[dir]);
      this.peerOpened[dir]++;
      this.create(nid);
      this.events.push({ type: 'stream-opened', id: nid });
    }
    return this.streams.get(id);
  }

  /** Frames of RFC 9000 §19.4-§19.14 (the caller routes the rest). */
  onFrame(f: Frame): void {
    switch (f.type) {
      case 'STREAM':
        this.onStream(f.streamId, f.offset, f.data, f.fin);
        return;
      case 'RESET_STREAM':
        this.onResetStream(f.streamId, f.applicationProtocolErrorCode, f.finalSize);
        return;
      case 'STOP_SENDING': {
        const e = this.streamFor(f.streamId, 'send', FrameType.STOP_SENDING);
        if (!e?.send) return;
        this.events.push({ type: 'stop-sending', id: f.streamId, code: f.applicationProtocolErrorCode });
        // §3.5: "An endpoint that receives a STOP_SENDING frame MUST send a RESET_STREAM frame".
        if (e.send.reset(f.applicationProtocolErrorCode)) this.markSendable(f.streamId);
        return;
      }
      case 'MAX_DATA':
        this.connSend.onMaxData(f.maximumData);
        return;
      case 'MAX_STREAM_DATA': {
        const e = this.streamFor(f.streamId, 'send', FrameType.MAX_STREAM_DATA);
        if (e?.send) {
          e.send.credit.onMaxData(f.maximumStreamData);
          this.markSendable(f.streamId);
        }
        return;
      }
      case 'MAX_STREAMS': {
        const d: StreamDirection = f.bidirectional ? 'bidi' : 'uni';
        // §19.11: a MAX_STREAMS that does not raise the limit is ignored.
        if (f.maximumStreams > this.peerMaxStreams[d]) {
          const wasBlocked = this.opened[d] >= this.peerMaxStreams[d];
          this.peerMaxStreams[d] = f.maximumStreams;
          if (wasBlocked) this.events.push({ type: 'streams-available', direction: d });
        }
        return;
      }
      case 'STREAMS_BLOCKED': {
        // §19.14: a peer claiming a limit above the one we gave is wrong.
        const d: StreamDirection = f.bidirectional ? 'bidi' : 'uni';
        if (f.maximumStreams > this.localMaxStreams[d])
          throw transportError(
            'STREAM_LIMIT_ERROR',
            'STREAMS_BLOCKED above our limit (RFC 9000 §19.14)',
            f.bidirectional ? FrameType.STREAMS_BLOCKED_BIDI : FrameType.STREAMS_BLOCKED_UNI,
          );
        return;
      }
      case 'STREAM_DATA_BLOCKED':
        // §19.13: on a send-only stream of ours it is a STREAM_STATE_ERROR; otherwise informational.
        this.streamFor(f.streamId, 'recv', FrameType.STREAM_DATA_BLOCKED);
        return;
      default:
        // DATA_BLOCKED is informational (§4.1): our credit follows consumption.
        return;
    }
  }

  private onStream(id: number, offset: number, data: Uint8Array, fin: boolean): void {
    const e = this.streamFor(id, 'recv', FrameType.STREAM);
    const r = e?.recv;
    if (!e || !r || r.state === 'Reset Recvd' || r.state === 'Reset Read' || r.state === 'Data Read') return;
    const before = r.buffer.highestOffset;
    const err = r.buffer.receive(offset, data, fin);
    if (err === 'TOO_FRAGMENTED')
      throw transportError(
        'PROTOCOL_VIOLATION',
        `stream ${id}: too many out-of-order pieces`,
        FrameType.STREAM,
      );
    if (err) throw transportError(err, `stream ${id}: ${err} (RFC 9000 §4)`, FrameType.STREAM);
    this.connRecvHighest += r.buffer.highestOffset - before;
    // §4.1: the sum over streams may not pass MAX_DATA.
    if (this.connRecvHighest > this.connRecv.maxData)
      throw transportError(
        'FLOW_CONTROL_ERROR',
        'connection flow control exceeded (RFC 9000 §4.1)',
        FrameType.STREAM,
      );
    if (fin && r.state === 'Recv') r.to('fin');
    this.deliver(e, r);
  }

  /** Hands in-order bytes to the application; the credit they used returns (§4.2). */
  private deliver(e: StreamEntry, r: RecvStream): void {
    const chunk = r.buffer.read();
    const finished = r.buffer.finished;
    if (chunk.length > 0 && r.stopCode === undefined) {
      this.events.push({ type: 'stream-data', id: e.id, data: chunk, fin: finished });
      if (finished) e.finDelivered = true;
    }
    if (chunk.length > 0) {
      if (this.connRecv.onConsumed(chunk.length) !== undefined) this.maxDataPending = true;
      const next = r.credit.onConsumed(chunk.length);
      if (next !== undefined && r.state === 'Recv') {
        r.buffer.raiseLimit(next);
        r.maxDataPending = true;
      }
    }
    if (finished && !e.finDelivered) {
      if (r.stopCode === undefined)
        this.events.push({ type: 'stream-data', id: e.id, data: new Uint8Array(0), fin: true });
      e.finDelivered = true;
    }
    if (finished && r.state === 'Size Known') {
      r.to('all-received');
      r.to('read-all');
      this.maybeForget(e);
    }
  }

  private onResetStream(id: number, code: number, finalSize: number): void {
    const e = this.streamFor(id, 'recv', FrameType.RESET_STREAM);
    const r = e?.recv;
    if (!e || !r || r.state === 'Reset Recvd' || r.state === 'Reset Read' || r.state === 'Data Read') return;
    // §4.5: the final size cannot change, nor be below what was received.
    if (
      (r.buffer.finalSize !== undefined && r.buffer.finalSize !== finalSize) ||
      finalSize < r.buffer.highestOffset
    )
      throw transportError(
        'FINAL_SIZE_ERROR',
        `stream ${id}: RESET_STREAM final size ${finalSize}`,
        FrameType.RESET_STREAM,
      );
    if (finalSize > r.buffer.limit)
      throw transportError(
        'FLOW_CONTROL_ERROR',
        `stream ${id}: final size beyond our credit`,
        FrameType.RESET_STREAM,
      );
    this.connRecvHighest += finalSize - r.buffer.highestOffset;
    if (this.connRecvHighest > this.connRecv.maxData)
      throw transportError(
        'FLOW_CONTROL_ERROR',
        'connection flow control exceeded (RFC 9000 §4.5)',
        FrameType.RESET_STREAM,
      );
    // Bytes never delivered still count as consumed for the connection's credit (§4.5).
    const unread = finalSize - r.buffer.bytesRead;
    if (unread > 0 && this.connRecv.onConsumed(unread) !== undefined) this.maxDataPending = true;
    r.to('reset');
    this.events.push({ type: 'stream-reset', id, code });
    r.to('reset-read');
    r.maxDataPending = false;
    r.stopPending = false;
    this.maybeForget(e);
  }

  /** A stream whose both halves are done is forgotten; a peer's stream frees a slot (§4.6). */
  private maybeForget(e: StreamEntry): void {
    if ((e.send && !e.send.done) || (e.recv && !e.recv.done)) return;
    // A pending flag left on a finished half is stale, not a reason to stay: RESET_STREAM is
    // not needed once one copy is acknowledged (Reset Recvd is terminal, RFC 9000 §3.1), nor
    // STOP_SENDING once the receiving half is done (§3.5, Recv/Size Known only). A lost copy
    // re-arms resetPending before another copy's ACK is handled; the stream then stayed forever.
    this.streams.delete(e.id);
    if (streamInitiator(e.id) !== this.role) {
      const dir = streamDirection(e.id);
      this.peerClosed[dir]++;
      const initial = dir === 'bidi' ? this.config.initialMaxStreamsBidi : this.config.initialMaxStreamsUni;
      const next = this.peerClosed[dir] + initial;
      if (next - this.localMaxStreams[dir] >= Math.max(1, initial / 2)) {
        this.localMaxStreams[dir] = next;
        this.maxStreamsPending[dir] = true;
      }
    }
  }

  private markSendable(id: number): void {
    if (!this.sendOrder.includes(id)) this.sendOrder.push(id);
  }

  // ---- frames to the peer ----

  /** Flow-control and stream-state frames due now (§4, §19.4, §19.5, §19.9-§19.14). */
  collectControl(add: AddFrame): void {
    if (
      this.maxDataPending &&
      add({ type: 'MAX_DATA', maximumData: this.connRecv.maxData }, { k: 'max-data' })
    )
      this.maxDataPending = false;
    for (const d of ['bidi', 'uni'] as const) {
      const bidirectional = d === 'bidi';
      if (
        this.maxStreamsPending[d] &&
        add(
          { type: 'MAX_STREAMS', bidirectional, maximumStreams: this.localMaxStreams[d] },
          { k: 'max-streams', bidi: bidirectional },
        )
      )
        this.maxStreamsPending[d] = false;
      const blocked = this.streamsBlocked[d];
      if (
        blocked !== undefined &&
        add(
          { type: 'STREAMS_BLOCKED', bidirectional, maximumStreams: blocked },
          { k: 'streams-blocked', bidi: bidirectional },
        )
      )
        this.streamsBlocked[d] = undefined;
    }
    // §4.1: DATA_BLOCKED once per limit, when streams wait on connection credit.
    if (
      this.connSend.available === 0 &&
      this.dataBlockedAt !== this.connSend.maxData &&
      this.sendOrder.length > 0
    ) {
      if (add({ type: 'DATA_BLOCKED', maximumData: this.connSend.maxData }, { k: 'data-blocked' }))
        this.dataBlockedAt = this.connSend.maxData;
    }
    for (const e of this.streams.values()) {
      const r = e.recv;
      if (r?.stopPending && r.stopCode !== undefined) {
        if (
          add(
            { type: 'STOP_SENDING', streamId: e.id, applicationProtocolErrorCode: r.stopCode },
            { k: 'stop', id: e.id },
          )
        )
          r.stopPending = false;
      }
      if (r?.maxDataPending && r.state === 'Recv') {
        if (
          add(
            { type: 'MAX_STREAM_DATA', streamId: e.id, maximumStreamData: r.credit.maxData },
            { k: 'max-stream-data', id: e.id },
          )
        )
          r.maxDataPending = false;
      }
      const s = e.send;
      if (s?.resetPending && s.resetCode !== undefined) {
        const f: Frame = {
          type: 'RESET_STREAM',
          streamId: e.id,
          applicationProtocolErrorCode: s.resetCode,
          finalSize: s.sendOffset,
        };
        if (add(f, { k: 'reset', id: e.id })) s.resetPending = false;
      }
      // §4.1: STREAM_DATA_BLOCKED when a stream has data its credit does not allow.
      if (s && s.unsent > 0 && !s.isReset) {
        const limit = s.credit.blocked();
        if (limit !== undefined)
          add(
            { type: 'STREAM_DATA_BLOCKED', streamId: e.id, maximumStreamData: limit },
            { k: 'stream-data-blocked', id: e.id },
          );
      }
    }
  }

  /** STREAM frames within `room` bytes, round robin over the streams that have data. Returns the frames added. */
  collectStreamFrames(room: number, frames: Frame[], items: SentItem[]): { count: number; used: number } {
    let left = room;
    let count = 0;
    const order = this.sendOrder;
    let i = 0;
    while (i < order.length && left > 24) {
      const id = order[i] as number;
      const s = this.streams.get(id)?.send;
      // A stream waiting only for connection credit stays in the rotation: MAX_DATA names no
      // stream, so nothing else would bring it back (RFC 9000 §4.1).
      if (!s?.wantsToSend(Number.POSITIVE_INFINITY)) {
        order.splice(i, 1);
        continue;
      }
      const headerMax = 1 + varintLength(id) + 8 + 2;
      const c = s.nextChunk(left - headerMax, this.connSend.available);
      if (!c) {
        i++;
        continue;
      }
      if (c.newBytes > 0) this.connSend.onSent(c.newBytes);
      const f: Frame = {
        type: 'STREAM',
        streamId: id,
        offset: c.offset,
        hasOffset: c.offset > 0,
        hasLength: true,
        fin: c.fin,
        data: c.data,
      };
      const n = frameLength(f);
      frames.push(f);
      items.push({ k: 'stream', id, offset: c.offset, length: c.data.length, fin: c.fin });
      left -= n;
      count++;
      // A stream that sent goes to the back.
      order.splice(i, 1);
      if (s.wantsToSend(Number.POSITIVE_INFINITY)) order.push(id);
    }
    return { count, used: room - left };
  }

  /** Whether any stream has data it could send now. */
  get hasSendable(): boolean {
    return this.sendOrder.some((id) => this.streams.get(id)?.send?.wantsToSend(this.connSend.available));
  }

  // ---- acknowledgement and loss (§13.3) ----

  onAcked(it: SentItem): void {
    if (it.k === 'stream') {
      const e = this.streams.get(it.id);
      if (e?.send) {
        e.send.onAcked(it.offset, it.length, it.fin);
        if (e.send.done) this.maybeForget(e);
      }
    } else if (it.k === 'reset') {
      const e = this.streams.get(it.id);
      if (e?.send) {
        e.send.onResetAcked();
        this.maybeForget(e);
      }
    }
  }

  /** §13.3: data is sent again; flow-control frames are sent again with their current value. */
  onLost(it: SentItem): void {
    switch (it.k) {
      case 'stream': {
        const e = this.streams.get(it.id);
        if (e?.send) {
          e.send.onLost(it.offset, it.length, it.fin);
          this.markSendable(it.id);
        }
        return;
      }
      case 'reset': {
        const s = this.streams.get(it.id)?.send;
        if (s && s.state === 'Reset Sent') s.resetPending = true;
        return;
      }
      case 'stop': {
        const r = this.streams.get(it.id)?.recv;
        if (r && r.state === 'Recv') r.stopPending = true;
        return;
      }
      case 'max-data':
        this.maxDataPending = true;
        return;
      case 'max-stream-data': {
        const r = this.streams.get(it.id)?.recv;
        if (r && r.state === 'Recv') r.maxDataPending = true;
        return;
      }
      case 'max-streams':
        this.maxStreamsPending[it.bidi ? 'bidi' : 'uni'] = true;
        return;
      default:
        // *_BLOCKED frames are not resent: a new one goes when still blocked at a new limit.
        return;
    }
  }
}
