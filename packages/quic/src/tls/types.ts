/**
 * The seam between QUIC and TLS 1.3 (RFC 9001 §4): the tls package's own client and server
 * machines, run in their QUIC mode, exchange handshake bytes per encryption level (carried in
 * CRYPTO frames) and hand out traffic secrets as they are derived; there are no TLS records.
 * The connection derives packet keys from the secrets (RFC 9001 §5.1).
 */
import type { SessionTicket } from '@stepwire/tls';

/** Encryption levels (RFC 9001 §4.1.4); 'early' is 0-RTT. */
export type QuicLevel = 'initial' | 'early' | 'handshake' | 'application';

export type QuicTlsEvent =
  /** Handshake bytes to send in CRYPTO frames at this level, in order. */
  | { type: 'crypto'; level: 'initial' | 'handshake' | 'application'; data: Uint8Array }
  /** A traffic secret for one direction at one level (RFC 9001 §4.1.4). `cipherSuite` is the TLS code point. */
  | {
      type: 'secret';
      level: 'early' | 'handshake' | 'application';
      direction: 'read' | 'write';
      secret: Uint8Array;
      cipherSuite: number;
    }
  /**
   * The handshake completed on this side (RFC 9001 §4.1.1). `peerTransportParameters` is the
   * raw quic_transport_parameters extension body the peer sent (RFC 9001 §8.2).
   */
  | {
      type: 'handshake-complete';
      alpn?: string;
      peerTransportParameters: Uint8Array;
      resumed: boolean;
      /** Client: whether the server took 0-RTT (absent when none was offered). Server: whether it took the client's. */
      earlyData?: 'accepted' | 'rejected';
      peerCertificates: readonly Uint8Array[];
    }
  /** Client: a ticket for resumption / 0-RTT, with the peer's transport parameters to remember (RFC 9000 §7.4.1). */
  | { type: 'session-ticket'; ticket: SessionTicket }
  /** TLS failed: close with CONNECTION_CLOSE error 0x0100 + alert (RFC 9001 §4.8). */
  | { type: 'error'; alert: number; reason: string };

/** One side of the handshake. Sans-I/O: bytes and `now` in, events out. */
export interface QuicTls {
  readonly role: 'client' | 'server';
  /** Client: emits the ClientHello at the Initial level (and the 0-RTT write secret when resuming with early data). */
  start(now: number): QuicTlsEvent[];
  /** CRYPTO frame data received at `level`, in stream order (the connection reassembles by offset). */
  receive(level: 'initial' | 'handshake' | 'application', data: Uint8Array, now: number): QuicTlsEvent[];
  /** Server: send a NewSessionTicket at the application level (after the handshake is confirmed). */
  sendSessionTicket?(now: number): QuicTlsEvent[];
}
