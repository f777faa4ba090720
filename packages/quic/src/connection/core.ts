/**
 * The connection's variables, grouped by concern, and the few helpers every concern uses
 * (state transitions, tracing, drops, the PTO and the idle timer). The functions of this
 * folder act on it, as TCP's act on its Transmission Control Block:
 *
 * - receive.ts: datagrams in, coalesced packets opened (RFC 9001 §5), Retry, Version Negotiation;
 * - dispatch.ts: each frame to the concern that owns it (RFC 9000 §19);
 * - acks.ts: ACK frames in, what an acknowledged or lost packet carried (RFC 9000 §13, RFC 9002);
 * - send.ts: packets built and sealed, coalesced, padded, within the anti-amplification limit;
 * - keys.ts: packet number spaces, key installation and discard, 1-RTT key update (RFC 9001 §4.9, §6);
 * - handshake.ts: the TLS bridge and transport parameters (RFC 9001 §4, RFC 9000 §7.3-§7.4);
 * - zero-rtt.ts: 0-RTT (RFC 9001 §4.6, RFC 9000 §7.4.1);
 * - path.ts: path validation, NAT rebinding and migration (RFC 9000 §8.2, §9);
 * - close.ts: closing, draining, idle timeout, stateless reset (RFC 9000 §10);
 * - timers.ts: the one deadline the driver sees, and what each timer does when it fires.
 */
import { webcrypto } from 'node:crypto';
import { Counters, silentTrace, type TraceBus, toHex } from '@stepwire/wire';
import type { KeyPhaseState } from '../crypto/key-update.ts';
import { nodeQuicCrypto, type PacketKeys, type QuicCrypto } from '../crypto/keys.ts';
import { AEAD_TAG_LENGTH } from '../crypto/protect.ts';
import type { Frame } from '../frames/frame.ts';
import type { PacketType } from '../packet/header.ts';
import { varintLength } from '../packet/varint.ts';
import { qlogFrame } from '../qlog.ts';
import { AckTracker, type EcnCodepoint } from '../recovery/ack-tracker.ts';
import { EcnValidator } from '../recovery/ecn.ts';
import { type PacketNumberSpace, Recovery } from '../recovery/loss.ts';
import { Pacer } from '../recovery/pacer.ts';
import { ReceiveBuffer } from '../streams/receive-buffer.ts';
import { frameSummary, packetSummary } from '../summary.ts';
import type { QuicTls } from '../tls/types.ts';
import {
  effectiveTransportParameters,
  encodeTransportParameters,
  type TransportParameters,
} from '../transport-parameters.ts';
import { ConnectionIds } from './cids.ts';
import type { SentItem } from './frames.ts';
import { localTransportParameters } from './handshake.ts';
import { PathMtu } from './pmtu.ts';
import type { PreferredAddressConfig, PreferredMigration } from './preferred.ts';
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

/** One packet number space (RFC 9000 §12.3) with its keys and its CRYPTO streams. */
export interface Space {
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

/** 1-RTT keys and their updates (RFC 9001 §5, §6). */
export interface KeyState {
  oneRtt: KeyPhaseState | undefined;
  /** 1-RTT secrets arrive one direction at a time; the phase state starts once both are here. */
  pendingTx: PacketKeys | undefined;
  pendingRx: PacketKeys | undefined;
  /** 1-RTT packets protected since the last key update we made or followed. */
  packetsInPhase: number;
  /** `oneRtt.updates` when we last noticed an update (ours or the peer's). */
  lastUpdates: number;
  /** When the previous phase's read keys go (RFC 9001 §6.5). */
  discardDeadline: number | undefined;
  /** Packets that failed authentication, against the AEAD integrity limit (RFC 9001 §6.6). */
  authFailures: number;
  /** Lowest packet number the peer protected with the current phase's keys (RFC 9001 §6.4). */
  firstRecvInPhase: number | undefined;
  /**
   * We sent, under the current keys, an ACK of a packet the peer protected with them: only
   * then may the peer update again (RFC 9001 §6.1, §6.2).
   */
  ackSentInPhase: boolean;
}

/** 0-RTT (RFC 9001 §4.6): the client's keys to write, the server's to read. */
export interface EarlyState {
  tx: PacketKeys | undefined;
  rx: PacketKeys | undefined;
  /** Client: packet numbers sent in 0-RTT, to send again in 1-RTT if the server rejects them. */
  readonly sent: Set<number>;
  /** Client: the server's transport parameters remembered with the ticket, while 0-RTT is in use (RFC 9000 §7.4.1). */
  params: TransportParameters | undefined;
}

export interface HandshakeState {
  complete: boolean;
  confirmed: boolean;
  /** Server: HANDSHAKE_DONE to send (RFC 9000 §19.20). */
  donePending: boolean;
  alpn: string | undefined;
}

/** Address validation tokens (RFC 9000 §8.1). */
export interface TokenState {
  /** The token our Initials carry: a Retry's, or a NEW_TOKEN token from before (RFC 9000 §17.2.2). */
  retry: Uint8Array;
  /** Server: NEW_TOKEN to send (RFC 9000 §19.7). */
  pending: Uint8Array | undefined;
  readonly make: (() => Uint8Array) | undefined;
  /** Client: the latest NEW_TOKEN token, for the next connection to this server (RFC 9000 §8.1.3). */
  received: Uint8Array | undefined;
}

/** A PATH_CHALLENGE of ours (RFC 9000 §8.2.1) and when validation gives up (§8.2.4). */
export interface PathChallenge {
  data: Uint8Array;
  sent: boolean;
  deadline: number;
}

/** The path (RFC 9000 §8.2, §9). */
export interface PathState {
  remote: RemoteAddress | undefined;
  /** Our address on the path, when the driver tells it (a server with more than one, RFC 9000 §9.6). */
  local: RemoteAddress | undefined;
  previous: RemoteAddress | undefined;
  validated: boolean;
  bytesReceived: number;
  bytesSent: number;
  challenge: PathChallenge | undefined;
  /** PATH_RESPONSE data owed on the current path. */
  readonly responses: Uint8Array[];
  /**
   * PATH_CHALLENGEs that arrived from an address we do not send to (a probe of a new path
   * that did not move us there): answered on the path they came from (RFC 9000 §8.2.2).
   */
  readonly probeResponses: {
    data: Uint8Array;
    remote: RemoteAddress;
    local: RemoteAddress | undefined;
    budget: number;
  }[];
  /** While handling a datagram on another path than the current one: its addresses and size. */
  arrivalElsewhere: { remote: RemoteAddress; local: RemoteAddress | undefined; size: number } | undefined;
  /** Set while processing a datagram that held the newest non-probing packet (§9.3). */
  newestNonProbing: boolean;
}

export interface PacingState {
  /** RFC 9002 §7.7; undefined when pacing is off. */
  readonly pacer: Pacer | undefined;
  /** When the pacer next lets 1-RTT data go, while it is holding some back (RFC 9002 §7.7). */
  deadline: number | undefined;
  /** Set by pollTransmit for the datagram being built: the pacer holds 1-RTT data back. */
  paced: boolean;
}

/** RFC 9000 §10.1. */
export interface IdleState {
  timeout: number;
  deadline: number | undefined;
  ackElicitingSinceReceive: boolean;
}

/** RFC 9000 §10.2: what the closing and draining states need. */
export interface ClosingState {
  frame: Frame | undefined;
  sendPending: boolean;
  packetsSince: number;
  deadline: number | undefined;
}

/** DATAGRAM frames (RFC 9221). */
export interface DatagramState {
  /** Payloads queued by sendDatagram: sent once, never again (RFC 9221 §5.2). */
  readonly out: Uint8Array[];
  /** 'datagram' events pushed and not polled yet. */
  unpolled: number;
  readonly limit: number;
}

/** Minimum datagram size carrying a client Initial (RFC 9000 §14.1). */
export const MIN_INITIAL_DATAGRAM = 1200;
/** RFC 9000 §8.1: before validation a server sends at most three times what it received. */
export const AMPLIFICATION_FACTOR = 3;
/** Out-of-order packets held until their keys arrive (RFC 9001 §5.7). */
export const MAX_UNDECRYPTABLE = 8;
export const MAX_PATH_RESPONSES = 4;
/** DATAGRAM payloads held each way unless the transport config says otherwise. */
const DEFAULT_DATAGRAM_QUEUE = 256;

function defaultRandom(n: number): Uint8Array {
  return webcrypto.getRandomValues(new Uint8Array(n));
}

export function sameAddress(a: RemoteAddress, b: RemoteAddress): boolean {
  return a.address === b.address && a.port === b.port;
}

export class ConnectionCore {
  readonly role: 'client' | 'server';
  readonly counters = new Counters();
  state: ConnectionState = 'handshaking';
  readonly config: TransportConfig;
  readonly qc: QuicCrypto;
  readonly random: (n: number) => Uint8Array;
  readonly trace: TraceBus;
  readonly host: string;
  readonly peerName: string | undefined;
  readonly tls: QuicTls;
  readonly resetTokenFor: (cid: Uint8Array) => Uint8Array;
  readonly localCidLength: number;
  readonly tlsEpoch: number;
  readonly events: QuicConnectionEvent[] = [];

  readonly spaces: Record<PacketNumberSpace, Space>;
  readonly keys: KeyState = {
    oneRtt: undefined,
    pendingTx: undefined,
    pendingRx: undefined,
    packetsInPhase: 0,
    lastUpdates: 0,
    discardDeadline: undefined,
    authFailures: 0,
    firstRecvInPhase: undefined,
    ackSentInPhase: false,
  };
  readonly early: EarlyState = { tx: undefined, rx: undefined, sent: new Set(), params: undefined };
  recovery: Recovery<SentItem[]>;
  readonly congestion: 'newreno' | 'cubic';
  readonly pacing: PacingState;

  // ---- connection IDs (RFC 9000 §5.1) ----
  /** Our first SCID. */
  readonly initialLocalCid: Uint8Array;
  readonly cids: ConnectionIds;
  /** The first DCID the client sent: original_destination_connection_id (RFC 9000 §7.3). */
  readonly originalDcid: Uint8Array;
  retrySourceCid: Uint8Array | undefined;
  readonly tokens: TokenState;
  receivedFirstServerPacket = false;
  /** Server: the client's SCID in its first Initial, initial_source_connection_id to check. */
  readonly clientScidSeen: Uint8Array | undefined;

  // ---- handshake ----
  readonly hs: HandshakeState = { complete: false, confirmed: false, donePending: false, alpn: undefined };
  peerParams: TransportParameters | undefined = undefined;
  peerAckDelayExponent = 3;
  /** RFC 9000 §8.1: the peer's address is validated (a client's always is, to itself). */
  addressValidated: boolean;
  bytesReceived = 0;
  bytesSent = 0;
  /** Packets held until their keys arrive (RFC 9001 §5.7), with the ECN codepoint they came with. */
  readonly undecryptable: { bytes: Uint8Array; ecn: EcnCodepoint }[] = [];
  /** The ECN codepoint of the datagram being handled (RFC 9000 §13.4.1). */
  rxEcn: EcnCodepoint = 'not-ect';
  /** ECN validation of our marks (RFC 9000 §13.4.2). */
  readonly ecn: EcnValidator;
  /** Path MTU discovery (RFC 9000 §14.3): `pmtu.current` is the UDP payload size we send. */
  readonly pmtu: PathMtu;
  /** Set by pollTransmit while a due path MTU probe waits for room in the window: new data waits too. */
  holdForProbe = false;
  /** Set by pollTransmit while it seals the packets of a datagram sent ECT(0). */
  markingEcn = false;
  /** The IP ECN codepoint of the datagram pollTransmit last returned (RFC 3168 §5: 2 is ECT(0)). */
  transmitEcn = 0;
  /** The time of the call being handled, for traces from callbacks. */
  now = 0;

  readonly streamSet: StreamSet;
  readonly dgram: DatagramState;
  readonly path: PathState;
  /** Where the datagram pollTransmit last returned goes, when not to `path.remote` (a probe response). */
  transmitRemote: RemoteAddress | undefined = undefined;
  /** The local address it leaves from, when not `path.local` (a probe response on another path). */
  transmitLocal: RemoteAddress | undefined = undefined;
  /** Client: the move to the server's preferred address under validation (RFC 9000 §9.6.1). */
  preferred: PreferredMigration | undefined = undefined;
  /** Server: our preferred_address connection ID and reset token (sequence 1). */
  readonly preferredLocal: { cid: Uint8Array; resetToken: Uint8Array } | undefined;
  /** Server: the preferred address to advertise (RFC 9000 §18.2). */
  readonly serverPreferredAddress: PreferredAddressConfig | undefined;

  readonly idle: IdleState;
  readonly closing: ClosingState = {
    frame: undefined,
    sendPending: false,
    packetsSince: 0,
    deadline: undefined,
  };
  closeError: QuicCloseError | undefined = undefined;

  constructor(opts: QuicConnectionOptions) {
    this.role = opts.role;
    this.tlsEpoch = opts.tlsEpoch ?? 0;
    this.path = {
      remote: opts.remote ? { ...opts.remote } : undefined,
      local: undefined,
      previous: undefined,
      validated: true,
      bytesReceived: 0,
      bytesSent: 0,
      challenge: undefined,
      responses: [],
      probeResponses: [],
      arrivalElsewhere: undefined,
      newestNonProbing: false,
    };
    this.tokens = {
      retry: opts.role === 'client' && opts.token ? opts.token : new Uint8Array(0),
      pending: undefined,
      make: opts.newToken,
      received: undefined,
    };
    this.config = { ...DEFAULT_TRANSPORT, ...opts.transport };
    this.qc = opts.crypto ?? nodeQuicCrypto;
    this.random = opts.random ?? defaultRandom;
    this.trace = opts.trace ?? silentTrace;
    this.host = opts.host ?? opts.role;
    this.peerName = opts.peer;
    this.localCidLength = opts.localCidLength ?? opts.localCid?.length ?? 8;
    this.resetTokenFor = opts.resetTokenFor ?? (() => this.random(16));
    this.congestion = opts.congestion ?? 'cubic';
    this.pacing = {
      pacer: opts.pacing === false ? undefined : new Pacer(this.config.maxDatagramSize),
      deadline: undefined,
      paced: false,
    };
    this.recovery = new Recovery({
      isServer: this.role === 'server',
      maxDatagramSize: this.config.maxDatagramSize,
      congestion: this.congestion,
    });
    this.streamSet = new StreamSet(this.role, this.config, this.events);
    this.dgram = { out: [], unpolled: 0, limit: this.config.datagramQueueLimit ?? DEFAULT_DATAGRAM_QUEUE };
    const idleTimeout = this.config.maxIdleTimeout;
    this.now = opts.now;
    this.idle = {
      timeout: idleTimeout,
      deadline: idleTimeout > 0 ? opts.now + idleTimeout : undefined,
      ackElicitingSinceReceive: false,
    };

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
    if (this.role === 'client') {
      this.originalDcid = this.cids.remote;
      this.clientScidSeen = undefined;
      this.addressValidated = true;
    } else {
      const s = opts.server;
      if (!s) throw new Error('a server connection needs the client Initial info (opts.server)');
      this.originalDcid = s.originalDcid;
      this.retrySourceCid = s.retrySourceCid;
      this.clientScidSeen = s.clientScid;
      this.addressValidated = s.addressValidated ?? false;
    }
    this.serverPreferredAddress = this.role === 'server' ? opts.server?.preferredAddress : undefined;
    this.preferredLocal = this.serverPreferredAddress ? this.cids.issuePreferred() : undefined;
    this.ecn = new EcnValidator(this.config.ecn ?? false);
    this.ecn.onTransition = (from, to, rfc) => {
      if (to === 'failed') this.counters.inc('quic.ecn.failed');
      this.trace1(this.now, 'local', `ECN ${from} → ${to}`, rfc);
    };
    this.pmtu = new PathMtu(
      this.config.maxDatagramSize,
      this.config.maxUdpPayloadSize ?? this.config.maxDatagramSize,
      this.config.pmtuRaiseInterval,
    );
    this.pmtu.onTransition = (from, to, rfc) => {
      this.counters.inc(`quic.pmtu.${to}`);
      this.trace1(this.now, 'local', `PMTU ${from} → ${to} (${this.pmtu.current} bytes)`, rfc);
    };
    this.tls = opts.tls(encodeTransportParameters(localTransportParameters(this)));
  }

  get isLive(): boolean {
    return this.state === 'handshaking' || this.state === 'established';
  }

  assertLive(): void {
    if (!this.isLive) throw new Error(`connection is ${this.state}`);
  }

  /** Every state change goes through the table of state.ts. */
  transition(input: ConnectionInput, now: number): void {
    const row = connectionTransition(this.state, input);
    if (!row) throw new Error(`no connection transition ${this.state} --${input}-->`);
    const from = this.state;
    this.state = row.to;
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

  ptoDuration(): number {
    return this.recovery.rtt.ptoBase() + this.recovery.maxAckDelay;
  }

  restartIdle(now: number): void {
    if (this.idle.timeout <= 0) {
      this.idle.deadline = undefined;
      return;
    }
    // RFC 9000 §10.1: at least three PTOs, so probes have a chance before the connection gives up.
    this.idle.deadline = now + Math.max(this.idle.timeout, 3 * this.ptoDuration());
  }

  spaceOfType(t: PacketType): Space {
    return t === 'Initial'
      ? this.spaces.Initial
      : t === 'Handshake'
        ? this.spaces.Handshake
        : this.spaces.ApplicationData;
  }

  /** The peer's active_connection_id_limit (RFC 9000 §18.2). */
  get peerCidLimit(): number {
    return effectiveTransportParameters(this.peerParams ?? {}).active_connection_id_limit;
  }

  /**
   * The largest payload sendDatagram takes now: bounded by the peer's
   * max_datagram_frame_size (RFC 9221 §3) and by one packet (§5: a DATAGRAM frame is never
   * split); 0 when the peer did not advertise DATAGRAM support or its parameters are not
   * known yet (nor remembered for 0-RTT).
   */
  get maxDatagramPayload(): number {
    // RFC 9221 §3: in 0-RTT the remembered max_datagram_frame_size allows DATAGRAM frames.
    const params = this.peerParams ?? (this.early.tx ? this.early.params : undefined);
    const peerMax = params?.max_datagram_frame_size ?? 0;
    if (peerMax === 0) return 0;
    // A 1-RTT packet: flags, DCID, a packet number of up to 4 bytes, the AEAD tag.
    const packetRoom = this.pmtu.current - (1 + this.cids.remote.length + 4 + AEAD_TAG_LENGTH);
    const room = Math.min(peerMax, packetRoom);
    // The frame: type, Length (a varint), payload (RFC 9221 §4).
    let n = room - 1 - varintLength(room);
    while (n > 0 && 1 + varintLength(n) + n > room) n--;
    return Math.max(0, n);
  }

  drop(now: number, reason: string, detail: string): void {
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

  trace1(now: number, dir: 'in' | 'out' | 'local', summary: string, rfc: string): void {
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

  tracePacket(
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
      fields: { type, packetNumber: pn, frames: frames.map(qlogFrame) },
      ...(this.peerName ? { peer: this.peerName } : {}),
    });
  }
}
