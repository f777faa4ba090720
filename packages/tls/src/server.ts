/**
 * The TLS 1.3 server handshake (RFC 8446 §2, Appendix A.2) as a sans-I/O machine:
 * START -> (HelloRetryRequest -> START) -> NEGOTIATED -> [WAIT_EOED] -> [WAIT_CERT -> WAIT_CV]
 * -> WAIT_FINISHED -> CONNECTED.
 * Certificate authentication through a CertificateSigner, HelloRetryRequest when the
 * client's key shares miss our groups, resumption (psk_dhe_ke) from self-encrypted
 * tickets, 0-RTT with an anti-replay cache, optional client certificates, ALPN, SNI,
 * record_size_limit, KeyUpdate. Post-handshake client authentication is not offered.
 */
import { ByteReader, ByteWriter, toHex, utf8 } from '@stepwire/wire';
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
import { fromLatin1, latin1, PskKeyExchangeMode, TLS_1_2, TLS_1_3, writeOpaque } from './codec/common.ts';
import { type Extension, findExtension } from './codec/extensions.ts';
import {
  type ClientHello,
  encodeHandshake,
  type HandshakeMessage,
  truncatedClientHello,
} from './codec/handshake.ts';
import { MAX_PLAINTEXT } from './codec/record.ts';
import { QUIC_TRANSPORT_PARAMETERS, type TlsCommonOptions, TlsConnection } from './connection.ts';
import type { HashName } from './crypto/provider.ts';
import { serverKeyShare } from './kex.ts';
import { cipherSuite, finishedVerifyData, KeySchedule, resumptionPsk } from './keyschedule.ts';

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
  antiReplay?: AntiReplayCache;
  /** Request a client certificate (RFC 8446 §4.3.2) and check it with this verifier. */
  clientAuth?: { verifier: CertificateVerifier; required?: boolean };
}

const TICKET_AAD = utf8('stepwire tls13 ticket v1');
/** How much rejected 0-RTT data we skip; our tickets allow none, so this only covers misbehaving clients. */
const EARLY_DATA_SKIP_LIMIT = 1 << 16;

/** What a session ticket must bring back for resumption (RFC 8446 §4.6.1). */
export interface TicketState {
  cipherSuite: number;
  issuedAt: number;
  lifetimeSeconds: number;
  ageAdd: number;
  maxEarlyData: number;
  /** The ALPN protocol of the connection that issued it ('' for none); 0-RTT must reuse it (RFC 8446 §4.2.10). */
  alpn: string;
  psk: Uint8Array;
}

/**
 * Anti-replay for 0-RTT (RFC 8446 §8.2): remembers the binders of accepted ClientHellos
 * for as long as tickets live, so each one can carry early data only once. Share one
 * instance among all connections of a server; without one, 0-RTT is never accepted.
 */
export class AntiReplayCache {
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

/** RFC 8446 §8.3: how far the client's view of the ticket age may stray from ours. */
const TICKET_AGE_TOLERANCE_MS = 10_000;

export class TlsServer extends TlsConnection {
  private readonly options: TlsServerOptions;
  private readonly ticketKey: Uint8Array;
  private retried = false;
  private hrrGroup?: number;
  private firstHello?: ClientHello;
  private schedule?: KeySchedule;
  private clientHandshakeSecret?: Uint8Array;
  private serverName?: string;
  private alpn?: string;
  private groupName?: string;
  private resumed = false;
  private ticketCounter = 0;
  private pskKind?: 'resumption' | 'external';
  private hrrCookie?: Uint8Array;
  /** Our record_size_limit once the client has offered the extension (RFC 8449), else the protocol maximum. */
  private agreedReceiveLimit = MAX_PLAINTEXT + 1;

  constructor(options: TlsServerOptions) {
    super('server', options, 'START');
    this.options = options;
    this.ticketKey = options.ticketKey ?? this.crypto.randomBytes(32);
    if (this.ticketKey.length !== 32) throw new RangeError('ticketKey must be 32 bytes');
  }

  get clientServerName(): string | undefined {
    return this.serverName;
  }

  protected onHandshakeMessage(msg: HandshakeMessage, raw: Uint8Array): void {
    if (this.stateName === 'START' && msg.msgType === 'client_hello') {
      this.onClientHello(msg, raw);
      return;
    }
    if (this.stateName === 'WAIT_EOED' && msg.msgType === 'end_of_early_data') {
      // RFC 8446 §4.5: the end of 0-RTT; the client's handshake key takes over.
      this.transcript.add(raw);
      this.setReadKey(this.clientHandshakeSecret!, 'handshake');
      this.receiveLimit = this.agreedReceiveLimit;
      this.setState('WAIT_FINISHED');
      return;
    }
    if (this.stateName === 'WAIT_CERT' && msg.msgType === 'certificate') {
      this.onClientCertificate(msg, raw);
      return;
    }
    if (this.stateName === 'WAIT_CV' && msg.msgType === 'certificate_verify') {
      const verifier = this.options.clientAuth!.verifier;
      // RFC 8446 §4.4.3: a scheme we asked for, over the transcript through the client's Certificate.
      if (!verifier.signatureSchemes.includes(msg.algorithm))
        alert(AlertDescription.illegal_parameter, 'CertificateVerify scheme not requested');
      const content = certificateVerifyInput('client', this.transcript.hash(this.crypto, this.suite!.hash));
      if (!verifier.verifySignature(this.peerCertificates[0]!, msg.algorithm, content, msg.signature)) {
        alert(AlertDescription.decrypt_error, 'client CertificateVerify signature does not verify');
      }
      this.transcript.add(raw);
      this.setState('WAIT_FINISHED');
      return;
    }
    if (this.stateName === 'WAIT_FINISHED' && msg.msgType === 'finished') {
      this.onFinished(msg.verifyData, raw);
      return;
    }
    alert(AlertDescription.unexpected_message, `${msg.msgType} in state ${this.stateName}`);
  }

  private onClientHello(ch: ClientHello, raw: Uint8Array): void {
    const o = this.options;
    if (o.statelessRetry && !this.retried) this.resumeFromCookie(ch);
    // RFC 8446 §D.5: a ClientHello.legacy_version of 0x0300 (SSL 3.0) or less MUST be answered
    // with protocol_version, whatever supported_versions says.
    if (ch.legacyVersion <= 0x0300)
      alert(AlertDescription.protocol_version, 'legacy_version SSL 3.0 or older');
    const sv = findExtension(ch.extensions, 'supported_versions');
    // RFC 8446 §4.2.1: without TLS 1.3 in supported_versions we would have to speak TLS 1.2, which we do not.
    if (!sv || !('versions' in sv) || !sv.versions.includes(TLS_1_3))
      alert(AlertDescription.protocol_version, 'client does not offer TLS 1.3');
    // RFC 8446 §4.1.2: exactly one compression method, null.
    if (ch.legacyCompressionMethods.length !== 1 || ch.legacyCompressionMethods[0] !== 0) {
      alert(AlertDescription.illegal_parameter, 'legacy_compression_methods is not [null]');
    }
    const suiteId = (o.cipherSuites ?? DEFAULT_CIPHER_SUITES).find((s) => ch.cipherSuites.includes(s));
    if (suiteId === undefined) alert(AlertDescription.handshake_failure, 'no cipher suite in common');
    const suite = cipherSuite(suiteId);
    if (this.quic) {
      // RFC 9001 §8.2: a QUIC ClientHello must carry transport parameters (missing_extension).
      const tp = ch.extensions.find((e) => e.type === 'raw' && e.code === QUIC_TRANSPORT_PARAMETERS);
      if (tp?.type !== 'raw')
        alert(AlertDescription.missing_extension, 'ClientHello without quic_transport_parameters');
      this.peerTransportParameters = tp.data;
      // RFC 9001 §8.4: QUIC clients do not use middlebox compatibility mode.
      if (ch.legacySessionId.length > 0)
        alert(AlertDescription.illegal_parameter, 'QUIC ClientHello with a legacy_session_id');
    }

    const groupsExt = findExtension(ch.extensions, 'supported_groups');
    const keyShareExt = findExtension(ch.extensions, 'key_share');
    const lastExt = ch.extensions[ch.extensions.length - 1];
    const modesExt = findExtension(ch.extensions, 'psk_key_exchange_modes');
    // RFC 8446 §4.2.9: psk_ke (a PSK without (EC)DHE, so without forward secrecy) only where
    // we were configured to allow it and the client offers it with a PSK.
    const pskOnlyPossible =
      o.allowPskKe === true &&
      lastExt?.type === 'pre_shared_key' &&
      modesExt?.modes.includes(PskKeyExchangeMode.psk_ke) === true;
    // RFC 8446 §9.2: supported_groups and key_share come together; both are required unless
    // the handshake can be psk_ke.
    if (!(pskOnlyPossible && !groupsExt && !keyShareExt)) {
      if (!groupsExt || !keyShareExt || !('clientShares' in keyShareExt))
        alert(AlertDescription.missing_extension, 'key_share and supported_groups are required');
    }
    const clientShares = keyShareExt && 'clientShares' in keyShareExt ? keyShareExt.clientShares : [];
    const offeredGroups = groupsExt?.groups ?? [];
    for (const s of clientShares) {
      // RFC 8446 §4.2.8: shares only for offered groups.
      if (!offeredGroups.includes(s.group))
        alert(AlertDescription.illegal_parameter, `key share for unoffered group ${s.group}`);
    }

    if (this.retried) {
      const first = this.firstHello!;
      // RFC 8446 §4.1.2: the second ClientHello keeps the first's suites and answers our group with one share.
      if (clientShares.length !== 1 || clientShares[0]!.group !== this.hrrGroup) {
        alert(
          AlertDescription.illegal_parameter,
          'second ClientHello does not carry the requested key share',
        );
      }
      if (ch.cipherSuites.join() !== first.cipherSuites.join() || this.suite?.id !== suiteId) {
        alert(AlertDescription.illegal_parameter, 'second ClientHello changed its cipher suites');
      }
      // RFC 8446 §4.2.2: a cookie we sent comes back unchanged.
      const cookie = findExtension(ch.extensions, 'cookie');
      if (this.hrrCookie && (!cookie || toHex(cookie.cookie) !== toHex(this.hrrCookie))) {
        alert(AlertDescription.illegal_parameter, 'second ClientHello does not echo our cookie');
      }
    }

    const serverGroups = o.groups ?? DEFAULT_GROUPS;
    const common = serverGroups.filter((g) => GROUP_NAMES[g] && offeredGroups.includes(g));
    // 'shares' takes any share we can use (no round trip); 'preference' insists on our first common group.
    let share =
      o.groupSelection === 'preference'
        ? clientShares.find((s) => s.group === common[0])
        : common.map((g) => clientShares.find((s) => s.group === g)).find((s) => s !== undefined);
    if (!share && !pskOnlyPossible) {
      const group = common[0];
      if (group === undefined || this.retried)
        alert(AlertDescription.handshake_failure, 'no key exchange group in common');
      this.sendHelloRetryRequest(ch, raw, suiteId, group);
      return;
    }

    this.suite = suite;
    this.clientRandom = ch.random;
    const sni = findExtension(ch.extensions, 'server_name');
    this.serverName = sni?.hostName;

    // Resumption (RFC 8446 §4.2.11): the first identity whose ticket opens, matches our hash and whose binder verifies.
    const schedule = new KeySchedule(this.crypto, suite.hash);
    let selectedIdentity: number | undefined;
    let ticket: TicketState | undefined;
    const pskExt = ch.extensions[ch.extensions.length - 1];
    if (pskExt?.type === 'pre_shared_key' && 'identities' in pskExt) {
      const modes = findExtension(ch.extensions, 'psk_key_exchange_modes');
      // RFC 8446 §4.2.9: pre_shared_key without psk_key_exchange_modes is an error.
      if (!modes) alert(AlertDescription.missing_extension, 'pre_shared_key without psk_key_exchange_modes');
      // psk_dhe_ke when we have a share to answer (forward secrecy first), else psk_ke if allowed.
      const pskMode =
        share && modes.modes.includes(PskKeyExchangeMode.psk_dhe_ke)
          ? 'dhe'
          : pskOnlyPossible
            ? 'ke'
            : undefined;
      if (pskMode !== undefined) {
        const prefix = truncatedClientHello(raw, ch);
        for (let i = 0; i < pskExt.identities.length; i++) {
          const identity = pskExt.identities[i]!.identity;
          const external = o.externalPsk?.(identity);
          const t = external ? undefined : this.openTicket(identity);
          const key = external?.key ?? t?.psk;
          const hash = external
            ? (external.hash ?? 'sha256')
            : t
              ? cipherSuite(t.cipherSuite).hash
              : undefined;
          if (!key || hash !== suite.hash) continue;
          const kind = external ? 'external' : 'resumption';
          const ks = new KeySchedule(this.crypto, suite.hash);
          ks.deriveEarlySecret(key);
          const th = this.crypto.hash(suite.hash, concat(this.transcript.bytes, prefix));
          const expected = finishedVerifyData(this.crypto, suite.hash, ks.binderKey(kind), th);
          // RFC 8446 §4.2.11.2: a binder that does not verify aborts the handshake.
          if (!macEqual(expected, pskExt.binders[i]!))
            alert(AlertDescription.decrypt_error, 'PSK binder does not verify');
          schedule.deriveEarlySecret(key);
          selectedIdentity = i;
          ticket = t;
          this.pskKind = kind;
          // RFC 8446 §4.2.9 psk_ke: the client's shares go unanswered.
          if (pskMode === 'ke') share = undefined;
          break;
        }
      }
    }
    if (selectedIdentity === undefined) {
      // psk_ke was the hope but no PSK matched: a certificate handshake needs a share.
      if (!share) {
        const group = common[0];
        if (group === undefined || this.retried)
          alert(AlertDescription.handshake_failure, 'no PSK for psk_ke and no key exchange group in common');
        this.sendHelloRetryRequest(ch, raw, suiteId, group);
        return;
      }
      schedule.deriveEarlySecret();
    }
    this.resumed = this.pskKind === 'resumption';
    const pskAuthenticated = selectedIdentity !== undefined;

    let certificate: { signer: CertificateSigner; scheme: number } | undefined;
    if (!pskAuthenticated) {
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
      certificate = selectCertificate(Array.isArray(pool) ? pool : [pool as CertificateSigner], hello);
      // RFC 8446 §4.4.2.2/§4.2.3: no key of ours can sign in a way the client accepts.
      if (certificate === undefined)
        alert(AlertDescription.handshake_failure, 'no signature scheme in common');
    }

    const alpnExt = findExtension(ch.extensions, 'alpn');
    if (alpnExt && o.alpnSelect) {
      const chosen = o.alpnSelect({
        protocols: alpnExt.protocols,
        ...(this.serverName !== undefined ? { serverName: this.serverName } : {}),
      });
      // RFC 7301 §3.1: the server's choice is one the client offered.
      if (chosen === undefined || !alpnExt.protocols.includes(chosen))
        alert(AlertDescription.no_application_protocol, 'the ALPN callback chose no offered protocol');
      this.alpn = chosen;
    } else if (alpnExt && o.alpnProtocols?.length) {
      this.alpn = o.alpnProtocols.find((p) => alpnExt.protocols.includes(p));
      // RFC 7301 §3.2: no protocol in common is a no_application_protocol alert.
      if (this.alpn === undefined)
        alert(AlertDescription.no_application_protocol, 'no ALPN protocol in common');
    }
    // RFC 9001 §8.1: QUIC needs an application protocol agreed by ALPN.
    if (this.quic && this.alpn === undefined)
      alert(AlertDescription.no_application_protocol, 'no ALPN protocol for QUIC');
    const rsl = findExtension(ch.extensions, 'record_size_limit');
    if (rsl) {
      this.sendLimit = Math.min(MAX_PLAINTEXT, rsl.limit - 1);
      // RFC 8449 §4: our own limit binds the client once it reads it in EncryptedExtensions, so
      // it applies from its handshake-key records on (not to 0-RTT records, sent before it knew).
      this.agreedReceiveLimit = Math.min(MAX_PLAINTEXT + 1, o.recordSizeLimit ?? MAX_PLAINTEXT + 1);
    }

    // 0-RTT (RFC 8446 §4.2.10): accepted for the first PSK, with the ticket's suite and ALPN,
    // a plausible ticket age (§8.3) and a binder never seen before (§8.2). Otherwise skipped.
    const offeredEarly = findExtension(ch.extensions, 'early_data') !== undefined;
    this.offeredEarlyData = offeredEarly;
    if (
      offeredEarly &&
      ticket &&
      selectedIdentity === 0 &&
      pskExt?.type === 'pre_shared_key' &&
      'identities' in pskExt
    ) {
      const clientAge = (pskExt.identities[0]!.obfuscatedTicketAge - ticket.ageAdd) >>> 0;
      const ourAge = this.now - ticket.issuedAt;
      this.acceptEarlyData =
        ticket.maxEarlyData > 0 &&
        ticket.cipherSuite === suiteId &&
        ticket.alpn === (this.alpn ?? '') &&
        Math.abs(clientAge - ourAge) <= TICKET_AGE_TOLERANCE_MS &&
        o.antiReplay?.firstUse(
          toHex(pskExt.binders[0]!),
          ticket.issuedAt + ticket.lifetimeSeconds * 1000,
          this.now,
        ) === true;
      if (this.acceptEarlyData) this.earlyDataLeft = ticket.maxEarlyData;
      else this.drop('early-data.rejected', '0-RTT offered but not accepted', 'RFC 8446 §4.2.10');
    }
    // We did not take the 0-RTT data: its records are skipped, up to a limit (RFC 8446 §4.2.10).
    if (offeredEarly && !this.acceptEarlyData) this.earlyDataSkipBudget = EARLY_DATA_SKIP_LIMIT;

    // ServerHello.
    // RFC 8446 §4.2.9 psk_ke: no key_share in the ServerHello and no (EC)DHE secret.
    const ours = share
      ? serverKeyShare(this.crypto, GROUP_NAMES[share.group]!, share.keyExchange)
      : undefined;
    const shared = ours?.shared;
    this.groupName = share ? GROUP_NAMES[share.group] : undefined;
    this.transcript.add(raw);
    // Extension order is free; this is the order of the RFC 8448 traces (NSS), so they can be replayed.
    const shExts: Extension[] = [];
    if (selectedIdentity !== undefined) shExts.push({ type: 'pre_shared_key', selectedIdentity });
    if (share && ours)
      shExts.push({ type: 'key_share', serverShare: { group: share.group, keyExchange: ours.publicKey } });
    shExts.push({ type: 'supported_versions', selectedVersion: TLS_1_3 });
    this.sendHandshake({
      msgType: 'server_hello',
      legacyVersion: TLS_1_2,
      random: this.crypto.randomBytes(32),
      legacySessionIdEcho: ch.legacySessionId,
      cipherSuite: suiteId,
      legacyCompressionMethod: 0,
      extensions: shExts,
    });
    // RFC 8446 §D.4: a client in compatibility mode gets a change_cipher_spec after our first message.
    if (ch.legacySessionId.length > 0 && !this.retried) this.sendChangeCipherSpec();

    schedule.deriveHandshakeSecret(shared);
    this.schedule = schedule;
    const th = this.transcript.hash(this.crypto, suite.hash);
    const cHs = schedule.clientHandshakeTrafficSecret(th);
    const sHs = schedule.serverHandshakeTrafficSecret(th);
    this.clientHandshakeSecret = cHs;
    this.log('CLIENT_HANDSHAKE_TRAFFIC_SECRET', cHs);
    this.log('SERVER_HANDSHAKE_TRAFFIC_SECRET', sHs);
    this.setWriteKey(sHs, 'handshake');
    if (this.acceptEarlyData) {
      // The client's 0-RTT records use the early traffic key until its EndOfEarlyData (RFC 8446 §4.5).
      const chHash = this.crypto.hash(suite.hash, raw);
      const early = schedule.clientEarlyTrafficSecret(chHash);
      this.log('CLIENT_EARLY_TRAFFIC_SECRET', early);
      this.log('EARLY_EXPORTER_SECRET', schedule.earlyExporterMasterSecret(chHash));
      this.setReadKey(early, 'early');
    }
    // RFC 9001 §8.3: QUIC has no EndOfEarlyData; the handshake read key comes at once, beside 0-RTT's.
    if (!this.acceptEarlyData || this.quic) {
      this.setReadKey(cHs, 'handshake');
      this.receiveLimit = this.agreedReceiveLimit;
    }
    this.setState('NEGOTIATED', 'RFC 8446 §A.2');

    // EncryptedExtensions, then Certificate and CertificateVerify unless a PSK authenticates.
    const ee: Extension[] = [];
    // RFC 8446 §4.2.7: our groups, so the client can send the right share next time.
    if (o.advertiseGroups !== false) ee.push({ type: 'supported_groups', groups: [...serverGroups] });
    if (this.alpn !== undefined) ee.push({ type: 'alpn', protocols: [this.alpn] });
    if (rsl) ee.push({ type: 'record_size_limit', limit: o.recordSizeLimit ?? MAX_PLAINTEXT + 1 });
    if (this.serverName !== undefined) ee.push({ type: 'server_name' });
    if (this.acceptEarlyData) ee.push({ type: 'early_data' });
    if (this.quic)
      ee.push({ type: 'raw', code: QUIC_TRANSPORT_PARAMETERS, data: this.quic.transportParameters });
    this.sendHandshake({ msgType: 'encrypted_extensions', extensions: ee });
    const requestCertificate = !pskAuthenticated && o.clientAuth !== undefined;
    if (requestCertificate) {
      this.sendHandshake({
        msgType: 'certificate_request',
        certificateRequestContext: new Uint8Array(0),
        extensions: [{ type: 'signature_algorithms', schemes: [...o.clientAuth!.verifier.signatureSchemes] }],
      });
    }
    if (certificate) {
      const { signer, scheme } = certificate;
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
      const content = certificateVerifyInput('server', this.transcript.hash(this.crypto, suite.hash));
      this.sendHandshake({
        msgType: 'certificate_verify',
        algorithm: scheme,
        signature: signer.sign(scheme, content),
      });
    }
    const fin = finishedVerifyData(
      this.crypto,
      suite.hash,
      sHs,
      this.transcript.hash(this.crypto, suite.hash),
    );
    this.sendHandshake({ msgType: 'finished', verifyData: fin });

    const { cAp, sAp } = this.deriveApplicationSecrets(schedule, suite.hash);
    this.pendingClientAp = cAp;
    // RFC 8446 §2: the server may send application data after its Finished (0.5-RTT); our writes use the new key.
    this.setWriteKey(sAp, 'application');
    // RFC 8446 §A.2: WAIT_FLIGHT2 leads to WAIT_CERT when we asked for a certificate.
    this.setState(
      this.acceptEarlyData && !this.quic ? 'WAIT_EOED' : requestCertificate ? 'WAIT_CERT' : 'WAIT_FINISHED',
    );
  }

  private onClientCertificate(
    msg: Extract<HandshakeMessage, { msgType: 'certificate' }>,
    raw: Uint8Array,
  ): void {
    const auth = this.options.clientAuth!;
    // RFC 8446 §4.4.2: the context echoes the CertificateRequest's (empty here).
    if (msg.certificateRequestContext.length !== 0)
      alert(AlertDescription.illegal_parameter, 'wrong certificate_request_context');
    this.transcript.add(raw);
    if (msg.certificateList.length === 0) {
      // RFC 8446 §4.4.2.4: no certificate where one is required is certificate_required.
      if (auth.required) alert(AlertDescription.certificate_required, 'client sent no certificate');
      this.setState('WAIT_FINISHED');
      return;
    }
    this.peerCertificates = msg.certificateList.map((e) => e.certData);
    auth.verifier.verifyChain(this.peerCertificates, { now: this.now });
    this.setState('WAIT_CV');
  }

  private peerCertificates: Uint8Array[] = [];
  private acceptEarlyData = false;
  private offeredEarlyData = false;
  /** QUIC mode: the client's quic_transport_parameters (RFC 9001 §8.2). */
  private peerTransportParameters?: Uint8Array;
  private earlyDataLeft = 0;

  /** Not before the first ClientHello (RFC 8446 §5), unless another instance may have sent our HRR. */
  protected override ccsAllowed(): boolean {
    return (
      super.ccsAllowed() &&
      (this.stateName !== 'START' || this.retried || this.options.statelessRetry !== undefined)
    );
  }

  protected override onEarlyApplicationData(content: Uint8Array): boolean {
    if (this.stateName !== 'WAIT_EOED') return false;
    // RFC 8446 §4.2.10: more than max_early_data_size is an unexpected_message.
    this.earlyDataLeft -= content.length;
    if (this.earlyDataLeft < 0) alert(AlertDescription.unexpected_message, 'too much early data');
    if (content.length > 0) this.emit({ type: 'early-data', data: content });
    return true;
  }

  private pendingClientAp?: Uint8Array;

  private sendHelloRetryRequest(ch: ClientHello, raw: Uint8Array, suiteId: number, group: number): void {
    const suite = cipherSuite(suiteId);
    if (findExtension(ch.extensions, 'early_data')) this.earlyDataSkipBudget = EARLY_DATA_SKIP_LIMIT;
    this.suite = suite;
    this.retried = true;
    this.hrrGroup = group;
    this.firstHello = ch;
    const stateless = this.options.statelessRetry;
    this.hrrCookie = stateless
      ? this.sealCookie(stateless.key, suiteId, group, this.crypto.hash(suite.hash, raw))
      : this.options.helloRetryCookie?.(raw);
    this.transcript.add(raw);
    // RFC 8446 §4.4.1: the transcript continues from message_hash(ClientHello1).
    this.transcript.replaceWithMessageHash(this.crypto, suite.hash);
    this.sendHandshake(helloRetryRequest(ch, suiteId, group, this.hrrCookie));
    if (ch.legacySessionId.length > 0) this.sendChangeCipherSpec();
  }

  /** RFC 8446 §4.2.2: what a stateless server needs from ClientHello1, sealed in the cookie. */
  private sealCookie(key: Uint8Array, suiteId: number, group: number, ch1Hash: Uint8Array): Uint8Array {
    const w = new ByteWriter(16 + ch1Hash.length);
    w.u16(suiteId)
      .u16(group)
      .u64(BigInt(Math.floor(this.now)))
      .u8(ch1Hash.length)
      .bytes(ch1Hash);
    const iv = this.crypto.randomBytes(12);
    const sealed = this.crypto.aead('AES_256_GCM', key).seal(iv, COOKIE_AAD, w.finish());
    return concat(iv, sealed);
  }

  /**
   * A second ClientHello whose cookie we sealed (possibly in another instance): rebuild the
   * state of the HelloRetryRequest — the transcript message_hash(ClientHello1) || HRR (§4.4.1),
   * the suite and the group asked for — as if this instance had sent it.
   */
  private resumeFromCookie(ch: ClientHello): void {
    const o = this.options;
    const stateless = o.statelessRetry;
    const cookie = findExtension(ch.extensions, 'cookie');
    if (!stateless || !cookie) return;
    const c = cookie.cookie;
    const plain =
      c.length > 12 + 16
        ? this.crypto.aead('AES_256_GCM', stateless.key).open(c.subarray(0, 12), COOKIE_AAD, c.subarray(12))
        : null;
    // RFC 8446 §4.2.2: a cookie must be one we sent; anything else is an illegal_parameter.
    if (!plain) alert(AlertDescription.illegal_parameter, 'cookie we did not issue');
    const r = new ByteReader(plain, 'tls.cookie');
    const suiteId = r.u16('suite');
    const group = r.u16('group');
    const issuedAt = Number(r.u64('issued'));
    const ch1Hash = r.copy(r.u8('hash length'), 'hash');
    const age = this.now - issuedAt;
    if (age < 0 || age > (stateless.maxAgeMs ?? 30_000))
      alert(AlertDescription.illegal_parameter, 'stale HelloRetryRequest cookie');
    const suite = cipherSuite(suiteId);
    this.suite = suite;
    this.retried = true;
    this.hrrGroup = group;
    this.firstHello = ch;
    this.hrrCookie = c;
    const m = new Uint8Array(4 + ch1Hash.length);
    m[0] = 254; // message_hash (RFC 8446 §4.4.1)
    m[3] = ch1Hash.length;
    m.set(ch1Hash, 4);
    this.transcript.add(m);
    this.transcript.add(encodeHandshake(helloRetryRequest(ch, suiteId, group, c)));
    this.drop('hrr.stateless', 'second ClientHello resumed from our cookie', 'RFC 8446 §4.2.2');
  }

  private onFinished(verifyData: Uint8Array, raw: Uint8Array): void {
    const s = this.suite!;
    const expected = finishedVerifyData(
      this.crypto,
      s.hash,
      this.clientHandshakeSecret!,
      this.transcript.hash(this.crypto, s.hash),
    );
    // RFC 8446 §4.4.4/§6.2: verify_data is Hash.length bytes; another length is a message that
    // does not decode (decode_error), a wrong value of the right length a decrypt_error.
    if (verifyData.length !== expected.length)
      alert(
        AlertDescription.decode_error,
        `client Finished of ${verifyData.length} bytes, not ${expected.length}`,
      );
    if (!macEqual(verifyData, expected))
      alert(AlertDescription.decrypt_error, 'client Finished does not verify');
    this.transcript.add(raw);
    const rms = this.schedule!.resumptionMasterSecret(this.transcript.hash(this.crypto, s.hash));
    this.setReadKey(this.pendingClientAp!, 'application');
    this.completeHandshake({
      type: 'handshake-complete',
      cipherSuite: s.name,
      group: this.groupName,
      alpn: this.alpn,
      serverName: this.serverName,
      resumed: this.resumed,
      psk: this.pskKind,
      peerCertificates: this.peerCertificates,
      ...(this.quic ? { quicTransportParameters: this.peerTransportParameters } : {}),
      ...(this.quic && this.offeredEarlyData
        ? { earlyData: this.acceptEarlyData ? ('accepted' as const) : ('rejected' as const) }
        : {}),
    });
    for (let i = 0; i < (this.options.ticketsToSend ?? 1); i++) this.sendTicket(rms);
  }

  /** NewSessionTicket (RFC 8446 §4.6.1) whose ticket is the sealed state we need to resume. */
  private sendTicket(rms: Uint8Array): void {
    const s = this.suite!;
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
          alpn: this.alpn ?? '',
          psk,
        }),
        extensions: maxEarlyData > 0 ? [{ type: 'early_data', maxEarlyDataSize: maxEarlyData }] : [],
      },
      false,
    );
    this.flushHandshake();
  }

  private sealTicket(t: TicketState): Uint8Array {
    if (this.options.ticketCodec) return this.options.ticketCodec.seal(t);
    const w = new ByteWriter(64);
    w.u16(t.cipherSuite)
      .u64(BigInt(Math.floor(t.issuedAt)))
      .u32(t.lifetimeSeconds)
      .u32(t.ageAdd)
      .u32(t.maxEarlyData);
    writeOpaque(w, 1, fromLatin1(t.alpn, 'alpn'), 'alpn');
    w.u8(t.psk.length).bytes(t.psk);
    const iv = this.crypto.randomBytes(12);
    const sealed = this.crypto.aead('AES_256_GCM', this.ticketKey).seal(iv, TICKET_AAD, w.finish());
    const out = new Uint8Array(12 + sealed.length);
    out.set(iv, 0);
    out.set(sealed, 12);
    return out;
  }

  /** The state in a ticket we issued and that is still valid, or undefined (then the PSK is just not used). */
  private openTicket(ticket: Uint8Array): TicketState | undefined {
    const state = this.options.ticketCodec
      ? this.options.ticketCodec.open(ticket)
      : this.unsealTicket(ticket);
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

  private unsealTicket(ticket: Uint8Array): TicketState | undefined {
    if (ticket.length < 12 + 16) return undefined;
    const plain = this.crypto
      .aead('AES_256_GCM', this.ticketKey)
      .open(ticket.subarray(0, 12), TICKET_AAD, ticket.subarray(12));
    if (!plain) return undefined;
    const r = new ByteReader(plain, 'tls.ticket');
    const cipherSuiteId = r.u16('suite');
    const issuedAt = Number(r.u64('issued'));
    const lifetimeSeconds = r.u32('lifetime');
    const ageAdd = r.u32('age add');
    const maxEarlyData = r.u32('max early data');
    const alpn = latin1(r.copy(r.u8('alpn length'), 'alpn'));
    const psk = r.copy(r.u8('psk length'), 'psk');
    return { cipherSuite: cipherSuiteId, issuedAt, lifetimeSeconds, ageAdd, maxEarlyData, alpn, psk };
  }
}

const COOKIE_AAD = utf8('stepwire tls13 hrr cookie v1');

/** Our HelloRetryRequest; the same bytes whether sent now or rebuilt from a cookie. */
function helloRetryRequest(
  ch: ClientHello,
  suiteId: number,
  group: number,
  cookie: Uint8Array | undefined,
): HandshakeMessage {
  return {
    msgType: 'hello_retry_request',
    legacyVersion: TLS_1_2,
    legacySessionIdEcho: ch.legacySessionId,
    cipherSuite: suiteId,
    legacyCompressionMethod: 0,
    // Order as in the RFC 8448 traces: key_share, cookie, supported_versions.
    extensions: [
      { type: 'key_share', selectedGroup: group },
      ...(cookie ? [{ type: 'cookie' as const, cookie }] : []),
      { type: 'supported_versions', selectedVersion: TLS_1_3 },
    ],
  };
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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
