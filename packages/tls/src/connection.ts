/**
 * What the client and server machines share: the record layer (framing, epochs,
 * fragmentation), handshake reassembly, alerts, application data, KeyUpdate, closure,
 * tracing and the key log. Sans-I/O: bytes and `now` in, bytes and events out.
 *
 * Beside it (connection/): types.ts (options, events, SessionTicket, the QUIC mode's options)
 * and trace.ts (handshake messages' names, RFC sections and one-line summaries).
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
import { ContentType } from './codec/common.ts';
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
import { describeMessage, MESSAGE_RFC, messageName } from './connection/trace.ts';
import type {
  KeyLevel,
  QuicCryptoLevel,
  QuicModeOptions,
  TlsCommonOptions,
  TlsEvent,
  TlsOutput,
} from './connection/types.ts';
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

export { messageName } from './connection/trace.ts';
export * from './connection/types.ts';

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
