import { webcrypto } from 'node:crypto';
import {
  bytesEqual,
  Counters,
  concatBytes,
  fromUtf8,
  joinBytes,
  silentTrace,
  type TraceBus,
  toHex,
  utf8,
} from '@stepwire/wire';
import { type DatagramEvent, type OpenedPacketInfo, openDatagram } from '../crypto/datagram.ts';
import { KeyPhaseState } from '../crypto/key-update.ts';
import {
  AEAD_LIMITS,
  derivePacketKeys,
  initialKeys,
  nodeQuicCrypto,
  type PacketKeys,
  QUIC_SUITE_BY_CODE,
  type QuicCrypto,
} from '../crypto/keys.ts';
import { AEAD_TAG_LENGTH, protectPacket } from '../crypto/protect.ts';
import { verifyRetry } from '../crypto/retry.ts';
import { cryptoError, TransportErrorCode } from '../errors.ts';
import {
  ackFrameRanges,
  encodeFrame,
  encodeFrames,
  type Frame,
  FrameType,
  frameTypeCode,
} from '../frames/frame.ts';
import { isAckEliciting, isProbingPacket } from '../frames/legality.ts';
import {
  encodePacketHeader,
  type PacketHeader,
  type PacketType,
  QUIC_VERSION_1,
  type RetryPacket,
  splitCoalescedPackets,
} from '../packet/header.ts';
import { encodePacketNumber } from '../packet/number.ts';
import { isStatelessReset, MIN_STATELESS_RESET_LENGTH } from '../packet/stateless-reset.ts';
import { varintLength } from '../packet/varint.ts';
import { AckTracker } from '../recovery/ack-tracker.ts';
import { type PacketNumberSpace, Recovery, type SentPacket, type TimeoutAction } from '../recovery/loss.ts';
import { Pacer } from '../recovery/pacer.ts';
import { RttEstimator } from '../recovery/rtt.ts';
import { ReceiveBuffer } from '../streams/receive-buffer.ts';
import type { StreamDirection } from '../streams/stream-id.ts';
import { frameSummary, packetSummary } from '../summary.ts';
import type { QuicLevel, QuicTls, QuicTlsEvent } from '../tls/types.ts';
import {
  checkTransportParametersFrom,
  decodeTransportParameters,
  effectiveTransportParameters,
  encodeTransportParameters,
  type TransportParameters,
} from '../transport-parameters.ts';
import { ConnectionIds, type EndpointEvent } from './cids.ts';
import { addPadding, frameLength, type SentItem, TransportError, transportError } from './frames.ts';
import { type ConnectionInput, type ConnectionState, connectionTransition } from './state.ts';
import { StreamSet } from './stream-set.ts';
import { SendStream } from './streams.ts';
import {
  DEFAULT_TRANSPORT,
  type QuicCloseError,
  type QuicConnectionEvent,
  type QuicConnectionOptions,
  type RemoteAddress,
  type TransportConfig,
} from './types.ts';

/**
 * A QUIC connection, sans-I/O (RFC 9000, 9001, 9002), shaped like quinn-proto's
 * `Connection`: datagrams in with `handle(datagram, now)`, datagrams out with
 * `pollTransmit(now)`, the next deadline from `pollTimeout()` (to be passed back to
 * `handleTimeout(now)`), and events for the application from `pollEvent()`. It owns no
 * socket, timer or clock. Times are milliseconds on the caller's clock.
 */

interface Space {
  readonly name: PacketNumberSpace;
  readonly level: 'initial' | 'handshake' | 'application';
  nextPn: number;
  readonly ack: AckTracker;
  /** Largest packet number processed (RFC 9000 Appendix A.3), -1 before any. */
  largestRecvPn: number;
  /** CRYPTO data to send at this level: a send stream without flow control (RFC 9000 §7.5). */
  readonly cryptoSend: SendStream;
  readonly cryptoRecv: ReceiveBuffer;
  tx: PacketKeys | undefined;
  rx: PacketKeys | undefined;
  discarded: boolean;
  /** Ack-eliciting packets owed by a PTO (RFC 9002 §6.2.4). */
  probes: number;
}

export type { EndpointEvent } from './cids.ts';

const SPACE_OF_LEVEL = {
  initial: 'Initial',
  handshake: 'Handshake',
  application: 'ApplicationData',
} as const;
/** Minimum datagram size carrying a client Initial (RFC 9000 §14.1). */
export const MIN_INITIAL_DATAGRAM = 1200;
/** RFC 9000 §8.1: before validation a server sends at most three times what it received. */
const AMPLIFICATION_FACTOR = 3;
/** Out-of-order packets held until their keys arrive (RFC 9001 §5.7). */
const MAX_UNDECRYPTABLE = 8;
const MAX_PATH_RESPONSES = 4;
/** DATAGRAM payloads held each way unless the transport config says otherwise. */
const DEFAULT_DATAGRAM_QUEUE = 256;

function defaultRandom(n: number): Uint8Array {
  return webcrypto.getRandomValues(new Uint8Array(n));
}

export class QuicConnection {
  readonly role: 'client' | 'server';
  readonly counters = new Counters();
  private connState: ConnectionState = 'handshaking';
  private readonly config: TransportConfig;
  private readonly qc: QuicCrypto;
  private readonly random: (n: number) => Uint8Array;
  private readonly trace: TraceBus;
  private readonly host: string;
  private readonly peerName: string | undefined;
  private readonly tls: QuicTls;
  private readonly resetTokenFor: (cid: Uint8Array) => Uint8Array;
  private readonly localCidLength: number;
  private readonly tlsEpoch: number;

  private readonly spaces: Record<PacketNumberSpace, Space>;
  private oneRtt: KeyPhaseState | undefined = undefined;
  private pendingAppTx: PacketKeys | undefined = undefined;
  private pendingAppRx: PacketKeys | undefined = undefined;
  /** 0-RTT keys (RFC 9001 §4.6): the client's to write, the server's to read. */
  private zeroRttTx: PacketKeys | undefined = undefined;
  private zeroRttRx: PacketKeys | undefined = undefined;
  /** Client: packet numbers sent in 0-RTT, to send again in 1-RTT if the server rejects them. */
  private readonly zeroRttSent = new Set<number>();
  private recovery: Recovery<SentItem[]>;
  private readonly congestion: 'newreno' | 'cubic';
  /** RFC 9002 §7.7; undefined when pacing is off. */
  private readonly pacer: Pacer | undefined;
  /** When the pacer next lets 1-RTT data go, while it is holding some back (RFC 9002 §7.7). */
  private pacingDeadline: number | undefined = undefined;
  /** Set by pollTransmit for the datagram being built: the pacer holds 1-RTT data back. */
  private paced = false;
  private readonly events: QuicConnectionEvent[] = [];

  // ---- connection IDs (RFC 9000 §5.1) ----
  /** Our first SCID. */
  readonly initialLocalCid: Uint8Array;
  private readonly cids: ConnectionIds;
  /** Client: the first DCID, original_destination_connection_id to check (RFC 9000 §7.3). */
  private readonly originalDcid: Uint8Array;
  private retrySourceCid: Uint8Array | undefined;
  /** The token our Initials carry: a Retry's, or a NEW_TOKEN token from before (RFC 9000 §17.2.2). */
  private retryToken: Uint8Array = new Uint8Array(0);
  /** Server: NEW_TOKEN to send (RFC 9000 §19.7). */
  private newTokenPending: Uint8Array | undefined = undefined;
  private readonly makeNewToken: (() => Uint8Array) | undefined;
  /** Client: the latest NEW_TOKEN token, to pass as `token` to the next connection to this server (RFC 9000 §8.1.3). */
  receivedToken: Uint8Array | undefined = undefined;
  private receivedFirstServerPacket = false;
  private readonly clientScidSeen: Uint8Array | undefined;

  // ---- handshake ----
  private handshakeComplete = false;
  private handshakeConfirmed = false;
  private handshakeDonePending = false;
  private alpn: string | undefined = undefined;
  peerParams: TransportParameters | undefined = undefined;
  private addressValidated: boolean;
  private bytesReceived = 0;
  private bytesSent = 0;
  private readonly undecryptable: Uint8Array[] = [];
  private authFailures = 0;
  /** 1-RTT packets protected since the last key update we made or followed. */
  private packetsInPhase = 0;

  // ---- streams and flow control (RFC 9000 §2-§4) ----
  private readonly streamSet: StreamSet;
  private readonly pathResponses: Uint8Array[] = [];
  /**
   * PATH_CHALLENGEs that arrived from an address we do not send to (a probe of a new path
   * that did not move us there): answered on the path they came from (RFC 9000 §8.2.2).
   */
  private readonly probeResponses: { data: Uint8Array; remote: RemoteAddress; budget: number }[] = [];
  /** While handling a datagram from an address other than the current one: that address and the datagram's size. */
  private arrivalElsewhere: { remote: RemoteAddress; size: number } | undefined = undefined;
  /** Where the datagram pollTransmit last returned goes, when not to `remote` (a probe response). */
  transmitRemote: RemoteAddress | undefined = undefined;
  // ---- DATAGRAM (RFC 9221) ----
  /** Payloads queued by sendDatagram: sent once, never again (RFC 9221 §5.2). */
  private readonly datagramsOut: Uint8Array[] = [];
  /** 'datagram' events pushed and not polled yet. */
  private datagramsUnpolled = 0;
  private readonly datagramQueueLimit: number;
  // ---- the path (RFC 9000 §8.2, §9) ----
  private remoteAddr: RemoteAddress | undefined;
  private previousRemote: RemoteAddress | undefined = undefined;
  private pathValidated = true;
  private pathBytesReceived = 0;
  private pathBytesSent = 0;
  private pathChallenge: { data: Uint8Array; sent: boolean; deadline: number } | undefined = undefined;
  /** Set while processing a datagram that held the newest non-probing packet (§9.3). */
  private newestNonProbing = false;
  private peerAckDelayExponent = 3;

  // ---- timers ----
  private idleTimeout: number;
  private idleDeadline: number | undefined;
  private ackElicitingSinceReceive = false;
  private closeDeadline: number | undefined = undefined;
  private keyDiscardDeadline: number | undefined = undefined;
  private lastKeyUpdates = 0;

  // ---- closing (RFC 9000 §10.2) ----
  private closeFrame: Frame | undefined = undefined;
  private closeSendPending = false;
  private packetsWhileClosing = 0;
  closeError: QuicCloseError | undefined = undefined;

  constructor(opts: QuicConnectionOptions) {
    this.role = opts.role;
    this.tlsEpoch = opts.tlsEpoch ?? 0;
    this.remoteAddr = opts.remote ? { ...opts.remote } : undefined;
    this.makeNewToken = opts.newToken;
    if (opts.role === 'client' && opts.token) this.retryToken = opts.token;
    this.config = { ...DEFAULT_TRANSPORT, ...opts.transport };
    this.qc = opts.crypto ?? nodeQuicCrypto;
    this.random = opts.random ?? defaultRandom;
    this.trace = opts.trace ?? silentTrace;
    this.host = opts.host ?? opts.role;
    this.peerName = opts.peer;
    this.localCidLength = opts.localCidLength ?? opts.localCid?.length ?? 8;
    this.resetTokenFor = opts.resetTokenFor ?? (() => this.random(16));
    this.congestion = opts.congestion ?? 'cubic';
    this.pacer = opts.pacing === false ? undefined : new Pacer(this.config.maxDatagramSize);
    this.recovery = new Recovery({
      isServer: this.role === 'server',
      maxDatagramSize: this.config.maxDatagramSize,
      congestion: this.congestion,
    });
    this.streamSet = new StreamSet(this.role, this.config, this.events);
    this.datagramQueueLimit = this.config.datagramQueueLimit ?? DEFAULT_DATAGRAM_QUEUE;
    this.idleTimeout = this.config.maxIdleTimeout;
    this.idleDeadline = this.idleTimeout > 0 ? opts.now + this.idleTimeout : undefined;

    const space = (name: PacketNumberSpace, level: Space['level']): Space => ({
      name,
      level,
      nextPn: 0,
      ack: new AckTracker({
        space: name,
        maxAckDelay: this.config.maxAckDelay,
        ackDelayExponent: this.config.ackDelayExponent,
      }),
      largestRecvPn: -1,
      cryptoSend: new SendStream(-1, Number.POSITIVE_INFINITY),
      cryptoRecv: new ReceiveBuffer(this.config.cryptoBufferSize, 256),
      tx: undefined,
      rx: undefined,
      discarded: false,
      probes: 0,
    });
    this.spaces = {
      Initial: space('Initial', 'initial'),
      Handshake: space('Handshake', 'handshake'),
      ApplicationData: space('ApplicationData', 'application'),
    };

    this.initialLocalCid = opts.localCid ?? this.random(this.localCidLength);
    // RFC 9000 §7.2: the client's first DCID is unpredictable and at least 8 bytes.
    const firstDcid = opts.role === 'client' ? (opts.initialDcid ?? this.random(8)) : undefined;
    const firstPeer = firstDcid ?? opts.server?.clientScid;
    if (!firstPeer) throw new Error('a server connection needs the client Initial info (opts.server)');
    this.cids = new ConnectionIds(
      this.localCidLength,
      this.random,
      this.resetTokenFor,
      this.initialLocalCid,
      firstPeer,
      this.config.activeConnectionIdLimit,
    );

    const ours: TransportParameters = {
      max_idle_timeout: this.config.maxIdleTimeout,
      initial_max_data: this.config.initialMaxData,
      initial_max_stream_data_bidi_local: this.config.initialMaxStreamDataBidiLocal,
      initial_max_stream_data_bidi_remote: this.config.initialMaxStreamDataBidiRemote,
      initial_max_stream_data_uni: this.config.initialMaxStreamDataUni,
      initial_max_streams_bidi: this.config.initialMaxStreamsBidi,
      initial_max_streams_uni: this.config.initialMaxStreamsUni,
      active_connection_id_limit: this.config.activeConnectionIdLimit,
      initial_source_connection_id: this.initialLocalCid,
    };
    if (this.config.maxAckDelay !== 25) ours.max_ack_delay = this.config.maxAckDelay;
    if (this.config.ackDelayExponent !== 3) ours.ack_delay_exponent = this.config.ackDelayExponent;
    // RFC 9221 §3: advertising a non-zero max_datagram_frame_size says we accept DATAGRAM frames.
    if ((this.config.maxDatagramFrameSize ?? 0) > 0)
      ours.max_datagram_frame_size = this.config.maxDatagramFrameSize;

    if (this.role === 'client') {
      const dcid = this.cids.remote;
      this.originalDcid = dcid;
      this.clientScidSeen = undefined;
      this.addressValidated = true;
      this.installInitialKeys(dcid);
      this.tls = opts.tls(encodeTransportParameters(ours));
      this.onTls(this.tls.start(opts.now + this.tlsEpoch), opts.now);
      // RFC 9000 §7.4.1: with 0-RTT the remembered limits apply until the new ones arrive.
      if (this.zeroRttTx && opts.earlyTransportParameters)
        this.streamSet.applyPeerParams(opts.earlyTransportParameters);
      else this.zeroRttTx = undefined;
    } else {
      const s = opts.server;
      if (!s) throw new Error('a server connection needs the client Initial info (opts.server)');
      this.originalDcid = s.originalDcid;
      this.retrySourceCid = s.retrySourceCid;
      this.clientScidSeen = s.clientScid;
      this.addressValidated = s.addressValidated ?? false;
      this.installInitialKeys(s.initialDcid);
      // RFC 9000 §18.2: server-only parameters; the reset token of our first CID (§10.3).
      ours.original_destination_connection_id = s.originalDcid;
      if (s.retrySourceCid) ours.retry_source_connection_id = s.retrySourceCid;
      ours.stateless_reset_token = this.cids.resetTokenOfLocal(0);
      if (this.config.disableActiveMigration) ours.disable_active_migration = true;
      this.tls = opts.tls(encodeTransportParameters(ours));
    }
  }

  // ======================================================================
  // Public API
  // ======================================================================

  get state(): ConnectionState {
    return this.connState;
  }
  /** Nothing left to do: the endpoint may forget this connection. */
  get isDrained(): boolean {
    return this.connState === 'closed';
  }
  get isHandshakeConfirmed(): boolean {
    return this.handshakeConfirmed;
  }
  /** Our connection IDs now routed to this connection. */
  get activeLocalCids(): Uint8Array[] {
    return this.cids.activeLocal;
  }
  /** The DCID we currently send with. */
  get remoteCid(): Uint8Array {
    return this.cids.remote;
  }
  /** Stateless reset tokens the peer issued (RFC 9000 §10.3.1), for the endpoint to recognise a reset. */
  get peerResetTokens(): Uint8Array[] {
    return this.cids.peerResetTokens;
  }
  get keyUpdates(): number {
    return this.oneRtt?.updates ?? 0;
  }

  /** A snapshot of what the connection holds, for stats lines (a leak shows as a number that grows). */
  stats(): Record<string, unknown> {
    return {
      state: this.connState,
      congestion: this.congestion,
      streams: this.streamSet.size,
      bytesInFlight: this.recovery.bytesInFlight,
      cwnd: Math.round(this.recovery.cc.congestionWindow),
      srtt: this.recovery.rtt.smoothedRtt,
      sent: this.bytesSent,
      received: this.bytesReceived,
      keyUpdates: this.keyUpdates,
      counters: this.counters.snapshot(),
    };
  }

  pollEvent(): QuicConnectionEvent | undefined {
    const ev = this.events.shift();
    if (ev?.type === 'datagram') this.datagramsUnpolled--;
    return ev;
  }

  /**
   * The largest payload sendDatagram takes now: bounded by the peer's
   * max_datagram_frame_size (RFC 9221 §3) and by one packet (§5: a DATAGRAM frame is never
   * split); 0 when the peer did not advertise DATAGRAM support or its parameters are not known yet.
   */
  get maxDatagramPayload(): number {
    const peerMax = this.peerParams?.max_datagram_frame_size ?? 0;
    if (peerMax === 0) return 0;
    // A 1-RTT packet: flags, DCID, a packet number of up to 4 bytes, the AEAD tag.
    const packetRoom = this.config.maxDatagramSize - (1 + this.cids.remote.length + 4 + AEAD_TAG_LENGTH);
    const room = Math.min(peerMax, packetRoom);
    // The frame: type, Length (a varint), payload (RFC 9221 §4).
    let n = room - 1 - varintLength(room);
    while (n > 0 && 1 + varintLength(n) + n > room) n--;
    return Math.max(0, n);
  }

  /**
   * Queues an unreliable DATAGRAM frame (RFC 9221 §5): sent once in a 1-RTT packet, counted
   * in congestion control (§5.4), never retransmitted. Throws when the peer did not advertise
   * max_datagram_frame_size or the frame would not fit. Beyond the queue limit the oldest
   * queued payload is dropped.
   */
  sendDatagram(data: Uint8Array): void {
    this.assertLive();
    const max = this.maxDatagramPayload;
    if (max === 0) throw new Error('the peer does not accept DATAGRAM frames (RFC 9221 §3)');
    if (data.length > max)
      throw new Error(`DATAGRAM payload of ${data.length} bytes exceeds ${max} (RFC 9221 §3)`);
    if (this.datagramsOut.length >= this.datagramQueueLimit) {
      this.datagramsOut.shift();
      this.counters.inc('quic.tx.datagram.dropped');
    }
    this.datagramsOut.push(data.slice());
  }
  /** @internal For the endpoint. */
  pollEndpointEvent(): EndpointEvent | undefined {
    return this.cids.endpointEvents.shift();
  }

  /** Opens a stream of ours (RFC 9000 §2.1); throws when the peer's MAX_STREAMS does not allow it. */
  openStream(direction: StreamDirection): number {
    this.assertLive();
    return this.streamSet.open(direction);
  }

  /** Whether openStream(direction) would succeed now. */
  canOpenStream(direction: StreamDirection): boolean {
    return this.isLive && this.streamSet.canOpen(direction);
  }

  write(id: number, data: Uint8Array, fin = false): void {
    this.assertLive();
    this.streamSet.write(id, data, fin);
  }

  /** RESET_STREAM (RFC 9000 §19.4): abandon sending on a stream. */
  /**
   * Bytes written on a stream that have not been sent yet: what a writer watches for
   * backpressure (sent bytes are bounded by the peer's flow control; these only by us).
   */
  streamUnsent(id: number): number {
    return this.streamSet.unsent(id);
  }

  resetStream(id: number, code: number): void {
    this.streamSet.reset(id, code);
  }

  /** STOP_SENDING (RFC 9000 §19.5): ask the peer to stop sending on a stream. */
  stopSending(id: number, code: number): void {
    this.streamSet.stopSending(id, code);
  }

  /** Sends a PING (RFC 9000 §19.2) in the highest space with keys. */
  ping(): void {
    const s = this.oneRtt
      ? this.spaces.ApplicationData
      : this.spaces.Handshake.tx
        ? this.spaces.Handshake
        : this.spaces.Initial;
    s.probes = Math.max(s.probes, 1);
  }

  /** Starts a 1-RTT key update (RFC 9001 §6.1); false when not allowed yet. */
  initiateKeyUpdate(now: number): boolean {
    if (!this.oneRtt?.initiate(this.handshakeConfirmed)) return false;
    this.noteKeyUpdate(now);
    return true;
  }

  /**
   * Closes the connection (RFC 9000 §10.2): CONNECTION_CLOSE of type 0x1d with an
   * application error code, or of type 0x1c with a transport code when `application` is false.
   */
  close(now: number, code = 0, reason = '', application = true): void {
    if (!this.isLive) return;
    this.enterClosing(
      now,
      application
        ? { type: 'CONNECTION_CLOSE_APPLICATION', errorCode: code, reasonPhrase: utf8(reason) }
        : { type: 'CONNECTION_CLOSE', errorCode: code, frameType: 0, reasonPhrase: utf8(reason) },
      code === 0 && !application ? undefined : { source: 'local', application, code, reason },
    );
  }

  // ======================================================================
  // Receiving (RFC 9000 §12, RFC 9001 §5)
  // ======================================================================

  /** The peer's address we send to (changes when the peer migrates, RFC 9000 §9). */
  get remote(): RemoteAddress | undefined {
    return this.remoteAddr;
  }

  handle(datagram: Uint8Array, now: number, remote?: RemoteAddress): void {
    if (this.connState === 'closed' || this.connState === 'draining') {
      this.counters.inc('quic.rx.after-close');
      return;
    }
    this.bytesReceived += datagram.length;
    if (this.connState === 'closing') {
      // §10.2.1: answer incoming packets with the CONNECTION_CLOSE again, less and less often.
      this.packetsWhileClosing++;
      if ((this.packetsWhileClosing & (this.packetsWhileClosing - 1)) === 0) this.closeSendPending = true;
      return;
    }
    if (remote && !this.remoteAddr) this.remoteAddr = { ...remote };
    const fromElsewhere =
      remote !== undefined && this.remoteAddr !== undefined && !sameAddress(remote, this.remoteAddr);
    if (!fromElsewhere) this.pathBytesReceived += datagram.length;
    this.newestNonProbing = false;
    this.amplificationLeft(now);
    const { packets, error } = splitCoalescedPackets(datagram, this.localCidLength);
    let anyProcessed = false;
    this.arrivalElsewhere = fromElsewhere && remote ? { remote, size: datagram.length } : undefined;
    try {
      for (const bytes of packets) {
        if (this.receivePacketBytes(bytes, now, true)) anyProcessed = true;
        if (!this.isLive) return;
      }
    } finally {
      this.arrivalElsewhere = undefined;
    }
    if (error) this.drop(now, 'quic.rx.malformed', error.message);
    // RFC 9000 §9.3: the newest non-probing packet from a new address moves the path there.
    if (
      fromElsewhere &&
      remote &&
      this.newestNonProbing &&
      this.role === 'server' &&
      this.handshakeConfirmed
    ) {
      this.onPeerMoved(remote, datagram.length, now);
      // Challenges from there are now answered on the current path, with the rest.
      for (let i = this.probeResponses.length - 1; i >= 0; i--) {
        const r = this.probeResponses[i];
        if (r && sameAddress(r.remote, remote)) {
          this.probeResponses.splice(i, 1);
          if (this.pathResponses.length < MAX_PATH_RESPONSES) this.pathResponses.push(r.data);
        }
      }
    }
    // §10.3.1: a datagram nothing in which could be processed may be a Stateless Reset.
    if (!anyProcessed && datagram.length >= MIN_STATELESS_RESET_LENGTH) {
      const tokens = this.cids.peerResetTokens;
      if (isStatelessReset(datagram, tokens)) {
        this.trace1(now, 'in', 'stateless reset', 'RFC 9000 §10.3.1');
        this.transition('stateless-reset', now);
        this.closeError = {
          source: 'stateless-reset',
          application: false,
          code: 0,
          reason: 'stateless reset',
        };
        this.events.push({ type: 'closed', error: this.closeError });
        this.closeDeadline = now + 3 * this.ptoDuration();
        return;
      }
    }
    this.retryUndecryptable(now);
  }

  /** Tries packets held for lack of keys again once new keys arrived. */
  private retryUndecryptable(now: number): void {
    for (let round = 0; round < 4 && this.undecryptable.length > 0; round++) {
      const held = this.undecryptable.splice(0);
      let progress = false;
      for (const b of held) {
        if (this.receivePacketBytes(b, now, false)) progress = true;
        if (!this.isLive) return;
      }
      if (!progress) break;
    }
  }

  /** One coalesced packet: open, check, process. Returns whether it was processed. */
  private receivePacketBytes(bytes: Uint8Array, now: number, mayHold: boolean): boolean {
    const evs = openDatagram(bytes, {
      shortDcidLength: this.localCidLength,
      keys: {
        Initial: this.spaces.Initial.rx,
        Handshake: this.spaces.Handshake.rx,
        '0-RTT': this.zeroRttRx,
        // RFC 9001 §5.7: "a server MUST NOT process incoming 1-RTT protected packets before
        // the TLS handshake is complete": until then they wait with the undecryptable ones.
        '1-RTT': this.role === 'server' && !this.handshakeComplete ? undefined : this.oneRtt,
      },
      largestPn: (s) => this.spaces[s].largestRecvPn,
    });
    let processed = false;
    for (const ev of evs) {
      if (this.onDatagramEvent(ev, bytes, now, mayHold)) processed = true;
      if (!this.isLive) break;
    }
    return processed;
  }

  private onDatagramEvent(ev: DatagramEvent, bytes: Uint8Array, now: number, mayHold: boolean): boolean {
    switch (ev.kind) {
      case 'packet':
        try {
          return this.onPacket(ev.packet, now);
        } catch (e) {
          if (e instanceof TransportError) {
            this.closeWithError(now, e);
            return true;
          }
          throw e;
        }
      case 'retry':
        this.onRetry(ev.retry, ev.bytes, now);
        return false;
      case 'version-negotiation':
        // RFC 9000 §6.2: only before any other packet from the server, and only if it does not list our version.
        if (
          this.role === 'client' &&
          !this.receivedFirstServerPacket &&
          !ev.packet.supportedVersions.includes(QUIC_VERSION_1)
        ) {
          this.trace1(
            now,
            'in',
            `VersionNegotiation versions=${ev.packet.supportedVersions.map((v) => v.toString(16)).join(',')}`,
            'RFC 9000 §6.2',
          );
          this.closeError = {
            source: 'version-negotiation',
            application: false,
            code: 0,
            reason: 'no common QUIC version',
          };
          this.transition('version-negotiation', now);
          this.events.push({ type: 'closed', error: this.closeError });
        } else
          this.drop(
            now,
            'quic.rx.version-negotiation-ignored',
            'Version Negotiation ignored (RFC 9000 §6.2)',
          );
        return false;
      case 'no-keys':
        if (
          mayHold &&
          this.undecryptable.length < MAX_UNDECRYPTABLE &&
          !this.spaceOfType(ev.type).discarded
        ) {
          this.undecryptable.push(bytes.slice());
          this.counters.inc('quic.rx.held-for-keys');
        } else this.drop(now, 'quic.rx.no-keys', `${ev.type} packet without keys (RFC 9001 §5.7)`);
        return false;
      case 'dropped':
        this.drop(now, 'quic.rx.dropped', ev.reason);
        if (ev.reason === 'authentication failed') this.onAuthenticationFailure(now);
        return false;
      case 'violation':
        this.closeWithError(now, transportError(ev.error, ev.reason));
        return true;
    }
  }

  private spaceOfType(t: PacketType): Space {
    return t === 'Initial'
      ? this.spaces.Initial
      : t === 'Handshake'
        ? this.spaces.Handshake
        : this.spaces.ApplicationData;
  }

  private onPacket(p: OpenedPacketInfo, now: number): boolean {
    const space = this.spaceOfType(p.type);
    // 0-RTT packets are only read with the keys TLS gave when it accepted early data (RFC 9001 §4.6.1).
    if (p.type === '0-RTT' && (this.role === 'client' || !this.zeroRttRx)) {
      this.drop(now, 'quic.rx.0rtt', '0-RTT packet without 0-RTT keys');
      return false;
    }
    // RFC 9001 §4.9.3: the server may drop 0-RTT keys once 1-RTT packets arrive.
    if (p.type === '1-RTT' && this.role === 'server') this.zeroRttRx = undefined;
    if (space.discarded) {
      this.drop(
        now,
        'quic.rx.discarded-space',
        `${p.type} packet after its keys were discarded (RFC 9001 §4.9)`,
      );
      return false;
    }
    if (space.ack.isDuplicate(p.packetNumber)) {
      this.drop(now, 'quic.rx.duplicate', `duplicate ${p.type} pn=${p.packetNumber} (RFC 9000 §12.3)`);
      return false;
    }
    if (this.trace.enabled)
      this.tracePacket(now, 'in', p.type, p.packetNumber, p.dcid, p.scid, p.frames, p.keyPhase);
    this.counters.inc('quic.rx.packets');
    // RFC 9000 §7.2: the client takes the server's SCID from its first Initial as its DCID.
    if (this.role === 'client' && !this.receivedFirstServerPacket && p.type !== '1-RTT') {
      this.receivedFirstServerPacket = true;
      this.cids.replaceFirstPeer(p.scid);
    }
    if (this.role === 'server' && p.type === 'Handshake') {
      // RFC 9000 §8.1: a Handshake packet from the client proves its address.
      this.addressValidated = true;
      // RFC 9001 §4.9.1: "a server MUST discard Initial keys when it first successfully processes a Handshake packet".
      this.discardSpace('Initial', now);
    }
    if (p.type === '1-RTT' && p.packetNumber > space.largestRecvPn && !isProbingPacket(p.frames))
      this.newestNonProbing = true;
    space.largestRecvPn = Math.max(space.largestRecvPn, p.packetNumber);
    const eliciting = isAckEliciting(p.frames);
    for (const f of p.frames) {
      this.onFrame(f, space, now);
      if (!this.isLive) return true;
    }
    if (!space.discarded) space.ack.onPacketReceived(p.packetNumber, eliciting, now);
    if (p.type === '1-RTT') this.checkKeyPhase(now);
    // RFC 9000 §10.1: any packet processed restarts the idle timer.
    this.ackElicitingSinceReceive = false;
    this.restartIdle(now);
    return true;
  }

  private onRetry(retry: RetryPacket, bytes: Uint8Array, now: number): void {
    // RFC 9000 §17.2.5.2: one Retry, only before any other packet, with a verified tag and a new SCID.
    if (
      this.role !== 'client' ||
      this.receivedFirstServerPacket ||
      this.retrySourceCid !== undefined ||
      retry.retryToken.length === 0 ||
      bytesEqual(retry.scid, this.originalDcid) ||
      !verifyRetry(this.qc.crypto, this.originalDcid, bytes)
    ) {
      this.drop(now, 'quic.rx.retry-refused', 'Retry not acceptable (RFC 9000 §17.2.5.2, RFC 9001 §5.8)');
      return;
    }
    this.trace1(now, 'in', packetSummary(retry), 'RFC 9000 §17.2.5');
    this.retrySourceCid = retry.scid;
    this.retryToken = retry.retryToken;
    this.cids.replaceFirstPeer(retry.scid);
    this.installInitialKeys(retry.scid);
    // Everything sent in Initial packets is sent again in new Initials (RFC 9000 §17.2.5.3).
    // Packet numbers continue; recovery starts over: nothing sent so far will be acknowledged.
    const old = this.recovery.unacked('Initial');
    this.recovery = new Recovery({
      isServer: false,
      maxDatagramSize: this.config.maxDatagramSize,
      congestion: this.congestion,
    });
    for (const p of old) this.onLost(p.frames);
  }

  // ---- frames (RFC 9000 §19) ----

  private onFrame(f: Frame, space: Space, now: number): void {
    switch (f.type) {
      case 'PADDING':
      case 'PING':
        return;
      case 'ACK':
        this.onAck(f, space, now);
        return;
      case 'CRYPTO':
        this.onCrypto(f.offset, f.data, space, now);
        return;
      case 'HANDSHAKE_DONE':
        // RFC 9000 §19.20: a server receiving HANDSHAKE_DONE closes with PROTOCOL_VIOLATION.
        if (this.role === 'server')
          throw transportError(
            'PROTOCOL_VIOLATION',
            'HANDSHAKE_DONE from a client',
            FrameType.HANDSHAKE_DONE,
          );
        if (!this.handshakeConfirmed) this.confirmHandshake(now);
        return;
      case 'NEW_TOKEN':
        if (this.role === 'client') {
          // Kept for the application to read (a property, not an event: HTTP/3 enumerates events).
          this.receivedToken = f.token;
          return;
        }
        if (this.role === 'server')
          throw transportError(
            'PROTOCOL_VIOLATION',
            'NEW_TOKEN from a client (RFC 9000 §19.7)',
            FrameType.NEW_TOKEN,
          );
        return;
      case 'CONNECTION_CLOSE':
      case 'CONNECTION_CLOSE_APPLICATION':
        this.onConnectionClose(f, now);
        return;
      case 'STREAM':
      case 'RESET_STREAM':
      case 'STOP_SENDING':
      case 'MAX_DATA':
      case 'MAX_STREAM_DATA':
      case 'MAX_STREAMS':
      case 'DATA_BLOCKED':
      case 'STREAM_DATA_BLOCKED':
      case 'STREAMS_BLOCKED':
        this.streamSet.onFrame(f);
        return;
      case 'NEW_CONNECTION_ID':
        this.cids.onNewConnectionId(f.sequenceNumber, f.retirePriorTo, f.connectionId, f.statelessResetToken);
        return;
      case 'RETIRE_CONNECTION_ID':
        this.cids.onRetireConnectionId(f.sequenceNumber, this.peerCidLimit);
        return;
      case 'PATH_CHALLENGE':
        // RFC 9000 §8.2.2: echo the data in a PATH_RESPONSE, on the path the challenge came on.
        if (this.arrivalElsewhere) {
          if (this.probeResponses.length < MAX_PATH_RESPONSES)
            this.probeResponses.push({
              data: f.data,
              remote: this.arrivalElsewhere.remote,
              // §8.1, §9.3.1: an unvalidated path gets at most three times what arrived on it.
              budget: AMPLIFICATION_FACTOR * this.arrivalElsewhere.size,
            });
        } else if (this.pathResponses.length < MAX_PATH_RESPONSES) this.pathResponses.push(f.data);
        return;
      case 'PATH_RESPONSE':
        // RFC 9000 §8.2.3: a response echoing our challenge validates the new path.
        if (this.pathChallenge && bytesEqual(f.data, this.pathChallenge.data)) {
          this.pathChallenge = undefined;
          this.pathValidated = true;
          this.previousRemote = undefined;
          this.trace1(now, 'local', 'path validated', 'RFC 9000 §8.2.3');
        }
        return;
      case 'DATAGRAM':
        this.onDatagramFrame(f, now);
        return;
    }
  }

  private onDatagramFrame(f: Extract<Frame, { type: 'DATAGRAM' }>, now: number): void {
    const ourMax = this.config.maxDatagramFrameSize ?? 0;
    // RFC 9221 §3: a DATAGRAM frame when we did not advertise max_datagram_frame_size, or one
    // larger than we advertised, is a PROTOCOL_VIOLATION.
    if (ourMax === 0)
      throw transportError(
        'PROTOCOL_VIOLATION',
        'DATAGRAM frame not negotiated (RFC 9221 §3)',
        frameTypeCode(f),
      );
    if (frameLength(f) > ourMax)
      throw transportError(
        'PROTOCOL_VIOLATION',
        `DATAGRAM frame larger than max_datagram_frame_size ${ourMax} (RFC 9221 §3)`,
        frameTypeCode(f),
      );
    // RFC 9221 §5: the receiver may drop DATAGRAM frames it has no room for; the oldest goes.
    if (this.datagramsUnpolled >= this.datagramQueueLimit) {
      const i = this.events.findIndex((e) => e.type === 'datagram');
      if (i >= 0) {
        this.events.splice(i, 1);
        this.datagramsUnpolled--;
      }
      this.counters.inc('quic.rx.datagram.dropped');
      this.trace1(now, 'local', 'DATAGRAM dropped: receive queue full', 'RFC 9221 §5');
    }
    this.counters.inc('quic.rx.datagram');
    this.events.push({ type: 'datagram', data: f.data });
    this.datagramsUnpolled++;
  }

  private onAck(f: Extract<Frame, { type: 'ACK' }>, space: Space, now: number): void {
    const exponent = space.name === 'ApplicationData' ? this.peerAckDelayExponent : 3;
    const outcome = this.recovery.onAckReceived(
      space.name,
      { ranges: ackFrameRanges(f), ackDelay: (f.ackDelay * 2 ** exponent) / 1000, ecnCounts: f.ecnCounts },
      now,
    );
    // RFC 9000 §13.1: acknowledging a packet never sent is a PROTOCOL_VIOLATION.
    if (outcome.error)
      throw transportError(
        'PROTOCOL_VIOLATION',
        'ACK of a packet never sent (RFC 9000 §13.1)',
        FrameType.ACK,
      );
    for (const p of outcome.newlyAcked) {
      if (space.name === 'ApplicationData') this.oneRtt?.onPacketAcked(p.packetNumber);
      this.onAcked(p.frames, space);
    }
    // RFC 9001 §4.1.2: a client "MAY consider the handshake to be confirmed when it receives an
    // acknowledgment for a 1-RTT packet" — it need not wait for a HANDSHAKE_DONE that was lost.
    if (
      this.role === 'client' &&
      !this.handshakeConfirmed &&
      space.name === 'ApplicationData' &&
      outcome.newlyAcked.some((p) => !this.zeroRttSent.has(p.packetNumber))
    )
      this.confirmHandshake(now);
    for (const p of outcome.lost) this.onLost(p.frames);
    if (outcome.lost.length > 0) this.counters.inc('quic.lost', outcome.lost.length);
  }

  private onCrypto(offset: number, data: Uint8Array, space: Space, now: number): void {
    const buf = space.cryptoRecv;
    const err = buf.receive(offset, data);
    // RFC 9000 §7.5: more than we buffer is CRYPTO_BUFFER_EXCEEDED.
    if (err) throw transportError('CRYPTO_BUFFER_EXCEEDED', `CRYPTO data: ${err}`, FrameType.CRYPTO);
    const chunk = buf.read();
    if (chunk.length === 0) return;
    buf.raiseLimit(buf.bytesRead + this.config.cryptoBufferSize);
    this.onTls(this.tls.receive(space.level, chunk, now + this.tlsEpoch), now);
  }

  private onConnectionClose(
    f: Extract<Frame, { type: 'CONNECTION_CLOSE' | 'CONNECTION_CLOSE_APPLICATION' }>,
    now: number,
  ): void {
    const application = f.type === 'CONNECTION_CLOSE_APPLICATION';
    const reason = fromUtf8(f.reasonPhrase);
    const clean = !application && f.errorCode === TransportErrorCode.NO_ERROR;
    this.closeError = {
      source: 'peer',
      application,
      code: f.errorCode,
      ...(f.type === 'CONNECTION_CLOSE' ? { frameType: f.frameType } : {}),
      reason,
    };
    // §10.2.2: draining; nothing more is sent.
    this.transition('close-received', now);
    this.closeDeadline = now + 3 * this.ptoDuration();
    this.events.push(clean ? { type: 'closed' } : { type: 'closed', error: this.closeError });
  }

  // ---- TLS (RFC 9001 §4) ----

  private onTls(events: QuicTlsEvent[], now: number): void {
    for (const ev of events) {
      if (!this.isLive) return;
      switch (ev.type) {
        case 'crypto':
          this.spaces[SPACE_OF_LEVEL[ev.level]].cryptoSend.write(ev.data, false);
          break;
        case 'secret':
          this.onSecret(ev.level, ev.direction, ev.secret, ev.cipherSuite, now);
          break;
        case 'handshake-complete':
          this.onHandshakeComplete(ev.alpn, ev.peerTransportParameters, ev.earlyData, now);
          break;
        case 'session-ticket':
          this.events.push({
            type: 'session-ticket',
            ticket: ev.ticket,
            ...(this.peerParams ? { transportParameters: this.peerParams } : {}),
          });
          break;
        case 'error':
          // RFC 9001 §4.8: a TLS alert becomes CRYPTO_ERROR 0x100 + alert.
          this.closeWithError(now, new TransportError(cryptoError(ev.alert), ev.reason, FrameType.CRYPTO));
          break;
      }
    }
  }

  private onSecret(
    level: QuicLevel,
    direction: 'read' | 'write',
    secret: Uint8Array,
    cipherSuite: number,
    now: number,
  ): void {
    const suite = QUIC_SUITE_BY_CODE.get(cipherSuite);
    if (!suite) {
      this.closeWithError(
        now,
        transportError('INTERNAL_ERROR', `cipher suite 0x${cipherSuite.toString(16)} not supported`),
      );
      return;
    }
    const keys = derivePacketKeys(this.qc, suite, secret);
    if (level === 'early') {
      // RFC 9001 §4.6.1: the client writes 0-RTT, the server reads it.
      if (this.role === 'client' && direction === 'write') this.zeroRttTx = keys;
      if (this.role === 'server' && direction === 'read') this.zeroRttRx = keys;
      return;
    }
    if (level === 'handshake') {
      if (direction === 'read') this.spaces.Handshake.rx = keys;
      else {
        this.spaces.Handshake.tx = keys;
        this.recovery.hasHandshakeKeys = true;
      }
      return;
    }
    if (direction === 'read') this.pendingAppRx = keys;
    else this.pendingAppTx = keys;
    if (this.pendingAppRx && this.pendingAppTx) {
      this.oneRtt = new KeyPhaseState(this.qc, this.pendingAppTx, this.pendingAppRx);
      this.pendingAppRx = undefined;
      this.pendingAppTx = undefined;
    }
  }

  private onHandshakeComplete(
    alpn: string | undefined,
    raw: Uint8Array,
    earlyData: 'accepted' | 'rejected' | undefined,
    now: number,
  ): void {
    let params: TransportParameters;
    try {
      params = decodeTransportParameters(raw);
    } catch (e) {
      this.closeWithError(
        now,
        transportError('TRANSPORT_PARAMETER_ERROR', `peer transport parameters: ${(e as Error).message}`),
      );
      return;
    }
    const problem =
      checkTransportParametersFrom(params, this.role === 'client' ? 'server' : 'client') ??
      this.checkCids(params);
    if (problem) {
      this.closeWithError(now, transportError('TRANSPORT_PARAMETER_ERROR', problem));
      return;
    }
    this.applyPeerParams(params, now);
    this.alpn = alpn;
    this.handshakeComplete = true;
    if (this.role === 'client' && this.zeroRttSent.size > 0 && earlyData !== 'accepted') {
      // RFC 9001 §4.6.2: 0-RTT rejected: everything it carried goes again in 1-RTT.
      for (const p of this.recovery.unacked('ApplicationData'))
        if (this.zeroRttSent.has(p.packetNumber)) this.onLost(p.frames);
      this.counters.inc('quic.0rtt.rejected');
    }
    // RFC 9001 §4.9.3: the client stops using 0-RTT keys once it has 1-RTT keys.
    this.zeroRttTx = undefined;
    this.zeroRttSent.clear();
    this.transition('handshake-complete', now);
    this.events.push(earlyData ? { type: 'connected', alpn, earlyData } : { type: 'connected', alpn });
    if (this.role === 'server') {
      // RFC 9001 §4.1.2: the server's handshake is confirmed when it completes; it sends HANDSHAKE_DONE.
      this.handshakeDonePending = true;
      // RFC 9000 §8.1.3: a token for the client's next connection.
      this.newTokenPending = this.makeNewToken?.();
      this.confirmHandshake(now);
      if (this.tls.sendSessionTicket) this.onTls(this.tls.sendSessionTicket(now + this.tlsEpoch), now);
    }
    this.cids.issue(this.peerCidLimit);
  }

  /** RFC 9000 §7.3: the connection IDs both sides used must match what the parameters say. */
  private checkCids(p: TransportParameters): string | undefined {
    const eq = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
      a !== undefined && b !== undefined && bytesEqual(a, b);
    if (this.role === 'client') {
      if (!eq(p.initial_source_connection_id, this.cids.firstPeer))
        return 'initial_source_connection_id does not match the server SCID (RFC 9000 §7.3)';
      if (!eq(p.original_destination_connection_id, this.originalDcid))
        return 'original_destination_connection_id mismatch (RFC 9000 §7.3)';
      if (
        this.retrySourceCid
          ? !eq(p.retry_source_connection_id, this.retrySourceCid)
          : p.retry_source_connection_id !== undefined
      )
        return 'retry_source_connection_id mismatch (RFC 9000 §7.3)';
    } else if (!eq(p.initial_source_connection_id, this.clientScidSeen)) {
      return 'initial_source_connection_id does not match the client SCID (RFC 9000 §7.3)';
    }
    return undefined;
  }

  private applyPeerParams(params: TransportParameters, now: number): void {
    this.peerParams = params;
    const p = effectiveTransportParameters(params);
    this.streamSet.applyPeerParams(params);
    this.recovery.maxAckDelay = p.max_ack_delay;
    this.peerAckDelayExponent = p.ack_delay_exponent;
    if (p.stateless_reset_token) this.cids.setFirstPeerResetToken(p.stateless_reset_token);
    // RFC 9000 §10.1: the effective idle timeout is the minimum of both non-zero values.
    const theirs = p.max_idle_timeout;
    const ours = this.config.maxIdleTimeout;
    this.idleTimeout = ours === 0 ? theirs : theirs === 0 ? ours : Math.min(ours, theirs);
    this.restartIdle(now);
  }

  /** The peer's active_connection_id_limit (RFC 9000 §18.2). */
  private get peerCidLimit(): number {
    return effectiveTransportParameters(this.peerParams ?? {}).active_connection_id_limit;
  }

  private confirmHandshake(now: number): void {
    this.handshakeConfirmed = true;
    this.recovery.handshakeConfirmed = true;
    // RFC 9001 §4.9.2: Handshake keys are discarded once the handshake is confirmed.
    this.discardSpace('Initial', now);
    this.discardSpace('Handshake', now);
    this.trace1(now, 'local', 'handshake confirmed', 'RFC 9001 §4.1.2');
  }

  private installInitialKeys(dcid: Uint8Array): void {
    const k = initialKeys(this.qc, dcid);
    this.spaces.Initial.tx = this.role === 'client' ? k.client : k.server;
    this.spaces.Initial.rx = this.role === 'client' ? k.server : k.client;
  }

  private discardSpace(name: 'Initial' | 'Handshake', now: number): void {
    const s = this.spaces[name];
    if (s.discarded) return;
    s.discarded = true;
    s.tx = undefined;
    s.rx = undefined;
    s.probes = 0;
    this.recovery.onPacketNumberSpaceDiscarded(name, now);
    this.trace1(now, 'local', `${name} keys discarded`, 'RFC 9001 §4.9');
  }

  // ======================================================================
  // Sending (RFC 9000 §12.2, §13, §14; RFC 9002)
  // ======================================================================

  pollTransmit(now: number): Uint8Array | undefined {
    this.transmitRemote = undefined;
    if (this.connState === 'closed' || this.connState === 'draining') return undefined;
    if (this.connState === 'closing') return this.closeDatagram(now);
    const probe = this.probeResponseDatagram(now);
    if (probe) return probe;
    // RFC 9002 §7.8: the window grows only while the sender uses it; with no stream data
    // waiting, acknowledgements of what little is in flight say nothing about capacity.
    this.recovery.cc.appOrFlowControlLimited = !this.streamSet.hasSendable && this.datagramsOut.length === 0;
    let budget = this.config.maxDatagramSize;
    const left = this.amplificationLeft(now);
    budget = Math.min(budget, left);
    if (budget < 64) return undefined;
    // RFC 9002 §7.7: while the pacer holds the next datagram back, 1-RTT data waits (ACKs,
    // probes and handshake packets still go); pollTimeout wakes us when it may leave.
    const cc = this.recovery.cc;
    const srtt = this.recovery.rtt.smoothedRtt;
    const paceAt = this.pacer?.nextSendTime(now, this.config.maxDatagramSize, cc.congestionWindow, srtt);
    this.paced = paceAt !== undefined && paceAt > now;
    this.pacingDeadline = this.paced && cc.sendAllowance > 0 ? paceAt : undefined;

    const parts: BuiltPacket[] = [];
    let used = 0;
    for (const name of ['Initial', 'Handshake', 'ApplicationData'] as const) {
      const built = this.buildPacket(this.spaces[name], budget - used, now);
      if (built) {
        parts.push(built);
        used += built.size;
      }
    }
    const last = parts[parts.length - 1];
    if (!last) return undefined;
    // RFC 9000 §14.1: a datagram with a client Initial (or a server's ack-eliciting Initial) is at least 1200 bytes.
    // RFC 9000 §8.2.1, §8.2.2: PATH_CHALLENGE and PATH_RESPONSE go in full-size datagrams (within the limit).
    const needsPadding = parts.some(
      (p) =>
        (p.space.name === 'Initial' && (this.role === 'client' || p.ackEliciting)) ||
        p.frames.some((f) => f.type === 'PATH_CHALLENGE' || f.type === 'PATH_RESPONSE'),
    );
    if (needsPadding && used < MIN_INITIAL_DATAGRAM) {
      const pad = Math.min(MIN_INITIAL_DATAGRAM, budget) - used;
      if (pad > 0) {
        addPadding(last.frames, pad);
        last.size += pad;
        last.padded = true;
      }
    }
    const datagram = joinBytes(parts.map((p) => this.seal(p, now)));
    // RFC 9002 §7.7: every in-flight datagram spends the pacer's bytes, paced or not.
    if (parts.some((p) => p.ackEliciting || p.padded))
      this.pacer?.onPacketSent(now, datagram.length, cc.congestionWindow, srtt);
    this.bytesSent += datagram.length;
    this.pathBytesSent += datagram.length;
    this.amplificationLeft(now);
    // RFC 9001 §4.9.1: "a client MUST discard Initial keys when it first sends a Handshake packet".
    if (this.role === 'client' && parts.some((p) => p.space.name === 'Handshake'))
      this.discardSpace('Initial', now);
    return datagram;
  }

  /**
   * RFC 9000 §8.2.2, §9.3.3: a PATH_RESPONSE to a challenge that came from another address
   * goes back there, alone in a 1-RTT packet, padded to 1200 bytes when three times what
   * arrived allows it (§8.2.1, §9.3.1); `transmitRemote` tells the endpoint where. Like every
   * PATH_RESPONSE it is not sent again if lost (§8.2.2).
   */
  private probeResponseDatagram(now: number): Uint8Array | undefined {
    const r = this.probeResponses.shift();
    if (!r || !this.oneRtt) return undefined;
    const space = this.spaces.ApplicationData;
    const header = this.headerFor(space);
    const overhead = this.headerLength(header) + AEAD_TAG_LENGTH;
    const frames: Frame[] = [{ type: 'PATH_RESPONSE', data: r.data }];
    let size = overhead + frameLength(frames[0] as Frame);
    const target = Math.min(MIN_INITIAL_DATAGRAM, r.budget, this.config.maxDatagramSize);
    if (size < target) {
      addPadding(frames, target - size);
      size = target;
    }
    this.transmitRemote = r.remote;
    this.counters.inc('quic.path.probe-response');
    return this.seal(
      { space, header, frames, items: [], size, ackEliciting: true, padded: frames.length > 1 },
      now,
    );
  }

  /**
   * RFC 9000 §8.1 (and §9.3 for a new path): until the peer's address is validated we send
   * at most three times what we received from it. Recovery must know when that blocks us
   * (RFC 9002 §6.2.2.1: no PTO while nothing can be sent) and when it stops blocking, so its
   * timer is set again at once: a stale "blocked" would leave a lost packet unprobed.
   */
  private amplificationLeft(now: number): number {
    let left = Number.POSITIVE_INFINITY;
    if (!this.addressValidated) left = AMPLIFICATION_FACTOR * this.bytesReceived - this.bytesSent;
    else if (!this.pathValidated) left = AMPLIFICATION_FACTOR * this.pathBytesReceived - this.pathBytesSent;
    const blocked = left < MIN_INITIAL_DATAGRAM;
    if (blocked !== this.recovery.atAntiAmplificationLimit) {
      this.recovery.atAntiAmplificationLimit = blocked;
      this.recovery.setLossDetectionTimer(now);
    }
    return left;
  }

  private buildPacket(space: Space, room: number, now: number): BuiltPacket | undefined {
    if (space.discarded) return undefined;
    const is1Rtt = space.name === 'ApplicationData';
    // Before 1-RTT keys, a client with 0-RTT keys sends application data in 0-RTT packets (RFC 9001 §4.6.1).
    const zeroRtt = is1Rtt && !this.oneRtt && this.zeroRttTx !== undefined;
    if (is1Rtt ? !this.oneRtt && !zeroRtt : !space.tx) return undefined;
    const header = this.headerFor(space, zeroRtt);
    const overhead = this.headerLength(header) + AEAD_TAG_LENGTH;
    let left = room - overhead;
    if (left < 32) return undefined;
    const frames: Frame[] = [];
    const items: SentItem[] = [];
    // ACK first, when there is something new to acknowledge (RFC 9000 §13.2).
    // RFC 9000 §12.4: no ACK in a 0-RTT packet. A probe repeats the ACK even with nothing new
    // (RFC 9002 §6.2.4): if the last ACK was lost, the peer learns of its losses from this one
    // instead of waiting out its own, backed-off, PTO.
    const probingNow = space.probes > 0;
    const ack = (space.ack.hasNews || probingNow) && !zeroRtt ? space.ack.buildAck(now) : undefined;
    let ackSize = 0;
    if (ack) {
      ackSize = encodeFrame(ack).length;
      if (ackSize > left) return undefined;
      left -= ackSize;
    }
    // RFC 9002 §7: ack-eliciting packets only within the congestion window (probes excepted, §7.5).
    const probing = space.probes > 0;
    // Initial and Handshake packets are not held back by the window: before the handshake is
    // confirmed no PTO covers 1-RTT packets (RFC 9002 §6.2.1), so unacknowledged 1-RTT bytes
    // filling the window could otherwise keep a lost Finished from ever being sent again.
    const windowed = space.name === 'ApplicationData';
    // RFC 9000 §9.4: a new path starts with a fresh window while packets of the old one may
    // still count as in flight; the PATH_CHALLENGE that validates it must not wait for them
    // (it is a probe, like a PTO's, RFC 9002 §7.5).
    const challenging = windowed && !zeroRtt && this.pathChallenge !== undefined && !this.pathChallenge.sent;
    const cwndLeft =
      probing || challenging || !windowed
        ? left
        : this.paced
          ? 0
          : Math.min(left, Math.floor(this.recovery.cc.sendAllowance));
    let eliciting = cwndLeft > 0 ? this.collectFrames(space, cwndLeft, frames, items, zeroRtt) : 0;
    if (probing && eliciting === 0) {
      frames.push({ type: 'PING' });
      items.push({ k: 'ping' });
      eliciting = 1;
    }
    if (ack && (eliciting > 0 || space.ack.ackDue(now))) {
      frames.unshift(ack);
      items.push({ k: 'ack', largest: ack.largestAcknowledged });
      space.ack.onAckSent();
    }
    if (frames.length === 0) return undefined;
    if (eliciting > 0 && space.probes > 0) space.probes--;
    let size = overhead + frames.reduce((n, f) => n + frameLength(f), 0);
    // RFC 9001 §5.4.2: room for the header protection sample (4 bytes after the packet number start).
    const pnLength = header.packetNumberLength;
    const payloadLength = size - overhead;
    if (pnLength + payloadLength < 4) {
      const pad = 4 - pnLength - payloadLength;
      addPadding(frames, pad);
      size += pad;
    }
    return { space, header, frames, items, size, ackEliciting: eliciting > 0, padded: false, zeroRtt };
  }

  /** Adds ack-eliciting frames within `room` bytes; returns how many were added. */
  private collectFrames(
    space: Space,
    room: number,
    frames: Frame[],
    items: SentItem[],
    zeroRtt = false,
  ): number {
    let left = room;
    let count = 0;
    const add = (f: Frame, item: SentItem | undefined): boolean => {
      const n = frameLength(f);
      if (n > left) return false;
      frames.push(f);
      if (item) items.push(item);
      left -= n;
      count++;
      return true;
    };
    if (space.name === 'ApplicationData') {
      if (
        this.newTokenPending &&
        add(
          { type: 'NEW_TOKEN', token: this.newTokenPending },
          { k: 'new-token', token: this.newTokenPending },
        )
      )
        this.newTokenPending = undefined;
      if (this.handshakeDonePending && this.role === 'server') {
        if (add({ type: 'HANDSHAKE_DONE' }, { k: 'handshake-done' })) this.handshakeDonePending = false;
      }
      if (this.pathChallenge && !this.pathChallenge.sent) {
        if (add({ type: 'PATH_CHALLENGE', data: this.pathChallenge.data }, { k: 'path-challenge' }))
          this.pathChallenge.sent = true;
      }
      while (this.pathResponses.length > 0 && !zeroRtt) {
        const data = this.pathResponses[0];
        if (!data || !add({ type: 'PATH_RESPONSE', data }, undefined)) break;
        this.pathResponses.shift();
      }
      this.streamSet.collectControl(add);
      this.cids.collect(add);
    }
    // CRYPTO data (RFC 9000 §7.5, §19.6).
    for (;;) {
      const max = left - (1 + varintLength(space.cryptoSend.sendOffset + 1) + 2);
      if (max <= 0) break;
      const c = space.cryptoSend.nextChunk(Math.min(max, 1100), Number.POSITIVE_INFINITY);
      if (!c) break;
      add(
        { type: 'CRYPTO', offset: c.offset, data: c.data },
        { k: 'crypto', space: space.name, offset: c.offset, length: c.data.length },
      );
    }
    // RFC 9221 §5: DATAGRAM frames go in 1-RTT packets, each once; no record is kept, so a
    // lost one is not sent again (§5.2). They come before stream data: they are the ones that go stale.
    if (space.name === 'ApplicationData' && this.handshakeComplete && !zeroRtt) {
      const fits = this.maxDatagramPayload;
      for (;;) {
        const data = this.datagramsOut[0];
        // One that can no longer fit any packet (the peer's new connection ID is longer) would
        // hold up every one behind it: it is dropped, as an unreliable datagram may be.
        if (data && data.length > fits) {
          this.datagramsOut.shift();
          this.counters.inc('quic.tx.datagram.dropped');
          continue;
        }
        if (!data || !add({ type: 'DATAGRAM', hasLength: true, data }, undefined)) break;
        this.datagramsOut.shift();
        this.counters.inc('quic.tx.datagram');
      }
    }
    if (space.name === 'ApplicationData' && (this.handshakeComplete || zeroRtt)) {
      const r = this.streamSet.collectStreamFrames(left, frames, items);
      count += r.count;
      left -= r.used;
    }
    return count;
  }

  private headerFor(space: Space, zeroRtt = false): PacketHeader {
    const pn = space.nextPn;
    const largestAcked = this.recovery.largestAcked(space.name);
    const { truncated, length } = encodePacketNumber(pn, largestAcked);
    if (space.name === 'ApplicationData' && !zeroRtt) {
      return {
        type: '1-RTT',
        dcid: this.cids.remote,
        spinBit: false,
        reservedBits: 0,
        keyPhase: this.oneRtt?.keyPhase ?? false,
        packetNumberLength: length,
        truncatedPacketNumber: truncated,
      };
    }
    const common = {
      version: QUIC_VERSION_1,
      dcid: this.cids.remote,
      scid: this.initialLocalCid,
      reservedBits: 0,
      packetNumberLength: length,
      truncatedPacketNumber: truncated,
    };
    if (zeroRtt) return { type: '0-RTT', ...common };
    return space.name === 'Initial'
      ? { type: 'Initial', ...common, token: this.role === 'client' ? this.retryToken : new Uint8Array(0) }
      : { type: 'Handshake', ...common };
  }

  private headerLength(h: PacketHeader): number {
    if (h.type === '1-RTT') return 1 + h.dcid.length + h.packetNumberLength;
    let n = 1 + 4 + 1 + h.dcid.length + 1 + h.scid.length + 2 + h.packetNumberLength;
    if (h.type === 'Initial') n += varintLength(h.token.length) + h.token.length;
    return n;
  }

  private seal(p: BuiltPacket, now: number): Uint8Array {
    const payload = encodeFrames(p.frames);
    const keys = p.zeroRtt
      ? this.zeroRttTx
      : p.space.name === 'ApplicationData'
        ? this.oneRtt?.tx
        : p.space.tx;
    if (!keys) throw new Error(`no keys to seal a ${p.space.name} packet`);
    // Long headers use a 2-byte Length so the size computed before padding holds.
    const head = encodePacketHeader(
      p.header,
      payload.length + AEAD_TAG_LENGTH,
      p.header.type === '1-RTT' ? undefined : 2,
    );
    const bytes = protectPacket(keys, head, p.space.nextPn, payload);
    const pn = p.space.nextPn++;
    if (p.zeroRtt) this.zeroRttSent.add(pn);
    else if (p.space.name === 'ApplicationData' && this.oneRtt) {
      this.oneRtt.onPacketSent(pn);
      // RFC 9001 §6.6: "Endpoints MUST initiate a key update before exceeding" the
      // confidentiality limit; a refused update (not yet allowed, §6.1) is tried on the next packet.
      this.packetsInPhase++;
      const limit = this.config.keyUpdateInterval ?? AEAD_LIMITS[this.oneRtt.tx.suite].confidentiality * 0.9;
      if (this.packetsInPhase >= limit && this.oneRtt.initiate(this.handshakeConfirmed)) {
        this.packetsInPhase = 0;
        this.noteKeyUpdate(now);
      }
    }
    const inFlight = p.ackEliciting || p.padded || p.frames.some((f) => f.type === 'PADDING');
    const sent: SentPacket<SentItem[]> = {
      packetNumber: pn,
      ackEliciting: p.ackEliciting,
      inFlight,
      sentBytes: bytes.length,
      timeSent: now,
      frames: p.items,
    };
    this.recovery.onPacketSent(p.space.name, sent, now);
    this.counters.inc('quic.tx.packets');
    if (p.ackEliciting) {
      // RFC 9000 §10.1: the first ack-eliciting packet since the last receive restarts the idle timer.
      if (!this.ackElicitingSinceReceive) this.restartIdle(now);
      this.ackElicitingSinceReceive = true;
    }
    if (this.trace.enabled) {
      const scid = p.header.type === '1-RTT' ? new Uint8Array(0) : p.header.scid;
      this.tracePacket(
        now,
        'out',
        p.header.type,
        pn,
        p.header.dcid,
        scid,
        p.frames,
        p.header.type === '1-RTT' && p.header.keyPhase,
      );
    }
    return bytes;
  }

  // ---- acknowledgement and loss (RFC 9000 §13.3, RFC 9002 §6) ----

  private onAcked(items: SentItem[], space: Space): void {
    for (const it of items) {
      if (it.k === 'crypto') this.spaces[it.space].cryptoSend.onAcked(it.offset, it.length, false);
      // RFC 9000 §13.2.4: our ACK was received; older packets need not be acknowledged again.
      else if (it.k === 'ack') space.ack.onAckOfAck(it.largest);
      else this.streamSet.onAcked(it);
    }
  }

  /** RFC 9000 §13.3: what a lost packet carried is sent again, in new packets. */
  private onLost(items: SentItem[]): void {
    for (const it of items) {
      switch (it.k) {
        case 'crypto': {
          const s = this.spaces[it.space];
          if (!s.discarded) s.cryptoSend.onLost(it.offset, it.length, false);
          break;
        }
        case 'handshake-done':
          this.handshakeDonePending = true;
          break;
        case 'path-challenge':
          if (this.pathChallenge) this.pathChallenge.sent = false;
          break;
        case 'new-token':
          this.newTokenPending = it.token;
          break;
        case 'new-cid':
        case 'retire-cid':
          this.cids.onLost(it);
          break;
        default:
          this.streamSet.onLost(it);
      }
    }
  }

  // ======================================================================
  // Timers
  // ======================================================================

  pollTimeout(): number | undefined {
    if (this.connState === 'closed') return undefined;
    if (this.connState === 'closing' || this.connState === 'draining') return this.closeDeadline;
    let t = this.idleDeadline;
    const consider = (x: number | undefined) => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    consider(this.recovery.lossDetectionTimer);
    for (const s of Object.values(this.spaces)) if (!s.discarded) consider(s.ack.nextTimeout());
    consider(this.keyDiscardDeadline);
    consider(this.pathChallenge?.deadline);
    consider(this.pacingDeadline);
    return t;
  }

  handleTimeout(now: number): void {
    if (this.connState === 'closed') return;
    if (this.connState === 'closing' || this.connState === 'draining') {
      if (this.closeDeadline !== undefined && now >= this.closeDeadline) {
        this.transition(this.connState === 'closing' ? 'closing-timeout' : 'draining-timeout', now);
      }
      return;
    }
    // RFC 9002 §7.7: the pacing deadline has no work of its own; the next pollTransmit sends.
    if (this.pacingDeadline !== undefined && now >= this.pacingDeadline) this.pacingDeadline = undefined;
    if (this.idleDeadline !== undefined && now >= this.idleDeadline) {
      this.closeError = { source: 'idle-timeout', application: false, code: 0, reason: 'idle timeout' };
      this.transition('idle-timeout', now);
      this.events.push({ type: 'closed', error: this.closeError });
      return;
    }
    if (this.keyDiscardDeadline !== undefined && now >= this.keyDiscardDeadline) {
      // RFC 9001 §6.5: the previous phase's keys go about three PTOs after the update.
      this.oneRtt?.discardPrevious();
      this.keyDiscardDeadline = undefined;
    }
    if (this.pathChallenge && now >= this.pathChallenge.deadline) {
      // RFC 9000 §9.3.2: validation failed; go back to the last validated path.
      this.pathChallenge = undefined;
      this.pathValidated = true;
      if (this.previousRemote) this.remoteAddr = this.previousRemote;
      this.previousRemote = undefined;
      this.counters.inc('quic.path.validation-failed');
      this.trace1(now, 'local', 'path validation failed: back to the previous address', 'RFC 9000 §9.3.2');
    }
    const timer = this.recovery.lossDetectionTimer;
    if (timer !== undefined && now >= timer) this.onLossTimeout(this.recovery.onLossDetectionTimeout(now));
  }

  private onLossTimeout(action: TimeoutAction<SentItem[]>): void {
    switch (action.kind) {
      case 'lost':
        this.counters.inc('quic.lost', action.lost.length);
        for (const p of action.lost) this.onLost(p.frames);
        return;
      case 'anti-deadlock':
        this.spaces[action.space].probes = 1;
        return;
      case 'pto': {
        this.counters.inc('quic.pto');
        const space = this.spaces[action.space];
        space.probes = action.packets;
        // RFC 9002 §6.2.4: probes carry data when they can: the oldest unacknowledged data goes again.
        const unacked = this.recovery.unacked(action.space).filter((p) => p.ackEliciting);
        const resend = action.space === 'ApplicationData' ? unacked.slice(0, 2) : unacked;
        for (const p of resend) this.onLost(p.frames);
        return;
      }
      case 'none':
        return;
    }
  }

  // ======================================================================
  // Closing (RFC 9000 §10)
  // ======================================================================

  /**
   * RFC 9000 §9.3: the peer moved (a NAT rebinding, or a migration): send there from now on,
   * validate the new address with PATH_CHALLENGE (§8.2), and until it answers send no more
   * than three times what arrived from it. The congestion state is kept: right for a NAT
   * rebinding (§9.4); a move to another network would reset it, which is left out.
   */
  private onPeerMoved(remote: RemoteAddress, firstDatagram: number, now: number): void {
    this.previousRemote = this.pathValidated ? this.remoteAddr : this.previousRemote;
    this.remoteAddr = { ...remote };
    this.pathValidated = false;
    this.pathBytesReceived = firstDatagram;
    this.pathBytesSent = 0;
    this.pathChallenge = { data: this.random(8), sent: false, deadline: now + 3 * this.ptoDuration() };
    this.counters.inc('quic.path.migrated');
    this.trace1(now, 'local', `peer moved to ${remote.address}:${remote.port}: validating`, 'RFC 9000 §9.3');
  }

  /**
   * Client: we are moving to a new local address (RFC 9000 §9.2) — the driver sends from a
   * new socket from now on. We switch to a connection ID not used before (§9.5) and probe
   * the new path with PATH_CHALLENGE (§8.2.1); the server validates our address in turn
   * (§9.3). A new path starts with fresh congestion control and RTT (§9.4, RFC 9002 §9.4)
   * unless only the port changed, when the path is likely the same. Throws before the
   * handshake is confirmed (§9: migration MUST NOT be initiated earlier), when the server
   * sent disable_active_migration (§18.2), or when it has issued no unused connection ID.
   */
  migrate(now: number, opts: { portOnly?: boolean } = {}): void {
    this.assertLive();
    if (this.role !== 'client') throw new Error('only a client initiates migration (RFC 9000 §9)');
    if (!this.handshakeConfirmed)
      throw new Error('migration before the handshake is confirmed (RFC 9000 §9)');
    if (this.peerParams?.disable_active_migration)
      throw new Error('the server sent disable_active_migration (RFC 9000 §18.2)');
    // §9.5: an endpoint MUST NOT reuse a connection ID on a new path; with a zero-length one
    // there is nothing to switch to and the server routes by address alone.
    if (this.cids.remote.length > 0 && !this.cids.switchToUnused())
      throw new Error('no unused connection ID from the peer to migrate with (RFC 9000 §9.5)');
    this.pathChallenge = { data: this.random(8), sent: false, deadline: now + 3 * this.ptoDuration() };
    if (!opts.portOnly) {
      // RFC 9002 §9.4: a new path resets the congestion controller and the RTT estimate.
      // The controller and estimator objects stay (Recovery holds them); their state starts over,
      // except the bytes still in flight, which acknowledgements and losses will still remove.
      const cc = this.recovery.cc;
      const inFlight = cc.bytesInFlight;
      const Fresh = cc.constructor as new (mds: number) => typeof cc;
      Object.assign(cc, new Fresh(this.config.maxDatagramSize));
      cc.bytesInFlight = inFlight;
      Object.assign(this.recovery.rtt, new RttEstimator());
      this.recovery.setLossDetectionTimer(now);
    }
    this.counters.inc('quic.path.client-migrated');
    this.trace1(
      now,
      'local',
      `migrating to a new local address${opts.portOnly ? ' (port only)' : ''}: new connection ID, PATH_CHALLENGE`,
      'RFC 9000 §9.2',
    );
  }

  /**
   * RFC 9001 §6.6: packets that fail authentication count against the integrity limit of
   * the AEAD across all keys; reaching it ends the connection with AEAD_LIMIT_REACHED.
   */
  private onAuthenticationFailure(now: number): void {
    this.authFailures++;
    const suite = this.oneRtt?.rx.suite ?? 'TLS_AES_128_GCM_SHA256';
    if (this.authFailures >= AEAD_LIMITS[suite].integrity)
      this.closeWithError(
        now,
        transportError('AEAD_LIMIT_REACHED', 'integrity limit reached (RFC 9001 §6.6)'),
      );
  }

  private closeWithError(now: number, e: TransportError): void {
    if (!this.isLive) return;
    this.counters.inc('quic.close.error');
    this.enterClosing(
      now,
      {
        type: 'CONNECTION_CLOSE',
        errorCode: e.code,
        frameType: e.frameType,
        reasonPhrase: utf8(e.message.slice(0, 100)),
      },
      { source: 'local', application: false, code: e.code, frameType: e.frameType, reason: e.message },
    );
  }

  private enterClosing(now: number, frame: Frame, error: QuicCloseError | undefined): void {
    this.closeFrame = frame;
    this.closeSendPending = true;
    this.closeError = error;
    this.transition('close-local', now);
    this.closeDeadline = now + 3 * this.ptoDuration();
    this.events.push(error ? { type: 'closed', error } : { type: 'closed' });
  }

  /** §10.2.3: before the handshake is confirmed, the close goes in every space with keys; an application close becomes APPLICATION_ERROR outside 1-RTT. */
  private closeDatagram(now: number): Uint8Array | undefined {
    if (!this.closeSendPending || !this.closeFrame) return undefined;
    this.closeSendPending = false;
    const parts: Uint8Array[] = [];
    let clientInitial = false;
    for (const name of ['Initial', 'Handshake', 'ApplicationData'] as const) {
      const space = this.spaces[name];
      if (space.discarded) continue;
      const keys = name === 'ApplicationData' ? this.oneRtt?.tx : space.tx;
      if (!keys) continue;
      let frame = this.closeFrame;
      if (name !== 'ApplicationData' && frame.type === 'CONNECTION_CLOSE_APPLICATION')
        frame = {
          type: 'CONNECTION_CLOSE',
          errorCode: TransportErrorCode.APPLICATION_ERROR,
          frameType: 0,
          reasonPhrase: new Uint8Array(0),
        };
      const header = this.headerFor(space);
      const frames: Frame[] = [frame];
      if (name === 'Initial' && this.role === 'client') clientInitial = true;
      const payloadLength = frameLength(frame);
      if (payloadLength + header.packetNumberLength < 4) addPadding(frames, 4);
      parts.push(
        this.seal({ space, header, frames, items: [], size: 0, ackEliciting: false, padded: false }, now),
      );
    }
    if (clientInitial) {
      const total = parts.reduce((n, p) => n + p.length, 0);
      if (total < MIN_INITIAL_DATAGRAM) parts.push(new Uint8Array(MIN_INITIAL_DATAGRAM - total));
    }
    if (parts.length === 0) return undefined;
    const d = concatBytes(...parts);
    this.bytesSent += d.length;
    return d;
  }

  // ======================================================================
  // Helpers
  // ======================================================================

  private get isLive(): boolean {
    return this.connState === 'handshaking' || this.connState === 'established';
  }

  private assertLive(): void {
    if (!this.isLive) throw new Error(`connection is ${this.connState}`);
  }

  private transition(input: ConnectionInput, now: number): void {
    const row = connectionTransition(this.connState, input);
    if (!row) throw new Error(`no connection transition ${this.connState} --${input}-->`);
    const from = this.connState;
    this.connState = row.to;
    if (this.trace.enabled) {
      this.trace.emit({
        t: now,
        host: this.host,
        layer: 'quic',
        dir: 'local',
        summary: `${from} → ${row.to} (${input})`,
        state: { from, to: row.to },
        rfc: row.rfc,
      });
    }
  }

  private ptoDuration(): number {
    return this.recovery.rtt.ptoBase() + this.recovery.maxAckDelay;
  }

  private restartIdle(now: number): void {
    if (this.idleTimeout <= 0) {
      this.idleDeadline = undefined;
      return;
    }
    // RFC 9000 §10.1: at least three PTOs, so probes have a chance before the connection gives up.
    this.idleDeadline = now + Math.max(this.idleTimeout, 3 * this.ptoDuration());
  }

  private checkKeyPhase(now: number): void {
    const n = this.oneRtt?.updates ?? 0;
    if (n !== this.lastKeyUpdates) this.noteKeyUpdate(now);
  }

  private noteKeyUpdate(now: number): void {
    this.packetsInPhase = 0;
    this.lastKeyUpdates = this.oneRtt?.updates ?? 0;
    this.keyDiscardDeadline = now + 3 * this.ptoDuration();
    this.trace1(now, 'local', `key update → phase ${this.oneRtt?.keyPhase ? 1 : 0}`, 'RFC 9001 §6');
  }

  private drop(now: number, reason: string, detail: string): void {
    this.counters.inc(reason);
    if (this.trace.enabled)
      this.trace.emit({
        t: now,
        host: this.host,
        layer: 'quic',
        dir: 'drop',
        summary: detail,
        reason,
        ...(this.peerName ? { peer: this.peerName } : {}),
      });
  }

  private trace1(now: number, dir: 'in' | 'out' | 'local', summary: string, rfc: string): void {
    if (this.trace.enabled)
      this.trace.emit({
        t: now,
        host: this.host,
        layer: 'quic',
        dir,
        summary,
        rfc,
        ...(this.peerName ? { peer: this.peerName } : {}),
      });
  }

  private tracePacket(
    now: number,
    dir: 'in' | 'out',
    type: PacketType,
    pn: number,
    dcid: Uint8Array,
    scid: Uint8Array,
    frames: Frame[],
    keyPhase: boolean,
  ): void {
    const header =
      type === '1-RTT'
        ? packetSummary(
            {
              type,
              dcid,
              spinBit: false,
              reservedBits: 0,
              keyPhase,
              packetNumberLength: 1,
              truncatedPacketNumber: 0,
            },
            pn,
          )
        : `${type} pn=${pn} dcid=${toHex(dcid)} scid=${toHex(scid)}`;
    this.trace.emit({
      t: now,
      host: this.host,
      layer: 'quic',
      dir,
      summary: `${header} ${frames.map(frameSummary).join(', ')}`,
      fields: { type, packetNumber: pn, frames: frames.map((f) => f.type) },
      ...(this.peerName ? { peer: this.peerName } : {}),
    });
  }
}

interface BuiltPacket {
  space: Space;
  header: PacketHeader;
  frames: Frame[];
  items: SentItem[];
  size: number;
  ackEliciting: boolean;
  padded: boolean;
  /** Carried in a 0-RTT packet (the client's early data). */
  zeroRtt?: boolean;
}

function sameAddress(a: RemoteAddress, b: RemoteAddress): boolean {
  return a.address === b.address && a.port === b.port;
}
