import { seqAdd, seqDiff, silentTrace, type TraceBus } from '@stepwire/wire';
import { ChunkQueue } from '../buffers.ts';
import { bbr } from '../congestion/bbr.ts';
import { cubic } from '../congestion/cubic.ts';
import { newReno } from '../congestion/newreno.ts';
import type { CongestionControl, CongestionFactory } from '../congestion/types.ts';
import { defaultIsn, type IsnGenerator } from '../isn.ts';
import type { SackBlock, TcpOptions } from '../options.ts';
import { RttEstimator } from '../rto.ts';
import { OutOfOrderQueue, Scoreboard } from '../sack.ts';
import { describeSegment, SYN, type TcpSegment } from '../segment.ts';
import { type EcnState, newEcnState } from './ecn.ts';
import type { FrtoState } from './frto.ts';
import { newRackState, type RackState } from './rack.ts';
import { STRICT_TRANSITIONS, type TcpInput, type TcpState, transitionFor } from './state.ts';
import type {
  FastOpenServer,
  KeepaliveOptions,
  TcpConnectionOptions,
  TcpEndpoint,
  TcpEvent,
} from './types.ts';

export const EMPTY: Uint8Array = new Uint8Array(0);
export const NO_OPTIONS: TcpOptions = Object.freeze({}) as TcpOptions;

/**
 * RFC 9293 §3.3.1 send sequence variables, with what this implementation adds to them.
 * `nxt` goes back to `una` after an RTO (go-back-N, RFC 5681 §3.1 loss window), so the
 * RFC's SND.NXT in the acceptability tests is `max`, the highest sequence number sent.
 */
export interface SendSequence {
  /** ISS, the initial send sequence number. */
  iss: number;
  /** SND.UNA, the oldest unacknowledged sequence number. */
  una: number;
  /** SND.NXT, the next sequence number to send. */
  nxt: number;
  /** The highest sequence number sent (SND.NXT when nothing is being retransmitted). */
  max: number;
  /** SND.WND, in bytes (already scaled). */
  wnd: number;
  /** SND.WL1 and SND.WL2: the segment that last updated the window. */
  wl1: number;
  wl2: number;
  /** MAX.SND.WND (RFC 5961 §5.2): the largest window the peer ever offered. */
  maxWnd: number;
  /** Snd.Wind.Shift (RFC 7323 §2.3). */
  shift: number;
}

/** RFC 9293 §3.3.1 receive sequence variables. */
export interface ReceiveSequence {
  /** IRS, the peer's initial sequence number. */
  irs: number;
  /** RCV.NXT. */
  nxt: number;
  /** RCV.NXT + RCV.WND as last advertised: never moved left (RFC 9293 §3.8.6.2.2). */
  advRight: number;
  /** Rcv.Wind.Shift (RFC 7323 §2.3). */
  shift: number;
}

/** RFC 7323 §3 and §4.3 timestamp state. */
export interface TimestampState {
  /** Both sides sent the option in their SYN. */
  ok: boolean;
  /** TS.Recent, and when it was last set (for the 24-day rule of §5.5). */
  recent: number;
  recentAge: number;
  /** Last.ACK.sent. */
  lastAckSent: number;
  /** RFC 7323 §5.4: per-connection offset added to the clock in TSval. */
  offset: number;
}

/** RTT measurement (RFC 6298 §3 one timed segment, Karn's rule); the estimator is `rtt`. */
export interface RttProbe {
  /** The sequence number being timed without timestamps, and when it was sent. */
  seq: number | undefined;
  time: number;
  /** End of the highest range ever retransmitted: ACKs below it give no RTT sample. */
  karnUntil: number | undefined;
}

/** Loss recovery: RFC 5681 / RFC 6582 fast recovery, RFC 6675 SACK, RFC 6937 PRR. */
export interface RecoveryState {
  inRecovery: boolean;
  /** RFC 6582 / RFC 6675 "recover": SND.MAX when recovery (or the last RTO) began. */
  recover: number;
  /** RFC 6675 HighRxt. */
  highRxt: number;
  /** Duplicate ACKs since the last new ACK. */
  dupAcks: number;
  /** RFC 6675 §4 rule (4): the recovery point of the last rescue retransmission. */
  rescueRxt: number | undefined;
  /**
   * The end of the highest range RACK found lost in this recovery (RFC 8985 §6.2), or
   * undefined: below it nothing of the original transmissions is counted in flight.
   */
  rackLostEnd: number | undefined;
  /** Retransmissions of this recovery: [start, end, SND.MAX when sent] triples. */
  rxtLog: number[];
  /** Retransmissions found lost, to send again first: [start, end] pairs. */
  relost: number[];
  /** RFC 6937 RecoverFS, prr_delivered, prr_out. */
  recoverFs: number;
  prrDelivered: number;
  prrOut: number;
  /**
   * DupThresh in force (RFC 6675 §2; RFC 4653 lets a sender raise it): the option's value,
   * raised when an undo proves the network reorders more deeply (as Linux's tp->reordering).
   */
  dupThresh: number;
}

/**
 * Undoing a congestion response that turns out spurious (RFC 3708 detection by D-SACK,
 * RFC 4015 response, as Linux's undo_marker/undo_retrans): every segment retransmitted in
 * a recovery episode is counted, every D-SACK for the episode's range takes one off; when
 * all of them came back as duplicates, the data was never lost (only reordered or
 * delayed) and cwnd and ssthresh go back to what they were.
 */
export interface UndoState {
  /** An episode (fast recovery or RTO) whose retransmissions may yet prove spurious. */
  active: boolean;
  /** Fast recovery (true) or RTO (false). */
  fast: boolean;
  priorCwnd: number;
  priorSsthresh: number;
  /** SND.UNA and SND.MAX when the episode began: the range its retransmissions cover. */
  start: number;
  end: number;
  /** Retransmitted segments not yet reported by a D-SACK. */
  retrans: number;
  /** D-SACKs received for the episode. */
  dsacks: number;
  /** Segments from SND.UNA to the highest SACKed byte when recovery began. */
  reorderSegs: number;
}

/** Timers as absolute deadlines in ms; undefined = not armed. */
export interface Timers {
  /** Retransmission (RFC 6298). */
  rtx: number | undefined;
  /** Persist / zero-window probe (RFC 9293 §3.8.6.1), and its backoff count. */
  persist: number | undefined;
  persistBackoff: number;
  /** Delayed ACK (RFC 9293 §3.8.6.3). */
  delAck: number | undefined;
  /** Keepalive (RFC 9293 §3.8.4), and the probes sent unanswered. */
  keepalive: number | undefined;
  keepaliveProbes: number;
  /** TIME-WAIT's 2 MSL (RFC 9293 §3.10.8). */
  timeWait: number | undefined;
  /** RACK's reordering timer (RFC 8985 §6.3). */
  rack: number | undefined;
  /** The tail loss probe timeout (RFC 8985 §7.2). */
  tlp: number | undefined;
}

/** What the next ACK owes and how often unacceptable segments may be answered. */
export interface AckState {
  /** Full-sized segments received since the last ACK (RFC 5681 §4.2: ACK every second). */
  unackedSegs: number;
  /** An ACK must go with this call's output. */
  now: boolean;
  /** RFC 5961 §7 challenge ACK rate limit: the current one-second window and its count. */
  challengeWindowStart: number;
  challengeCount: number;
  /** When an unacceptable segment was last answered (RFC 5961 §7 throttling). */
  lastOowAt: number | undefined;
  /** A duplicate range to report first in the next SACK option (RFC 2883 D-SACK). */
  dsack: SackBlock | undefined;
}

/**
 * Urgent data (RFC 9293 §3.8.5, with RFC 6093 §4's pointer: the sequence number of the
 * octet just after the urgent data).
 */
export interface UrgentState {
  /** SND.UP while in urgent mode (until the urgent data is acknowledged). */
  sndUp: number | undefined;
  /** RCV.UP while urgent data is pending for the reader. */
  rcvUp: number | undefined;
}

/** Client TCP Fast Open (RFC 7413). */
export interface FastOpenClient {
  /** A cookie to send with data in the SYN. */
  cookie: Uint8Array | undefined;
  /** Ask the server for a cookie (an empty option in the SYN). */
  request: boolean;
  /** Data bytes that went in our SYN. */
  synData: number;
}

type Tunables = Required<
  Pick<
    TcpConnectionOptions,
    | 'noDelay'
    | 'delayedAck'
    | 'maxRetries'
    | 'synRetries'
    | 'msl'
    | 'challengeAckLimit'
    | 'dupThresh'
    | 'sendHighWater'
    | 'sendLowWater'
    | 'invalidAckInterval'
  >
>;

export type TcpCounters = TcpConnectionCounters;
interface TcpConnectionCounters {
  segmentsOut: number;
  segmentsIn: number;
  bytesOut: number;
  bytesIn: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  outOfOrderDropped: number;
  challengeAcks: number;
  pawsDropped: number;
  /** Duplicate ACKs that failed PAWS only by reordering and were kept (see receive.ts disorderedAck). */
  pawsDisorderedAcks: number;
  dropped: number;
  zeroWindowProbes: number;
  keepalivesSent: number;
  oowAcksSuppressed: number;
  dsacksReceived: number;
  spuriousRecoveries: number;
  tailLossProbes: number;
  tlpRepairs: number;
  ecnCeReceived: number;
  ecnEceReceived: number;
  ecnReductions: number;
  ecnCwrSent: number;
  urgentReceived: number;
}

function defaultPeerMss(addr: string): number {
  // RFC 9293 §3.7.1 (536 for IPv4), RFC 8200 §5 minimum MTU 1280 - 60 for IPv6.
  return addr.includes(':') ? 1220 : 536;
}

/** The window shift this host uses for a receive buffer (RFC 7323 §2.3: the least that fits it). */
export function windowShiftFor(buffer: number): number {
  let s = 0;
  while (s < 14 && buffer >> s > 0xffff) s++;
  return s;
}

/**
 * RFC 7323 §5.4: a per-connection offset for TSval, derived from the (secret) ISS. A SYN
 * cookie's SYN-ACK (syncookie.ts) uses the same one, so the connection rebuilt from the
 * cookie goes on with the timestamps that SYN-ACK began.
 */
export function timestampOffset(iss: number): number {
  return Math.imul(iss ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
}

export function keepaliveOptions(opts: KeepaliveOptions): Required<KeepaliveOptions> {
  return { idle: opts.idle ?? 7_200_000, interval: opts.interval ?? 75_000, count: opts.count ?? 9 };
}

/**
 * The Transmission Control Block (RFC 9293 §3.3.1): everything one connection knows, in
 * small groups named after the RFC's variables. The functions of receive.ts, send.ts,
 * recovery.ts, rack.ts, frto.ts, segments.ts and timers.ts act on it; TcpConnection (connection.ts) is the
 * user's face of it. The bookkeeping every part needs (state changes, output, drops,
 * tracing) lives here as methods.
 */
export class ControlBlock {
  state: TcpState = 'CLOSED';
  readonly local: TcpEndpoint;
  readonly remote: TcpEndpoint;

  readonly snd: SendSequence;
  readonly rcv: ReceiveSequence;
  readonly ts: TimestampState = { ok: false, recent: 0, recentAge: 0, lastAckSent: 0, offset: 0 };

  // Negotiated in the handshake (RFC 9293 §3.7.1, RFC 2018 §2).
  readonly ourMss: number;
  peerMss: number;
  /** Payload bytes per full-sized segment (RFC 9293 §3.7.1 Eff.snd.MSS). */
  mss: number;
  /** Largest IP packet of a super-segment the link cuts (TSO); 0: none. */
  readonly tsoMax: number;
  sackOk = false;
  /** Did the peer's SYN offer window scaling (our SYN-ACK answers only then)? */
  peerOfferedWs = false;
  readonly offerWs: boolean;
  readonly offerSack: boolean;
  readonly offerTs: boolean;

  // The send buffer: bytes written and not yet acknowledged, then our FIN.
  readonly sendQueue = new ChunkQueue();
  /** Sequence number of sendQueue's first byte. */
  sendBase: number;
  finQueued = false;
  finSent = false;
  /** 'writable' is owed once the queue drains below the low-water mark. */
  writableBlocked = false;
  allAckedReported = true;
  /** When data was last sent, for the restart window (RFC 5681 §4.1). */
  lastSendAt: number | undefined;
  /** When the send side last made progress (an ACK of new data, or sending from idle). */
  progressAt = 0;

  // The receive buffer: in-order bytes for the reader, out-of-order bytes held.
  readonly recvQueue = new ChunkQueue();
  readonly ooo: OutOfOrderQueue;
  readonly receiveBuffer: number;
  peerFinSeen = false;
  /** Where a FIN that arrived out of order sits. */
  oooFin: number | undefined;

  // Loss recovery and congestion control.
  readonly rtt: RttEstimator;
  readonly rttProbe: RttProbe = { seq: undefined, time: 0, karnUntil: undefined };
  readonly cc: CongestionControl;
  readonly scoreboard = new Scoreboard();
  readonly recovery: RecoveryState;
  readonly rack: RackState;
  /** F-RTO (RFC 5682 §3, frto.ts). */
  readonly frto: FrtoState;
  readonly undo: UndoState = {
    active: false,
    fast: false,
    priorCwnd: 0,
    priorSsthresh: 0,
    start: 0,
    end: 0,
    retrans: 0,
    dsacks: 0,
    reorderSegs: 0,
  };
  /** Classic ECN (RFC 3168 §6.1). */
  readonly ecn: EcnState;
  readonly urg: UrgentState = { sndUp: undefined, rcvUp: undefined };
  /**
   * The end of the last segment shorter than the MSS that we sent (Linux's snd_sml): Nagle
   * holds a short segment back only while such a segment is unacknowledged (Minshall's
   * variant, draft-minshall-nagle; Linux tcp_minshall_check).
   */
  sndSml: number | undefined = undefined;
  /** RTO expiries (or SYN retransmissions) in a row. */
  retries = 0;
  synRetransmitted = false;

  readonly timers: Timers = {
    rtx: undefined,
    persist: undefined,
    persistBackoff: 0,
    delAck: undefined,
    keepalive: undefined,
    keepaliveProbes: 0,
    timeWait: undefined,
    rack: undefined,
    tlp: undefined,
  };
  readonly acks: AckState = {
    unackedSegs: 0,
    now: false,
    challengeWindowStart: Number.NEGATIVE_INFINITY,
    challengeCount: 0,
    lastOowAt: undefined,
    dsack: undefined,
  };
  readonly tfo: FastOpenClient = { cookie: undefined, request: false, synData: 0 };
  readonly fastOpenServer: FastOpenServer | undefined;
  /** Opened by a listener (RFC 9293 §3.10.7.4: a reset SYN-RECEIVED goes back to LISTEN). */
  passive = false;

  readonly o: Tunables;
  keepalive: Required<KeepaliveOptions> | undefined;
  readonly userTimeout: number | undefined;
  private readonly issGiven: boolean;
  private readonly isnGenerator: IsnGenerator | undefined;

  readonly trace: TraceBus;
  readonly hostName: string;
  readonly peerName: string | undefined;

  /** This call's output and the clock it was given. */
  out: TcpSegment[] = [];
  /** The IP ECN codepoint of each of `out` (RFC 3168 §5), kept only once ECN is in use. */
  outEcn: number[] | undefined = undefined;
  ev: TcpEvent[] = [];
  now = 0;

  readonly counters: TcpConnectionCounters = {
    segmentsOut: 0,
    segmentsIn: 0,
    bytesOut: 0,
    bytesIn: 0,
    retransmits: 0,
    fastRetransmits: 0,
    timeouts: 0,
    outOfOrderDropped: 0,
    challengeAcks: 0,
    pawsDropped: 0,
    pawsDisorderedAcks: 0,
    dropped: 0,
    zeroWindowProbes: 0,
    keepalivesSent: 0,
    oowAcksSuppressed: 0,
    dsacksReceived: 0,
    spuriousRecoveries: 0,
    tailLossProbes: 0,
    tlpRepairs: 0,
    ecnCeReceived: 0,
    ecnEceReceived: 0,
    ecnReductions: 0,
    ecnCwrSent: 0,
    urgentReceived: 0,
  };

  constructor(opts: TcpConnectionOptions) {
    this.local = opts.local;
    this.remote = opts.remote;
    this.issGiven = opts.iss !== undefined;
    this.isnGenerator = opts.isn;
    const iss = (opts.iss ?? 0) >>> 0;
    this.snd = { iss, una: iss, nxt: iss, max: iss, wnd: 0, wl1: 0, wl2: 0, maxWnd: 0, shift: 0 };
    this.recovery = {
      inRecovery: false,
      recover: iss,
      highRxt: iss,
      dupAcks: 0,
      rescueRxt: undefined,
      rackLostEnd: undefined,
      rxtLog: [],
      relost: [],
      recoverFs: 0,
      prrDelivered: 0,
      prrOut: 0,
      dupThresh: opts.dupThresh ?? 3,
    };
    this.sendBase = seqAdd(iss, 1);
    this.ourMss = opts.mss ?? 1460;
    this.peerMss = defaultPeerMss(opts.remote.addr);
    this.mss = Math.min(this.ourMss, this.peerMss);
    this.tsoMax = opts.tsoMax ?? 0;
    this.receiveBuffer = Math.max(1, opts.receiveBuffer ?? 256 * 1024);
    this.offerWs = opts.windowScale ?? true;
    this.offerSack = opts.sack ?? true;
    this.offerTs = opts.timestamps ?? true;
    this.rcv = { irs: 0, nxt: 0, advRight: 0, shift: this.offerWs ? windowShiftFor(this.receiveBuffer) : 0 };
    this.ooo = new OutOfOrderQueue(opts.maxOutOfOrder ?? this.receiveBuffer);
    this.rack = newRackState(opts.rack ?? true);
    this.frto = {
      enabled: opts.frto ?? true,
      state: 0,
      recoveryPoint: iss,
      origEnd: iss,
      sackedOrig: 0,
      recoveryUnderway: false,
    };
    this.ecn = newEcnState(opts.ecn);
    const minRto = opts.minRto ?? opts.rto?.min;
    this.rtt = new RttEstimator(minRto === undefined ? opts.rto : { ...opts.rto, min: minRto });
    const cf: CongestionFactory =
      typeof opts.congestion === 'function'
        ? opts.congestion
        : opts.congestion === 'cubic'
          ? cubic
          : opts.congestion === 'bbr'
            ? bbr
            : newReno;
    this.cc = cf(this.mss);
    const high = opts.sendHighWater ?? 256 * 1024;
    this.o = {
      noDelay: opts.noDelay ?? false,
      delayedAck: Math.min(200, Math.max(0, opts.delayedAck ?? 40)),
      maxRetries: opts.maxRetries ?? 12,
      synRetries: opts.synRetries ?? 6,
      msl: opts.msl ?? 30_000,
      challengeAckLimit: opts.challengeAckLimit ?? 100,
      dupThresh: opts.dupThresh ?? 3,
      sendHighWater: high,
      sendLowWater: opts.sendLowWater ?? Math.floor(high / 2),
      invalidAckInterval: opts.invalidAckInterval ?? 500,
    };
    this.keepalive = opts.keepalive ? keepaliveOptions(opts.keepalive) : undefined;
    if (opts.fastOpen) {
      this.tfo.cookie = opts.fastOpen.cookie;
      this.tfo.request = !opts.fastOpen.cookie;
    }
    this.fastOpenServer = opts.fastOpenServer;
    this.userTimeout = opts.userTimeout;
    this.trace = opts.trace ?? silentTrace;
    this.hostName = opts.hostName ?? opts.local.addr;
    this.peerName = opts.peerName;
    this.setIss(iss);
  }

  setIss(iss: number): void {
    const s = this.snd;
    s.iss = iss >>> 0;
    s.una = s.nxt = s.max = this.recovery.recover = this.recovery.highRxt = s.iss;
    this.sendBase = seqAdd(s.iss, 1);
    this.ts.offset = timestampOffset(s.iss);
  }

  /** RFC 6528: the ISS depends on the 4-tuple, a secret and the clock at open time. */
  chooseIss(now: number): void {
    if (this.issGiven) return;
    const gen = this.isnGenerator;
    this.setIss(gen ? gen.isn(this.local, this.remote, now) : defaultIsn(this.local, this.remote, now));
  }

  // -------------------------------------------------------------------------------------
  // Derived quantities

  /** SEG.WND in bytes: scaled, except in a SYN (RFC 7323 §2.2). */
  segWindow(seg: TcpSegment): number {
    // RFC 7323 §2.3: the shift is at most 14, so a shift of 1 is exact (and cheaper than **).
    return seg.flags & SYN ? seg.window : seg.window * (1 << this.snd.shift);
  }

  /** The FIN's sequence number: just past the last queued byte. */
  finSeq(): number {
    return seqAdd(this.sendBase, this.sendQueue.length);
  }

  /** RFC 5681 FlightSize: data sent and not yet cumulatively acknowledged. */
  flightSize(): number {
    return seqDiff(this.snd.max, this.snd.una);
  }

  unsentAndUnacked(): number {
    return this.sendQueue.length;
  }

  /** Bytes the peer's window still allows beyond SND.NXT. */
  sendWindowAvailable(): number {
    return seqDiff(seqAdd(this.snd.una, this.snd.wnd), this.snd.nxt);
  }

  /** Receive buffer room: the window we can offer from RCV.NXT. */
  freeSpace(): number {
    return Math.max(0, this.receiveBuffer - this.recvQueue.length);
  }

  tsVal(): number {
    return (Math.floor(this.now) + this.ts.offset) >>> 0;
  }

  persistInterval(): number {
    return Math.min(this.rtt.max, this.rtt.baseRto * 2 ** Math.min(this.timers.persistBackoff, 16));
  }

  // -------------------------------------------------------------------------------------
  // Bookkeeping

  /** A duplicate segment arrived: report it in the next SACK option (RFC 2883 §4). */
  noteDuplicate(seq: number, len: number): void {
    if (this.sackOk && len > 0) this.acks.dsack = { left: seq, right: seqAdd(seq, len) };
  }

  pushReadable(): void {
    for (const e of this.ev) {
      if (e.type === 'data-readable') {
        e.readable = this.recvQueue.length;
        return;
      }
    }
    this.ev.push({ type: 'data-readable', readable: this.recvQueue.length });
  }

  clearAckState(): void {
    this.acks.now = false;
    this.acks.unackedSegs = 0;
    this.timers.delAck = undefined;
  }

  /** Queue a segment for this call's output; `ect`: send it ECN-capable, ECT(0) (RFC 3168 §6.1.1). */
  push(seg: TcpSegment, ect = false): void {
    this.counters.segmentsOut++;
    if (this.trace.enabled) this.traceSegment('out', seg);
    if (this.ecn.ok || this.outEcn !== undefined) {
      if (this.outEcn === undefined) this.outEcn = new Array<number>(this.out.length).fill(0);
      this.outEcn.push(ect ? 2 : 0);
    }
    this.out.push(seg);
  }

  /** The sequence number of the next byte the reader will get (RCV.NXT less what is buffered). */
  readSeq(): number {
    return seqAdd(this.rcv.nxt, -this.recvQueue.length - (this.peerFinSeen ? 1 : 0));
  }

  // -------------------------------------------------------------------------------------
  // State changes: every one is a row of the table in state.ts

  /** Take the edge (state, input) of RFC 9293's diagram. */
  transition(on: TcpInput): void {
    const from = this.state;
    const row = transitionFor(from, on);
    if (!row) {
      if (STRICT_TRANSITIONS) throw new Error(`tcp: no transition from ${from} on ${on}`);
      this.drop(`no-transition ${from} ${on}`);
      return;
    }
    const to = row.to;
    this.state = to;
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.hostName,
        layer: 'tcp',
        dir: 'local',
        summary: `${from} -> ${to}`,
        state: { from, to },
        rfc: row.rfc,
        fields: {
          local: `${this.local.addr}:${this.local.port}`,
          remote: `${this.remote.addr}:${this.remote.port}`,
        },
      });
    }
  }

  enterTimeWait(on: 'rcv-fin' | 'rcv-ack-of-fin'): void {
    this.transition(on);
    this.timers.rtx = undefined;
    this.timers.persist = undefined;
    this.timers.keepalive = undefined;
    this.timers.rack = undefined;
    this.timers.tlp = undefined;
    this.timers.timeWait = this.now + 2 * this.o.msl;
  }

  toClosed(on: TcpInput): void {
    if (this.state === 'CLOSED') return;
    this.transition(on);
    const t = this.timers;
    t.rtx = t.persist = t.delAck = t.keepalive = t.timeWait = t.rack = t.tlp = undefined;
    this.acks.now = false;
    this.sendQueue.clear();
    this.ooo.clear();
    this.ev.push({ type: 'closed' });
  }

  fail(code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT', on: TcpInput): void {
    this.ev.push({ type: 'error', code });
    this.toClosed(on);
  }

  drop(reason: string): void {
    this.counters.dropped++;
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.hostName,
        layer: 'tcp',
        dir: 'drop',
        summary: `drop: ${reason}`,
        reason,
      });
    }
  }

  traceSegment(dir: 'in' | 'out', seg: TcpSegment): void {
    this.trace.emit({
      t: this.now,
      host: this.hostName,
      layer: 'tcp',
      dir,
      summary: describeSegment(seg),
      ...(this.peerName ? { peer: this.peerName } : {}),
      fields: {
        srcPort: seg.srcPort,
        dstPort: seg.dstPort,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        len: seg.payload.length,
        options: seg.options,
        // The sender's congestion and RTT state as it sends (RFC 5681, RFC 6298), for the
        // timelines a viewer draws; ssthresh is Infinity until the first loss.
        ...(dir === 'out'
          ? { cwnd: this.cc.cwnd, ssthresh: this.cc.ssthresh, srtt: this.rtt.srtt, rto: this.rtt.rto }
          : {}),
      },
    });
  }
}
