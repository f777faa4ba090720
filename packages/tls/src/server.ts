/**
 * The TLS 1.3 server handshake (RFC 8446 §2, Appendix A.2) as a sans-I/O machine:
 * START -> (HelloRetryRequest -> START) -> NEGOTIATED -> [WAIT_EOED] -> [WAIT_CERT -> WAIT_CV]
 * -> WAIT_FINISHED -> CONNECTED. Each state is a type carrying its own data
 * (handshake/server-states.ts) and the legal steps are one table (`transitions` below); the
 * ClientHello's steps (negotiation, PSK, HelloRetryRequest, 0-RTT) are in
 * handshake/client-hello.ts. Beside this file, in server/: the options and the 0-RTT strike
 * register (options.ts), what we answer a ClientHello with and our EncryptedExtensions
 * (decision.ts), our Certificate (certificate.ts), the checks of the client's
 * CertificateVerify and Finished (client-auth.ts), post-handshake client authentication
 * (post-handshake-auth.ts) and session tickets (tickets.ts).
 * Certificate authentication through a CertificateSigner, HelloRetryRequest when the
 * client's key shares miss our groups (stateful or with a sealed cookie), resumption from
 * self-encrypted tickets, external PSKs, 0-RTT with an anti-replay cache, client
 * certificates during the handshake or after it (RFC 8446 §4.6.2), ALPN, SNI,
 * record_size_limit, certificate compression, KeyUpdate.
 */
import { alert, type CertificateSigner, type CertificateVerifier, certificateVerifyInput } from './auth.ts';
import { DEFAULT_CIPHER_SUITES, DEFAULT_GROUPS, GROUP_NAMES } from './client.ts';
import { AlertDescription } from './codec/alert.ts';
import { TLS_1_2, TLS_1_3 } from './codec/common.ts';
import { type Extension, findExtension } from './codec/extensions.ts';
import type { ClientHello, HandshakeMessage } from './codec/handshake.ts';
import { TlsConnection, type TlsOutput } from './connection.ts';
import type { HashName } from './crypto/provider.ts';
import {
  helloRetryRequest,
  type Negotiation,
  negotiate,
  openCookie,
  type PskChoice,
  sealCookie,
  selectPsk,
} from './handshake/client-hello.ts';
import { checkFinished } from './handshake/finished.ts';
import { Machine, type MessageOf, nonEmptyChain, type TransitionTable } from './handshake/machine.ts';
import type {
  ClientAuthRequest,
  ClientFlightKeys,
  RetryState,
  ServerAgreement,
  ServerState,
} from './handshake/server-states.ts';
import type { TicketState } from './handshake/tickets.ts';
import { serverKeyShare } from './kex.ts';
import { cipherSuite, finishedVerifyData, KeySchedule } from './keyschedule.ts';
import { certificateMessage } from './server/certificate.ts';
import { checkClientCertificateVerify } from './server/client-auth.ts';
import { type DecisionContext, decide, encryptedExtensions, type ServerDecision } from './server/decision.ts';
import type { TlsServerOptions } from './server/options.ts';
import { ServerPostHandshakeAuth } from './server/post-handshake-auth.ts';
import { ServerTickets } from './server/tickets.ts';

export type { TicketState } from './handshake/tickets.ts';
export { AntiReplayCache, type TlsServerOptions } from './server/options.ts';

/** How much rejected 0-RTT data we skip; our tickets allow none, so this only covers misbehaving clients. */
const EARLY_DATA_SKIP_LIMIT = 1 << 16;

type Handshake<K extends ServerState['name']> = Extract<ServerState, { name: K }>;

export class TlsServer extends TlsConnection {
  private readonly options: TlsServerOptions;
  private readonly tickets: ServerTickets;
  /** Where the handshake is (RFC 8446 §A.2), with that state's data. */
  private readonly machine: Machine<TlsServer, ServerState>;
  /** Post-handshake client authentication (RFC 8446 §4.6.2), once CONNECTED. */
  private readonly pha: ServerPostHandshakeAuth;
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

  constructor(options: TlsServerOptions) {
    super('server', options, 'START');
    this.machine = new Machine(TlsServer.transitions, { name: 'START' });
    this.pha = new ServerPostHandshakeAuth({
      crypto: this.crypto,
      now: () => this.now,
      send: (msg) => this.sendHandshake(msg, false),
      readSecret: () => this.trafficSecret('read'),
      emit: (e) => this.emit(e),
    });
    this.options = options;
    this.tickets = new ServerTickets(this.crypto, options);
  }

  get clientServerName(): string | undefined {
    return this.serverName;
  }

  private get hs(): ServerState {
    return this.machine.state;
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
    const d = decide(this.decisionContext(), ch, n, psk);
    if (d.sendLimit !== undefined) this.sendLimit = d.sendLimit;
    if (d.earlyDataRejected)
      this.drop('early-data.rejected', '0-RTT offered but not accepted', 'RFC 8446 §4.2.10');
    if (d.skipEarlyData) this.earlyDataSkipBudget = EARLY_DATA_SKIP_LIMIT;
    const keys = this.sendServerHello(ch, raw, psk, d, retried);
    this.enter({ name: 'NEGOTIATED', agreement: d.agreement }, 'RFC 8446 §A.2');
    this.sendServerFlight(ch, d, keys);
  }

  private decisionContext(): DecisionContext {
    return {
      options: this.options,
      quicTransportParameters: this.quic?.transportParameters,
      serverName: this.serverName,
      now: this.now,
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
    this.sendHandshake({
      msgType: 'encrypted_extensions',
      extensions: encryptedExtensions(this.decisionContext(), d),
    });
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
    this.sendHandshake(certificateMessage(ch, signer, this.options.certificateCompression));
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
    checkClientCertificateVerify(
      this.crypto,
      s.auth.verifier,
      s.peerCertificates,
      msg,
      this.transcript,
      s.keys.agreement.suite.hash,
    );
    this.transcript.add(raw);
    this.enter({ name: 'WAIT_FINISHED', keys: s.keys, peerCertificates: s.peerCertificates });
  }

  private onFinished(s: Handshake<'WAIT_FINISHED'>, msg: MessageOf<'finished'>, raw: Uint8Array): void {
    const { agreement, schedule } = s.keys;
    const hash = agreement.suite.hash;
    checkFinished(this.crypto, 'client', s.keys.clientHandshakeSecret, msg, this.transcript, hash);
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
    if (this.pha.state.name !== 'IDLE')
      throw new Error('a post-handshake CertificateRequest is already outstanding');
    const configured = this.options.postHandshakeAuth ?? this.options.clientAuth;
    const verifier = auth?.verifier ?? configured?.verifier;
    if (!verifier) throw new Error('no verifier for client certificates (postHandshakeAuth or clientAuth)');
    const required = auth?.required ?? configured?.required ?? false;
    return this.guard(() => this.pha.request(s.connected, pha.handshakeTranscript, { verifier, required }));
  }

  protected override onPostHandshake(msg: HandshakeMessage, raw: Uint8Array): void {
    if (msg.msgType !== 'certificate' && msg.msgType !== 'certificate_verify' && msg.msgType !== 'finished') {
      super.onPostHandshake(msg, raw);
      return;
    }
    this.pha.dispatch(msg, raw);
  }

  // ---- Tickets (RFC 8446 §4.6.1) ----

  /** NewSessionTicket whose ticket is the sealed state we need to resume. */
  private sendTicket(agreement: ServerAgreement, rms: Uint8Array): void {
    this.sendHandshake(this.tickets.issue(agreement, rms, this.now, this.quic !== undefined), false);
    this.flushHandshake();
  }

  /** The state in a ticket we issued and that is still valid, or undefined (then the PSK is just not used). */
  private openTicket(ticket: Uint8Array): TicketState | undefined {
    const state = this.tickets.open(ticket, this.now);
    if (state === 'unreadable') {
      this.drop('ticket.rejected', 'ticket we cannot open', 'RFC 8446 §4.2.11');
      return undefined;
    }
    if (state === 'expired') {
      this.drop('ticket.expired', 'expired ticket', 'RFC 8446 §4.6.1');
      return undefined;
    }
    return state;
  }
}
