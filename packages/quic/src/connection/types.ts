import type { SessionTicket } from '@stepwire/tls';
import type { TraceBus } from '@stepwire/wire';
import type { QuicCrypto } from '../crypto/keys.ts';
import type { QuicTls } from '../tls/types.ts';
import type { TransportParameters } from '../transport-parameters.ts';

/** A peer's UDP address as drivers name it; the connection compares it to notice a new path (RFC 9000 §9). */
export interface RemoteAddress {
  address: string;
  port: number;
}

/** Why a connection ended (RFC 9000 §10). Absent from the 'closed' event for a transport NO_ERROR close. */
export interface QuicCloseError {
  /** Who ended it: we did, the peer's CONNECTION_CLOSE, or a silent end. */
  source: 'local' | 'peer' | 'idle-timeout' | 'stateless-reset' | 'version-negotiation';
  /** CONNECTION_CLOSE type 0x1d (application) rather than 0x1c (transport), RFC 9000 §19.19. */
  application: boolean;
  code: number;
  /** For transport errors: the frame type that caused it (0 when unknown). */
  frameType?: number;
  reason: string;
}

/** What the application polls from a connection (HTTP/3 is built on exactly these names). */
export type QuicConnectionEvent =
  /** `earlyData` is set when 0-RTT was attempted (client) or offered (server), RFC 9001 §4.6. */
  | { type: 'connected'; alpn: string | undefined; earlyData?: 'accepted' | 'rejected' }
  /** A stream the peer opened (RFC 9000 §3.2: opening stream N opens every lower one of its type). */
  | { type: 'stream-opened'; id: number }
  /** Bytes in order; `fin` once the final byte has been delivered. */
  | { type: 'stream-data'; id: number; data: Uint8Array; fin: boolean }
  | { type: 'stream-reset'; id: number; code: number }
  | { type: 'stop-sending'; id: number; code: number }
  /** The peer's MAX_STREAMS raised our limit: openStream(direction) works again (RFC 9000 §4.6). */
  | { type: 'streams-available'; direction: 'bidi' | 'uni' }
  /**
   * Client: a ticket for resumption, as QuicTls hands it out, with the server's transport
   * parameters to remember for 0-RTT (RFC 9000 §7.4.1).
   */
  | { type: 'session-ticket'; ticket: SessionTicket; transportParameters?: TransportParameters }
  /** An unreliable DATAGRAM frame's payload (RFC 9221 §5): delivered once, maybe out of order, maybe never. */
  | { type: 'datagram'; data: Uint8Array }
  | { type: 'closed'; error?: QuicCloseError };

/** Our transport settings; they become the transport parameters we send (RFC 9000 §18.2). */
export interface TransportConfig {
  /** ms; 0 disables (RFC 9000 §10.1). */
  maxIdleTimeout: number;
  initialMaxData: number;
  initialMaxStreamDataBidiLocal: number;
  initialMaxStreamDataBidiRemote: number;
  initialMaxStreamDataUni: number;
  initialMaxStreamsBidi: number;
  initialMaxStreamsUni: number;
  /** ms (RFC 9000 §18.2). */
  maxAckDelay: number;
  ackDelayExponent: number;
  activeConnectionIdLimit: number;
  /** The UDP payload size we send (RFC 9000 §14: 1200 always works). */
  maxDatagramSize: number;
  /** Bytes of out-of-order CRYPTO data held per level (RFC 9000 §7.5: at least 4096). */
  cryptoBufferSize: number;
  /**
   * 1-RTT packets we protect under one key phase before we update keys on our own (RFC 9001
   * §6.6: before the AEAD's confidentiality limit; by default a tenth below it, 2^23 for AES-GCM).
   */
  keyUpdateInterval?: number;
  /**
   * The largest DATAGRAM frame we accept, advertised as max_datagram_frame_size (RFC 9221 §3);
   * 0 (the default) does not advertise it: DATAGRAM frames are then a PROTOCOL_VIOLATION.
   */
  maxDatagramFrameSize?: number;
  /** Server: advertise disable_active_migration (RFC 9000 §18.2): clients must not migrate on purpose. */
  disableActiveMigration?: boolean;
  /**
   * DATAGRAM payloads held, each way: queued by sendDatagram and not sent yet, or received and
   * not polled yet. The oldest is dropped (and counted) beyond it: datagrams are unreliable,
   * and a peer must not grow our memory without bound (RFC 9221 §5).
   */
  datagramQueueLimit?: number;
  /**
   * Mark packets ECT(0) and validate ECN on the path (RFC 9000 §13.4.2). Only for a driver
   * that sets the IP ECN field from `Transmit.ecn` (our UDP's setEcn); node:dgram cannot, so
   * off by default. Received codepoints are counted in ACK frames whenever the driver
   * reports them, whatever this says (§13.4.1).
   */
  ecn?: boolean;
  /**
   * The largest UDP payload our side of the path allows (the first hop's MTU less the IP and
   * UDP headers), advertised as max_udp_payload_size (RFC 9000 §18.2). Above maxDatagramSize
   * it turns on path MTU discovery (RFC 9000 §14.3, RFC 8899) up to the smaller of it and
   * the peer's max_udp_payload_size. The driver must send with DF (our UDP's setDontFragment).
   */
  maxUdpPayloadSize?: number;
  /** Client: move to the server's preferred_address after the handshake (RFC 9000 §9.6.1; default true). */
  usePreferredAddress?: boolean;
  /** ms before a finished or failed path MTU search starts again (RFC 8899 PMTU_RAISE_TIMER, default 600 s). */
  pmtuRaiseInterval?: number;
}

export const DEFAULT_TRANSPORT: TransportConfig = {
  maxIdleTimeout: 30_000,
  initialMaxData: 16 * 1024 * 1024,
  initialMaxStreamDataBidiLocal: 4 * 1024 * 1024,
  initialMaxStreamDataBidiRemote: 4 * 1024 * 1024,
  initialMaxStreamDataUni: 4 * 1024 * 1024,
  initialMaxStreamsBidi: 100,
  initialMaxStreamsUni: 100,
  maxAckDelay: 25,
  ackDelayExponent: 3,
  activeConnectionIdLimit: 4,
  maxDatagramSize: 1200,
  cryptoBufferSize: 64 * 1024,
};

/** What a server connection learns from the client's first Initial (set by the endpoint). */
export interface ServerHandshakeInfo {
  /** The DCID of the client's very first Initial (before any Retry): original_destination_connection_id. */
  originalDcid: Uint8Array;
  /** The DCID of the Initial that created this connection: the Initial keys come from it (RFC 9001 §5.2). */
  initialDcid: Uint8Array;
  /** The client's SCID: our DCID, and what its initial_source_connection_id must say (RFC 9000 §7.3). */
  clientScid: Uint8Array;
  /** Set when the connection follows our Retry: the SCID of that Retry (retry_source_connection_id). */
  retrySourceCid?: Uint8Array;
  /** Advertise this preferred_address (RFC 9000 §9.6, §18.2). */
  preferredAddress?: { ipv4?: RemoteAddress; ipv6?: RemoteAddress };
  /** A Retry token proved the client's address (RFC 9000 §8.1.2): no amplification limit. */
  addressValidated?: boolean;
}

export interface QuicConnectionOptions {
  role: 'client' | 'server';
  /** Builds the TLS side given our encoded transport parameters (RFC 9001 §8.2). */
  tls: (transportParameters: Uint8Array) => QuicTls;
  now: number;
  crypto?: QuicCrypto;
  /** Random bytes for connection IDs and tokens; tests pass a seeded source. */
  random?: (n: number) => Uint8Array;
  transport?: Partial<TransportConfig>;
  /** Length of the connection IDs we issue (1..20; the endpoint routes short headers by it). */
  localCidLength?: number;
  /** Our first source connection ID; random by default. */
  localCid?: Uint8Array;
  /** Client: the DCID of the first Initial (RFC 9000 §7.2: at least 8 bytes); random by default. */
  initialDcid?: Uint8Array;
  /** The stateless reset token for a connection ID we issue (RFC 9000 §10.3.2); random by default. */
  resetTokenFor?: (cid: Uint8Array) => Uint8Array;
  /** The peer's address, when the driver knows it (a change of it is a migration, RFC 9000 §9). */
  remote?: RemoteAddress;
  /**
   * Client, for 0-RTT: the server's transport parameters remembered with the session
   * ticket (RFC 9000 §7.4.1). Streams can be opened and written at once; what is written
   * goes in 0-RTT packets if the TLS side hands out an early write secret (RFC 9001 §4.6.1),
   * and again in 1-RTT if the server rejects it.
   */
  earlyTransportParameters?: TransportParameters;
  /** Client: a NEW_TOKEN token from an earlier connection, sent in our Initials (RFC 9000 §8.1.3). */
  token?: Uint8Array;
  /** Server: makes a token to send in NEW_TOKEN once the handshake is confirmed (RFC 9000 §8.1.3). */
  newToken?: () => Uint8Array;
  /** Required for role 'server'. */
  server?: ServerHandshakeInfo;
  /**
   * Milliseconds since 1970 at now = 0, added to `now` for the TLS side: certificates and
   * ticket ages are checked against calendar time (a simulation's clock starts at 0).
   */
  tlsEpoch?: number;
  trace?: TraceBus;
  /** Host name in trace events. */
  host?: string;
  /** Peer host name in trace events, so a ladder can draw the arrow. */
  peer?: string;
  /**
   * The congestion controller: RFC 9438 CUBIC (the default, as in quinn, ngtcp2 and Linux)
   * or RFC 9002 §7's NewReno.
   */
  congestion?: 'newreno' | 'cubic';
  /** Pace 1-RTT data at 1.25 × cwnd / smoothed_rtt (RFC 9002 §7.7); on by default. */
  pacing?: boolean;
}
