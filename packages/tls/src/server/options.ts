/**
 * What a TlsServer is configured with (RFC 8446 §4.1-§4.6 choices: certificates, suites,
 * groups, ALPN, tickets and 0-RTT, HelloRetryRequest cookies, external PSKs, client
 * certificates), and the in-memory strike register for 0-RTT (RFC 8446 §8.2).
 */
import type { AntiReplayStore } from '../anti-replay.ts';
import type { CertificateRequestContext, CertificateSigner, CertificateVerifier } from '../auth.ts';
import type { CertificateCompressor } from '../cert-compression.ts';
import type { TlsCommonOptions } from '../connection.ts';
import type { HashName } from '../crypto/provider.ts';
import type { TicketState } from '../handshake/tickets.ts';

export interface TlsServerOptions extends TlsCommonOptions {
  /**
   * Our certificate(s). With several (say ECDSA, RSA and Ed25519), each handshake takes the
   * one that fits the client's SNI and signature_algorithms (selectCertificate in auth.ts).
   */
  signer:
    | CertificateSigner
    | readonly CertificateSigner[]
    /** Chosen per handshake from what the ClientHello says (SNI contexts, say). */
    | ((hello: CertificateRequestContext) => CertificateSigner | readonly CertificateSigner[]);
  /** Server preference order. */
  cipherSuites?: readonly number[];
  /** Server preference order; a client without a share for any of these gets a HelloRetryRequest. */
  groups?: readonly number[];
  alpnProtocols?: readonly string[];
  /**
   * Choose the ALPN protocol ourselves (node:tls's ALPNCallback): given the client's list,
   * return one of them, or undefined to refuse with no_application_protocol (RFC 7301 §3.2).
   */
  alpnSelect?: (offer: { protocols: readonly string[]; serverName?: string }) => string | undefined;
  /**
   * How tickets are made and read back. By default the state is sealed with AES-256-GCM under
   * `ticketKey`; a stateful store or a key shared by several servers can take its place.
   * `open` returns undefined for a ticket it does not know (the PSK is then just not used).
   */
  ticketCodec?: { seal(state: TicketState): Uint8Array; open(ticket: Uint8Array): TicketState | undefined };
  /** Key that seals our session tickets (32 bytes); random per server when absent. */
  ticketKey?: Uint8Array;
  /** NewSessionTickets sent after the handshake (RFC 8446 §4.6.1). Default 1. */
  ticketsToSend?: number;
  ticketLifetimeSeconds?: number;
  recordSizeLimit?: number;
  /**
   * Look up an external PSK by identity (RFC 8446 §2.2); a match whose binder verifies
   * authenticates the handshake instead of our certificate.
   */
  externalPsk?: (identity: Uint8Array) => { key: Uint8Array; hash?: HashName } | undefined;
  /**
   * 'shares' (default): use any client key share for a group we support, sparing a round
   * trip. 'preference': use our first group the client supports, with a HelloRetryRequest
   * when it sent no share for it (RFC 8446 §4.2.8).
   */
  groupSelection?: 'shares' | 'preference';
  /**
   * Stateless HelloRetryRequest (RFC 8446 §4.2.2): the cookie carries the hash of ClientHello1,
   * the suite and the group, sealed with this 32-byte key, so that any server holding the key
   * (a fresh TlsServer, another process) can take the second ClientHello without the first.
   * A change_cipher_spec before a ClientHello is then tolerated (it may follow an HRR another
   * instance sent). Cookies older than maxAgeMs (default 30 s) are refused.
   */
  statelessRetry?: { key: Uint8Array; maxAgeMs?: number };
  /** A cookie to put in our HelloRetryRequest, given the first ClientHello (RFC 8446 §4.2.2); it must come back. */
  helloRetryCookie?: (clientHello1: Uint8Array) => Uint8Array;
  /**
   * Accept psk_ke (RFC 8446 §4.2.9): a PSK handshake without (EC)DHE, hence without forward
   * secrecy, when the client offers only that or sends no usable share. Default false.
   */
  allowPskKe?: boolean;
  /**
   * Certificate compression we can do (RFC 8879), preferred first: used when the client
   * offers one of them. Default brotli then zlib (node:zlib); false for none.
   */
  certificateCompression?: readonly CertificateCompressor[] | false;
  /** Send our groups in EncryptedExtensions (RFC 8446 §4.2.7). Default true. */
  advertiseGroups?: boolean;
  /** Offer 0-RTT in our tickets (max_early_data_size, RFC 8446 §4.6.1); needs `antiReplay`. Default 0. */
  maxEarlyData?: number;
  /** The strike register (RFC 8446 §8): an AntiReplayCache in memory, or FileAntiReplayStore across restarts and processes. */
  antiReplay?: AntiReplayStore;
  /** Request a client certificate (RFC 8446 §4.3.2) and check it with this verifier. */
  clientAuth?: { verifier: CertificateVerifier; required?: boolean };
  /**
   * How to check a certificate asked for after the handshake (`requestClientCertificate`,
   * RFC 8446 §4.6.2); `clientAuth`'s verifier when absent.
   */
  postHandshakeAuth?: { verifier: CertificateVerifier; required?: boolean };
}

/**
 * Anti-replay for 0-RTT (RFC 8446 §8.2): remembers the binders of accepted ClientHellos
 * for as long as tickets live, so each one can carry early data only once. Share one
 * instance among all connections of a server; without one, 0-RTT is never accepted.
 */
export class AntiReplayCache implements AntiReplayStore {
  private readonly seen = new Map<string, number>();
  constructor(readonly capacity = 100_000) {}

  /** True the first time a key is seen; when full, refuses (so 0-RTT falls back to 1-RTT). */
  firstUse(key: string, expiresAt: number, now: number): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.capacity) {
      for (const [k, exp] of this.seen) if (exp < now) this.seen.delete(k);
      if (this.seen.size >= this.capacity) return false;
    }
    this.seen.set(key, expiresAt);
    return true;
  }
}
