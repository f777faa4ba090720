import type { Counters, TraceBus } from '@stepwire/wire';
import type { Field } from '../qpack/decoder.ts';
import type { H3Setting } from './frames.ts';

/**
 * The QUIC connection as HTTP/3 sees it: streams, their bytes, resets. The QUIC
 * connection (packages/quic/src/connection) provides exactly this; tests wire two HTTP/3
 * connections back to back with an in-memory one (h3/fake-transport.ts).
 */
export interface H3Transport {
  /** A new locally initiated stream's ID. */
  openStream(kind: 'bidi' | 'uni'): number;
  write(id: number, data: Uint8Array, fin?: boolean): void;
  /** RESET_STREAM: abandons our sending side (RFC 9000 §19.4). */
  resetStream(id: number, code: number): void;
  /** STOP_SENDING: asks the peer to abandon its sending side (RFC 9000 §19.5). */
  stopSending(id: number, code: number): void;
  /**
   * Whether openStream(kind) would succeed now (the peer's MAX_STREAMS, RFC 9000 §4.6).
   * Optional: a transport without a limit need not say.
   */
  canOpenStream?(kind: 'bidi' | 'uni'): boolean;
  /** CONNECTION_CLOSE of type 0x1d with an application (HTTP/3) error code (RFC 9000 §19.19). */
  close(code: number, reason?: string): void;
  /**
   * Bytes written on a stream and not yet sent: a writer holds its next write while this is
   * high. Optional: a transport that sends at once need not say.
   */
  buffered?(id: number): number;
}

/** What the QUIC connection reports, fed to Http3Connection.handle. */
export type H3TransportEvent =
  | { type: 'stream-opened'; id: number }
  | { type: 'stream-data'; id: number; data: Uint8Array; fin: boolean }
  | { type: 'stream-reset'; id: number; code: number }
  | { type: 'stop-sending'; id: number; code: number }
  | { type: 'connected'; alpn?: string | undefined }
  | { type: 'closed'; error?: unknown }
  /** QUIC events HTTP/3 has no use for; accepted so a driver can pass every event through. */
  | { type: 'streams-available'; direction: 'bidi' | 'uni' }
  | { type: 'session-ticket'; ticket: unknown }
  | { type: 'datagram'; data: Uint8Array };

/** Our SETTINGS (RFC 9114 §7.2.4.1, RFC 9204 §5). */
export interface H3LocalSettings {
  /** SETTINGS_QPACK_MAX_TABLE_CAPACITY: the dynamic table the peer's encoder may use (default 4096). */
  qpackMaxTableCapacity?: number;
  /** SETTINGS_QPACK_BLOCKED_STREAMS (default 16). */
  qpackBlockedStreams?: number;
  /** SETTINGS_MAX_FIELD_SECTION_SIZE (default 65536); larger sections are refused (§4.2.2). */
  maxFieldSectionSize?: number;
  /** SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220). */
  enableConnectProtocol?: boolean;
}

export interface H3Limits {
  /** Payload of any frame but DATA (and unknown frames, which are skipped unread). Default 65536 + 1024. */
  maxFramePayload: number;
  /** Request streams the peer may have open at once; more are rejected with H3_REQUEST_REJECTED. */
  maxConcurrentRequests: number;
  /** Bytes held for a stream whose header section waits on the QPACK encoder stream. */
  maxBlockedStreamBuffer: number;
  /**
   * Peer unidirectional streams of reserved or unknown types open at once (each is
   * STOP_SENDING'd, RFC 9114 §6.2; we remember each until it ends). Over a connection's life
   * a peer may open any number of them, one after another.
   */
  maxIgnoredStreams: number;
}

export interface Http3ConnectionOptions {
  role: 'client' | 'server';
  settings?: H3LocalSettings;
  limits?: Partial<H3Limits>;
  /** Our QPACK encoder's table capacity, at most the peer's maximum (default 4096). */
  qpackEncoderCapacity?: number;
  trace?: TraceBus;
  host?: string;
  counters?: Counters;
  /** Send a reserved setting and frame (RFC 9114 §7.2.4.1, §7.2.8) so peers that choke on them show it. Default true. */
  grease?: boolean;
}

export const DEFAULT_H3_LIMITS: H3Limits = {
  maxFramePayload: 65536 + 1024,
  maxConcurrentRequests: 100,
  maxBlockedStreamBuffer: 1 << 20,
  maxIgnoredStreams: 64,
};

export type H3SectionEventKind = 'request' | 'response' | 'informational' | 'trailers';

/** What the application sees. */
export type H3Event =
  /** Our control and QPACK streams are open: requests may be sent. */
  | { type: 'ready' }
  | { type: 'settings'; settings: H3Setting[] }
  | { type: 'headers'; streamId: number; kind: H3SectionEventKind; fields: Field[] }
  | { type: 'data'; streamId: number; data: Uint8Array }
  /** The message on this stream is complete (its end of stream arrived). */
  | { type: 'end'; streamId: number }
  /** The peer reset its side of the stream, or (H3_REQUEST_REJECTED) a GOAWAY left it unprocessed. */
  | { type: 'stream-reset'; streamId: number; code: number }
  /** The peer asked us to stop sending on this stream; our side has been reset. */
  | { type: 'stop-sending'; streamId: number; code: number }
  /** We reset the stream because of a stream error (RFC 9114 §8). */
  | { type: 'stream-error'; streamId: number; code: number; reason: string }
  | { type: 'goaway'; id: number }
  /** The peer raised its stream limit (RFC 9000 §4.6): requests held back may go now. */
  | { type: 'streams-available' }
  | { type: 'closed'; code?: number; reason?: string; local: boolean };
