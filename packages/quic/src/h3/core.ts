import { ByteWriter, Counters, silentTrace, type TraceBus } from '@stepwire/wire';
import { writeVarint } from '../packet/varint.ts';
import { QpackDecoder } from '../qpack/decoder.ts';
import { QpackEncoder } from '../qpack/encoder.ts';
import { H3ConnectionError } from './errors.ts';
import {
  encodeH3Frame,
  encodeH3FrameHeader,
  type H3Frame,
  type H3FrameReader,
  H3FrameType,
  type H3StreamItem,
  HTTP2_ONLY_FRAME_TYPES,
  summarizeH3Frame,
} from './frames.ts';
import type { MessageState } from './state.ts';
import {
  DEFAULT_H3_LIMITS,
  type H3Event,
  type H3Limits,
  type H3LocalSettings,
  type H3Transport,
  type Http3ConnectionOptions,
} from './types.ts';

/**
 * An HTTP/3 connection's variables (RFC 9114), grouped; the functions in control.ts,
 * request-send.ts, request-receive.ts, uni-streams.ts, qpack-streams.ts and close.ts act on
 * them, and Http3Connection (connection.ts) is their public face. Also here: the frames we
 * write and their trace lines, shared by every stream.
 */

/** A request stream (RFC 9114 §4.1), either direction's state. */
export interface RequestStream {
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

/** A peer's unidirectional stream: its type not read yet, or what the type made it (§6.2). */
export type UniStream =
  | { kind: 'pending'; buffer: Uint8Array }
  | { kind: 'control'; reader: H3FrameReader; settingsSeen: boolean }
  | { kind: 'encoder' }
  | { kind: 'decoder' }
  | { kind: 'ignored' };

/** Client-initiated bidirectional stream IDs are 0 mod 4 (RFC 9000 §2.1). */
export const isClientBidi = (id: number) => id % 4 === 0;
export const isUni = (id: number) => (id & 2) !== 0;
export const isServerInitiated = (id: number) => (id & 1) !== 0;

export class H3Core {
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

  readonly transport: H3Transport;
  readonly settings: Required<H3LocalSettings>;
  readonly trace: TraceBus;
  readonly host: string;
  readonly grease: boolean;
  readonly encoderCapacity: number;
  /** Request streams open in either direction. */
  readonly streams = new Map<number, RequestStream>();
  /** The peer's unidirectional streams. */
  readonly uni = new Map<number, UniStream>();
  /** Request streams that have ended, so late bytes for them are not read as a new request. */
  readonly retired = new Set<number>();
  /** What the application has not yet been handed. */
  events: H3Event[] = [];
  /** Our critical unidirectional streams (§6.2.1, RFC 9204 §4.2), once start() opened them. */
  readonly own: { control?: number; encoder?: number; decoder?: number } = {};
  /** Which of the peer's critical streams have arrived: each may exist once. */
  readonly peerCritical = { control: false, encoder: false, decoder: false };
  /** Peer streams of unknown type we were told about and that have not ended yet. */
  ignoredStreams = 0;
  /** The largest client bidirectional stream a server has accepted, for its GOAWAY. */
  largestAccepted = -1;
  now = 0;

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
}

export function writeStreamType(c: H3Core, id: number, type: number): void {
  const w = new ByteWriter(8);
  writeVarint(w, type);
  c.transport.write(id, w.finish());
}

export function writeFrame(c: H3Core, id: number, f: H3Frame, fin = false): void {
  if (c.trace.enabled) traceFrame(c, 'out', id, f);
  if (f.type === 'DATA' && f.data.length > 4096) {
    // A large body is not copied just to prefix it.
    c.transport.write(id, encodeH3FrameHeader(H3FrameType.DATA, f.data.length));
    c.transport.write(id, f.data, fin);
    return;
  }
  c.transport.write(id, encodeH3Frame(f), fin);
}

export function traceFrame(c: H3Core, dir: 'in' | 'out', id: number, f: H3Frame): void {
  c.trace.emit({
    t: c.now,
    host: c.host,
    layer: 'h3',
    dir,
    summary: `${summarizeH3Frame(f)} stream=${id}`,
    fields: { streamId: id, frame: f.type },
    rfc: 'RFC 9114 §7.2',
  });
}

/** §9: unknown frame types are ignored; HTTP/2's are an error (§7.2.8). */
export function onUnknownFrame(c: H3Core, frameType: number): void {
  if (HTTP2_ONLY_FRAME_TYPES.has(frameType))
    throw new H3ConnectionError(
      'H3_FRAME_UNEXPECTED',
      `HTTP/2 frame type 0x${frameType.toString(16)} (RFC 9114 §7.2.8)`,
    );
  c.counters.inc('h3.frames.unknown');
}
