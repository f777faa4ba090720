/**
 * The TLS 1.3 client handshake (RFC 8446 §2, Appendix A.1) as a sans-I/O machine:
 * START -> WAIT_SH -> WAIT_EE -> WAIT_CERT_CR -> WAIT_CERT -> WAIT_CV -> WAIT_FINISHED -> CONNECTED.
 * Each state is a type carrying its own data (handshake/client-states.ts) and the legal
 * steps are one table (`transitions` below).
 * Full (EC)DHE handshakes, HelloRetryRequest, resumption with psk_dhe_ke and 0-RTT data,
 * client certificates on request (also after the handshake, RFC 8446 §4.6.2), ALPN, SNI, record_size_limit, KeyUpdate, session tickets,
 * middlebox compatibility mode.
 */
import { bytesEqual, concatBytes } from '@stepwire/wire';
import { alert, type CertificateSigner, type CertificateVerifier, certificateVerifyInput } from './auth.ts';
import {
  type CertificateCompressor,
  compressCertificateExtension,
  decompressCertificate,
} from './cert-compression.ts';
import { AlertDescription } from './codec/alert.ts';
import {
  ContentType,
  ExtensionType,
  HandshakeType,
  nameOf,
  PskKeyExchangeMode,
  SignatureScheme,
  TLS_1_2,
  TLS_1_3,
} from './codec/common.ts';
import { type Extension, extensionCode, findExtension } from './codec/extensions.ts';
import {
  type ClientHello,
  DOWNGRADE_TLS11,
  DOWNGRADE_TLS12,
  decodeHandshake,
  type EncryptedExtensions,
  encodeHandshake,
  type HandshakeMessage,
  type HelloRetryRequest,
  type ServerHello,
  truncatedClientHello,
} from './codec/handshake.ts';
import { MAX_PLAINTEXT } from './codec/record.ts';
import {
  QUIC_TRANSPORT_PARAMETERS,
  type SessionTicket,
  type TlsCommonOptions,
  TlsConnection,
  type TlsOutput,
} from './connection.ts';
import { HASH_LENGTH, type HashName } from './crypto/provider.ts';
import {
  canSendEarlyData,
  DEFAULT_CIPHER_SUITES,
  DEFAULT_GROUPS,
  GROUP_NAMES,
  initialShareGroups,
  offeredPsk,
  usableSession,
} from './handshake/client-offer.ts';
import type {
  CertificateRequestInfo,
  ClientConnected,
  ClientOffer,
  ClientState,
  EarlyDataStatus,
  OfferedPsk,
} from './handshake/client-states.ts';
import { checkFinished } from './handshake/finished.ts';
import { Machine, type MessageOf, nonEmptyChain, type TransitionTable } from './handshake/machine.ts';
import { clientKeyShare, clientSharedSecret, type KexGroupName, type KexShare } from './kex.ts';
import {
  CIPHER_SUITES,
  cipherSuite,
  finishedVerifyData,
  KeySchedule,
  resumptionPsk,
  Transcript,
} from './keyschedule.ts';

export { DEFAULT_CIPHER_SUITES, DEFAULT_GROUPS, GROUP_NAMES } from './handshake/client-offer.ts';

export interface TlsClientOptions extends TlsCommonOptions {
  /** Sent as server_name (RFC 6066) unless it is an IP literal; the verifier checks the certificate against it. */
  serverName?: string;
  verifier: CertificateVerifier;
  cipherSuites?: readonly number[];
  /**
   * supported_groups, in preference order. The first gets a key share; when it is the hybrid
   * X25519MLKEM768, X25519 gets one too (if listed), as browsers send, so a server without
   * the hybrid still answers in one round trip.
   */
  groups?: readonly number[];
  /** The groups to send key shares for, overriding the rule above (each must be in `groups`). */
  keyShareGroups?: readonly number[];
  /**
   * psk_key_exchange_modes to offer with a PSK (RFC 8446 §4.2.9), preferred first: default
   * [psk_dhe_ke]; add psk_ke (0) to let a server that allows it skip (EC)DHE (no forward secrecy).
   */
  pskKeyExchangeModes?: readonly number[];
  /**
   * Offer certificate compression (RFC 8879): the algorithms we decompress, preferred first
   * (brotliCompressor, zlibCompressor from cert-compression.ts). None by default.
   */
  certificateCompression?: readonly CertificateCompressor[];
  alpnProtocols?: readonly string[];
  /** A ticket from an earlier connection to resume (RFC 8446 §2.2). */
  session?: SessionTicket;
  /** Send a 32-byte legacy_session_id and a change_cipher_spec (middlebox compatibility, RFC 8446 §D.4). */
  compatibilityMode?: boolean;
  /** Our record_size_limit (RFC 8449); default 2^14+1. */
  recordSizeLimit?: number;
  /** Our certificate and key, for servers that request client authentication (RFC 8446 §4.3.2). */
  certificate?: CertificateSigner;
  /**
   * Application data to send as 0-RTT data with `session` (RFC 8446 §2.3), when the ticket
   * allows that much. It can be replayed by an attacker: send only idempotent requests.
   */
  earlyData?: Uint8Array;
  /**
   * Reshape each ClientHello before it is sent (add, drop or reorder extensions: GREASE,
   * padding, another implementation's order). pre_shared_key must stay last; its binders
   * are computed afterwards.
   */
  customizeHello?: (hello: ClientHello) => ClientHello;
  /**
   * An externally established PSK (RFC 8446 §2.2, §4.2.11), offered with psk_dhe_ke when no
   * ticket is. A server that accepts it authenticates with it instead of a certificate.
   */
  externalPsk?: { identity: Uint8Array; key: Uint8Array; hash?: HashName };
  /**
   * Offer post_handshake_auth (RFC 8446 §4.2.6): the server may ask for our certificate after
   * the handshake (§4.6.2). We answer with `certificate`, or an empty Certificate without one.
   * Not in QUIC (RFC 9001 §4.4).
   */
  postHandshakeAuth?: boolean;
}

const IP_LITERAL = /^[\d.]+$|:/;

type State<K extends ClientState['name']> = Extract<ClientState, { name: K }>;

export class TlsClient extends TlsConnection {
  private readonly options: TlsClientOptions;
  /** Where the handshake is (RFC 8446 §A.1), with that state's data. */
  private readonly machine: Machine<TlsClient, ClientState>;
  /** The offer of our last ClientHello, kept for inspection after the handshake (tests read its shares). */
  private lastOffer?: ClientOffer;

  /**
   * The client's legal steps (RFC 8446 §A.1): (state, message) → handler, the states it may
   * lead to and the section that allows it. Anything else is an unexpected_message.
   */
  private static readonly transitions: TransitionTable<TlsClient, ClientState> = {
    WAIT_SH: {
      hello_retry_request: {
        rfc: 'RFC 8446 §4.1.4',
        next: ['WAIT_SH'],
        handle: (c, s, m, raw) => c.onHelloRetryRequest(s, m, raw),
      },
      server_hello: {
        rfc: 'RFC 8446 §4.1.3, §A.1',
        next: ['WAIT_EE'],
        handle: (c, s, m, raw) => c.onServerHello(s, m, raw),
      },
    },
    WAIT_EE: {
      encrypted_extensions: {
        rfc: 'RFC 8446 §4.3.1, §A.1',
        next: ['WAIT_CERT_CR', 'WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onEncryptedExtensions(s, m, raw),
      },
    },
    WAIT_CERT_CR: {
      certificate_request: {
        rfc: 'RFC 8446 §4.3.2',
        next: ['WAIT_CERT'],
        handle: (c, s, m, raw) => c.onCertificateRequest(s, m, raw),
      },
      certificate: {
        rfc: 'RFC 8446 §4.4.2',
        next: ['WAIT_CV'],
        handle: (c, s, m, raw) => c.onCertificate(s, m, raw),
      },
      compressed_certificate: {
        rfc: 'RFC 8879 §4, RFC 8446 §4.4.2',
        next: ['WAIT_CV'],
        handle: (c, s, m, raw) => c.onCompressedCertificate(s, m, raw),
      },
    },
    WAIT_CERT: {
      certificate: {
        rfc: 'RFC 8446 §4.4.2',
        next: ['WAIT_CV'],
        handle: (c, s, m, raw) => c.onCertificate(s, m, raw),
      },
      compressed_certificate: {
        rfc: 'RFC 8879 §4, RFC 8446 §4.4.2',
        next: ['WAIT_CV'],
        handle: (c, s, m, raw) => c.onCompressedCertificate(s, m, raw),
      },
    },
    WAIT_CV: {
      certificate_verify: {
        rfc: 'RFC 8446 §4.4.3',
        next: ['WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onCertificateVerify(s, m, raw),
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

  constructor(options: TlsClientOptions) {
    super('client', options, 'START');
    this.machine = new Machine(TlsClient.transitions, { name: 'START' });
    // A copy: the handshake may drop the session after a HelloRetryRequest without touching the caller's object.
    // RFC 9001 §8.4: QUIC clients do not use the middlebox compatibility mode.
    this.options = options.quic ? { ...options, compatibilityMode: false } : { ...options };
  }

  /** Our key shares of the last ClientHello sent (RFC 8446 §4.2.8). */
  private get keyShares(): ReadonlyMap<number, KexShare> {
    return this.lastOffer?.keyShares ?? new Map();
  }

  private get hs(): ClientState {
    return this.machine.state;
  }

  protected onHandshakeMessage(msg: HandshakeMessage, raw: Uint8Array): void {
    this.machine.dispatch(this, msg, raw);
  }

  /** Enter `next`, which the running row must allow; the trace shows the Appendix A names. */
  private enter(next: ClientState, rfc?: string): void {
    this.setState(next.name, this.machine.enter(next, rfc));
  }

  /** Build and send the first ClientHello (RFC 8446 §4.1.2). */
  start(now: number): TlsOutput {
    this.now = now;
    return this.guard(() => {
      if (this.hs.name !== 'START') throw new Error('start() called twice');
      const keyShares = new Map<number, KexShare>();
      for (const g of initialShareGroups(this.options))
        keyShares.set(g, clientKeyShare(this.crypto, groupName(g)));
      this.clientRandom = this.crypto.randomBytes(32);
      const offer = this.buildClientHello(keyShares, {
        earlyData: canSendEarlyData(this.options, this.now, this.quic),
        pskUsable: true,
      });
      // RFC 8446 §5.1: the initial ClientHello's record may say 0x0301, as most clients send it.
      this.plaintextRecordVersion = 0x0301;
      this.sendClientHello(offer);
      this.flushHandshake();
      this.plaintextRecordVersion = 0x0303;
      const session = usableSession(this.options, this.now);
      const early = session && offer.hello.extensions.some((e) => e.type === 'early_data');
      if (early) this.sendEarlyData(session);
      this.enter({ name: 'WAIT_SH', offer, earlyData: early ? 'attempted' : 'none' }, 'RFC 8446 §A.1');
    });
  }

  /** The early traffic key protects the 0-RTT data, right after the ClientHello (RFC 8446 §7.1). */
  private sendEarlyData(session: SessionTicket): void {
    this.suite = cipherSuite(session.cipherSuite);
    const ks = new KeySchedule(this.crypto, this.suite.hash);
    ks.deriveEarlySecret(session.psk);
    const th = this.transcript.hash(this.crypto, this.suite.hash);
    const secret = ks.clientEarlyTrafficSecret(th);
    this.log('CLIENT_EARLY_TRAFFIC_SECRET', secret);
    this.log('EARLY_EXPORTER_SECRET', ks.earlyExporterMasterSecret(th));
    // RFC 8446 §D.4: in compatibility mode the change_cipher_spec goes before the first protected record.
    if (this.options.compatibilityMode) this.sendChangeCipherSpec();
    this.setWriteKey(secret, 'early');
    // In QUIC the 0-RTT data goes in STREAM frames of 0-RTT packets (RFC 9001 §4.6.1).
    const data = this.options.earlyData;
    if (!this.quic && data) this.sendRecord(ContentType.application_data, data);
  }

  private rejectEarlyData(): void {
    this.emit({ type: 'early-data-status', accepted: false });
  }

  private buildClientHello(
    keyShares: ReadonlyMap<number, KexShare>,
    { cookie, earlyData, pskUsable }: { cookie?: Uint8Array; earlyData: boolean; pskUsable: boolean },
  ): ClientOffer {
    const o = this.options;
    const exts: Extension[] = [];
    if (o.serverName && !IP_LITERAL.test(o.serverName))
      exts.push({ type: 'server_name', hostName: o.serverName });
    exts.push({ type: 'supported_groups', groups: [...(o.groups ?? DEFAULT_GROUPS)] });
    exts.push({ type: 'signature_algorithms', schemes: [...o.verifier.signatureSchemes] });
    if (o.alpnProtocols?.length) exts.push({ type: 'alpn', protocols: [...o.alpnProtocols] });
    exts.push({
      type: 'key_share',
      clientShares: [...keyShares].map(([group, share]) => ({ group, keyExchange: share.publicKey })),
    });
    exts.push({ type: 'supported_versions', versions: [TLS_1_3] });
    if (o.certificateCompression?.length)
      exts.push(compressCertificateExtension(o.certificateCompression.map((c) => c.algorithm)));
    if (cookie) exts.push({ type: 'cookie', cookie });
    exts.push({ type: 'record_size_limit', limit: o.recordSizeLimit ?? MAX_PLAINTEXT + 1 });
    exts.push({
      type: 'psk_key_exchange_modes',
      modes: [...(o.pskKeyExchangeModes ?? [PskKeyExchangeMode.psk_dhe_ke])],
    });
    // RFC 8446 §4.2.6: we will answer a CertificateRequest after the handshake. RFC 9001 §4.4: not in QUIC.
    if (this.offersPostHandshakeAuth()) exts.push({ type: 'post_handshake_auth' });
    // RFC 9001 §8.2: a QUIC ClientHello carries our transport parameters.
    if (this.quic)
      exts.push({ type: 'raw', code: QUIC_TRANSPORT_PARAMETERS, data: this.quic.transportParameters });
    const psk = pskUsable ? offeredPsk(this.options, this.now) : undefined;
    // early_data goes before pre_shared_key, which must be last (RFC 8446 §4.2.11).
    if (psk?.kind === 'resumption' && earlyData) exts.push({ type: 'early_data' });
    if (psk) {
      exts.push({
        type: 'pre_shared_key',
        identities: [{ identity: psk.identity, obfuscatedTicketAge: psk.obfuscatedTicketAge }],
        binders: [new Uint8Array(HASH_LENGTH[psk.hash])],
      });
    }
    const hello: ClientHello = {
      msgType: 'client_hello',
      legacyVersion: TLS_1_2,
      random: this.clientRandom,
      legacySessionId: o.compatibilityMode
        ? (this.lastOffer?.hello.legacySessionId ?? this.crypto.randomBytes(32))
        : (new Uint8Array(0) as Uint8Array),
      cipherSuites: [...(o.cipherSuites ?? DEFAULT_CIPHER_SUITES)],
      legacyCompressionMethods: Uint8Array.of(0),
      extensions: exts,
    };
    return { hello: o.customizeHello ? o.customizeHello(hello) : hello, keyShares, ...(psk ? { psk } : {}) };
  }

  private offersPostHandshakeAuth(): boolean {
    return this.options.postHandshakeAuth === true && !this.quic;
  }

  /** Encode the ClientHello, filling in the PSK binder over its truncated form (RFC 8446 §4.2.11.2). */
  private sendClientHello(offer: ClientOffer): void {
    const ch = offer.hello;
    const psk = ch.extensions[ch.extensions.length - 1];
    if (psk?.type === 'pre_shared_key' && 'binders' in psk && offer.psk) {
      const { hash, key, kind } = offer.psk;
      const ks = new KeySchedule(this.crypto, hash);
      ks.deriveEarlySecret(key);
      const prefix = truncatedClientHello(encodeHandshake(ch), ch);
      // After a HelloRetryRequest the binder covers the transcript so far plus the new truncated hello.
      const th = this.crypto.hash(hash, concatBytes(this.transcript.bytes, prefix));
      psk.binders = [finishedVerifyData(this.crypto, hash, ks.binderKey(kind), th)];
    }
    this.lastOffer = offer;
    this.sendHandshake(ch);
  }

  /** Checks common to ServerHello and HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4). */
  private checkServerHelloCommon(s: State<'WAIT_SH'>, sh: ServerHello | HelloRetryRequest): void {
    const ch = s.offer.hello;
    const sv = findExtension(sh.extensions, 'supported_versions');
    if (!sv || !('selectedVersion' in sv)) {
      // RFC 8446 §4.1.3: a ServerHello for TLS 1.2 or below is first checked for the downgrade
      // sentinels; one of them means an attacker removed TLS 1.3 from our offer.
      if (sh.msgType === 'server_hello') {
        const tail = sh.random.subarray(24);
        if (bytesEqual(tail, DOWNGRADE_TLS12) || bytesEqual(tail, DOWNGRADE_TLS11))
          alert(AlertDescription.illegal_parameter, 'downgrade sentinel in a TLS 1.2-or-older ServerHello');
      }
      // RFC 8446 §D.1: the server is negotiating TLS 1.2 or older, which we do not speak.
      alert(AlertDescription.protocol_version, 'server did not select TLS 1.3');
    }
    if (sv.selectedVersion !== TLS_1_3)
      alert(AlertDescription.illegal_parameter, `selected_version 0x${sv.selectedVersion.toString(16)}`);
    if (sh.legacyVersion !== TLS_1_2)
      alert(AlertDescription.illegal_parameter, 'legacy_version is not 0x0303');
    if (!bytesEqual(sh.legacySessionIdEcho, ch.legacySessionId))
      alert(AlertDescription.illegal_parameter, 'legacy_session_id_echo mismatch');
    if (sh.legacyCompressionMethod !== 0)
      alert(AlertDescription.illegal_parameter, 'compression method is not null');
    if (!ch.cipherSuites.includes(sh.cipherSuite) || !CIPHER_SUITES.has(sh.cipherSuite)) {
      alert(
        AlertDescription.illegal_parameter,
        `cipher suite 0x${sh.cipherSuite.toString(16)} was not offered`,
      );
    }
    // RFC 8446 §4.1.4: after an HRR, the ServerHello's suite must be the HRR's.
    if (s.retrySuite !== undefined && sh.cipherSuite !== s.retrySuite)
      alert(AlertDescription.illegal_parameter, 'cipher suite changed after HRR');
    const offered = new Set(ch.extensions.map(extensionCode));
    for (const e of sh.extensions) {
      // RFC 8446 §4.1.4: any extension the client did not offer (cookie aside) is unsupported_extension.
      const code = extensionCode(e);
      if (!offered.has(code) && !(sh.msgType === 'hello_retry_request' && code === ExtensionType.cookie)) {
        alert(AlertDescription.unsupported_extension, `server sent unoffered extension ${code}`);
      }
    }
  }

  /** WAIT_SH + HelloRetryRequest (RFC 8446 §4.1.4): a second ClientHello, once. */
  private onHelloRetryRequest(s: State<'WAIT_SH'>, hrr: HelloRetryRequest, raw: Uint8Array): void {
    // RFC 8446 §4.1.4: a second HelloRetryRequest is an unexpected_message.
    if (s.retrySuite !== undefined) alert(AlertDescription.unexpected_message, 'second HelloRetryRequest');
    this.checkServerHelloCommon(s, hrr);
    const ks = findExtension(hrr.extensions, 'key_share');
    const cookie = findExtension(hrr.extensions, 'cookie');
    // RFC 8446 §4.1.4: the HRR must change something.
    if (!ks && !cookie)
      alert(AlertDescription.illegal_parameter, 'HelloRetryRequest would not change the ClientHello');
    let keyShares = s.offer.keyShares;
    if (ks) {
      if (!('selectedGroup' in ks)) alert(AlertDescription.illegal_parameter, 'malformed HRR key_share');
      // RFC 8446 §4.2.8: the group must be offered in supported_groups and not already have a share.
      const groups = this.options.groups ?? DEFAULT_GROUPS;
      const name = GROUP_NAMES[ks.selectedGroup];
      if (!groups.includes(ks.selectedGroup) || !name)
        alert(AlertDescription.illegal_parameter, 'HRR selected an unoffered group');
      if (keyShares.has(ks.selectedGroup))
        alert(AlertDescription.illegal_parameter, 'HRR asked for a group we already sent');
      // RFC 8446 §4.1.2: the second ClientHello carries one share, for the group asked for.
      keyShares = new Map([[ks.selectedGroup, clientKeyShare(this.crypto, name)]]);
    }
    const suite = cipherSuite(hrr.cipherSuite);
    // RFC 8446 §4.4.1: ClientHello1 becomes message_hash, then the HRR joins the transcript.
    this.transcript.replaceWithMessageHash(this.crypto, suite.hash);
    this.transcript.add(raw);
    // A PSK for another hash cannot be offered after this HRR (RFC 8446 §4.1.4).
    const pskUsable = !s.offer.psk || s.offer.psk.hash === suite.hash;
    // RFC 8446 §4.1.2: the second ClientHello carries no early_data; the 0-RTT data was rejected.
    let earlyData = s.earlyData;
    if (earlyData === 'attempted') {
      earlyData = 'rejected';
      this.rejectEarlyData();
      this.clearWriteKey();
    }
    const offer = this.buildClientHello(keyShares, {
      ...(cookie ? { cookie: cookie.cookie } : {}),
      earlyData: false,
      pskUsable,
    });
    if (this.options.compatibilityMode && earlyData === 'none') this.sendChangeCipherSpec();
    this.sendClientHello(offer);
    this.enter({ name: 'WAIT_SH', offer, earlyData, retrySuite: hrr.cipherSuite }, 'RFC 8446 §4.1.4');
  }

  /** WAIT_SH + ServerHello (RFC 8446 §4.1.3): the handshake secrets (§7.1). */
  private onServerHello(s: State<'WAIT_SH'>, sh: ServerHello, raw: Uint8Array): void {
    this.checkServerHelloCommon(s, sh);
    // RFC 8446 §4.1.3: TLS 1.3 servers never put the downgrade sentinel here; seeing it means an attack.
    const tail = sh.random.subarray(24, 31);
    if (bytesEqual(tail, DOWNGRADE_TLS12.subarray(0, 7)))
      alert(AlertDescription.illegal_parameter, 'downgrade sentinel in a TLS 1.3 ServerHello');
    const suite = cipherSuite(sh.cipherSuite);
    this.suite = suite;
    const ks = findExtension(sh.extensions, 'key_share');
    const psk = findExtension(sh.extensions, 'pre_shared_key');
    // RFC 8446 §4.2.9: without key_share the server chose psk_ke, which needs a selected PSK and our offer of psk_ke.
    const pskKe =
      !ks &&
      psk !== undefined &&
      (this.options.pskKeyExchangeModes ?? []).includes(PskKeyExchangeMode.psk_ke);
    if (!pskKe && (!ks || !('serverShare' in ks)))
      alert(AlertDescription.missing_extension, 'ServerHello without key_share (psk_ke was not offered)');
    // RFC 8446 §4.2.8: the server's share is for one of the groups we sent a share for.
    const ours = ks && 'serverShare' in ks ? s.offer.keyShares.get(ks.serverShare.group) : undefined;
    if (!pskKe && !ours)
      alert(AlertDescription.illegal_parameter, 'server key share is not for a group we sent');
    const schedule = new KeySchedule(this.crypto, suite.hash);
    let acceptedPsk: OfferedPsk | undefined;
    if (psk && 'selectedIdentity' in psk) {
      const offered = s.offer.psk;
      const sent = s.offer.hello.extensions.some((e) => e.type === 'pre_shared_key');
      // RFC 8446 §4.2.11: the index must be in range and the suite's hash the PSK's.
      if (!offered || !sent || psk.selectedIdentity !== 0)
        alert(AlertDescription.illegal_parameter, 'server selected a PSK we did not offer');
      if (offered.hash !== suite.hash)
        alert(AlertDescription.illegal_parameter, 'PSK hash does not match the suite');
      schedule.deriveEarlySecret(offered.key);
      acceptedPsk = offered;
    } else {
      schedule.deriveEarlySecret();
    }
    const shared =
      ours && ks && 'serverShare' in ks
        ? clientSharedSecret(this.crypto, ours, ks.serverShare.keyExchange)
        : undefined;
    schedule.deriveHandshakeSecret(shared);
    this.transcript.add(raw);
    const th = this.transcript.hash(this.crypto, suite.hash);
    const client = schedule.clientHandshakeTrafficSecret(th);
    const server = schedule.serverHandshakeTrafficSecret(th);
    this.log('CLIENT_HANDSHAKE_TRAFFIC_SECRET', client);
    this.log('SERVER_HANDSHAKE_TRAFFIC_SECRET', server);
    this.setReadKey(server, 'handshake');
    let earlyData: EarlyDataStatus = s.earlyData;
    if (earlyData === 'attempted' && !acceptedPsk) {
      earlyData = 'rejected';
      this.rejectEarlyData();
    }
    const retried = s.retrySuite !== undefined;
    // While 0-RTT may be accepted we keep writing under the early key until EndOfEarlyData
    // (RFC 8446 §4.5). QUIC has no EndOfEarlyData: the handshake key is installed now, beside
    // the 0-RTT one (RFC 9001 §4.1.4, §8.3).
    if (earlyData !== 'attempted' || this.quic) {
      // Alerts from here on go under the handshake key, as the server expects (RFC 8446 §5).
      if (this.options.compatibilityMode && !retried && earlyData === 'none') this.sendChangeCipherSpec();
      this.setWriteKey(client, 'handshake');
    }
    this.enter({
      name: 'WAIT_EE',
      hs: {
        offer: s.offer,
        suite,
        schedule,
        secrets: { client, server },
        ...(acceptedPsk ? { psk: acceptedPsk } : {}),
        ...(ours ? { group: ours.group } : {}),
        retried,
        earlyData,
      },
    });
  }

  /** WAIT_EE + EncryptedExtensions (RFC 8446 §4.3.1). */
  private onEncryptedExtensions(s: State<'WAIT_EE'>, ee: EncryptedExtensions, raw: Uint8Array): void {
    let hs = s.hs;
    const offered = new Set(hs.offer.hello.extensions.map(extensionCode));
    const forbidden = new Set<number>([
      ExtensionType.supported_versions,
      ExtensionType.key_share,
      ExtensionType.pre_shared_key,
      ExtensionType.psk_key_exchange_modes,
      ExtensionType.cookie,
      ExtensionType.signature_algorithms,
      ExtensionType.post_handshake_auth,
    ]);
    for (const e of ee.extensions) {
      const code = extensionCode(e);
      // RFC 8446 §4.2: an extension not allowed in EncryptedExtensions is an illegal_parameter.
      if (forbidden.has(code))
        alert(AlertDescription.illegal_parameter, `extension ${code} in EncryptedExtensions`);
      if (!offered.has(code)) alert(AlertDescription.unsupported_extension, `unoffered extension ${code}`);
    }
    const alpn = findExtension(ee.extensions, 'alpn');
    if (alpn) {
      const p = alpn.protocols[0];
      // RFC 7301 §3.2: the selected protocol must be one the client offered.
      if (p === undefined || !this.options.alpnProtocols?.includes(p))
        alert(AlertDescription.illegal_parameter, `server selected ALPN ${p}`);
      hs = { ...hs, alpn: p };
    }
    const rsl = findExtension(ee.extensions, 'record_size_limit');
    // RFC 8449 §4: the limit counts the content type byte in TLS 1.3.
    if (rsl) {
      this.sendLimit = Math.min(MAX_PLAINTEXT, rsl.limit - 1);
      // RFC 8449 §4: the server has seen our limit, so records larger than it are a record_overflow.
      this.receiveLimit = Math.min(MAX_PLAINTEXT + 1, this.options.recordSizeLimit ?? MAX_PLAINTEXT + 1);
    }
    if (findExtension(ee.extensions, 'early_data')) {
      // RFC 8446 §4.2.10: acceptance is only valid for what we offered, with the ticket's suite.
      if (hs.earlyData !== 'attempted' || hs.suite.id !== this.options.session?.cipherSuite) {
        alert(AlertDescription.illegal_parameter, 'early_data accepted but not offered');
      }
      hs = { ...hs, earlyData: 'accepted' };
      this.emit({ type: 'early-data-status', accepted: true });
    } else if (hs.earlyData === 'attempted') {
      hs = { ...hs, earlyData: 'rejected' };
      this.rejectEarlyData();
      if (!this.quic) this.setWriteKey(hs.secrets.client, 'handshake');
    }
    if (this.quic) {
      const tp = ee.extensions.find((e) => e.type === 'raw' && e.code === QUIC_TRANSPORT_PARAMETERS);
      // RFC 9001 §8.2: without the server's transport parameters: missing_extension (0x016d).
      if (tp?.type !== 'raw')
        alert(AlertDescription.missing_extension, 'EncryptedExtensions without quic_transport_parameters');
      hs = { ...hs, quicTransportParameters: tp.data };
      // RFC 9001 §8.1: QUIC requires an application protocol agreed by ALPN.
      if (hs.alpn === undefined)
        alert(AlertDescription.no_application_protocol, 'no ALPN protocol selected for QUIC');
    }
    this.transcript.add(raw);
    // RFC 8446 §A.1: a PSK authenticates the server, so no Certificate follows.
    if (hs.psk) this.enter({ name: 'WAIT_FINISHED', hs, peerCertificates: [] });
    else this.enter({ name: 'WAIT_CERT_CR', hs });
  }

  /** WAIT_CERT_CR + CertificateRequest (RFC 8446 §4.3.2). */
  private onCertificateRequest(
    s: State<'WAIT_CERT_CR'>,
    msg: MessageOf<'certificate_request'>,
    raw: Uint8Array,
  ): void {
    // RFC 8446 §4.3.2: signature_algorithms is required.
    const sa = findExtension(msg.extensions, 'signature_algorithms');
    if (!sa) alert(AlertDescription.missing_extension, 'CertificateRequest without signature_algorithms');
    this.transcript.add(raw);
    this.enter({
      name: 'WAIT_CERT',
      hs: s.hs,
      certificateRequest: { context: msg.certificateRequestContext, schemes: sa.schemes },
    });
  }

  /**
   * RFC 8879 §4: a CompressedCertificate in place of Certificate, only with an algorithm we
   * offered; the transcript takes the message as sent, the chain comes from its contents.
   */
  private onCompressedCertificate(
    s: State<'WAIT_CERT_CR' | 'WAIT_CERT'>,
    msg: MessageOf<'compressed_certificate'>,
    raw: Uint8Array,
  ): void {
    const compressor = this.options.certificateCompression?.find((c) => c.algorithm === msg.algorithm);
    if (!compressor)
      alert(
        AlertDescription.illegal_parameter,
        `certificate compressed with algorithm ${msg.algorithm} we did not offer`,
      );
    const body = decompressCertificate(
      compressor,
      msg.compressedCertificateMessage,
      msg.uncompressedLength,
      this.maxHandshakeBytes,
    );
    const framed = new Uint8Array(4 + body.length);
    framed.set(
      [HandshakeType.certificate, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff],
      0,
    );
    framed.set(body, 4);
    const inner = decodeHandshake(framed);
    if (inner.msgType !== 'certificate')
      alert(AlertDescription.bad_certificate, 'compressed certificate is not a Certificate');
    this.onCertificate(s, inner, raw);
  }

  /** WAIT_CERT_CR / WAIT_CERT + Certificate (RFC 8446 §4.4.2): the server's chain, verified. */
  private onCertificate(
    s: State<'WAIT_CERT_CR' | 'WAIT_CERT'>,
    msg: MessageOf<'certificate'>,
    raw: Uint8Array,
  ): void {
    // RFC 8446 §4.4.2: the server's context is empty; an empty list is a decode_error (§4.4.2.4).
    if (msg.certificateRequestContext.length !== 0)
      alert(AlertDescription.illegal_parameter, 'non-empty certificate_request_context');
    const chain = nonEmptyChain(msg.certificateList.map((e) => e.certData));
    if (!chain) alert(AlertDescription.decode_error, 'server sent no certificate');
    this.options.verifier.verifyChain(chain, { serverName: this.options.serverName, now: this.now });
    this.transcript.add(raw);
    this.enter({
      name: 'WAIT_CV',
      hs: s.hs,
      ...(s.name === 'WAIT_CERT' ? { certificateRequest: s.certificateRequest } : {}),
      peerCertificates: chain,
    });
  }

  /** WAIT_CV + CertificateVerify (RFC 8446 §4.4.3). */
  private onCertificateVerify(
    s: State<'WAIT_CV'>,
    msg: MessageOf<'certificate_verify'>,
    raw: Uint8Array,
  ): void {
    // RFC 8446 §4.4.3: the scheme must be one we offered; the signature covers the transcript through Certificate.
    if (!this.options.verifier.signatureSchemes.includes(msg.algorithm)) {
      alert(
        AlertDescription.illegal_parameter,
        `CertificateVerify scheme ${nameOf(SignatureScheme, msg.algorithm)} not offered`,
      );
    }
    const content = certificateVerifyInput('server', this.transcript.hash(this.crypto, s.hs.suite.hash));
    if (
      !this.options.verifier.verifySignature(s.peerCertificates[0], msg.algorithm, content, msg.signature)
    ) {
      alert(AlertDescription.decrypt_error, 'server CertificateVerify signature does not verify');
    }
    this.transcript.add(raw);
    this.enter({
      name: 'WAIT_FINISHED',
      hs: s.hs,
      ...(s.certificateRequest ? { certificateRequest: s.certificateRequest } : {}),
      peerCertificates: s.peerCertificates,
    });
  }

  /** WAIT_FINISHED + Finished (RFC 8446 §4.4.4): our second flight, then CONNECTED. */
  private onFinished(s: State<'WAIT_FINISHED'>, msg: MessageOf<'finished'>, raw: Uint8Array): void {
    const { hs } = s;
    const hash = hs.suite.hash;
    checkFinished(this.crypto, 'server', hs.secrets.server, msg, this.transcript, hash);
    this.transcript.add(raw);
    const { cAp, sAp } = this.deriveApplicationSecrets(hs.schedule, hash);
    this.setReadKey(sAp, 'application');
    // RFC 8446 §4.5: EndOfEarlyData closes the 0-RTT epoch, under the early key, and joins the
    // transcript. RFC 9001 §8.3: not in QUIC, where 0-RTT ends with the 1-RTT keys.
    if (hs.earlyData === 'accepted' && !this.quic) {
      this.sendHandshake({ msgType: 'end_of_early_data' });
      this.setWriteKey(hs.secrets.client, 'handshake');
    }
    if (s.certificateRequest) this.sendClientCertificate(s.certificateRequest, hash, this.transcript);
    const fin = finishedVerifyData(
      this.crypto,
      hash,
      hs.secrets.client,
      this.transcript.hash(this.crypto, hash),
    );
    this.sendHandshake({ msgType: 'finished', verifyData: fin });
    this.setWriteKey(cAp, 'application');
    const resumptionMaster = hs.schedule.resumptionMasterSecret(this.transcript.hash(this.crypto, hash));
    this.enter({
      name: 'CONNECTED',
      connected: {
        suite: hs.suite,
        resumptionMaster,
        ...(hs.alpn !== undefined ? { alpn: hs.alpn } : {}),
        // What the ClientHello carried (customizeHello may have changed it), not what we meant to send.
        ...(hs.offer.hello.extensions.some((e) => e.type === 'post_handshake_auth')
          ? { postHandshakeAuth: { handshakeTranscript: this.transcript.bytes } }
          : {}),
      },
    });
    this.completeHandshake({
      type: 'handshake-complete',
      cipherSuite: hs.suite.name,
      group: hs.group,
      alpn: hs.alpn,
      serverName: this.options.serverName,
      resumed: hs.psk?.kind === 'resumption',
      psk: hs.psk?.kind,
      peerCertificates: s.peerCertificates,
      ...(this.quic ? { quicTransportParameters: hs.quicTransportParameters } : {}),
      ...(this.quic && hs.earlyData !== 'none'
        ? { earlyData: hs.earlyData === 'accepted' ? ('accepted' as const) : ('rejected' as const) }
        : {}),
    });
  }

  /**
   * Answer a CertificateRequest (RFC 8446 §4.4.2): our chain and a CertificateVerify when we
   * have a certificate whose key can sign one of the requested schemes, else an empty Certificate.
   * Each message joins `transcript` (the handshake's, or post-handshake authentication's).
   */
  private sendClientCertificate(req: CertificateRequestInfo, hash: HashName, transcript: Transcript): void {
    const signer = this.options.certificate;
    const scheme = signer?.signatureSchemes.find((x) => req.schemes.includes(x));
    const send = (m: HandshakeMessage) => {
      const raw = this.sendHandshake(m, false);
      transcript.add(raw);
    };
    if (!signer || scheme === undefined) {
      send({ msgType: 'certificate', certificateRequestContext: req.context, certificateList: [] });
      return;
    }
    send({
      msgType: 'certificate',
      certificateRequestContext: req.context,
      certificateList: signer.certificateChain.map((certData) => ({ certData, extensions: [] })),
    });
    const content = certificateVerifyInput('client', transcript.hash(this.crypto, hash));
    send({ msgType: 'certificate_verify', algorithm: scheme, signature: signer.sign(scheme, content) });
  }

  protected override onPostHandshake(msg: HandshakeMessage, raw: Uint8Array): void {
    const s = this.hs;
    if (s.name !== 'CONNECTED') {
      super.onPostHandshake(msg, raw);
      return;
    }
    if (msg.msgType === 'new_session_ticket') {
      this.onNewSessionTicket(s.connected, msg);
      return;
    }
    if (msg.msgType === 'certificate_request') {
      this.onPostHandshakeCertificateRequest(s.connected, msg, raw);
      return;
    }
    super.onPostHandshake(msg, raw);
  }

  /** NewSessionTicket (RFC 8446 §4.6.1): a PSK for resuming later. */
  private onNewSessionTicket(c: ClientConnected, msg: MessageOf<'new_session_ticket'>): void {
    const ed = findExtension(msg.extensions, 'early_data');
    // RFC 9001 §4.6.1: in QUIC a ticket's max_early_data_size is 0xffffffff or absent;
    // anything else is a PROTOCOL_VIOLATION.
    if (this.quic && ed && 'maxEarlyDataSize' in ed && ed.maxEarlyDataSize !== 0xffffffff)
      alert(AlertDescription.illegal_parameter, 'QUIC ticket with max_early_data_size other than 0xffffffff');
    // RFC 8446 §4.6.1: lifetime is capped at 7 days; 0 means do not use.
    const lifetime = Math.min(msg.ticketLifetime, 604800);
    const ticket: SessionTicket = {
      ticket: msg.ticket,
      psk: resumptionPsk(this.crypto, c.suite.hash, c.resumptionMaster, msg.ticketNonce),
      cipherSuite: c.suite.id,
      receivedAt: this.now,
      lifetimeSeconds: lifetime,
      ageAdd: msg.ticketAgeAdd,
      maxEarlyDataSize: ed && 'maxEarlyDataSize' in ed ? ed.maxEarlyDataSize : 0,
      serverName: this.options.serverName,
      alpn: c.alpn,
    };
    if (lifetime > 0) this.emit({ type: 'session-ticket', ticket });
  }

  /**
   * Post-handshake CertificateRequest (RFC 8446 §4.6.2): answered at once with Certificate,
   * CertificateVerify (with a certificate) and Finished, over the handshake transcript plus
   * these messages; Finished under client_application_traffic_secret_N's finished key (§4.4).
   */
  private onPostHandshakeCertificateRequest(
    c: ClientConnected,
    msg: MessageOf<'certificate_request'>,
    raw: Uint8Array,
  ): void {
    // RFC 8446 §4.6.2: "A client that receives a CertificateRequest message without having
    // sent the "post_handshake_auth" extension MUST send an "unexpected_message" fatal alert."
    const pha = c.postHandshakeAuth;
    if (!pha)
      alert(
        AlertDescription.unexpected_message,
        'CertificateRequest after the handshake without post_handshake_auth',
      );
    // RFC 8446 §4.3.2: signature_algorithms is required.
    const sa = findExtension(msg.extensions, 'signature_algorithms');
    if (!sa) alert(AlertDescription.missing_extension, 'CertificateRequest without signature_algorithms');
    // RFC 8446 §6.1: nothing is sent after our close_notify; the request goes unanswered.
    if (!this.isConnected) {
      this.drop('pha.after-close', 'CertificateRequest after our close_notify', 'RFC 8446 §6.1');
      return;
    }
    const hash = c.suite.hash;
    const transcript = new Transcript();
    transcript.add(pha.handshakeTranscript);
    transcript.add(raw);
    this.sendClientCertificate(
      { context: msg.certificateRequestContext, schemes: sa.schemes },
      hash,
      transcript,
    );
    const base = this.trafficSecret('write');
    if (!base) alert(AlertDescription.internal_error, 'no client application traffic secret');
    const fin = finishedVerifyData(this.crypto, hash, base, transcript.hash(this.crypto, hash));
    this.sendHandshake({ msgType: 'finished', verifyData: fin }, false);
  }
}

function groupName(code: number): KexGroupName {
  const name = GROUP_NAMES[code];
  if (!name) throw new Error(`group ${code} is not implemented`);
  return name;
}
