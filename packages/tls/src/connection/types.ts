/**
 * What a TLS connection takes and gives (connection.ts): its options, its events (with the
 * QUIC mode's, RFC 9001 §4), its output, and the session tickets a client keeps.
 */
import type { TraceBus } from '@stepwire/wire';
import type { CryptoProvider } from '../crypto/provider.ts';
import type { KeyLogCallback } from '../keylog.ts';

/** What a connection reports to its user. */
export type TlsEvent =
  | {
      type: 'handshake-complete';
      cipherSuite: string;
      group?: string;
      alpn?: string;
      serverName?: string;
      resumed: boolean;
      /** Which kind of PSK authenticated the handshake, if one did. */
      psk?: 'resumption' | 'external';
      peerCertificates: readonly Uint8Array[];
      /** QUIC mode: the peer's quic_transport_parameters extension body (RFC 9001 §8.2). */
      quicTransportParameters?: Uint8Array;
      /** QUIC mode: what became of 0-RTT, when it was offered (RFC 9001 §4.6). */
      earlyData?: 'accepted' | 'rejected';
    }
  | { type: 'data'; data: Uint8Array }
  /** Server: 0-RTT application data, accepted before the handshake completes (RFC 8446 §2.3; replayable). */
  | { type: 'early-data'; data: Uint8Array }
  /** Client: whether the server took our 0-RTT data; if not, the application must send it again. */
  | { type: 'early-data-status'; accepted: boolean }
  | { type: 'session-ticket'; ticket: SessionTicket }
  /**
   * Server: the client answered a post-handshake CertificateRequest (RFC 8446 §4.6.2); its
   * chain (leaf first; empty when it declined and none was required) has been verified.
   */
  | { type: 'client-certificate'; peerCertificates: readonly Uint8Array[]; context: Uint8Array }
  | { type: 'key-update'; direction: 'read' | 'write' }
  /** The peer sent close_notify: it will send no more data (RFC 8446 §6.1). */
  | { type: 'peer-closed' }
  /** The connection failed; `sent` tells whether we sent the alert or received it. */
  | { type: 'error'; alert: number; alertName: string; reason: string; sent: boolean }
  /** QUIC mode: handshake bytes for CRYPTO frames at this encryption level (RFC 9001 §4.1.3). */
  | { type: 'quic-crypto'; level: QuicCryptoLevel; data: Uint8Array }
  /**
   * QUIC mode: a traffic secret as the key schedule derives it (RFC 9001 §4.1.4), for the
   * QUIC connection's packet protection. This is the one event that carries key material:
   * QUIC protects packets itself, so the secrets must leave TLS. Never traced.
   */
  | {
      type: 'quic-secret';
      level: KeyLevel;
      direction: 'read' | 'write';
      secret: Uint8Array;
      cipherSuite: number;
    };

/** Where a handshake message travels in QUIC (RFC 9001 §4.1.4); 0-RTT carries no CRYPTO data. */
export type QuicCryptoLevel = 'initial' | 'handshake' | 'application';
/** Which traffic secret a key change installs (RFC 8446 §7.1 / RFC 9001 §4.1.4). */
export type KeyLevel = 'early' | 'handshake' | 'application';

/**
 * QUIC mode (RFC 9001 §4): no TLS records. Handshake messages leave as `quic-crypto` events
 * per encryption level and come back through `receiveCrypto`; traffic secrets leave as
 * `quic-secret` events; no change_cipher_spec, no application data, no KeyUpdate, no
 * close_notify (QUIC has its own); alerts become the `error` event only (QUIC turns them
 * into CONNECTION_CLOSE 0x0100 + alert, RFC 9001 §4.8).
 */
export interface QuicModeOptions {
  /** Our quic_transport_parameters extension body (RFC 9001 §8.2), encoded by the QUIC layer. */
  transportParameters: Uint8Array;
  /** Client: attempt 0-RTT with the session's ticket when it allows it (RFC 9001 §4.6.1). */
  earlyData?: boolean;
}

/** RFC 9001 §8.2: the quic_transport_parameters extension code point. */
export const QUIC_TRANSPORT_PARAMETERS = 0x39;

/** A resumption ticket (RFC 8446 §4.6.1) with the PSK it stands for. Keep it secret: it is key material. */
export interface SessionTicket {
  ticket: Uint8Array;
  psk: Uint8Array;
  cipherSuite: number;
  /** Milliseconds on the client's clock when the ticket arrived. */
  receivedAt: number;
  lifetimeSeconds: number;
  ageAdd: number;
  maxEarlyDataSize: number;
  serverName?: string;
  alpn?: string;
}

export interface TlsOutput {
  /** Bytes for the transport, in order. */
  data: Uint8Array[];
  events: TlsEvent[];
}

export interface TlsCommonOptions {
  crypto?: CryptoProvider;
  trace?: TraceBus;
  /** Host name for trace events. */
  host?: string;
  /** Receives NSS key log lines; the only place secrets leave the stack. */
  keyLog?: KeyLogCallback;
  /** Largest handshake message we buffer; a peer cannot make us hold more. Default 128 KiB. */
  maxHandshakeMessage?: number;
  /**
   * Records we protect under one application key before we rekey with a KeyUpdate on our own
   * (RFC 8446 §5.5). Default: the AEAD's limit (2^24.5 records for AES-GCM).
   */
  maxRecordsPerKey?: number;
  /** Run for QUIC (RFC 9001): see QuicModeOptions. */
  quic?: QuicModeOptions;
}
