/**
 * What the client and server machines share: the record layer (framing, epochs,
 * fragmentation), handshake reassembly, alerts, application data, KeyUpdate, closure,
 * tracing and the key log. Sans-I/O: bytes and `now` in, bytes and events out.
 */
import { Counters, joinBytes, ParseError, silentTrace, type TraceBus } from '@stepwire/wire';
import {
  AlertDescription,
  AlertLevel,
  alertForParseError,
  alertName,
  decodeAlert,
  encodeAlert,
  isClosure,
  TlsAlertError,
} from './codec/alert.ts';
import { CipherSuite, ContentType, NamedGroup, SignatureScheme } from './codec/common.ts';
import {
  decodeHandshake,
  encodeHandshake,
  type HandshakeMessage,
  HandshakeReassembler,
  KeyUpdateRequest,
} from './codec/handshake.ts';
import {
  decodeTLSPlaintext,
  encodeTLSPlaintext,
  MAX_PLAINTEXT,
  RECORD_HEADER_LENGTH,
  RecordReader,
} from './codec/record.ts';
import { nobleCrypto } from './crypto/noble.ts';
import { AEAD_TAG_LENGTH, type CryptoProvider, KeyShareError } from './crypto/provider.ts';
import { type KeyLogCallback, type KeyLogLabel, keyLogLine } from './keylog.ts';
import {
  type CipherSuiteParams,
  exportKeyingMaterial,
  type KeySchedule,
  nextTrafficSecret,
  Transcript,
} from './keyschedule.ts';
import { RecordProtection } from './record.ts';

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

type Role = 'client' | 'server';

export abstract class TlsConnection {
  readonly crypto: CryptoProvider;
  readonly counters = new Counters();
  protected readonly trace: TraceBus;
  protected readonly host: string;
  protected readonly keyLog?: KeyLogCallback;

  protected stateName: string;
  protected now = 0;
  protected suite?: CipherSuiteParams;
  protected readonly transcript = new Transcript();
  protected clientRandom: Uint8Array = new Uint8Array(32);

  private readonly records = new RecordReader();
  /** The largest handshake message we take (maxHandshakeMessage); also bounds decompressed certificates. */
  protected readonly maxHandshakeBytes: number;
  private readonly reassembler: HandshakeReassembler;
  private readEpoch: RecordProtection | null = null;
  /** Whether any protected record from the peer has opened (see the cleartext-alert rule). */
  private peerRecordOpened = false;
  private writeEpoch: RecordProtection | null = null;
  private readSecret?: Uint8Array;
  private writeSecret?: Uint8Array;
  private exporterSecret?: Uint8Array;
  private pendingHandshake: Uint8Array[] = [];
  private out: Uint8Array[] = [];
  private events: TlsEvent[] = [];
  private readKeyChanged = false;
  /** Whether handshake bytes follow the message being handled, in the same record (RFC 8446 §5.1). */
  private moreHandshakeInRecord = false;
  /** The most a peer may put in one record for us (RFC 8449); ours for sending. */
  protected sendLimit = MAX_PLAINTEXT;
  /**
   * The largest TLSInnerPlaintext we accept (RFC 8449 §4: our advertised record_size_limit,
   * counting the content type and padding in TLS 1.3), once the peer has agreed to honour it.
   */
  protected receiveLimit = MAX_PLAINTEXT + 1;
  /** RFC 8446 §5.1: 0x0303, except that an initial ClientHello may go out as 0x0301 for old middleboxes. */
  protected plaintextRecordVersion = 0x0303;
  protected handshakeDone = false;
  /** QUIC mode, when set (RFC 9001 §4). */
  protected readonly quic?: QuicModeOptions;
  /** QUIC mode: the level our next handshake bytes go out at, and the one we accept CRYPTO data at. */
  private quicWriteLevel: QuicCryptoLevel = 'initial';
  private quicReadLevel: QuicCryptoLevel = 'initial';
  private failed = false;
  private sentClose = false;
  private receivedClose = false;

  protected constructor(
    readonly role: Role,
    options: TlsCommonOptions,
    initialState: string,
  ) {
    this.crypto = options.crypto ?? nobleCrypto;
    this.trace = options.trace ?? silentTrace;
    this.host = options.host ?? role;
    this.keyLog = options.keyLog;
    this.maxHandshakeBytes = options.maxHandshakeMessage ?? 1 << 17;
    this.reassembler = new HandshakeReassembler(this.maxHandshakeBytes);
    this.maxRecordsPerKey = options.maxRecordsPerKey ?? Number.POSITIVE_INFINITY;
    this.stateName = initialState;
    this.quic = options.quic;
  }

  /** The RFC 8446 Appendix A state name. */
  get state(): string {
    return this.stateName;
  }
  get isConnected(): boolean {
    return this.handshakeDone && !this.failed && !this.sentClose;
  }
  get isClosed(): boolean {
    return this.failed || (this.sentClose && this.receivedClose);
  }
  /** Bytes of a record not yet complete: a transport that ends now cut a record (RFC 8446 §6.1). */
  get partialRecordBytes(): number {
    return this.records.buffered;
  }
  get negotiatedCipherSuite(): CipherSuiteParams | undefined {
    return this.suite;
  }

  /** TLS has no timers of its own: the transport retransmits. */
  nextTimeout(): number | undefined {
    return undefined;
  }

  /** Bytes from the transport. */
  receive(bytes: Uint8Array, now: number): TlsOutput {
    this.now = now;
    if (this.failed) {
      this.drop('drop.after-failure', 'bytes after the connection failed', 'RFC 8446 §6.2');
      return this.flush();
    }
    try {
      // Records before a bad header are handled first (a Finished, answered by our ticket),
      // then the bad header fails the connection.
      const { records, error } = this.records.pushUntilError(bytes);
      for (const record of records) {
        this.handleRecord(record);
        if (this.failed) break;
      }
      this.flushHandshake();
      if (error && !this.failed && !this.receivedClose) throw error;
    } catch (e) {
      this.fail(e);
    }
    return this.flush();
  }

  /**
   * QUIC mode: handshake bytes from CRYPTO frames at `level`, in order (the QUIC connection
   * reassembles by offset). RFC 9001 §4.1.3: data at a level other than the one the handshake
   * expects next is an unexpected_message.
   */
  receiveCrypto(level: QuicCryptoLevel, data: Uint8Array, now: number): TlsOutput {
    this.now = now;
    if (!this.quic) throw new Error('receiveCrypto is for QUIC mode');
    if (this.failed) {
      this.drop('drop.after-failure', 'CRYPTO data after the connection failed', 'RFC 9001 §4.8');
      return this.flush();
    }
    try {
      if (level !== this.quicReadLevel)
        throw new TlsAlertError(
          AlertDescription.unexpected_message,
          `CRYPTO data at the ${level} level while the handshake reads at ${this.quicReadLevel}`,
        );
      if (data.length > 0) this.handleHandshakeBytes(data);
      this.flushHandshake();
    } catch (e) {
      this.fail(e);
    }
    return this.flush();
  }

  /** Application data to protect and send. */
  send(data: Uint8Array, now: number): TlsOutput {
    this.now = now;
    if (this.quic) throw new Error('in QUIC mode application data goes in STREAM frames (RFC 9001 §4)');
    if (!this.isConnected) throw new Error(`cannot send application data in state ${this.stateName}`);
    // An empty write makes no record: zero-length application data is legal (RFC 8446 §5.1)
    // but peers that expect close_notify next take it for a protocol error.
    if (data.length === 0) return this.flush();
    try {
      this.sendRecord(ContentType.application_data, data);
    } catch (e) {
      this.fail(e);
    }
    return this.flush();
  }

  /** Send close_notify (RFC 8446 §6.1); we send nothing after it. */
  close(now: number): TlsOutput {
    this.now = now;
    // RFC 9001 §4.8: QUIC closes with CONNECTION_CLOSE, never close_notify.
    if (this.quic) {
      this.sentClose = true;
      return this.flush();
    }
    if (!this.failed && !this.sentClose) {
      this.sendAlert(AlertDescription.close_notify, AlertLevel.warning);
      this.sentClose = true;
      this.setState(this.receivedClose ? 'CLOSED' : this.stateName);
    }
    return this.flush();
  }

  /** Update our sending keys and optionally ask the peer to update theirs (RFC 8446 §4.6.3). */
  updateKeys(requestPeerUpdate: boolean, now: number): TlsOutput {
    this.now = now;
    if (!this.isConnected) throw new Error('KeyUpdate before the handshake completed');
    // RFC 9001 §6: QUIC updates keys with its Key Phase bit; TLS KeyUpdate is not used.
    if (this.quic) throw new Error('in QUIC mode keys are updated by QUIC (RFC 9001 §6)');
    this.sendHandshake({
      msgType: 'key_update',
      requestUpdate: requestPeerUpdate
        ? KeyUpdateRequest.update_requested
        : KeyUpdateRequest.update_not_requested,
    });
    this.flushHandshake();
    this.rotateWriteKey();
    return this.flush();
  }

  /** TLS-Exporter (RFC 8446 §7.5) over the exporter_master_secret. */
  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    if (!this.exporterSecret || !this.suite)
      throw new Error('exporter secret not available before the handshake');
    return exportKeyingMaterial(this.crypto, this.suite.hash, this.exporterSecret, label, context, length);
  }

  // ---- For the subclasses ----

  protected abstract onHandshakeMessage(msg: HandshakeMessage, raw: Uint8Array): void;

  /** Count, and trace when someone listens, input we ignore on purpose. */
  protected drop(counter: string, summary: string, rfc: string): void {
    this.counters.inc(counter);
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'tls',
        dir: 'drop',
        summary,
        reason: counter,
        rfc,
      });
    }
  }

  protected emit(e: TlsEvent): void {
    this.events.push(e);
  }

  protected setState(to: string, rfc?: string): void {
    const from = this.stateName;
    if (from === to) return;
    this.stateName = to;
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'tls',
        dir: 'local',
        summary: `${from} -> ${to}`,
        state: { from, to },
        rfc,
      });
    }
  }

  protected traceMessage(dir: 'in' | 'out', msg: HandshakeMessage): void {
    if (!this.trace.enabled) return;
    const { detail, fields } = describeMessage(msg);
    this.trace.emit({
      t: this.now,
      host: this.host,
      layer: 'tls',
      dir,
      summary: `${messageName(msg)}${detail ? ` ${detail}` : ''}`,
      fields: { msgType: msg.msgType, ...fields },
      rfc: MESSAGE_RFC[msg.msgType],
    });
  }

  /**
   * After the server Finished (RFC 8446 §7.1): the master secret, both application traffic
   * secrets and the exporter secret over the transcript up to that Finished; logged for
   * the key log. Each side installs the keys itself, at the moment its role requires.
   */
  protected deriveApplicationSecrets(
    schedule: KeySchedule,
    hash: CipherSuiteParams['hash'],
  ): { cAp: Uint8Array; sAp: Uint8Array } {
    schedule.deriveMasterSecret();
    const th = this.transcript.hash(this.crypto, hash);
    const cAp = schedule.clientApplicationTrafficSecret0(th);
    const sAp = schedule.serverApplicationTrafficSecret0(th);
    const exporter = schedule.exporterMasterSecret(th);
    this.log('CLIENT_TRAFFIC_SECRET_0', cAp);
    this.log('SERVER_TRAFFIC_SECRET_0', sAp);
    this.log('EXPORTER_SECRET', exporter);
    this.setExporterSecret(exporter);
    return { cAp, sAp };
  }

  protected log(label: KeyLogLabel, secret: Uint8Array): void {
    this.keyLog?.(keyLogLine(label, this.clientRandom, secret));
    // The step of the key schedule, for viewers — its name only: secrets leave through the
    // key log callback, never through traces.
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'tls',
        dir: 'local',
        summary: `key schedule: ${label}`,
        fields: { keySchedule: label },
        rfc: 'RFC 8446 §7.1',
      });
    }
  }

  /** Queue a handshake message: it joins the transcript now and leaves in the next flush. */
  protected sendHandshake(msg: HandshakeMessage, addToTranscript = true): Uint8Array {
    const raw = encodeHandshake(msg);
    if (addToTranscript) this.transcript.add(raw);
    this.pendingHandshake.push(raw);
    this.traceMessage('out', msg);
    return raw;
  }

  /** Write the queued handshake messages as records of the current write epoch (coalesced, §5.1). */
  protected flushHandshake(): void {
    if (this.pendingHandshake.length === 0) return;
    const all =
      this.pendingHandshake.length === 1 ? this.pendingHandshake[0]! : joinBytes(this.pendingHandshake);
    this.pendingHandshake = [];
    if (this.quic) this.emit({ type: 'quic-crypto', level: this.quicWriteLevel, data: all });
    else this.sendRecord(ContentType.handshake, all);
  }

  /** A compatibility-mode change_cipher_spec record (RFC 8446 §D.4). */
  protected sendChangeCipherSpec(): void {
    // RFC 9001 §8.4: no middlebox compatibility mode in QUIC.
    if (this.quic) return;
    this.flushHandshake();
    this.out.push(
      encodeTLSPlaintext({
        type: ContentType.change_cipher_spec,
        legacyRecordVersion: 0x0303,
        fragment: Uint8Array.of(1),
      }),
    );
  }

  protected setReadKey(secret: Uint8Array, level: KeyLevel): void {
    // RFC 8446 §5.1: handshake messages must not span a key change, and a message that follows
    // the key change in the same record is refused before the change takes effect (so a
    // Finished followed by more data never completes the handshake). RFC 9001 §4.1.3: the
    // same holds for CRYPTO data across encryption levels.
    if (!this.reassembler.empty || this.moreHandshakeInRecord)
      throw new TlsAlertError(AlertDescription.unexpected_message, 'handshake message spans a key change');
    if (this.quic) {
      this.emitQuicSecret(level, 'read', secret);
      if (level !== 'early') this.quicReadLevel = level;
      this.readSecret = secret;
      this.readKeyChanged = true;
      return;
    }
    this.readEpoch = new RecordProtection(this.crypto, this.suite!, secret);
    this.readSecret = secret;
    this.readKeyChanged = true;
  }

  /** Back to plaintext writing: a HelloRetryRequest cancels the 0-RTT epoch (RFC 8446 §4.1.2). */
  protected clearWriteKey(): void {
    this.flushHandshake();
    this.writeEpoch = null;
    this.writeSecret = undefined;
  }

  /** RFC 8446 §5: a compatibility change_cipher_spec may arrive between the first ClientHello and the peer's Finished. */
  protected ccsAllowed(): boolean {
    return !this.handshakeDone;
  }

  /** A server in WAIT_EOED takes application data as 0-RTT data; everyone else refuses it before the handshake. */
  protected onEarlyApplicationData(_content: Uint8Array): boolean {
    return false;
  }

  protected setWriteKey(secret: Uint8Array, level: KeyLevel): void {
    this.flushHandshake();
    if (this.quic) {
      this.emitQuicSecret(level, 'write', secret);
      // 0-RTT packets carry no CRYPTO frames: handshake bytes stay at their level.
      if (level !== 'early') this.quicWriteLevel = level;
      this.writeSecret = secret;
      return;
    }
    this.writeEpoch = new RecordProtection(this.crypto, this.suite!, secret);
    this.writeSecret = secret;
  }

  private emitQuicSecret(level: KeyLevel, direction: 'read' | 'write', secret: Uint8Array): void {
    this.emit({ type: 'quic-secret', level, direction, secret, cipherSuite: this.suite!.id });
  }

  /** The current traffic secret one way: post-handshake Finished keys derive from it (RFC 8446 §4.4). */
  protected trafficSecret(direction: 'read' | 'write'): Uint8Array | undefined {
    return direction === 'read' ? this.readSecret : this.writeSecret;
  }

  protected setExporterSecret(secret: Uint8Array): void {
    this.exporterSecret = secret;
  }

  protected completeHandshake(event: Extract<TlsEvent, { type: 'handshake-complete' }>): void {
    this.handshakeDone = true;
    this.setState('CONNECTED');
    this.emit(event);
  }

  // ---- Records ----

  private handleRecord(record: Uint8Array): void {
    const type = record[0]!;
    if (this.receivedClose) {
      // RFC 8446 §6.1: data after close_notify is ignored.
      this.drop('drop.after-close-notify', 'record after close_notify', 'RFC 8446 §6.1');
      return;
    }
    if (type === ContentType.change_cipher_spec) {
      const p = decodeTLSPlaintext(record);
      // RFC 8446 §5: a single 0x01 CCS during the handshake is dropped; anything else is fatal.
      if (this.ccsAllowed() && p.fragment.length === 1 && p.fragment[0] === 1) {
        this.drop('ccs.ignored', 'compatibility change_cipher_spec', 'RFC 8446 §5');
        return;
      }
      throw new TlsAlertError(
        AlertDescription.unexpected_message,
        'change_cipher_spec outside the handshake',
      );
    }
    let contentType: number;
    let content: Uint8Array;
    if (this.readEpoch && type === ContentType.alert && !this.peerRecordOpened) {
      // A peer that gives up before it has protected anything may still send its alert in
      // the clear: OpenSSL's client does so when it refuses our certificate (it has not
      // switched to its handshake keys yet). Taking that alert for what it is tells the
      // application why the handshake failed; dropping it would report a protocol error of
      // our own instead. Once one protected record has arrived, cleartext is refused.
      const p = decodeTLSPlaintext(record);
      this.drop('alert.unprotected', 'alert in the clear before the peer protected a record', 'RFC 8446 §6');
      this.handleAlert(p.fragment);
      return;
    }
    if (this.readEpoch) {
      if (type !== ContentType.application_data) {
        throw new TlsAlertError(
          AlertDescription.unexpected_message,
          `unprotected record of type ${type} after keys`,
        );
      }
      let opened: { type: number; content: Uint8Array };
      try {
        opened = this.readEpoch.open(record);
        this.peerRecordOpened = true;
      } catch (e) {
        if (this.skipRejectedEarlyData(record, e)) return;
        throw e;
      }
      // RFC 8449 §4: a record larger than the limit we advertised is a record_overflow. The
      // inner plaintext is the ciphertext less the AEAD tag (content, type byte and padding).
      const inner = record.length - RECORD_HEADER_LENGTH - AEAD_TAG_LENGTH;
      if (inner > this.receiveLimit) {
        throw new TlsAlertError(
          AlertDescription.record_overflow,
          `inner plaintext of ${inner} bytes exceeds our record_size_limit ${this.receiveLimit}`,
        );
      }
      contentType = opened.type;
      content = opened.content;
    } else {
      if (type === ContentType.application_data && this.skipRejectedEarlyData(record, undefined)) return;
      const p = decodeTLSPlaintext(record);
      contentType = p.type;
      content = p.fragment;
      if (contentType === ContentType.application_data) {
        throw new TlsAlertError(AlertDescription.unexpected_message, 'application data before keys');
      }
    }
    // RFC 8446 §5.1: "Handshake messages MUST NOT be interleaved with other record types":
    // a record of another type while a handshake message is incomplete.
    if (contentType !== ContentType.handshake && !this.reassembler.empty)
      throw new TlsAlertError(
        AlertDescription.unexpected_message,
        'a record of another type inside a fragmented handshake message',
      );
    switch (contentType) {
      case ContentType.handshake:
        if (content.length === 0)
          throw new TlsAlertError(AlertDescription.unexpected_message, 'empty handshake record');
        this.handleHandshakeBytes(content);
        return;
      case ContentType.alert:
        // RFC 8446 §5.1: zero-length alert fragments MUST NOT be sent; an alert record holds
        // exactly one alert (other lengths fail to decode: decode_error).
        if (content.length === 0)
          throw new TlsAlertError(AlertDescription.unexpected_message, 'empty alert record');
        this.handleAlert(content);
        return;
      case ContentType.application_data:
        // RFC 8446 §2: application data flows only after the handshake (0-RTT is not accepted here).
        if (!this.handshakeDone) {
          if (this.onEarlyApplicationData(content)) return;
          throw new TlsAlertError(
            AlertDescription.unexpected_message,
            'application data during the handshake',
          );
        }
        if (content.length > 0) this.emit({ type: 'data', data: content });
        return;
      default:
        throw new TlsAlertError(
          AlertDescription.unexpected_message,
          `unexpected content type ${contentType}`,
        );
    }
  }

  /**
   * Bytes of 0-RTT data we may still skip. A server that does not accept early data must
   * discard the client's 0-RTT records (which it cannot decrypt, or which arrive before its
   * HelloRetryRequest's answer) up to max_early_data_size (RFC 8446 §4.2.10). Set by the server.
   */
  protected earlyDataSkipBudget = 0;

  private skipRejectedEarlyData(record: Uint8Array, error: unknown): boolean {
    if (this.earlyDataSkipBudget <= 0 || this.handshakeDone) return false;
    if (
      error !== undefined &&
      !(error instanceof TlsAlertError && error.description === AlertDescription.bad_record_mac)
    ) {
      return false;
    }
    const n = record.length - 5;
    if (n > this.earlyDataSkipBudget) return false;
    this.earlyDataSkipBudget -= n;
    this.drop('early-data.skipped', 'rejected 0-RTT record', 'RFC 8446 §4.2.10');
    return true;
  }

  private handleHandshakeBytes(fragment: Uint8Array): void {
    const messages = this.reassembler.push(fragment);
    for (let i = 0; i < messages.length; i++) {
      const raw = messages[i]!;
      this.readKeyChanged = false;
      this.moreHandshakeInRecord = i < messages.length - 1 || !this.reassembler.empty;
      const msg = decodeHandshake(raw);
      this.traceMessage('in', msg);
      if (this.handshakeDone) this.onPostHandshake(msg, raw);
      else this.onHandshakeMessage(msg, raw);
      if (this.failed) return;
      // RFC 8446 §5.1: a key change must fall on a record boundary.
      if (this.readKeyChanged && (i < messages.length - 1 || !this.reassembler.empty)) {
        throw new TlsAlertError(
          AlertDescription.unexpected_message,
          'data after a key change in the same record',
        );
      }
    }
    this.moreHandshakeInRecord = false;
  }

  protected onPostHandshake(msg: HandshakeMessage, _raw: Uint8Array): void {
    // RFC 9001 §6: a TLS KeyUpdate in QUIC is a connection error 0x010a (unexpected_message).
    if (msg.msgType === 'key_update' && this.quic)
      throw new TlsAlertError(AlertDescription.unexpected_message, 'TLS KeyUpdate in QUIC');
    if (msg.msgType === 'key_update') {
      // RFC 8446 §5.1: the key changes after this message, so nothing may follow it in its record.
      if (this.moreHandshakeInRecord || !this.reassembler.empty)
        throw new TlsAlertError(
          AlertDescription.unexpected_message,
          'data after a KeyUpdate in the same record',
        );
      // RFC 8446 §4.6.3: update the read key; answer a request with our own update.
      this.readSecret = nextTrafficSecret(this.crypto, this.suite!.hash, this.readSecret!);
      this.readEpoch = new RecordProtection(this.crypto, this.suite!, this.readSecret);
      this.readKeyChanged = true;
      this.emit({ type: 'key-update', direction: 'read' });
      if (msg.requestUpdate === KeyUpdateRequest.update_requested && !this.sentClose) {
        this.sendHandshake({ msgType: 'key_update', requestUpdate: KeyUpdateRequest.update_not_requested });
        this.flushHandshake();
        this.rotateWriteKey();
      }
      return;
    }
    throw new TlsAlertError(
      AlertDescription.unexpected_message,
      `unexpected ${msg.msgType} after the handshake`,
    );
  }

  private readonly maxRecordsPerKey: number;

  /** RFC 8446 §5.5: before a key reaches its limit, send a KeyUpdate and continue under the next one. */
  private rekeyIfDue(): void {
    const epoch = this.writeEpoch;
    if (!epoch || !this.handshakeDone || this.sentClose) return;
    if (!epoch.keyUpdateDue && epoch.recordsProcessed < this.maxRecordsPerKey) return;
    this.sendRecord(
      ContentType.handshake,
      encodeHandshake({ msgType: 'key_update', requestUpdate: KeyUpdateRequest.update_not_requested }),
    );
    this.rotateWriteKey();
  }

  private rotateWriteKey(): void {
    const next = nextTrafficSecret(this.crypto, this.suite!.hash, this.writeSecret!);
    this.writeEpoch = new RecordProtection(this.crypto, this.suite!, next);
    this.writeSecret = next;
    this.emit({ type: 'key-update', direction: 'write' });
  }

  private handleAlert(content: Uint8Array): void {
    const a = decodeAlert(content);
    if (a.description === AlertDescription.close_notify) {
      this.receivedClose = true;
      this.emit({ type: 'peer-closed' });
      if (this.sentClose) this.setState('CLOSED');
      return;
    }
    // RFC 8446 §6: all other alerts end the connection, whatever their level; user_canceled is followed by close_notify.
    if (isClosure(a.description)) {
      this.drop('alert.user_canceled', 'user_canceled alert', 'RFC 8446 §6.1');
      return;
    }
    this.failed = true;
    this.emit({
      type: 'error',
      alert: a.description,
      alertName: alertName(a.description),
      reason: 'alert from peer',
      sent: false,
    });
    this.setState('CLOSED');
  }

  protected sendAlert(description: number, level: number = AlertLevel.fatal): void {
    this.pendingHandshake = [];
    // RFC 9001 §4.8: in QUIC the alert travels as CONNECTION_CLOSE, made from the error event.
    if (!this.quic) this.sendRecord(ContentType.alert, encodeAlert({ level, description }));
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.host,
        layer: 'tls',
        dir: 'out',
        summary: `Alert ${alertName(description)}`,
      });
    }
  }

  /** Fragment into records no larger than the peer allows (RFC 8446 §5.1, RFC 8449). */
  protected sendRecord(type: number, data: Uint8Array): void {
    const limit = this.writeEpoch ? this.sendLimit : MAX_PLAINTEXT;
    let at = 0;
    do {
      if (type === ContentType.application_data) this.rekeyIfDue();
      const chunk = data.subarray(at, Math.min(data.length, at + limit));
      at += chunk.length;
      if (this.writeEpoch) this.out.push(this.writeEpoch.seal(type, chunk));
      else
        this.out.push(
          encodeTLSPlaintext({ type, legacyRecordVersion: this.plaintextRecordVersion, fragment: chunk }),
        );
    } while (at < data.length);
  }

  /** Map any failure to the alert RFC 8446 asks for, send it, and stop. */
  protected fail(e: unknown): void {
    if (this.failed) return;
    let description: number;
    let reason: string;
    if (e instanceof TlsAlertError) {
      description = e.description;
      reason = e.message;
    } else if (e instanceof ParseError) {
      // RFC 8446 §6.2: a message that cannot be parsed is a decode_error, except where the RFC names another.
      description = alertForParseError(e);
      reason = e.message;
    } else if (e instanceof KeyShareError) {
      description = AlertDescription.illegal_parameter;
      reason = e.message;
    } else {
      description = AlertDescription.internal_error;
      reason = e instanceof Error ? e.message : String(e);
    }
    this.counters.inc(`alert.sent.${alertName(description)}`);
    try {
      this.sendAlert(description);
    } catch {
      // Nothing more can be sent (e.g. the sequence space is exhausted); the error event still goes out.
    }
    this.failed = true;
    this.emit({ type: 'error', alert: description, alertName: alertName(description), reason, sent: true });
    this.setState('CLOSED');
  }

  protected flush(): TlsOutput {
    const o = { data: this.out, events: this.events };
    this.out = [];
    this.events = [];
    return o;
  }

  /** For subclasses that start a flight outside receive() (a client's first ClientHello). */
  protected guard(fn: () => void): TlsOutput {
    try {
      fn();
      this.flushHandshake();
    } catch (e) {
      this.fail(e);
    }
    return this.flush();
  }
}

const MESSAGE_NAMES: Record<HandshakeMessage['msgType'], string> = {
  client_hello: 'ClientHello',
  server_hello: 'ServerHello',
  hello_retry_request: 'HelloRetryRequest',
  encrypted_extensions: 'EncryptedExtensions',
  certificate_request: 'CertificateRequest',
  certificate: 'Certificate',
  certificate_verify: 'CertificateVerify',
  finished: 'Finished',
  new_session_ticket: 'NewSessionTicket',
  end_of_early_data: 'EndOfEarlyData',
  key_update: 'KeyUpdate',
  compressed_certificate: 'CompressedCertificate',
};

export function messageName(m: HandshakeMessage): string {
  return MESSAGE_NAMES[m.msgType];
}

const MESSAGE_RFC: Record<HandshakeMessage['msgType'], string> = {
  client_hello: 'RFC 8446 §4.1.2',
  server_hello: 'RFC 8446 §4.1.3',
  hello_retry_request: 'RFC 8446 §4.1.4',
  encrypted_extensions: 'RFC 8446 §4.3.1',
  certificate_request: 'RFC 8446 §4.3.2',
  certificate: 'RFC 8446 §4.4.2',
  certificate_verify: 'RFC 8446 §4.4.3',
  finished: 'RFC 8446 §4.4.4',
  new_session_ticket: 'RFC 8446 §4.6.1',
  end_of_early_data: 'RFC 8446 §4.5',
  key_update: 'RFC 8446 §4.6.3',
  compressed_certificate: 'RFC 8879 §4',
};

/**
 * A one-line description and fields for traces: negotiated parameters only, never key
 * shares' private halves, PSKs, binders, tickets or Finished values.
 */
const hex16 = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;

/** The RFC's name for a code point, for a reader of the ladder; hex when we have none. */
function nameIn(table: Record<string, number>): (v: number) => string {
  const names = new Map(Object.entries(table).map(([k, v]) => [v, k]));
  return (v) => names.get(v) ?? hex16(v);
}
const suiteName = nameIn(CipherSuite);
const groupName = nameIn(NamedGroup);
const schemeName = nameIn(SignatureScheme);

function describeMessage(m: HandshakeMessage): { detail: string; fields: Record<string, unknown> } {
  switch (m.msgType) {
    case 'client_hello': {
      const sni = m.extensions.find((e) => e.type === 'server_name');
      const ks = m.extensions.find((e) => e.type === 'key_share');
      const groups = ks && 'clientShares' in ks ? ks.clientShares.map((s) => hex16(s.group)) : [];
      const psk = m.extensions.some((e) => e.type === 'pre_shared_key');
      const fields = { suites: m.cipherSuites.map(hex16), shares: groups, sni: sni?.hostName, psk };
      return {
        detail: `suites=${m.cipherSuites.map(suiteName).join(',')} shares=${ks && 'clientShares' in ks ? ks.clientShares.map((x) => groupName(x.group)).join(',') : ''}${sni?.hostName ? ` sni=${sni.hostName}` : ''}${psk ? ' psk' : ''}`,
        fields,
      };
    }
    case 'server_hello':
    case 'hello_retry_request': {
      const ks = m.extensions.find((e) => e.type === 'key_share');
      const group =
        ks && 'serverShare' in ks
          ? ks.serverShare.group
          : ks && 'selectedGroup' in ks
            ? ks.selectedGroup
            : undefined;
      const psk = m.extensions.some((e) => e.type === 'pre_shared_key');
      const fields = {
        suite: hex16(m.cipherSuite),
        group: group === undefined ? undefined : hex16(group),
        psk,
      };
      return {
        detail: `suite=${suiteName(m.cipherSuite)}${group === undefined ? '' : ` group=${groupName(group)}`}${psk ? ' psk' : ''}`,
        fields,
      };
    }
    case 'certificate':
      return { detail: `${m.certificateList.length} cert(s)`, fields: { count: m.certificateList.length } };
    case 'certificate_verify':
      return { detail: `scheme=${schemeName(m.algorithm)}`, fields: { scheme: m.algorithm } };
    case 'new_session_ticket':
      return { detail: `lifetime=${m.ticketLifetime}s`, fields: { lifetime: m.ticketLifetime } };
    case 'key_update':
      return {
        detail: m.requestUpdate ? 'update_requested' : 'update_not_requested',
        fields: { requestUpdate: m.requestUpdate },
      };
    default:
      return { detail: '', fields: {} };
  }
}
