import { concatBytes, ParseError } from '@stepwire/wire';
import type { PerMessageDeflate } from './deflate.ts';
import {
  applyMask,
  decodeFrameHeader,
  encodeFrameHeader,
  isControlOpcode,
  isDefinedOpcode,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  summarizeFrame,
  type WebSocketFrameHeader,
} from './frame.ts';
import { Utf8Validator } from './utf8.ts';

/**
 * A sans-I/O WebSocket connection (RFC 6455 §5-§7) for either role, after the opening
 * handshake: bytes in, events out; calls in, bytes out. It owns no socket and no timer;
 * the driver (`WebSocket`) writes `takeOutput()` and closes the transport when told.
 */

/** Close codes (RFC 6455 §7.4.1 and the IANA registry of §11.7). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Never sent: "no status code was present" (§7.4.1). */
  NoStatus: 1005,
  /** Never sent: the connection closed without a Close frame (§7.4.1). */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
} as const;

/**
 * Codes a peer may put in a Close frame (RFC 6455 §7.4.1, §7.4.2; 1012-1014 registered
 * later in the §11.7 registry). 1004-1006 and 1015 are reserved or never sent; 1016-2999
 * are for future RFCs; 3000-4999 are for libraries and applications.
 */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

export type WebSocketRole = 'client' | 'server';

/**
 * States of the closing handshake (RFC 6455 §7). The opening handshake happens before a
 * connection object exists, so it starts OPEN.
 */
export type WebSocketState = 'OPEN' | 'CLOSING' | 'CLOSED';

type Input = 'send-close' | 'receive-close' | 'fail' | 'transport-end';

/** Legal transitions of the closing handshake, each with its rule. */
export const CLOSE_TRANSITIONS: readonly {
  from: WebSocketState;
  input: Input;
  to: WebSocketState;
  rfc: string;
}[] = [
  // §7.1.2 Start the closing handshake: send a Close frame; wait for the peer's.
  { from: 'OPEN', input: 'send-close', to: 'CLOSING', rfc: 'RFC 6455 §7.1.2' },
  // §5.5.1: "it MUST send a Close frame in response"; then the handshake is complete (§7.1.3).
  { from: 'OPEN', input: 'receive-close', to: 'CLOSED', rfc: 'RFC 6455 §5.5.1' },
  // §7.1.3: both sides sent and received a Close frame: the closing handshake is complete.
  { from: 'CLOSING', input: 'receive-close', to: 'CLOSED', rfc: 'RFC 6455 §7.1.3' },
  // §7.1.7 Fail the WebSocket Connection (a Close frame with a code, if one can be sent).
  { from: 'OPEN', input: 'fail', to: 'CLOSED', rfc: 'RFC 6455 §7.1.7' },
  { from: 'CLOSING', input: 'fail', to: 'CLOSED', rfc: 'RFC 6455 §7.1.7' },
  // §7.1.5: the transport closed without a complete closing handshake: code 1006.
  { from: 'OPEN', input: 'transport-end', to: 'CLOSED', rfc: 'RFC 6455 §7.1.5' },
  { from: 'CLOSING', input: 'transport-end', to: 'CLOSED', rfc: 'RFC 6455 §7.1.5' },
];

export type WebSocketEvent =
  | { type: 'message'; data: Uint8Array; binary: boolean }
  | { type: 'ping'; data: Uint8Array }
  | { type: 'pong'; data: Uint8Array }
  /** A protocol violation by the peer (or one of our limits); a 'close' follows. */
  | { type: 'error'; code: number; reason: string }
  /**
   * The connection is CLOSED. `code`/`reason` are the peer's Close frame (1005 when it had
   * no code) after a clean handshake, our code after a failure, 1006 after a transport end.
   */
  | { type: 'close'; code: number; reason: string; wasClean: boolean }
  | { type: 'frame'; dir: 'in' | 'out'; summary: string };

export interface WebSocketConnectionOptions {
  role: WebSocketRole;
  /** Largest frame payload and largest message (after decompression) accepted; 1009 past it. Default 100 MiB, like ws. */
  maxPayload?: number;
  /** The agreed permessage-deflate transform, if any. */
  deflate?: PerMessageDeflate | undefined;
  /** Source of masking keys (RFC 6455 §5.3 wants them unpredictable). Default crypto. */
  maskingKey?: () => Uint8Array;
  /** Emit a 'frame' event per frame, for traces. */
  traceFrames?: boolean;
}

export interface WebSocketStats {
  framesIn: number;
  framesOut: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

class WebSocketFailure extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(reason);
  }
}

interface Assembly {
  binary: boolean;
  compressed: boolean;
  parts: Uint8Array[];
  size: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class WebSocketConnection {
  readonly role: WebSocketRole;
  private stateValue: WebSocketState = 'OPEN';
  private readonly maxPayload: number;
  private readonly deflate: PerMessageDeflate | undefined;
  private readonly maskingKey: () => Uint8Array;
  private readonly traceFrames: boolean;
  /** Received bytes not yet parsed, as the chunks they arrived in (no copy per chunk). */
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: WebSocketFrameHeader | undefined;
  private message: Assembly | undefined;
  private readonly utf8 = new Utf8Validator();
  private output: Uint8Array[] = [];
  /** We are in the middle of sending a fragmented message (`send(..., { fin: false })`). */
  private sendingFragmented: { opcode: number } | undefined;
  private closeSent = false;
  private events: WebSocketEvent[] = [];
  /** Set once the transport should be closed (after our Close, or at a failure). */
  closeTransport = false;
  readonly stats: WebSocketStats = {
    framesIn: 0,
    framesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
  };

  constructor(o: WebSocketConnectionOptions) {
    this.role = o.role;
    this.maxPayload = o.maxPayload ?? 100 * 1024 * 1024;
    this.deflate = o.deflate;
    this.traceFrames = !!o.traceFrames;
    this.maskingKey =
      o.maskingKey ??
      (() => {
        const k = new Uint8Array(4);
        crypto.getRandomValues(k);
        return k;
      });
  }

  get state(): WebSocketState {
    return this.stateValue;
  }

  private transition(input: Input): void {
    const row = CLOSE_TRANSITIONS.find((t) => t.from === this.stateValue && t.input === input);
    if (!row) throw new Error(`websocket: no transition from ${this.stateValue} on ${input}`);
    this.stateValue = row.to;
  }

  /** Bytes to write to the transport, in order. */
  takeOutput(): Uint8Array[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  /** Received bytes not yet parsed. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feed received bytes; returns the events they complete. With `untilMessage`, parsing
   * stops after the first complete data message, leaving later frames buffered (call again
   * with no bytes for the rest): a driver then lets the application answer a message before
   * a later bad frame in the same read fails the connection, as a frame-by-frame reader would.
   */
  receive(bytes: Uint8Array, o: { untilMessage?: boolean } = {}): WebSocketEvent[] {
    this.stats.bytesIn += bytes.length;
    if (this.stateValue === 'CLOSED') return this.drainEvents();
    if (bytes.length > 0) {
      this.chunks.push(bytes);
      this.buffered += bytes.length;
    }
    try {
      this.parse(!!o.untilMessage);
    } catch (e) {
      if (e instanceof WebSocketFailure) this.fail(e.code, e.message);
      else if (e instanceof ParseError) this.fail(CloseCode.ProtocolError, e.message);
      else throw e;
    }
    return this.drainEvents();
  }

  /** The transport ended (or errored) under us. */
  transportClosed(): WebSocketEvent[] {
    if (this.stateValue !== 'CLOSED') {
      this.transition('transport-end');
      this.events.push({ type: 'close', code: CloseCode.Abnormal, reason: '', wasClean: false });
    }
    this.closeTransport = true;
    return this.drainEvents();
  }

  /** Events produced outside receive() (the 'frame' traces of send, ping, close). */
  takeEvents(): WebSocketEvent[] {
    return this.drainEvents();
  }

  private drainEvents(): WebSocketEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  private parse(untilMessage: boolean): void {
    while (this.stateValue !== 'CLOSED') {
      if (!this.header) {
        // A header is 2 to 14 bytes (RFC 6455 §5.2); look at no more than that.
        const h = decodeFrameHeader(this.peek(14));
        if (!h) return;
        this.checkHeader(h);
        this.take(h.headerLength);
        this.header = h;
      }
      const h = this.header;
      if (this.buffered < h.payloadLength) return;
      const payload = this.take(h.payloadLength);
      this.header = undefined;
      if (h.maskingKey) applyMask(payload, h.maskingKey);
      this.stats.framesIn++;
      if (this.traceFrames)
        this.events.push({ type: 'frame', dir: 'in', summary: summarizeFrame(h, payload.length) });
      const before = this.stats.messagesIn;
      this.onFrame(h, payload);
      if (untilMessage && this.stats.messagesIn !== before) return;
    }
  }

  /** The first min(n, buffered) bytes, without consuming them. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0];
    if (!first) return new Uint8Array(0);
    if (first.length >= n || this.chunks.length === 1) return first.subarray(0, n);
    const out = new Uint8Array(Math.min(n, this.buffered));
    let o = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, out.length - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (o === out.length) break;
    }
    return out;
  }

  /** Consume n buffered bytes (n <= buffered) as a fresh copy the caller may keep and unmask. */
  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0] as Uint8Array;
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }

  /** Checks that need only the header, so a bad frame fails before its payload is buffered. */
  private checkHeader(h: WebSocketFrameHeader): void {
    // RFC 6455 §5.1: client frames are masked, server frames are not.
    if (this.role === 'server' && !h.maskingKey)
      throw new WebSocketFailure(CloseCode.ProtocolError, 'unmasked client frame (RFC 6455 §5.1)');
    if (this.role === 'client' && h.maskingKey)
      throw new WebSocketFailure(CloseCode.ProtocolError, 'masked server frame (RFC 6455 §5.1)');
    // RFC 6455 §5.2: unknown opcodes fail the connection.
    if (!isDefinedOpcode(h.opcode))
      throw new WebSocketFailure(
        CloseCode.ProtocolError,
        `reserved opcode 0x${h.opcode.toString(16)} (RFC 6455 §5.2)`,
      );
    // RFC 6455 §5.2: RSV bits without a negotiated extension meaning them fail the connection.
    // RFC 7692 §6: RSV1 marks the first frame of a compressed data message, never control or continuation.
    if (h.rsv2 || h.rsv3)
      throw new WebSocketFailure(CloseCode.ProtocolError, 'RSV2/RSV3 set (RFC 6455 §5.2)');
    if (h.rsv1 && (!this.deflate || isControlOpcode(h.opcode) || h.opcode === Opcode.Continuation)) {
      throw new WebSocketFailure(
        CloseCode.ProtocolError,
        'RSV1 set without permessage-deflate on a first data frame (RFC 7692 §6)',
      );
    }
    if (isControlOpcode(h.opcode)) {
      // RFC 6455 §5.5: control frames are short and never fragmented.
      if (h.payloadLength > MAX_CONTROL_PAYLOAD)
        throw new WebSocketFailure(
          CloseCode.ProtocolError,
          `control frame of ${h.payloadLength} bytes (RFC 6455 §5.5)`,
        );
      if (!h.fin)
        throw new WebSocketFailure(CloseCode.ProtocolError, 'fragmented control frame (RFC 6455 §5.5)');
    } else if (h.opcode === Opcode.Continuation) {
      // RFC 6455 §5.4: a continuation belongs to a started message.
      if (!this.message)
        throw new WebSocketFailure(CloseCode.ProtocolError, 'continuation without a message (RFC 6455 §5.4)');
    } else if (this.message) {
      // RFC 6455 §5.4: fragments of one message are not interleaved with another data message.
      throw new WebSocketFailure(
        CloseCode.ProtocolError,
        'new data frame inside a fragmented message (RFC 6455 §5.4)',
      );
    }
    const sofar = this.message?.size ?? 0;
    if (h.payloadLength > this.maxPayload || sofar + h.payloadLength > this.maxPayload) {
      throw new WebSocketFailure(CloseCode.MessageTooBig, `message past ${this.maxPayload} bytes`);
    }
  }

  private onFrame(h: WebSocketFrameHeader, payload: Uint8Array): void {
    switch (h.opcode) {
      case Opcode.Ping:
        // RFC 6455 §5.5.2-3: answer with a Pong carrying the same data, unless closing.
        this.events.push({ type: 'ping', data: payload });
        if (!this.closeSent) this.writeFrame(Opcode.Pong, payload, true, false);
        return;
      case Opcode.Pong:
        this.events.push({ type: 'pong', data: payload });
        return;
      case Opcode.Close:
        this.onClose(payload);
        return;
    }
    if (h.opcode !== Opcode.Continuation) {
      this.message = { binary: h.opcode === Opcode.Binary, compressed: h.rsv1, parts: [], size: 0 };
      this.utf8.reset();
    }
    const m = this.message;
    if (!m) return;
    m.parts.push(payload);
    m.size += payload.length;
    // RFC 6455 §8.1: fail as soon as text is not UTF-8, also mid-message (compressed text is checked after inflating).
    if (!m.binary && !m.compressed && !this.utf8.update(payload)) {
      throw new WebSocketFailure(CloseCode.InvalidPayload, 'text is not UTF-8 (RFC 6455 §8.1)');
    }
    if (!h.fin) return;
    this.message = undefined;
    let data = m.parts.length === 1 ? (m.parts[0] as Uint8Array) : concatBytes(...m.parts);
    if (m.compressed && this.deflate) {
      try {
        data = this.deflate.decompress(data, this.maxPayload);
      } catch (e) {
        if (e instanceof RangeError)
          throw new WebSocketFailure(
            CloseCode.MessageTooBig,
            `inflated message past ${this.maxPayload} bytes`,
          );
        throw new WebSocketFailure(CloseCode.InvalidPayload, `bad deflate data: ${(e as Error).message}`);
      }
      if (!m.binary && !this.utf8.update(data))
        throw new WebSocketFailure(CloseCode.InvalidPayload, 'text is not UTF-8 (RFC 6455 §8.1)');
    }
    if (!m.binary && !this.utf8.complete)
      throw new WebSocketFailure(
        CloseCode.InvalidPayload,
        'text ends inside a UTF-8 sequence (RFC 6455 §8.1)',
      );
    this.stats.messagesIn++;
    this.events.push({ type: 'message', data, binary: m.binary });
  }

  private onClose(payload: Uint8Array): void {
    // RFC 6455 §5.5.1: body is empty, or a 2-byte code then UTF-8 reason.
    let code: number = CloseCode.NoStatus;
    let reason = '';
    if (payload.length === 1)
      throw new WebSocketFailure(CloseCode.ProtocolError, 'Close body of 1 byte (RFC 6455 §5.5.1)');
    if (payload.length >= 2) {
      code = ((payload[0] as number) << 8) | (payload[1] as number);
      if (!isValidCloseCode(code))
        throw new WebSocketFailure(CloseCode.ProtocolError, `invalid close code ${code} (RFC 6455 §7.4)`);
      try {
        reason = decoder.decode(payload.subarray(2));
      } catch {
        throw new WebSocketFailure(CloseCode.InvalidPayload, 'Close reason is not UTF-8 (RFC 6455 §5.5.1)');
      }
    }
    const wasOpen = this.stateValue === 'OPEN';
    this.transition('receive-close');
    // RFC 6455 §5.5.1: answer with a Close; "typically echos the status code it received" (and, as ws does, the reason).
    if (wasOpen && !this.closeSent) this.writeClose(code === CloseCode.NoStatus ? undefined : code, reason);
    this.closeTransport = true;
    this.events.push({ type: 'close', code, reason, wasClean: true });
  }

  /** RFC 6455 §7.1.7: send a Close with `code` (if we have not yet), then close the transport. */
  fail(code: number, reason: string): void {
    if (this.stateValue === 'CLOSED') return;
    this.events.push({ type: 'error', code, reason });
    if (!this.closeSent) this.writeClose(code, '');
    this.transition('fail');
    this.closeTransport = true;
    this.events.push({ type: 'close', code, reason, wasClean: false });
  }

  private writeClose(code: number | undefined, reason: string): void {
    const r = encoder.encode(reason);
    const body = code === undefined ? new Uint8Array(0) : new Uint8Array(2 + r.length);
    if (code !== undefined) {
      body[0] = code >>> 8;
      body[1] = code & 0xff;
      body.set(r, 2);
    }
    this.writeFrame(Opcode.Close, body, true, false);
    this.closeSent = true;
  }

  private writeFrame(opcode: number, payload: Uint8Array, fin: boolean, rsv1: boolean): void {
    // RFC 6455 §5.3: a client masks every frame with a fresh key; a server never masks.
    const maskingKey = this.role === 'client' ? this.maskingKey() : undefined;
    const header = encodeFrameHeader(
      { fin, rsv1, rsv2: false, rsv3: false, opcode, maskingKey },
      payload.length,
    );
    const body = maskingKey ? applyMask(payload.slice(), maskingKey) : payload;
    this.output.push(header);
    if (body.length > 0) this.output.push(body);
    this.stats.framesOut++;
    this.stats.bytesOut += header.length + body.length;
    if (this.traceFrames)
      this.events.push({
        type: 'frame',
        dir: 'out',
        summary: summarizeFrame({ fin, rsv1, opcode, maskingKey }, payload.length),
      });
  }

  /**
   * Send a message (or, with `fin: false`, the first/next fragment of one; RFC 6455 §5.4).
   * Fragments of one message keep the opcode of the first. Returns false after we sent Close
   * (RFC 6455 §5.5.1: no data frames after a Close).
   */
  send(data: Uint8Array | string, o: { binary?: boolean; fin?: boolean; compress?: boolean } = {}): boolean {
    if (this.closeSent || this.stateValue !== 'OPEN') return false;
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    const binary = o.binary ?? typeof data !== 'string';
    const fin = o.fin ?? true;
    const first = !this.sendingFragmented;
    const opcode = first ? (binary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation;
    // Compression is decided per message (RSV1 on the first frame, RFC 7692 §6.1); we only
    // compress whole messages sent in one call, and leave fragmented sends uncompressed.
    const compress =
      first &&
      fin &&
      this.deflate !== undefined &&
      (o.compress ?? true) &&
      bytes.length >= this.deflate.threshold;
    const payload = compress && this.deflate ? this.deflate.compress(bytes) : bytes;
    this.writeFrame(opcode, payload, fin, compress);
    this.sendingFragmented = fin ? undefined : { opcode };
    if (fin) this.stats.messagesOut++;
    return true;
  }

  ping(data: Uint8Array = new Uint8Array(0)): boolean {
    if (data.length > MAX_CONTROL_PAYLOAD)
      throw new RangeError('a ping carries at most 125 bytes (RFC 6455 §5.5)');
    if (this.closeSent) return false;
    this.writeFrame(Opcode.Ping, data, true, false);
    return true;
  }

  pong(data: Uint8Array = new Uint8Array(0)): boolean {
    if (data.length > MAX_CONTROL_PAYLOAD)
      throw new RangeError('a pong carries at most 125 bytes (RFC 6455 §5.5)');
    if (this.closeSent) return false;
    this.writeFrame(Opcode.Pong, data, true, false);
    return true;
  }

  /** Start the closing handshake (RFC 6455 §7.1.2). Code 1005 or none sends an empty body. */
  close(code?: number, reason = ''): void {
    if (this.closeSent || this.stateValue !== 'OPEN') return;
    if (code !== undefined && code !== CloseCode.NoStatus && !(isValidCloseCode(code) && code !== 1015)) {
      throw new RangeError(`close code ${code} may not be sent (RFC 6455 §7.4)`);
    }
    if (encoder.encode(reason).length > MAX_CONTROL_PAYLOAD - 2)
      throw new RangeError('close reason longer than 123 bytes (RFC 6455 §5.5)');
    this.writeClose(code === CloseCode.NoStatus ? undefined : code, code === undefined ? '' : reason);
    this.transition('send-close');
  }
}
