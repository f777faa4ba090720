/**
 * The client's handshake states (RFC 8446 Appendix A.1), each a type that carries exactly
 * the data that state needs, as rustls's `ExpectFinished { transcript, key_schedule }`:
 *
 *   START --send ClientHello--> WAIT_SH
 *   WAIT_SH --HelloRetryRequest--> WAIT_SH (once) | --ServerHello--> WAIT_EE
 *   WAIT_EE --EncryptedExtensions--> WAIT_CERT_CR | WAIT_FINISHED (PSK)
 *   WAIT_CERT_CR --CertificateRequest--> WAIT_CERT | --Certificate--> WAIT_CV
 *   WAIT_CERT --Certificate--> WAIT_CV
 *   WAIT_CV --CertificateVerify--> WAIT_FINISHED
 *   WAIT_FINISHED --Finished--> CONNECTED
 */
import type { ClientHello } from '../codec/handshake.ts';
import type { HashName } from '../crypto/provider.ts';
import type { KexShare } from '../kex.ts';
import type { CipherSuiteParams, KeySchedule } from '../keyschedule.ts';
import type { Chain } from './machine.ts';

/** The PSK a ClientHello offers: a ticket's or an external one (RFC 8446 §4.2.11). */
export interface OfferedPsk {
  kind: 'resumption' | 'external';
  identity: Uint8Array;
  key: Uint8Array;
  hash: HashName;
  obfuscatedTicketAge: number;
}

/** What our last ClientHello offered, against which the server's answer is checked. */
export interface ClientOffer {
  hello: ClientHello;
  /** Our key shares by group code point (RFC 8446 §4.2.8). */
  keyShares: ReadonlyMap<number, KexShare>;
  psk?: OfferedPsk;
}

/** 0-RTT: none tried, attempted (sent, outcome unknown), accepted or rejected (RFC 8446 §4.2.10). */
export type EarlyDataStatus = 'none' | 'attempted' | 'accepted' | 'rejected';

/** A CertificateRequest (RFC 8446 §4.3.2): its context, echoed, and the schemes it accepts. */
export interface CertificateRequestInfo {
  context: Uint8Array;
  schemes: readonly number[];
}

/** From the ServerHello on: the keys and what has been agreed. */
export interface ClientHandshake {
  offer: ClientOffer;
  suite: CipherSuiteParams;
  schedule: KeySchedule;
  /** client/server handshake traffic secrets (RFC 8446 §7.1). */
  secrets: { client: Uint8Array; server: Uint8Array };
  /** The PSK the server selected, if any. */
  psk?: OfferedPsk;
  group?: string;
  retried: boolean;
  earlyData: EarlyDataStatus;
  alpn?: string;
  /** QUIC mode: the server's quic_transport_parameters (RFC 9001 §8.2). */
  quicTransportParameters?: Uint8Array;
}

export interface ClientConnected {
  suite: CipherSuiteParams;
  /** For the PSKs of NewSessionTickets (RFC 8446 §4.6.1). */
  resumptionMaster: Uint8Array;
  alpn?: string;
  /**
   * Present when we offered post_handshake_auth (RFC 8446 §4.2.6): the transcript through our
   * Finished, the base of each post-handshake authentication (§4.4.1). Kept only then.
   */
  postHandshakeAuth?: { handshakeTranscript: Uint8Array };
}

export type ClientState =
  | { readonly name: 'START' }
  | {
      readonly name: 'WAIT_SH';
      readonly offer: ClientOffer;
      readonly earlyData: Exclude<EarlyDataStatus, 'accepted'>;
      /** After a HelloRetryRequest: its cipher suite, which the ServerHello must repeat (RFC 8446 §4.1.4). */
      readonly retrySuite?: number;
    }
  | { readonly name: 'WAIT_EE'; readonly hs: ClientHandshake }
  | { readonly name: 'WAIT_CERT_CR'; readonly hs: ClientHandshake }
  | {
      readonly name: 'WAIT_CERT';
      readonly hs: ClientHandshake;
      readonly certificateRequest: CertificateRequestInfo;
    }
  | {
      readonly name: 'WAIT_CV';
      readonly hs: ClientHandshake;
      readonly certificateRequest?: CertificateRequestInfo;
      readonly peerCertificates: Chain;
    }
  | {
      readonly name: 'WAIT_FINISHED';
      readonly hs: ClientHandshake;
      readonly certificateRequest?: CertificateRequestInfo;
      readonly peerCertificates: readonly Uint8Array[];
    }
  | { readonly name: 'CONNECTED'; readonly connected: ClientConnected };

export type ClientStateName = ClientState['name'];
