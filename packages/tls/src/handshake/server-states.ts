/**
 * The server's handshake states (RFC 8446 Appendix A.2), each a type that carries exactly
 * the data that state needs, as rustls's `ExpectFinished { transcript, key_schedule }`:
 *
 *   START --ClientHello--> (HelloRetryRequest: START with its retry) | NEGOTIATED
 *   NEGOTIATED --our flight--> WAIT_EOED | WAIT_CERT | WAIT_FINISHED
 *   WAIT_EOED --EndOfEarlyData--> WAIT_FINISHED
 *   WAIT_CERT --Certificate--> WAIT_CV (a chain) | WAIT_FINISHED (none)
 *   WAIT_CV --CertificateVerify--> WAIT_FINISHED
 *   WAIT_FINISHED --Finished--> CONNECTED
 *
 * CONNECTED carries the handshake transcript so that a post-handshake CertificateRequest
 * (RFC 8446 §4.6.2) can be answered; that exchange has its own small machine below.
 */
import type { CertificateVerifier } from '../auth.ts';
import type { ClientHello } from '../codec/handshake.ts';
import type { CipherSuiteParams, KeySchedule, Transcript } from '../keyschedule.ts';
import type { Chain } from './machine.ts';

/** After our HelloRetryRequest (RFC 8446 §4.1.4): what the second ClientHello must match. */
export interface RetryState {
  firstHello: ClientHello;
  suite: CipherSuiteParams;
  /** The group whose share we asked for (RFC 8446 §4.2.8). */
  group: number;
  /** The cookie we sent, which must come back unchanged (RFC 8446 §4.2.2). */
  cookie?: Uint8Array;
}

/** What the handshake agreed: reported by handshake-complete. */
export interface ServerAgreement {
  suite: CipherSuiteParams;
  group?: string;
  alpn?: string;
  serverName?: string;
  /** The kind of PSK that authenticated the handshake, if one did (RFC 8446 §2.2). */
  psk?: 'resumption' | 'external';
  /** What became of 0-RTT (RFC 8446 §4.2.10). */
  earlyData: 'none' | 'accepted' | 'rejected';
  /** QUIC mode: the client's quic_transport_parameters (RFC 9001 §8.2). */
  quicTransportParameters?: Uint8Array;
  /** The client offered post_handshake_auth (RFC 8446 §4.2.6). */
  postHandshakeAuth: boolean;
}

/** What reading the client's second flight needs (RFC 8446 §7.1). */
export interface ClientFlightKeys {
  agreement: ServerAgreement;
  schedule: KeySchedule;
  clientHandshakeSecret: Uint8Array;
  /** Installed for reading once the client's Finished verifies. */
  clientApplicationSecret: Uint8Array;
}

/** A certificate request we sent, and how to check the answer (RFC 8446 §4.3.2). */
export interface ClientAuthRequest {
  verifier: CertificateVerifier;
  required: boolean;
}

export interface ServerConnected {
  agreement: ServerAgreement;
  /**
   * Present when the client offered post_handshake_auth (RFC 8446 §4.2.6): the transcript
   * through its Finished, the base of each post-handshake authentication (§4.4.1). Kept only then.
   */
  postHandshakeAuth?: { handshakeTranscript: Uint8Array };
}

export type ServerState =
  | { readonly name: 'START'; readonly retry?: RetryState }
  /** Passed through while our flight is built (RFC 8446 §A.2); no message is read here. */
  | { readonly name: 'NEGOTIATED'; readonly agreement: ServerAgreement }
  | {
      readonly name: 'WAIT_EOED';
      readonly keys: ClientFlightKeys;
      earlyDataLeft: number;
      readonly receiveLimit: number;
    }
  | { readonly name: 'WAIT_CERT'; readonly keys: ClientFlightKeys; readonly auth: ClientAuthRequest }
  | {
      readonly name: 'WAIT_CV';
      readonly keys: ClientFlightKeys;
      readonly auth: ClientAuthRequest;
      readonly peerCertificates: Chain;
    }
  | {
      readonly name: 'WAIT_FINISHED';
      readonly keys: ClientFlightKeys;
      readonly peerCertificates: readonly Uint8Array[];
    }
  | { readonly name: 'CONNECTED'; readonly connected: ServerConnected };

export type ServerStateName = ServerState['name'];

/**
 * Post-handshake client authentication on the server (RFC 8446 §4.6.2): IDLE until we send
 * a CertificateRequest, then the client's Certificate, CertificateVerify and Finished, each
 * joining a transcript that starts from the handshake's (RFC 8446 §4.4.1).
 */
interface PhaCommon {
  readonly connected: ServerConnected;
  /** certificate_request_context of our CertificateRequest (RFC 8446 §4.3.2). */
  readonly context: Uint8Array;
  readonly transcript: Transcript;
}
export type PostHandshakeAuthState =
  | { readonly name: 'IDLE' }
  | (PhaCommon & { readonly name: 'WAIT_CERT'; readonly auth: ClientAuthRequest })
  | (PhaCommon & {
      readonly name: 'WAIT_CV';
      readonly auth: ClientAuthRequest;
      readonly peerCertificates: Chain;
    })
  | (PhaCommon & { readonly name: 'WAIT_FINISHED'; readonly peerCertificates: readonly Uint8Array[] });
