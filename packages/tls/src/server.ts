/**
 * The TLS 1.3 server handshake (RFC 8446 §2, Appendix A.2) as a sans-I/O machine:
 * START -> (HelloRetryRequest -> START) -> NEGOTIATED -> [WAIT_EOED] -> [WAIT_CERT -> WAIT_CV]
 * -> WAIT_FINISHED -> CONNECTED. Each state is a type carrying its own data
 * (handshake/server-states.ts) and the legal steps are one table (`transitions` below); the
 * ClientHello's steps (negotiation, PSK, HelloRetryRequest, 0-RTT) are in
 * handshake/client-hello.ts.
 * Certificate authentication through a CertificateSigner, HelloRetryRequest when the
 * client's key shares miss our groups (stateful or with a sealed cookie), resumption from
 * self-encrypted tickets, external PSKs, 0-RTT with an anti-replay cache, client
 * certificates during the handshake or after it (RFC 8446 §4.6.2), ALPN, SNI,
 * record_size_limit, certificate compression, KeyUpdate.
 */
import { ByteWriter } from '@stepwire/wire';
import type { AntiReplayStore } from './anti-replay.ts';
import {
  alert,
  type CertificateRequestContext,
  type CertificateSigner,
  type CertificateVerifier,
  certificateVerifyInput,
  macEqual,
  selectCertificate,
} from './auth.ts';
import { type CertificateCompressor, DEFAULT_COMPRESSORS, offeredCompression } from './cert-compression.ts';
import { DEFAULT_CIPHER_SUITES, DEFAULT_GROUPS, GROUP_NAMES } from './client.ts';
import { AlertDescription } from './codec/alert.ts';
import { TLS_1_2, TLS_1_3 } from './codec/common.ts';
import { type Extension, findExtension, type KeyShareEntry } from './codec/extensions.ts';
import { type ClientHello, encodeHandshake, type HandshakeMessage } from './codec/handshake.ts';
import { MAX_PLAINTEXT } from './codec/record.ts';
import {
  QUIC_TRANSPORT_PARAMETERS,
  type TlsCommonOptions,
  TlsConnection,
  type TlsOutput,
} from './connection.ts';
import type { HashName } from './crypto/provider.ts';
import {
  acceptEarlyData,
  helloRetryRequest,
  type Negotiation,
  negotiate,
  openCookie,
  type PskChoice,
  sealCookie,
  selectAlpn,
  selectPsk,
} from './handshake/client-hello.ts';
import { Machine, type MessageOf, nonEmptyChain, type TransitionTable } from './handshake/machine.ts';
import type {
  ClientAuthRequest,
  ClientFlightKeys,
  PostHandshakeAuthState,
  RetryState,
  ServerAgreement,
  ServerState,
} from './handshake/server-states.ts';
import { sealTicket, type TicketState, unsealTicket } from './handshake/tickets.ts';
import { type KexGroupName, serverKeyShare } from './kex.ts';
import { cipherSuite, finishedVerifyData, KeySchedule, resumptionPsk, Transcript } from './keyschedule.ts';

export type { TicketState } from './handshake/tickets.ts';

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

/** How much rejected 0-RTT data we skip; our tickets allow none, so this only covers misbehaving clients. */
const EARLY_DATA_SKIP_LIMIT = 1 << 16;

type Handshake<K extends ServerState['name']> = Extract<ServerState, { name: K }>;

/** What the server answers a ClientHello with, beyond the suite and group (RFC 8446 §4.1.3-§4.4). */
interface ServerDecision {
  agreement: ServerAgreement;
  /** The client's share we answer, with its group's name (RFC 8446 §4.2.8); none for psk_ke. */
  share?: { entry: KeyShareEntry; name: KexGroupName };
  /** Our certificate and CertificateVerify scheme, unless a PSK authenticates. */
  certificate?: { signer: CertificateSigner; scheme: number };
  /** The client sent record_size_limit, so ours goes in EncryptedExtensions (RFC 8449 §4). */
  recordSizeLimit: boolean;
  /** The largest inner plaintext we take once the client knows our limit (RFC 8449 §4). */
  receiveLimit: number;
  /** 0-RTT accepted: how many bytes (RFC 8446 §4.2.10). */
  earlyData?: number;
}
type Pha<K extends PostHandshakeAuthState['name']> = Extract<PostHandshakeAuthState, { name: K }>;

export class TlsServer extends TlsConnection {
  private readonly options: TlsServerOptions;
  private readonly ticketKey: Uint8Array;
  private ticketCounter = 0;
  /** Where the handshake is (RFC 8446 §A.2), with that state's data. */
  private readonly machine: Machine<TlsServer, ServerState>;
  /** Post-handshake client authentication (RFC 8446 §4.6.2), once CONNECTED. */
  private readonly phaMachine: Machine<TlsServer, PostHandshakeAuthState>;
  /** SNI from the ClientHello (RFC 6066 §3), for the API's certificate and context choice. */
  private serverName?: string;

  /**
   * The server's legal steps (RFC 8446 §A.2): (state, message) → handler, the states it may
   * lead to and the section that allows it. Anything else is an unexpected_message.
   */
  private static readonly transitions: TransitionTable<TlsServer, ServerState> = {
    START: {
      client_hello: {
        rfc: 'RFC 8446 §4.1.2, §A.2',
        next: ['START', 'NEGOTIATED', 'WAIT_EOED', 'WAIT_CERT', 'WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onClientHello(s, m, raw),
      },
    },
    WAIT_EOED: {
      end_of_early_data: {
        rfc: 'RFC 8446 §4.5',
        next: ['WAIT_FINISHED'],
        handle: (c, s, _m, raw) => c.onEndOfEarlyData(s, raw),
      },
    },
    WAIT_CERT: {
      certificate: {
        rfc: 'RFC 8446 §4.4.2, §A.2',
        next: ['WAIT_CV', 'WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onClientCertificate(s, m, raw),
      },
    },
    WAIT_CV: {
      certificate_verify: {
        rfc: 'RFC 8446 §4.4.3',
        next: ['WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onClientCertificateVerify(s, m, raw),
      },
    },
    WAIT_FINISHED: {
      finished: {
        rfc: 'RFC 8446 §4.4.4',
        next: ['CONNECTED'],
        handle: (c, s, m, raw) => c.onFinished(s, m, raw),
      },
    },
  };

  /**
   * Post-handshake client authentication (RFC 8446 §4.6.2): after our CertificateRequest,
   * the client's Certificate, CertificateVerify (with a certificate) and Finished.
   */
  private static readonly phaTransitions: TransitionTable<TlsServer, PostHandshakeAuthState> = {
    WAIT_CERT: {
      certificate: {
        rfc: 'RFC 8446 §4.6.2, §4.4.2',
        next: ['WAIT_CV', 'WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onPhaCertificate(s, m, raw),
      },
    },
    WAIT_CV: {
      certificate_verify: {
        rfc: 'RFC 8446 §4.6.2, §4.4.3',
        next: ['WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onPhaCertificateVerify(s, m, raw),
      },
    },
    WAIT_FINISHED: {
      finished: {
        rfc: 'RFC 8446 §4.6.2, §4.4.4',
        next: ['IDLE'],
        handle: (c, s, m, raw) => c.onPhaFinished(s, m, raw),
      },
    },
  };

  constructor(options: TlsServerOptions) {
    super('server', options, 'START');
    this.machine = new Machine(TlsServer.transitions, { name: 'START' });
    this.phaMachine = new Machine(
      TlsServer.phaTransitions,
      { name: 'IDLE' },
      ' of post-handshake authentication',
    );
    this.options = options;
    this.ticketKey = options.ticketKey ?? this.crypto.randomBytes(32);
    if (this.ticketKey.length !== 32) throw new RangeError('ticketKey must be 32 bytes');
  }

  get clientServerName(): string | undefined {
    return this.serverName;
  }

  private get hs(): ServerState {
    return this.machine.state;
  }

  private get pha(): PostHandshakeAuthState {
    return this.phaMachine.state;
  }

  protected onHandshakeMessage(msg: HandshakeMessage, raw: Uint8Array): void {
    this.machine.dispatch(this, msg, raw);
  }

  /** Enter `next`, which the running row must allow; the trace shows the Appendix A names. */
  private enter(next: ServerState, rfc?: string): void {
    this.setState(next.name, this.machine.enter(next, rfc));
  }

  // ---- START: the ClientHello (RFC 8446 §4.1.2) ----

  private onClientHello(s: Handshake<'START'>, ch: ClientHello, raw: Uint8Array): void {
    const o = this.options;
    let retry = s.retry;
    if (o.statelessRetry && !retry) {
      // RFC 8446 §4.2.2: a cookie we sealed stands for the HelloRetryRequest state we did not keep.
      const resumed = openCookie(this.crypto, o.statelessRetry, this.now, ch);
      if (resumed) {
        retry = resumed.retry;
        this.suite = retry.suite;
        for (const m of resumed.transcript) this.transcript.add(m);
        this.drop('hrr.stateless', 'second ClientHello resumed from our cookie', 'RFC 8446 §4.2.2');
      }
    }
    const n = negotiate(
      ch,
      {
        cipherSuites: o.cipherSuites ?? DEFAULT_CIPHER_SUITES,
        groups: o.groups ?? DEFAULT_GROUPS,
        implemented: (g) => GROUP_NAMES[g] !== undefined,
        ...(o.groupSelection ? { groupSelection: o.groupSelection } : {}),
        ...(o.allowPskKe !== undefined ? { allowPskKe: o.allowPskKe } : {}),
        quic: this.quic !== undefined,
      },
      retry,
    );
    // RFC 8446 §4.1.4: no share we can use (and no psk_ke to fall back on): ask for one.
    if (!n.share && !n.pskOnlyPossible) {
      this.retryOrFail(ch, raw, n, retry, 'no key exchange group in common');
      return;
    }
    this.suite = n.suite;
    this.clientRandom = ch.random;
    this.serverName = findExtension(ch.extensions, 'server_name')?.hostName;

    const psk = selectPsk(
      {
        crypto: this.crypto,
        transcriptBytes: this.transcript.bytes,
        ...(o.externalPsk ? { externalPsk: o.externalPsk } : {}),
        openTicket: (identity) => this.openTicket(identity),
      },
      ch,
      raw,
      n,
    );
    // psk_ke was the hope but no PSK matched: a certificate handshake needs a share.
    if (!psk && !n.share) {
      this.retryOrFail(ch, raw, n, retry, 'no PSK for psk_ke and no key exchange group in common');
      return;
    }
    this.negotiated(ch, raw, n, psk, retry !== undefined);
  }

  /** A HelloRetryRequest for our first common group, or handshake_failure when there is none or we already asked. */
  private retryOrFail(
    ch: ClientHello,
    raw: Uint8Array,
    n: Negotiation,
    retry: RetryState | undefined,
    reason: string,
  ): void {
    const group = n.common[0];
    // RFC 8446 §4.1.4: one HelloRetryRequest per handshake.
    if (group === undefined || retry) alert(AlertDescription.handshake_failure, reason);
    this.sendHelloRetryRequest(ch, raw, n.suite.id, group);
  }

  /** RFC 8446 §4.1.4: HelloRetryRequest; the transcript continues from message_hash(ClientHello1) (§4.4.1). */
  private sendHelloRetryRequest(ch: ClientHello, raw: Uint8Array, suiteId: number, group: number): void {
    const suite = cipherSuite(suiteId);
    // RFC 8446 §4.2.10: the 0-RTT data that follows ClientHello1 is skipped.
    if (findExtension(ch.extensions, 'early_data')) this.earlyDataSkipBudget = EARLY_DATA_SKIP_LIMIT;
    this.suite = suite;
    const stateless = this.options.statelessRetry;
    const cookie = stateless
      ? sealCookie(this.crypto, stateless.key, this.now, suiteId, group, this.crypto.hash(suite.hash, raw))
      : this.options.helloRetryCookie?.(raw);
    this.transcript.add(raw);
    this.transcript.replaceWithMessageHash(this.crypto, suite.hash);
    this.sendHandshake(helloRetryRequest(ch, suiteId, group, cookie));
    // RFC 8446 §D.4: a client in compatibility mode gets a change_cipher_spec after our first message.
    if (ch.legacySessionId.length > 0) this.sendChangeCipherSpec();
    this.enter(
      { name: 'START', retry: { firstHello: ch, suite, group, ...(cookie ? { cookie } : {}) } },
      'RFC 8446 §4.1.4',
    );
  }

  /** The certificate and CertificateVerify scheme for this ClientHello (RFC 8446 §4.4.2.2, §4.2.3). */
  private chooseCertificate(ch: ClientHello): { signer: CertificateSigner; scheme: number } {
    const o = this.options;
    const sa = findExtension(ch.extensions, 'signature_algorithms');
    // RFC 8446 §4.2.3: certificate authentication needs signature_algorithms.
    if (!sa) alert(AlertDescription.missing_extension, 'no signature_algorithms');
    const saCert = findExtension(ch.extensions, 'signature_algorithms_cert');
    const hello: CertificateRequestContext = {
      signatureAlgorithms: sa.schemes,
      ...(saCert ? { signatureAlgorithmsCert: saCert.schemes } : {}),
      ...(this.serverName !== undefined ? { serverName: this.serverName } : {}),
    };
    const pool = typeof o.signer === 'function' ? o.signer(hello) : o.signer;
    const certificate = selectCertificate(isSignerList(pool) ? pool : [pool], hello);
    // RFC 8446 §4.4.2.2/§4.2.3: no key of ours can sign in a way the client accepts.
    if (certificate === undefined) alert(AlertDescription.handshake_failure, 'no signature scheme in common');
    return certificate;
  }

  /**
   * The ClientHello is agreed (RFC 8446 §A.2, RECVD_CH): what we answer with, then the
   * ServerHello and our keys (NEGOTIATED), then our flight and the state that waits for the
   * client's (WAIT_EOED, WAIT_CERT or WAIT_FINISHED).
   */
  private negotiated(
    ch: ClientHello,
    raw: Uint8Array,
    n: Negotiation,
    psk: PskChoice | undefined,
    retried: boolean,
  ): void {
    const d = this.decide(ch, n, psk);
    const keys = this.sendServerHello(ch, raw, psk, d, retried);
    this.enter({ name: 'NEGOTIATED', agreement: d.agreement }, 'RFC 8446 §A.2');
    this.sendServerFlight(ch, d, keys);
  }

  /** Everything the answer depends on besides the suite, group and PSK already agreed. */
  private decide(ch: ClientHello, n: Negotiation, psk: PskChoice | undefined): ServerDecision {
    const o = this.options;
    const suite = n.suite;
    // RFC 8446 §4.2.9 psk_ke: the client's shares go unanswered.
    const share = psk?.withoutDhe ? undefined : n.share;
    // RFC 8446 §4.4.2: a certificate unless a PSK authenticates.
    const certificate = psk ? undefined : this.chooseCertificate(ch);

    const alpn = selectAlpn(ch, o, this.serverName);
    // RFC 9001 §8.1: QUIC needs an application protocol agreed by ALPN.
    if (this.quic && alpn === undefined)
      alert(AlertDescription.no_application_protocol, 'no ALPN protocol for QUIC');
    const rsl = findExtension(ch.extensions, 'record_size_limit');
    let receiveLimit = MAX_PLAINTEXT + 1;
    if (rsl) {
      this.sendLimit = Math.min(MAX_PLAINTEXT, rsl.limit - 1);
      // RFC 8449 §4: our own limit binds the client once it reads it in EncryptedExtensions, so
      // it applies from its handshake-key records on (not to 0-RTT records, sent before it knew).
      receiveLimit = Math.min(MAX_PLAINTEXT + 1, o.recordSizeLimit ?? MAX_PLAINTEXT + 1);
    }

    // 0-RTT (RFC 8446 §4.2.10), or its records skipped up to a limit.
    const offeredEarly = findExtension(ch.extensions, 'early_data') !== undefined;
    const antiReplay = o.antiReplay;
    const earlyAllowed = offeredEarly
      ? acceptEarlyData(
          ch,
          psk,
          suite,
          alpn,
          this.now,
          antiReplay ? (key, expiresAt) => antiReplay.firstUse(key, expiresAt, this.now) : undefined,
        )
      : undefined;
    if (earlyAllowed === 0)
      this.drop('early-data.rejected', '0-RTT offered but not accepted', 'RFC 8446 §4.2.10');
    const earlyData = earlyAllowed !== undefined && earlyAllowed > 0 ? earlyAllowed : undefined;
    if (offeredEarly && earlyData === undefined) this.earlyDataSkipBudget = EARLY_DATA_SKIP_LIMIT;

    const groupName = share ? GROUP_NAMES[share.group] : undefined;
    return {
      agreement: {
        suite,
        ...(groupName !== undefined ? { group: groupName } : {}),
        ...(alpn !== undefined ? { alpn } : {}),
        ...(this.serverName !== undefined ? { serverName: this.serverName } : {}),
        ...(psk ? { psk: psk.kind } : {}),
        earlyData: offeredEarly ? (earlyData !== undefined ? 'accepted' : 'rejected') : 'none',
        ...(n.quicTransportParameters ? { quicTransportParameters: n.quicTransportParameters } : {}),
        postHandshakeAuth: ch.extensions.some((e) => e.type === 'post_handshake_auth'),
      },
      ...(share && groupName ? { share: { entry: share, name: groupName } } : {}),
      ...(certificate ? { certificate } : {}),
      recordSizeLimit: rsl !== undefined,
      receiveLimit,
      ...(earlyData !== undefined ? { earlyData } : {}),
    };
  }

  /** ServerHello (RFC 8446 §4.1.3) and the handshake traffic keys (§7.1). */
  private sendServerHello(
    ch: ClientHello,
    raw: Uint8Array,
    psk: PskChoice | undefined,
    d: ServerDecision,
    retried: boolean,
  ): { schedule: KeySchedule; cHs: Uint8Array; sHs: Uint8Array } {
    const suite = d.agreement.suite;
    const schedule = new KeySchedule(this.crypto, suite.hash);
    schedule.deriveEarlySecret(psk?.key);
    // RFC 8446 §4.2.9 psk_ke: no key_share and no (EC)DHE secret.
    const ours = d.share ? serverKeyShare(this.crypto, d.share.name, d.share.entry.keyExchange) : undefined;
    this.transcript.add(raw);
    // Extension order is free; this is the order of the RFC 8448 traces (NSS), so they can be replayed.
    const shExts: Extension[] = [];
    if (psk) shExts.push({ type: 'pre_shared_key', selectedIdentity: psk.selectedIdentity });
    if (d.share && ours)
      shExts.push({
        type: 'key_share',
        serverShare: { group: d.share.entry.group, keyExchange: ours.publicKey },
      });
    shExts.push({ type: 'supported_versions', selectedVersion: TLS_1_3 });
    this.sendHandshake({
      msgType: 'server_hello',
      legacyVersion: TLS_1_2,
      random: this.crypto.randomBytes(32),
      legacySessionIdEcho: ch.legacySessionId,
      cipherSuite: suite.id,
      legacyCompressionMethod: 0,
      extensions: shExts,
    });
    // RFC 8446 §D.4: a client in compatibility mode gets a change_cipher_spec after our first message.
    if (ch.legacySessionId.length > 0 && !retried) this.sendChangeCipherSpec();

    // RFC 8446 §7.1: the handshake secrets over ClientHello..ServerHello.
    schedule.deriveHandshakeSecret(ours?.shared);
    const th = this.transcript.hash(this.crypto, suite.hash);
    const cHs = schedule.clientHandshakeTrafficSecret(th);
    const sHs = schedule.serverHandshakeTrafficSecret(th);
    this.log('CLIENT_HANDSHAKE_TRAFFIC_SECRET', cHs);
    this.log('SERVER_HANDSHAKE_TRAFFIC_SECRET', sHs);
    this.setWriteKey(sHs, 'handshake');
    if (d.earlyData !== undefined) {
      // The client's 0-RTT records use the early traffic key until its EndOfEarlyData (RFC 8446 §4.5).
      const chHash = this.crypto.hash(suite.hash, raw);
      const early = schedule.clientEarlyTrafficSecret(chHash);
      this.log('CLIENT_EARLY_TRAFFIC_SECRET', early);
      this.log('EARLY_EXPORTER_SECRET', schedule.earlyExporterMasterSecret(chHash));
      this.setReadKey(early, 'early');
    }
    // RFC 9001 §8.3: QUIC has no EndOfEarlyData; the handshake read key comes at once, beside 0-RTT's.
    if (d.earlyData === undefined || this.quic) {
      this.setReadKey(cHs, 'handshake');
      this.receiveLimit = d.receiveLimit;
    }
    return { schedule, cHs, sHs };
  }

  /**
   * EncryptedExtensions, [CertificateRequest], Certificate and CertificateVerify unless a PSK
   * authenticates, and Finished (RFC 8446 §4.3-§4.4); then the application keys (§7.1).
   */
  private sendServerFlight(
    ch: ClientHello,
    d: ServerDecision,
    { schedule, cHs, sHs }: { schedule: KeySchedule; cHs: Uint8Array; sHs: Uint8Array },
  ): void {
    const o = this.options;
    const { agreement } = d;
    const hash = agreement.suite.hash;
    const ee: Extension[] = [];
    // RFC 8446 §4.2.7: our groups, so the client can send the right share next time.
    if (o.advertiseGroups !== false)
      ee.push({ type: 'supported_groups', groups: [...(o.groups ?? DEFAULT_GROUPS)] });
    if (agreement.alpn !== undefined) ee.push({ type: 'alpn', protocols: [agreement.alpn] });
    if (d.recordSizeLimit)
      ee.push({ type: 'record_size_limit', limit: o.recordSizeLimit ?? MAX_PLAINTEXT + 1 });
    if (this.serverName !== undefined) ee.push({ type: 'server_name' });
    if (d.earlyData !== undefined) ee.push({ type: 'early_data' });
    if (this.quic)
      ee.push({ type: 'raw', code: QUIC_TRANSPORT_PARAMETERS, data: this.quic.transportParameters });
    this.sendHandshake({ msgType: 'encrypted_extensions', extensions: ee });
    // RFC 8446 §4.3.2: a CertificateRequest only in a certificate-authenticated handshake.
    const auth: ClientAuthRequest | undefined =
      d.certificate && o.clientAuth
        ? { verifier: o.clientAuth.verifier, required: o.clientAuth.required === true }
        : undefined;
    if (auth) {
      this.sendHandshake({
        msgType: 'certificate_request',
        certificateRequestContext: new Uint8Array(0),
        extensions: [{ type: 'signature_algorithms', schemes: [...auth.verifier.signatureSchemes] }],
      });
    }
    if (d.certificate) this.sendCertificate(ch, d.certificate, hash);
    const fin = finishedVerifyData(this.crypto, hash, sHs, this.transcript.hash(this.crypto, hash));
    this.sendHandshake({ msgType: 'finished', verifyData: fin });

    const { cAp, sAp } = this.deriveApplicationSecrets(schedule, hash);
    // RFC 8446 §2: the server may send application data after its Finished (0.5-RTT); our writes use the new key.
    this.setWriteKey(sAp, 'application');
    const keys: ClientFlightKeys = {
      agreement,
      schedule,
      clientHandshakeSecret: cHs,
      clientApplicationSecret: cAp,
    };
    // RFC 8446 §A.2: WAIT_EOED with 0-RTT (not in QUIC, RFC 9001 §8.3), WAIT_CERT when we asked for a certificate.
    if (d.earlyData !== undefined && !this.quic)
      this.enter(
        { name: 'WAIT_EOED', keys, earlyDataLeft: d.earlyData, receiveLimit: d.receiveLimit },
        'RFC 8446 §A.2',
      );
    else if (auth) this.enter({ name: 'WAIT_CERT', keys, auth }, 'RFC 8446 §A.2');
    else this.enter({ name: 'WAIT_FINISHED', keys, peerCertificates: [] }, 'RFC 8446 §A.2');
  }

  /** Certificate (or CompressedCertificate, RFC 8879 §4) and CertificateVerify (RFC 8446 §4.4.2, §4.4.3). */
  private sendCertificate(
    ch: ClientHello,
    { signer, scheme }: { signer: CertificateSigner; scheme: number },
    hash: HashName,
  ): void {
    const o = this.options;
    const message: HandshakeMessage = {
      msgType: 'certificate',
      certificateRequestContext: new Uint8Array(0),
      certificateList: signer.certificateChain.map((certData) => ({ certData, extensions: [] })),
    };
    // RFC 8879 §4: CompressedCertificate instead, with the first of our algorithms the client offered.
    const offered = offeredCompression(ch.extensions);
    const compressor =
      offered && o.certificateCompression !== false
        ? (o.certificateCompression ?? DEFAULT_COMPRESSORS).find((c) => offered.includes(c.algorithm))
        : undefined;
    this.sendHandshake(compressor ? compressedCertificate(signer, message, compressor) : message);
    const content = certificateVerifyInput('server', this.transcript.hash(this.crypto, hash));
    this.sendHandshake({
      msgType: 'certificate_verify',
      algorithm: scheme,
      signature: signer.sign(scheme, content),
    });
  }

  // ---- The client's second flight ----

  /** RFC 8446 §4.5: the end of 0-RTT; the client's handshake key takes over. */
  private onEndOfEarlyData(s: Handshake<'WAIT_EOED'>, raw: Uint8Array): void {
    this.transcript.add(raw);
    this.setReadKey(s.keys.clientHandshakeSecret, 'handshake');
    this.receiveLimit = s.receiveLimit;
    this.enter({ name: 'WAIT_FINISHED', keys: s.keys, peerCertificates: [] });
  }

  private onClientCertificate(
    s: Handshake<'WAIT_CERT'>,
    msg: MessageOf<'certificate'>,
    raw: Uint8Array,
  ): void {
    // RFC 8446 §4.4.2: the context echoes the CertificateRequest's (empty here).
    if (msg.certificateRequestContext.length !== 0)
      alert(AlertDescription.illegal_parameter, 'wrong certificate_request_context');
    this.transcript.add(raw);
    const chain = nonEmptyChain(msg.certificateList.map((e) => e.certData));
    if (!chain) {
      // RFC 8446 §4.4.2.4: no certificate where one is required is certificate_required.
      if (s.auth.required) alert(AlertDescription.certificate_required, 'client sent no certificate');
      this.enter({ name: 'WAIT_FINISHED', keys: s.keys, peerCertificates: [] }, 'RFC 8446 §4.4.2.4');
      return;
    }
    s.auth.verifier.verifyChain(chain, { now: this.now });
    this.enter({ name: 'WAIT_CV', keys: s.keys, auth: s.auth, peerCertificates: chain });
  }

  private onClientCertificateVerify(
    s: Handshake<'WAIT_CV'>,
    msg: MessageOf<'certificate_verify'>,
    raw: Uint8Array,
  ): void {
    this.checkClientCertificateVerify(
      s.auth.verifier,
      s.peerCertificates,
      msg,
      this.transcript,
      s.keys.agreement.suite.hash,
    );
    this.transcript.add(raw);
    this.enter({ name: 'WAIT_FINISHED', keys: s.keys, peerCertificates: s.peerCertificates });
  }

  /** RFC 8446 §4.4.3: a scheme we asked for, over the transcript through the client's Certificate. */
  private checkClientCertificateVerify(
    verifier: CertificateVerifier,
    chain: readonly [Uint8Array, ...Uint8Array[]],
    msg: MessageOf<'certificate_verify'>,
    transcript: Transcript,
    hash: HashName,
  ): void {
    if (!verifier.signatureSchemes.includes(msg.algorithm))
      alert(AlertDescription.illegal_parameter, 'CertificateVerify scheme not requested');
    const content = certificateVerifyInput('client', transcript.hash(this.crypto, hash));
    if (!verifier.verifySignature(chain[0], msg.algorithm, content, msg.signature))
      alert(AlertDescription.decrypt_error, 'client CertificateVerify signature does not verify');
  }

  /** RFC 8446 §4.4.4: verify_data of Hash.length bytes under `baseKey`'s finished key. */
  private checkFinished(
    baseKey: Uint8Array,
    msg: MessageOf<'finished'>,
    transcript: Transcript,
    hash: HashName,
  ): void {
    const expected = finishedVerifyData(this.crypto, hash, baseKey, transcript.hash(this.crypto, hash));
    // RFC 8446 §4.4.4/§6.2: verify_data is Hash.length bytes; another length is a message that
    // does not decode (decode_error), a wrong value of the right length a decrypt_error.
    if (msg.verifyData.length !== expected.length)
      alert(
        AlertDescription.decode_error,
        `client Finished of ${msg.verifyData.length} bytes, not ${expected.length}`,
      );
    if (!macEqual(msg.verifyData, expected))
      alert(AlertDescription.decrypt_error, 'client Finished does not verify');
  }

  private onFinished(s: Handshake<'WAIT_FINISHED'>, msg: MessageOf<'finished'>, raw: Uint8Array): void {
    const { agreement, schedule } = s.keys;
    const hash = agreement.suite.hash;
    this.checkFinished(s.keys.clientHandshakeSecret, msg, this.transcript, hash);
    this.transcript.add(raw);
    const rms = schedule.resumptionMasterSecret(this.transcript.hash(this.crypto, hash));
    this.setReadKey(s.keys.clientApplicationSecret, 'application');
    this.enter({
      name: 'CONNECTED',
      connected: {
        agreement,
        ...(agreement.postHandshakeAuth
          ? { postHandshakeAuth: { handshakeTranscript: this.transcript.bytes } }
          : {}),
      },
    });
    this.completeHandshake({
      type: 'handshake-complete',
      cipherSuite: agreement.suite.name,
      group: agreement.group,
      alpn: agreement.alpn,
      serverName: agreement.serverName,
      resumed: agreement.psk === 'resumption',
      psk: agreement.psk,
      peerCertificates: s.peerCertificates,
      ...(this.quic ? { quicTransportParameters: agreement.quicTransportParameters } : {}),
      ...(this.quic && agreement.earlyData !== 'none' ? { earlyData: agreement.earlyData } : {}),
    });
    for (let i = 0; i < (this.options.ticketsToSend ?? 1); i++) this.sendTicket(agreement, rms);
  }

  // ---- 0-RTT and change_cipher_spec ----

  /** Not before the first ClientHello (RFC 8446 §5), unless another instance may have sent our HRR. */
  protected override ccsAllowed(): boolean {
    return (
      super.ccsAllowed() &&
      (this.hs.name !== 'START' || this.hs.retry !== undefined || this.options.statelessRetry !== undefined)
    );
  }

  protected override onEarlyApplicationData(content: Uint8Array): boolean {
    const s = this.hs;
    if (s.name !== 'WAIT_EOED') return false;
    // RFC 8446 §4.2.10: more than max_early_data_size is an unexpected_message.
    s.earlyDataLeft -= content.length;
    if (s.earlyDataLeft < 0) alert(AlertDescription.unexpected_message, 'too much early data');
    if (content.length > 0) this.emit({ type: 'early-data', data: content });
    return true;
  }

  // ---- Post-handshake client authentication (RFC 8446 §4.6.2) ----

  /** Whether the client offered post_handshake_auth, so that requestClientCertificate may be used. */
  get postHandshakeAuthOffered(): boolean {
    return this.hs.name === 'CONNECTED' && this.hs.connected.postHandshakeAuth !== undefined;
  }

  /**
   * Ask the client for a certificate now that the handshake is over (RFC 8446 §4.6.2): a
   * CertificateRequest with a fresh context; the answer arrives as a `client-certificate`
   * event (or fails the connection with the RFC's alert). Only when the client offered
   * post_handshake_auth, and one request at a time.
   */
  requestClientCertificate(
    now: number,
    auth?: { verifier?: CertificateVerifier; required?: boolean },
  ): TlsOutput {
    this.now = now;
    const s = this.hs;
    if (s.name !== 'CONNECTED' || !this.isConnected)
      throw new Error('a post-handshake CertificateRequest needs a connected session');
    // RFC 9001 §4.4: QUIC does not use post-handshake client authentication.
    if (this.quic) throw new Error('QUIC does not use post-handshake client authentication (RFC 9001 §4.4)');
    // RFC 8446 §4.6.2: "servers MUST NOT send a post-handshake CertificateRequest to clients which do not offer this extension".
    const pha = s.connected.postHandshakeAuth;
    if (!pha) throw new Error('the client did not offer post_handshake_auth (RFC 8446 §4.6.2)');
    if (this.pha.name !== 'IDLE')
      throw new Error('a post-handshake CertificateRequest is already outstanding');
    const configured = this.options.postHandshakeAuth ?? this.options.clientAuth;
    const verifier = auth?.verifier ?? configured?.verifier;
    if (!verifier) throw new Error('no verifier for client certificates (postHandshakeAuth or clientAuth)');
    const required = auth?.required ?? configured?.required ?? false;
    return this.guard(() => {
      // RFC 8446 §4.3.2: a context unique within this connection, echoed by the client's Certificate.
      const context = this.crypto.randomBytes(32);
      const transcript = new Transcript();
      transcript.add(pha.handshakeTranscript);
      const raw = this.sendHandshake(
        {
          msgType: 'certificate_request',
          certificateRequestContext: context,
          extensions: [{ type: 'signature_algorithms', schemes: [...verifier.signatureSchemes] }],
        },
        false,
      );
      transcript.add(raw);
      this.enterPha({
        name: 'WAIT_CERT',
        connected: s.connected,
        context,
        transcript,
        auth: { verifier, required },
      });
    });
  }

  protected override onPostHandshake(msg: HandshakeMessage, raw: Uint8Array): void {
    if (msg.msgType !== 'certificate' && msg.msgType !== 'certificate_verify' && msg.msgType !== 'finished') {
      super.onPostHandshake(msg, raw);
      return;
    }
    this.phaMachine.dispatch(this, msg, raw);
  }

  private enterPha(next: PostHandshakeAuthState): void {
    this.phaMachine.enter(next);
  }

  private onPhaCertificate(s: Pha<'WAIT_CERT'>, msg: MessageOf<'certificate'>, raw: Uint8Array): void {
    // RFC 8446 §4.4.2: the context echoes our CertificateRequest's.
    if (!macEqual(msg.certificateRequestContext, s.context))
      alert(
        AlertDescription.illegal_parameter,
        'certificate_request_context does not match our CertificateRequest',
      );
    s.transcript.add(raw);
    const chain = nonEmptyChain(msg.certificateList.map((e) => e.certData));
    const common = { connected: s.connected, context: s.context, transcript: s.transcript };
    if (!chain) {
      // RFC 8446 §4.4.2.4: no certificate where one is required is certificate_required.
      if (s.auth.required) alert(AlertDescription.certificate_required, 'client sent no certificate');
      this.enterPha({ ...common, name: 'WAIT_FINISHED', peerCertificates: [] });
      return;
    }
    s.auth.verifier.verifyChain(chain, { now: this.now });
    this.enterPha({ ...common, name: 'WAIT_CV', auth: s.auth, peerCertificates: chain });
  }

  private onPhaCertificateVerify(
    s: Pha<'WAIT_CV'>,
    msg: MessageOf<'certificate_verify'>,
    raw: Uint8Array,
  ): void {
    this.checkClientCertificateVerify(
      s.auth.verifier,
      s.peerCertificates,
      msg,
      s.transcript,
      s.connected.agreement.suite.hash,
    );
    s.transcript.add(raw);
    this.enterPha({
      name: 'WAIT_FINISHED',
      connected: s.connected,
      context: s.context,
      transcript: s.transcript,
      peerCertificates: s.peerCertificates,
    });
  }

  private onPhaFinished(s: Pha<'WAIT_FINISHED'>, msg: MessageOf<'finished'>, _raw: Uint8Array): void {
    // RFC 8446 §4.4: after the handshake the Finished key derives from client_application_traffic_secret_N.
    const base = this.trafficSecret('read');
    if (!base) alert(AlertDescription.internal_error, 'no client application traffic secret');
    this.checkFinished(base, msg, s.transcript, s.connected.agreement.suite.hash);
    this.enterPha({ name: 'IDLE' });
    this.emit({ type: 'client-certificate', peerCertificates: s.peerCertificates, context: s.context });
  }

  // ---- Tickets (RFC 8446 §4.6.1) ----

  /** NewSessionTicket whose ticket is the sealed state we need to resume. */
  private sendTicket(agreement: ServerAgreement, rms: Uint8Array): void {
    const s = agreement.suite;
    const nonce = new ByteWriter(8)
      .u32(0)
      .u32(this.ticketCounter++)
      .finish()
      .slice();
    const lifetime = Math.min(this.options.ticketLifetimeSeconds ?? 7200, 604800);
    const psk = resumptionPsk(this.crypto, s.hash, rms, nonce);
    const ageAdd = new DataView(this.crypto.randomBytes(4).buffer).getUint32(0);
    const allowed = this.options.antiReplay ? (this.options.maxEarlyData ?? 0) : 0;
    // RFC 9001 §4.6.1: a QUIC ticket that allows 0-RTT says 0xffffffff; QUIC's flow control limits the amount.
    const maxEarlyData = this.quic && allowed > 0 ? 0xffffffff : allowed;
    this.sendHandshake(
      {
        msgType: 'new_session_ticket',
        ticketLifetime: lifetime,
        ticketAgeAdd: ageAdd,
        ticketNonce: nonce,
        ticket: this.sealTicket({
          cipherSuite: s.id,
          issuedAt: this.now,
          lifetimeSeconds: lifetime,
          ageAdd,
          maxEarlyData,
          alpn: agreement.alpn ?? '',
          psk,
        }),
        extensions: maxEarlyData > 0 ? [{ type: 'early_data', maxEarlyDataSize: maxEarlyData }] : [],
      },
      false,
    );
    this.flushHandshake();
  }

  private sealTicket(t: TicketState): Uint8Array {
    return this.options.ticketCodec
      ? this.options.ticketCodec.seal(t)
      : sealTicket(this.crypto, this.ticketKey, t);
  }

  /** The state in a ticket we issued and that is still valid, or undefined (then the PSK is just not used). */
  private openTicket(ticket: Uint8Array): TicketState | undefined {
    const state = this.options.ticketCodec
      ? this.options.ticketCodec.open(ticket)
      : unsealTicket(this.crypto, this.ticketKey, ticket);
    if (!state) {
      this.drop('ticket.rejected', 'ticket we cannot open', 'RFC 8446 §4.2.11');
      return undefined;
    }
    if (this.now - state.issuedAt > state.lifetimeSeconds * 1000 || this.now < state.issuedAt) {
      this.drop('ticket.expired', 'expired ticket', 'RFC 8446 §4.6.1');
      return undefined;
    }
    return state;
  }
}

function isSignerList(
  p: CertificateSigner | readonly CertificateSigner[],
): p is readonly CertificateSigner[] {
  return Array.isArray(p);
}

/** Compressed Certificate bodies per signer and algorithm: the same bytes every time, compressed once. */
const compressedCache = new WeakMap<CertificateSigner, Map<number, HandshakeMessage>>();

function compressedCertificate(
  signer: CertificateSigner,
  message: HandshakeMessage,
  compressor: CertificateCompressor,
): HandshakeMessage {
  let bySigner = compressedCache.get(signer);
  if (!bySigner) compressedCache.set(signer, (bySigner = new Map()));
  const cached = bySigner.get(compressor.algorithm);
  if (cached) return cached;
  const body = encodeHandshake(message).subarray(4);
  const out: HandshakeMessage = {
    msgType: 'compressed_certificate',
    algorithm: compressor.algorithm,
    uncompressedLength: body.length,
    compressedCertificateMessage: compressor.compress(body),
  };
  bySigner.set(compressor.algorithm, out);
  return out;
}
