import {
  silentTrace,
  type TraceBus,
  seqAdd as wire_seqAdd,
  seqDiff as wire_seqDiff,
  seqGeq as wire_seqGeq,
  seqGt as wire_seqGt,
  seqLeq as wire_seqLeq,
  seqLt as wire_seqLt,
  seqMax as wire_seqMax,
} from '@stepwire/wire';
import { ChunkQueue } from './buffers.ts';
import { cubic } from './congestion/cubic.ts';
import { newReno } from './congestion/newreno.ts';
import { type CongestionControl, type CongestionFactory, initialWindow } from './congestion/types.ts';
import { defaultIsn, type IsnGenerator } from './isn.ts';
import type { SackBlock, TcpOptions } from './options.ts';
import { type RtoOptions, RttEstimator } from './rto.ts';
import { OutOfOrderQueue, Scoreboard } from './sack.ts';
import { ACK, describeSegment, FIN, PSH, RST, SYN, type TcpSegment } from './segment.ts';

// Bound once to locals: on the per-segment path each access to an imported binding can
// cost a getter call under some module loaders (esbuild/tsx, vite-node).
const seqAdd = wire_seqAdd;
const seqDiff = wire_seqDiff;
const seqGeq = wire_seqGeq;
const seqGt = wire_seqGt;
const seqLeq = wire_seqLeq;
const seqLt = wire_seqLt;
const seqMax = wire_seqMax;

/**
 * The TCP connection machine of RFC 9293 §3.10, sans I/O.
 *
 * Every method takes `now` (milliseconds) and returns a TcpOutput: segments to send (with
 * ports but no IP information; the driver encodes them with its pseudo-header) and events
 * for the user. The connection never reads a clock and never arms a timer: the driver asks
 * `nextTimeout()` after every call and calls `onTimeout(now)` when that time comes.
 *
 *     const c = new TcpConnection({ local, remote, mss: 1460 });
 *     out(c.open(now));                         // SYN
 *     out(c.receive(decodeSegment(bytes, pseudo), now));
 *     out(c.send(utf8('hello'), now));
 *     const { data, ...o } = c.read(now); out(o);
 *     out(c.close(now));                        // FIN after the queued data
 *     // whenever c.nextTimeout() passes: out(c.onTimeout(now))
 *
 * A listener creates the server side with `TcpConnection.accept(syn, options, now)`, which
 * returns the connection in SYN-RECEIVED and its SYN-ACK.
 *
 * What lives where: the receive path follows RFC 9293 §3.10.7 step by step (inListen,
 * inSynSent, inSynchronized: sequence check, RST, SYN, ACK, text, FIN), with RFC 5961
 * checks in the RST/SYN/ACK steps and PAWS (RFC 7323 §5) before the sequence check. The
 * send path (transmit/sendNew) applies the peer window, cwnd, Nagle and sender SWS
 * avoidance; loss recovery is RFC 6675 with SACK (paced by RFC 6937 PRR, with the rescue
 * retransmission and lost-retransmission detection) and RFC 6582 NewReno without, the
 * window arithmetic behind the CongestionControl interface (src/congestion/). Timers: RTO
 * (RFC 6298, src/rto.ts), persist, delayed ACK, keepalive and TIME-WAIT, as absolute
 * deadlines.
 *
 * sndNxt goes back to sndUna after an RTO (go-back-N, RFC 5681 §3.1 loss window), so the
 * RFC's SND.NXT in the acceptability tests is sndMax, the highest sequence number sent.
 */

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

export interface TcpEndpoint {
  addr: string;
  port: number;
}

/**
 * What the connection tells its user. Each kind appears at most once per returned output
 * (except 'error', which is followed by 'closed').
 *
 * - connected: the handshake completed (ESTABLISHED reached).
 * - data-readable: new in-order bytes can be read; `readable` is the total now buffered.
 * - peer-fin: the peer will send no more (its FIN was processed); reads drain what is left.
 * - writable: the unsent+unacknowledged bytes fell to the low-water mark after having been
 *   above the high-water mark (backpressure released).
 * - acked: every byte written (and the FIN, if closed) is acknowledged.
 * - error: the connection failed (refused, reset by the peer, or timed out); 'closed' follows.
 * - closed: the connection reached CLOSED and can be forgotten.
 * - fastopen-cookie: the server gave a TFO cookie (RFC 7413 §4.1.2), for the client to cache.
 */
export type TcpEvent =
  | { type: 'connected' }
  | { type: 'data-readable'; readable: number }
  | { type: 'peer-fin' }
  | { type: 'writable' }
  | { type: 'acked' }
  | { type: 'error'; code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' }
  | { type: 'closed' }
  | { type: 'fastopen-cookie'; cookie: Uint8Array };

export interface TcpOutput {
  segments: TcpSegment[];
  events: TcpEvent[];
}

export interface TcpReadResult extends TcpOutput {
  data: Uint8Array;
}

export interface KeepaliveOptions {
  /** Idle time before the first probe (RFC 1122 §4.2.3.6: at least 2 hours by default). */
  idle?: number;
  /** Time between unanswered probes. */
  interval?: number;
  /** Unanswered probes before the connection is dropped with ETIMEDOUT. */
  count?: number;
}

/** The server half of TCP Fast Open, given by the listener (RFC 7413 §4.1.2). */
export interface FastOpenServer {
  /** Is this cookie valid for the client's address? */
  validate(cookie: Uint8Array): boolean;
  /** A cookie for the client's address. */
  generate(): Uint8Array;
}

export interface TcpConnectionOptions {
  local: TcpEndpoint;
  remote: TcpEndpoint;
  /** Initial send sequence number; by default chosen at open/listen time per RFC 6528. */
  iss?: number;
  /** The RFC 6528 generator used when `iss` is not given (default: one per process). */
  isn?: IsnGenerator;
  /** The MSS this host can receive, advertised in the SYN (driver: route MTU - 40 or - 60). Default 1460. */
  mss?: number;
  /** Receive buffer size: the most the advertised window reaches. Default 256 KiB. */
  receiveBuffer?: number;
  /** 'writable' backpressure marks on queued send bytes. Default high 256 KiB, low high/2. */
  sendHighWater?: number;
  sendLowWater?: number;
  /** Offer window scaling (RFC 7323 §2). Default true, shift derived from receiveBuffer. */
  windowScale?: boolean;
  /** Offer SACK (RFC 2018). Default true. */
  sack?: boolean;
  /** Offer timestamps (RFC 7323 §3). Default true. */
  timestamps?: boolean;
  /** Disable Nagle's algorithm (RFC 9293 §3.7.4). Default false. */
  noDelay?: boolean;
  /** Delayed-ACK timeout in ms (RFC 9293 §3.8.6.3, ≤ 500; here ≤ 200); 0 = ACK every segment. Default 40. */
  delayedAck?: number;
  rto?: RtoOptions;
  /** RTO expiries in a row before ETIMEDOUT (RFC 9293 §3.8.3 R2). Default 12. */
  maxRetries?: number;
  /** SYN / SYN-ACK retransmissions before giving up. Default 6. */
  synRetries?: number;
  /**
   * USER TIMEOUT (RFC 9293 §3.10.8, RFC 5482): give up with ETIMEDOUT when sent data stays
   * unacknowledged this long, whatever maxRetries says. Default none.
   */
  userTimeout?: number;
  /** Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2). Default 30 s. */
  msl?: number;
  keepalive?: KeepaliveOptions | false;
  congestion?: 'newreno' | 'cubic' | CongestionFactory;
  /** Client TFO (RFC 7413): send this cookie with data in the SYN, or request one ({}). */
  fastOpen?: { cookie?: Uint8Array };
  /** Server TFO, set by the listener. */
  fastOpenServer?: FastOpenServer;
  /** Cap on out-of-order bytes held. Default receiveBuffer. */
  maxOutOfOrder?: number;
  /** Challenge ACKs per second (RFC 5961 §7). Default 100. */
  challengeAckLimit?: number;
  /**
   * Least time between ACKs answering unacceptable segments that carry no data (RFC 5961
   * §7 throttling; Linux tcp_invalid_ratelimit). Default 500 ms; 0 = no limit.
   */
  invalidAckInterval?: number;
  /** Duplicate-ACK threshold (RFC 5681 §3.2). Default 3. */
  dupThresh?: number;
  trace?: TraceBus;
  hostName?: string;
  peerName?: string;
}

export interface TcpStats {
  state: TcpState;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd: number;
  rcvNxt: number;
  rcvWnd: number;
  iss: number;
  irs: number;
  srtt: number | undefined;
  rttvar: number | undefined;
  rto: number;
  cwnd: number;
  ssthresh: number;
  bytesInFlight: number;
  sendQueued: number;
  readable: number;
  mss: number;
  segmentsOut: number;
  segmentsIn: number;
  bytesOut: number;
  bytesIn: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  dupAcks: number;
  inRecovery: boolean;
  outOfOrderBytes: number;
  outOfOrderBlocks: number;
  outOfOrderDropped: number;
  challengeAcks: number;
  pawsDropped: number;
  dropped: number;
  zeroWindowProbes: number;
  keepalivesSent: number;
  oowAcksSuppressed: number;
  sackRanges: SackBlock[];
}

const SYNCHRONIZED = new Set<TcpState>([
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
]);

const SEND_STATES = new Set<TcpState>(['ESTABLISHED', 'CLOSE-WAIT', 'FIN-WAIT-1', 'CLOSING', 'LAST-ACK']);

const EMPTY: Uint8Array = new Uint8Array(0);
const NO_OPTIONS: TcpOptions = Object.freeze({}) as TcpOptions;
/** RFC 7323 §5.5: TS.Recent is invalid after 24 days idle. */
const PAWS_IDLE = 24 * 24 * 3600 * 1000;

function defaultPeerMss(addr: string): number {
  // RFC 9293 §3.7.1 (536 for IPv4), RFC 8200 §5 minimum MTU 1280 - 60 for IPv6.
  return addr.includes(':') ? 1220 : 536;
}

function shiftFor(buffer: number): number {
  let s = 0;
  while (s < 14 && buffer >> s > 0xffff) s++;
  return s;
}

/** The RST a host sends for a segment no connection wants (RFC 9293 §3.10.7.1). */
export function resetFor(seg: TcpSegment): TcpSegment | undefined {
  if (seg.flags & RST) return undefined;
  const base = {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    window: 0,
    urgentPointer: 0,
    options: NO_OPTIONS,
    payload: EMPTY,
  };
  if (seg.flags & ACK) return { ...base, seq: seg.ack, ack: 0, flags: RST };
  const len = seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
  return { ...base, seq: 0, ack: seqAdd(seg.seq, len), flags: RST | ACK };
}

export class TcpConnection {
  state: TcpState = 'CLOSED';
  readonly local: TcpEndpoint;
  readonly remote: TcpEndpoint;

  // RFC 9293 §3.3.1 send sequence variables. sndMax is the highest sequence sent
  // (SND.NXT of the RFC when nothing is being retransmitted; after an RTO sndNxt goes back).
  iss: number;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  private maxSndWnd = 0;
  // Receive sequence variables.
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window last advertised (never moved left, RFC 9293 §3.8.6.2.2). */
  private rcvAdvRight = 0;

  // Negotiated options.
  private readonly ourMss: number;
  private peerMss: number;
  /** Payload bytes per full-sized segment (RFC 9293 §3.7.1 Eff.snd.MSS). */
  mss: number;
  private sndShift = 0;
  private rcvShift: number;
  private sackOk = false;
  private tsOk = false;
  private tsRecent = 0;
  private tsRecentAge = 0;
  private lastAckSent = 0;
  private tsOffset: number;

  // Buffers.
  private readonly sendQueue = new ChunkQueue();
  /** Sequence number of sendQueue's first byte. */
  private sendBase: number;
  private finQueued = false;
  private finSent = false;
  private readonly recvQueue = new ChunkQueue();
  private readonly ooo: OutOfOrderQueue;
  private readonly receiveBuffer: number;
  private peerFinSeen = false;

  // Loss recovery and congestion control.
  private readonly rtt: RttEstimator;
  private readonly cc: CongestionControl;
  private readonly scoreboard = new Scoreboard();
  private inRecovery = false;
  private recover: number;
  private highRxt: number;
  private dupAcks = 0;
  private rttSeq: number | undefined;
  private rttTime = 0;
  private retries = 0;
  private synRetransmitted = false;

  // Timers (absolute ms; undefined = not armed).
  private rtxAt: number | undefined;
  private persistAt: number | undefined;
  private persistBackoff = 0;
  private delAckAt: number | undefined;
  private keepaliveAt: number | undefined;
  private keepaliveProbes = 0;
  private timeWaitAt: number | undefined;

  // Delayed ACK bookkeeping.
  private unackedSegs = 0;
  private ackNow = false;

  // RFC 5961 §7 challenge ACK rate limit.
  private challengeWindowStart = -Infinity;
  private challengeCount = 0;

  // Fast Open.
  private tfoCookie: Uint8Array | undefined;
  private tfoRequest = false;
  private tfoSynData = 0;
  private passive = false;

  private writableBlocked = false;
  private allAckedReported = true;

  private readonly o: Required<
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
  private readonly offerWs: boolean;
  private readonly offerSack: boolean;
  private readonly offerTs: boolean;
  private keepalive: Required<KeepaliveOptions> | undefined;
  private readonly fastOpenServer: FastOpenServer | undefined;
  private readonly userTimeout: number | undefined;
  /** When the send side last made progress (an ACK of new data, or sending from idle). */
  private progressAt = 0;
  private readonly trace: TraceBus;
  private readonly hostName: string;
  private readonly peerName: string | undefined;

  private out: TcpSegment[] = [];
  private ev: TcpEvent[] = [];
  private now = 0;

  readonly counters = {
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
    dropped: 0,
    zeroWindowProbes: 0,
    keepalivesSent: 0,
    oowAcksSuppressed: 0,
  };

  constructor(opts: TcpConnectionOptions) {
    this.local = opts.local;
    this.remote = opts.remote;
    this.issGiven = opts.iss !== undefined;
    this.isnGenerator = opts.isn;
    this.iss = (opts.iss ?? 0) >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.recover = this.highRxt = this.iss;
    this.sendBase = seqAdd(this.iss, 1);
    this.ourMss = opts.mss ?? 1460;
    this.peerMss = defaultPeerMss(opts.remote.addr);
    this.mss = Math.min(this.ourMss, this.peerMss);
    this.receiveBuffer = Math.max(1, opts.receiveBuffer ?? 256 * 1024);
    this.offerWs = opts.windowScale ?? true;
    this.offerSack = opts.sack ?? true;
    this.offerTs = opts.timestamps ?? true;
    this.rcvShift = this.offerWs ? shiftFor(this.receiveBuffer) : 0;
    this.ooo = new OutOfOrderQueue(opts.maxOutOfOrder ?? this.receiveBuffer);
    this.rtt = new RttEstimator(opts.rto);
    const cf: CongestionFactory =
      typeof opts.congestion === 'function' ? opts.congestion : opts.congestion === 'cubic' ? cubic : newReno;
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
    this.keepalive = opts.keepalive
      ? {
          idle: opts.keepalive.idle ?? 7_200_000,
          interval: opts.keepalive.interval ?? 75_000,
          count: opts.keepalive.count ?? 9,
        }
      : undefined;
    if (opts.fastOpen) {
      this.tfoCookie = opts.fastOpen.cookie;
      this.tfoRequest = !opts.fastOpen.cookie;
    }
    this.fastOpenServer = opts.fastOpenServer;
    this.userTimeout = opts.userTimeout;
    this.trace = opts.trace ?? silentTrace;
    this.hostName = opts.hostName ?? opts.local.addr;
    this.peerName = opts.peerName;
    this.tsOffset = 0;
    this.setIss(this.iss);
  }

  private readonly issGiven: boolean;
  private readonly isnGenerator: IsnGenerator | undefined;

  private setIss(iss: number): void {
    this.iss = iss >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.recover = this.highRxt = this.iss;
    this.sendBase = seqAdd(this.iss, 1);
    // RFC 7323 §5.4: a per-connection offset for TSval, derived from the (secret) ISS.
    this.tsOffset = Math.imul(this.iss ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
  }

  /** RFC 6528: the ISS depends on the 4-tuple, a secret and the clock at open time. */
  private chooseIss(now: number): void {
    if (this.issGiven) return;
    const gen = this.isnGenerator;
    this.setIss(gen ? gen.isn(this.local, this.remote, now) : defaultIsn(this.local, this.remote, now));
  }

  // -------------------------------------------------------------------------------------
  // User calls (RFC 9293 §3.10.1 - §3.10.6)

  /** Active OPEN (RFC 9293 §3.10.1): send a SYN, optionally with TFO data (RFC 7413). */
  open(now: number, data?: Uint8Array): TcpOutput {
    this.begin(now);
    if (this.state !== 'CLOSED') throw new Error(`tcp: open in state ${this.state}`);
    this.chooseIss(now);
    if (data) this.sendQueue.push(data);
    this.sendSyn(false);
    this.setState('SYN-SENT', 'RFC 9293 §3.10.1');
    return this.finish();
  }

  /** Passive OPEN bound to this remote (RFC 9293 §3.10.1): wait in LISTEN for its SYN. */
  listen(now: number): TcpOutput {
    this.begin(now);
    if (this.state !== 'CLOSED') throw new Error(`tcp: listen in state ${this.state}`);
    this.chooseIss(now);
    this.passive = true;
    this.setState('LISTEN', 'RFC 9293 §3.10.1');
    return this.finish();
  }

  /**
   * A listener's passive open: a new connection for a received SYN (RFC 9293 §3.10.7.2),
   * returned in SYN-RECEIVED with its SYN-ACK in `output` (or CLOSED with a RST when the
   * segment was not an acceptable SYN).
   */
  static accept(
    syn: TcpSegment,
    opts: TcpConnectionOptions,
    now: number,
  ): { conn: TcpConnection; output: TcpOutput } {
    const conn = new TcpConnection(opts);
    conn.listen(now);
    const output = conn.receive(syn, now);
    return { conn, output };
  }

  /**
   * SEND (RFC 9293 §3.10.2): queue bytes. The connection keeps a reference to `data`
   * until it is acknowledged, so the caller must not modify it afterwards.
   */
  send(data: Uint8Array, now: number): TcpOutput {
    this.begin(now);
    switch (this.state) {
      case 'CLOSED':
      case 'LISTEN':
        throw new Error(`tcp: send in state ${this.state}`);
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSING':
      case 'LAST-ACK':
      case 'TIME-WAIT':
        throw new Error('tcp: send after close');
    }
    if (this.finQueued) throw new Error('tcp: send after close');
    this.sendQueue.push(data);
    if (data.length) this.allAckedReported = false;
    if (this.unsentAndUnacked() > this.o.sendHighWater) this.writableBlocked = true;
    this.transmit();
    return this.finish();
  }

  /** CLOSE (RFC 9293 §3.10.4): no more data from this side; a FIN follows the queued data. */
  close(now: number): TcpOutput {
    this.begin(now);
    switch (this.state) {
      case 'LISTEN':
        this.toClosed('RFC 9293 §3.10.4');
        break;
      case 'SYN-SENT':
      case 'SYN-RECEIVED':
        // RFC 9293 §3.10.4: queue the FIN; it goes out once ESTABLISHED. (For SYN-SENT the
        // RFC deletes the connection; this is a half-close, so like Linux's shutdown(SHUT_WR)
        // the data queued so far still goes, then the FIN. abort() is the RFC's delete.)
        this.finQueued = true;
        this.allAckedReported = false;
        break;
      case 'ESTABLISHED':
        this.finQueued = true;
        this.allAckedReported = false;
        this.setState('FIN-WAIT-1', 'RFC 9293 §3.10.4');
        this.transmit();
        break;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.allAckedReported = false;
        this.setState('LAST-ACK', 'RFC 9293 §3.10.4');
        this.transmit();
        break;
      default:
        break;
    }
    return this.finish();
  }

  /** ABORT (RFC 9293 §3.10.5): send a RST where the peer is synchronized, then CLOSED. */
  abort(now: number): TcpOutput {
    this.begin(now);
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        this.emit(this.sndMax, RST, EMPTY, false);
        this.toClosed('RFC 9293 §3.10.5');
        break;
      case 'CLOSED':
        break;
      default:
        this.toClosed('RFC 9293 §3.10.5');
    }
    return this.finish();
  }

  /** Turn Nagle's algorithm off (true) or on; held data goes with the next call that sends. */
  setNoDelay(on: boolean): void {
    this.o.noDelay = on;
  }

  /** Keepalive on with these timings, or off (RFC 1122 §4.2.3.6). */
  setKeepalive(opts: KeepaliveOptions | false, now: number): void {
    this.keepalive = opts
      ? { idle: opts.idle ?? 7_200_000, interval: opts.interval ?? 75_000, count: opts.count ?? 9 }
      : undefined;
    this.keepaliveProbes = 0;
    const running = this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT';
    this.keepaliveAt = this.keepalive && running ? now + this.keepalive.idle : undefined;
  }

  /**
   * Lower the payload bytes per segment (a smaller path MTU was learned, RFC 8201 §4 /
   * RFC 1191 §6.4); never raises it. With `now`, segments already sent at the old size are
   * sent again at once (they were dropped for being too big), without a congestion
   * response: the output carries them.
   */
  setMss(mss: number, now?: number): TcpOutput {
    if (now !== undefined) this.begin(now);
    const m = Math.max(64, Math.floor(mss));
    if (m < this.mss) {
      this.mss = m;
      const cwnd = this.cc.cwnd;
      this.cc.setMss(m);
      this.cc.cwnd = Math.max(this.cc.cwnd, cwnd);
      if (now !== undefined && SEND_STATES.has(this.state) && seqLt(this.sndUna, this.sndMax)) {
        this.sndNxt = this.sndUna;
        this.transmit(true);
      }
    }
    return this.finish();
  }

  /** Bytes ready for read(). */
  get readable(): number {
    return this.recvQueue.length;
  }

  /** True when the peer's FIN has been processed and every byte before it was read. */
  get readEnded(): boolean {
    return this.peerFinSeen && this.recvQueue.length === 0;
  }

  /** Bytes written but not yet acknowledged (queued or in flight). */
  get sendQueued(): number {
    return this.sendQueue.length;
  }

  /**
   * RECEIVE (RFC 9293 §3.10.3): take up to `max` bytes. Freeing buffer space may reopen the
   * window: the output then carries a window update, sent per receiver SWS avoidance.
   */
  read(now: number, max = Number.POSITIVE_INFINITY): TcpReadResult {
    this.begin(now);
    const data = this.recvQueue.take(max);
    if (data.length && SYNCHRONIZED.has(this.state) && !this.peerFinSeen) {
      // RFC 9293 §3.8.6.2.2: the right edge moves only by min(BUFF/2, MSS) or more. An
      // update is worth a segment of its own only when the window now offered is small
      // (at most half the buffer) and reading at least doubles it, as Linux judges
      // (tcp_cleanup_rbuf); otherwise the next ACK carries the larger window anyway.
      const grow = seqDiff(seqAdd(this.rcvNxt, this.freeSpace()), this.rcvAdvRight);
      const offered = seqDiff(this.rcvAdvRight, this.rcvNxt);
      if (
        grow >= Math.min(this.receiveBuffer / 2, this.ourMss) &&
        offered <= this.receiveBuffer / 2 &&
        offered + grow >= 2 * offered
      ) {
        this.ackNow = true;
      }
    }
    const o = this.finish() as TcpReadResult;
    o.data = data;
    return o;
  }

  /** The next time onTimeout must be called, or undefined when no timer is armed. */
  nextTimeout(): number | undefined {
    let t = this.rtxAt;
    for (const x of [this.persistAt, this.delAckAt, this.keepaliveAt, this.timeWaitAt]) {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    }
    return t;
  }

  get stats(): TcpStats {
    return {
      state: this.state,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      sndMax: this.sndMax,
      sndWnd: this.sndWnd,
      rcvNxt: this.rcvNxt,
      rcvWnd: seqDiff(this.rcvAdvRight, this.rcvNxt),
      iss: this.iss,
      irs: this.irs,
      srtt: this.rtt.srtt,
      rttvar: this.rtt.rttvar,
      rto: this.rtt.rto,
      cwnd: this.cc.cwnd,
      ssthresh: this.cc.ssthresh,
      bytesInFlight: this.flight(),
      sendQueued: this.sendQueue.length,
      readable: this.recvQueue.length,
      mss: this.mss,
      ...this.counters,
      dupAcks: this.dupAcks,
      inRecovery: this.inRecovery,
      outOfOrderBytes: this.ooo.bytes,
      outOfOrderBlocks: this.ooo.blockCount,
      sackRanges: this.scoreboard.ranges(),
    };
  }

  /** The congestion controller's name ('newreno', 'cubic', ...). */
  get congestionControl(): string {
    return this.cc.name;
  }

  // -------------------------------------------------------------------------------------
  // Timers

  onTimeout(now: number): TcpOutput {
    this.begin(now);
    if (this.timeWaitAt !== undefined && now >= this.timeWaitAt) {
      this.timeWaitAt = undefined;
      this.toClosed('RFC 9293 §3.10.8');
      return this.finish();
    }
    if (this.rtxAt !== undefined && now >= this.rtxAt) {
      this.rtxAt = undefined;
      this.onRetransmissionTimeout();
    }
    if (this.persistAt !== undefined && now >= this.persistAt) {
      this.persistAt = undefined;
      this.onPersistTimeout();
    }
    if (this.delAckAt !== undefined && now >= this.delAckAt) {
      this.delAckAt = undefined;
      if (this.unackedSegs > 0 || this.ackNow) this.ackNow = true;
    }
    if (this.keepaliveAt !== undefined && now >= this.keepaliveAt) {
      this.keepaliveAt = undefined;
      this.onKeepaliveTimeout();
    }
    return this.finish();
  }

  private onRetransmissionTimeout(): void {
    const st = this.state;
    if (st === 'SYN-SENT' || st === 'SYN-RECEIVED') {
      if (this.retries >= this.o.synRetries) {
        this.fail('ETIMEDOUT', 'RFC 9293 §3.8.3');
        return;
      }
      this.retries++;
      this.counters.timeouts++;
      this.counters.retransmits++;
      this.synRetransmitted = true;
      this.rtt.backoff();
      this.rttSeq = undefined;
      // RFC 7413 §4.2.2: a retransmitted SYN carries no data.
      this.sendSyn(st === 'SYN-RECEIVED', true);
      return;
    }
    if (!SYNCHRONIZED.has(st) || this.sndMax === this.sndUna) return;
    if (this.retries >= this.o.maxRetries) {
      this.fail('ETIMEDOUT', 'RFC 9293 §3.8.3');
      return;
    }
    if (this.userTimeout !== undefined && this.now - this.progressAt >= this.userTimeout) {
      this.fail('ETIMEDOUT', 'RFC 9293 §3.10.8');
      return;
    }
    this.retries++;
    this.counters.timeouts++;
    // RFC 6298 §5.5-5.6, RFC 5681 §3.1 (loss window), RFC 6582 §3.2 / RFC 6675 §5.1:
    // no new recovery until everything sent so far is acknowledged.
    this.cc.onRto(this.now, this.flightSize());
    this.rtt.backoff();
    this.rttSeq = undefined;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recover = this.sndMax;
    // RFC 2018 §8: the receiver may have reneged; forget the SACK scoreboard.
    this.scoreboard.clear();
    this.rxtLog.length = 0;
    this.relost.length = 0;
    this.sndNxt = this.sndUna;
    this.highRxt = this.sndUna;
    this.transmit(true);
    if (this.rtxAt === undefined) this.rtxAt = this.now + this.rtt.rto;
  }

  private onPersistTimeout(): void {
    if (!SEND_STATES.has(this.state)) return;
    if (this.sendWindowAvailable() <= 0) {
      // RFC 9293 §3.8.6.1 zero-window probe. It carries the sequence number SND.UNA-1 and
      // no data, so the receiver answers with an ACK stating its current window whatever
      // it is (an unacceptable segment is answered with an ACK, §3.10.7.4) and sequence
      // state never moves for a probe. Probes back off exponentially up to RTO max.
      this.counters.zeroWindowProbes++;
      this.emit(seqAdd(this.sndUna, -1), ACK, EMPTY, false);
      this.persistBackoff++;
      this.persistAt = this.now + this.persistInterval();
      return;
    }
    // RFC 9293 §3.8.6.2.1: the override timeout, send what the window allows.
    this.transmit(true);
  }

  private persistInterval(): number {
    return Math.min(this.rtt.max, this.rtt.baseRto * 2 ** Math.min(this.persistBackoff, 16));
  }

  private onKeepaliveTimeout(): void {
    const ka = this.keepalive;
    if (!ka || (this.state !== 'ESTABLISHED' && this.state !== 'CLOSE-WAIT')) return;
    if (this.sndMax !== this.sndUna) {
      this.keepaliveAt = this.now + ka.idle;
      return;
    }
    if (this.keepaliveProbes >= ka.count) {
      this.fail('ETIMEDOUT', 'RFC 9293 §3.8.4');
      return;
    }
    // RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6: <SEQ=SND.NXT-1>, no data, elicits an ACK.
    this.keepaliveProbes++;
    this.counters.keepalivesSent++;
    this.emit(seqAdd(this.sndUna, -1), ACK, EMPTY, false);
    this.keepaliveAt = this.now + ka.interval;
  }

  // -------------------------------------------------------------------------------------
  // SEGMENT ARRIVES (RFC 9293 §3.10.7)

  receive(seg: TcpSegment, now: number): TcpOutput {
    this.begin(now);
    this.counters.segmentsIn++;
    if (this.trace.enabled) this.traceSegment('in', seg);
    switch (this.state) {
      case 'CLOSED':
        this.inClosed(seg);
        break;
      case 'LISTEN':
        this.inListen(seg);
        break;
      case 'SYN-SENT':
        this.inSynSent(seg);
        break;
      default:
        this.inSynchronized(seg);
    }
    if (SEND_STATES.has(this.state)) this.transmit();
    return this.finish();
  }

  /** RFC 9293 §3.10.7.1 */
  private inClosed(seg: TcpSegment): void {
    const rst = resetFor(seg);
    if (rst) this.push(rst);
  }

  /** RFC 9293 §3.10.7.2 */
  private inListen(seg: TcpSegment): void {
    if (seg.flags & RST) {
      this.drop('listen-rst');
      return;
    }
    if (seg.flags & ACK) {
      this.emit(seg.ack, RST, EMPTY, false);
      this.drop('listen-ack');
      return;
    }
    if (!(seg.flags & SYN)) {
      this.drop('listen-no-syn');
      return;
    }
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdvRight = this.rcvNxt;
    this.negotiate(seg);
    this.keepTimestamp(seg);
    this.sndWnd = seg.window; // RFC 7323 §2.2: the SYN's window is never scaled
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = this.iss;
    this.setState('SYN-RECEIVED', 'RFC 9293 §3.10.7.2');
    // RFC 7413 §4.1.2: data in the SYN is accepted only with a valid cookie.
    const cookie = seg.options.fastOpen;
    let cookieToSend: Uint8Array | undefined;
    if (cookie !== undefined && this.fastOpenServer) {
      if (cookie.length > 0 && this.fastOpenServer.validate(cookie)) {
        if (seg.payload.length) {
          const n = Math.min(seg.payload.length, this.freeSpace());
          this.recvQueue.push(seg.payload.subarray(0, n));
          this.rcvNxt = seqAdd(this.rcvNxt, n);
          this.counters.bytesIn += n;
          this.ev.push({ type: 'data-readable', readable: this.recvQueue.length });
        }
      } else {
        cookieToSend = this.fastOpenServer.generate();
      }
    }
    // A FIN in the SYN is not taken here (RFC 9293 §3.10.7.2 leaves other control for
    // later); the peer retransmits it once synchronized.
    this.sendSyn(true, false, cookieToSend);
  }

  /** RFC 9293 §3.10.7.3 */
  private inSynSent(seg: TcpSegment): void {
    const f = seg.flags;
    let ackOk = false;
    if (f & ACK) {
      // first: check the ACK bit
      if (seqLeq(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
        if (!(f & RST)) this.emit(seg.ack, RST, EMPTY, false);
        this.drop('synsent-bad-ack');
        return;
      }
      ackOk = seqLeq(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax);
    }
    // second: check the RST bit (RFC 5961 §3.2 asks the ACK to acknowledge the SYN)
    if (f & RST) {
      if (ackOk) {
        this.fail('ECONNREFUSED', 'RFC 9293 §3.10.7.3');
        return;
      }
      this.drop('synsent-rst-no-ack');
      return;
    }
    // fourth: check the SYN bit
    if (!(f & SYN)) {
      this.drop('synsent-no-syn');
      return;
    }
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    // The window our SYN offered (unscaled, RFC 7323 §2.2) holds for data in their SYN.
    this.rcvAdvRight = seqAdd(this.rcvNxt, Math.min(0xffff, this.freeSpace()));
    this.negotiate(seg);
    this.keepTimestamp(seg);
    if (seg.options.fastOpen && seg.options.fastOpen.length > 0 && (this.tfoRequest || this.tfoCookie)) {
      this.ev.push({ type: 'fastopen-cookie', cookie: seg.options.fastOpen });
    }
    if (ackOk) {
      this.sampleHandshakeRtt(seg);
      this.sndWnd = this.segWindow(seg);
      this.maxSndWnd = this.sndWnd;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.ackAdvance(seg.ack);
      if (this.tfoSynData && seqLt(this.sndUna, this.sndMax)) {
        // RFC 7413 §4.2.2: the server acked only the SYN; send the data again, normally.
        this.sndNxt = this.sndUna;
        this.sndMax = this.sndUna;
        this.rtxAt = undefined;
      }
      this.retries = 0;
      if (this.synRetransmitted) this.rtt.resetAfterSynTimeout();
      this.setState('ESTABLISHED', 'RFC 9293 §3.10.7.3');
      this.ev.push({ type: 'connected' });
      this.ackNow = true;
      this.afterHandshake();
      if (this.finQueued) this.setState('FIN-WAIT-1', 'RFC 9293 §3.10.4');
      // RFC 9293 §3.10.7.3: continue at the sixth step (data and FIN in the SYN-ACK).
      this.processText(seg, seqAdd(seg.seq, 1));
      return;
    }
    // Simultaneous open (RFC 9293 §3.5 Figure 8).
    this.sndWnd = seg.window;
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = this.iss;
    this.setState('SYN-RECEIVED', 'RFC 9293 §3.10.7.3');
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.sendSyn(true);
  }

  private afterHandshake(): void {
    if (this.keepalive) this.keepaliveAt = this.now + this.keepalive.idle;
    if (this.sendQueue.length === 0 && !this.finQueued) this.rtxAt = undefined;
  }

  /** RFC 9293 §3.10.7.4, for SYN-RECEIVED and the synchronized states. */
  private inSynchronized(seg: TcpSegment): void {
    const f = seg.flags;
    let seq = seg.seq;

    // Simultaneous open: our SYN-ACK crossed theirs (RFC 9293 §3.5 Figure 8, line 6).
    // Their SYN-ACK repeats the SYN we already took; accept its ACK.
    if (this.state === 'SYN-RECEIVED' && f & SYN && !(f & RST) && seq === this.irs) {
      if (!(f & ACK)) {
        // A retransmitted SYN: our SYN-ACK was lost, send it again.
        this.sendSyn(true, true);
        return;
      }
      seq = seqAdd(seq, 1);
      if (this.ackInSynReceived(seg) && (this.state as TcpState) !== 'CLOSED') this.processText(seg, seq);
      return;
    }

    // TIME-WAIT (RFC 9293 §3.10.7.4): a retransmitted FIN is ACKed and restarts 2 MSL.
    if (
      this.state === 'TIME-WAIT' &&
      f & FIN &&
      !(f & RST) &&
      seqAdd(seq, seg.payload.length + 1) === this.rcvNxt
    ) {
      this.timeWaitAt = this.now + 2 * this.o.msl;
      this.ackNow = true;
      return;
    }

    // RFC 7323 §5.3 PAWS, before the sequence number check.
    if (this.tsOk) {
      const ts = seg.options.timestamps;
      if (!ts) {
        if (!(f & RST)) {
          this.drop('no-timestamp');
          return;
        } // RFC 7323 §3.2
      } else if (!(f & RST) && seqLt(ts.value, this.tsRecent)) {
        if (this.now - this.tsRecentAge > PAWS_IDLE) {
          this.tsRecent = ts.value; // RFC 7323 §5.5
        } else {
          this.counters.pawsDropped++;
          this.outOfWindowAck(seg);
          this.drop('paws');
          return;
        }
      }
    }

    // first: check the sequence number (RFC 9293 §3.10.7.4 acceptability test)
    const len = seg.payload.length + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    const wnd = seqDiff(this.rcvAdvRight, this.rcvNxt);
    if (!this.acceptable(seq, len, wnd)) {
      if (!(f & RST)) this.outOfWindowAck(seg);
      if (seg.payload.length && seqLeq(seqAdd(seq, seg.payload.length), this.rcvNxt)) {
        this.noteDuplicate(seq, seg.payload.length);
      }
      this.drop('unacceptable-seq');
      return;
    }

    // second: check the RST bit (RFC 5961 §3.2)
    if (f & RST) {
      if (seq !== this.rcvNxt) {
        this.challengeAck();
        this.drop('rst-not-exact');
        return;
      }
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        // RFC 9293 §3.10.7.4: a passive open returns to LISTEN; this connection object
        // belongs to that one SYN, so it closes and the listener keeps listening.
        this.toClosed('RFC 9293 §3.10.7.4');
        return;
      }
      if (this.state === 'SYN-RECEIVED') {
        this.fail('ECONNREFUSED', 'RFC 9293 §3.10.7.4');
        return;
      }
      if (this.state === 'CLOSING' || this.state === 'LAST-ACK' || this.state === 'TIME-WAIT') {
        this.toClosed('RFC 9293 §3.10.7.4');
        return;
      }
      this.fail('ECONNRESET', 'RFC 9293 §3.10.7.4');
      return;
    }

    // fourth: check the SYN bit (RFC 5961 §4.2: challenge ACK whatever the sequence number)
    if (f & SYN) {
      this.challengeAck();
      this.drop('syn-in-window');
      return;
    }

    // RFC 7323 §4.3: TS.Recent follows the segment that covers Last.ACK.sent.
    if (this.tsOk && seg.options.timestamps && seqLeq(seq, this.lastAckSent)) {
      this.tsRecent = seg.options.timestamps.value;
      this.tsRecentAge = this.now;
    }
    if (this.keepalive) {
      this.keepaliveProbes = 0;
      this.keepaliveAt = this.now + this.keepalive.idle;
    }

    // fifth: check the ACK field
    if (!(f & ACK)) {
      this.drop('no-ack');
      return;
    }
    if (this.state === 'SYN-RECEIVED') {
      if (!this.ackInSynReceived(seg)) return;
    } else if (!this.processAck(seg)) {
      return;
    }
    if (this.state === 'CLOSED') return;

    // sixth (URG) is not acted on: RFC 6093 §5 asks new code not to use urgent data, and
    // urgent bytes stay in the byte stream. seventh and eighth: text and FIN.
    this.processText(seg, seq);
  }

  /** ACK processing in SYN-RECEIVED (RFC 9293 §3.10.7.4, fifth, SYN-RECEIVED). */
  private ackInSynReceived(seg: TcpSegment): boolean {
    if (!(seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax))) {
      this.emit(seg.ack, RST, EMPTY, false);
      this.drop('synrcvd-bad-ack');
      return false;
    }
    this.sampleHandshakeRtt(seg);
    this.sndWnd = this.segWindow(seg);
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.ackAdvance(seg.ack);
    this.retries = 0;
    if (this.synRetransmitted) this.rtt.resetAfterSynTimeout();
    this.setState('ESTABLISHED', 'RFC 9293 §3.10.7.4');
    this.ev.push({ type: 'connected' });
    this.afterHandshake();
    if (this.finQueued) {
      this.setState('FIN-WAIT-1', 'RFC 9293 §3.10.4');
    }
    // continue with the rest of the ACK processing in ESTABLISHED
    return this.processAck(seg);
  }

  private acceptable(seq: number, len: number, wnd: number): boolean {
    const rn = this.rcvNxt;
    if (len === 0) {
      if (wnd === 0) return seq === rn;
      return seqLeq(rn, seq) && seqLt(seq, seqAdd(rn, wnd));
    }
    // RFC 9293 §3.10.7.4: with a zero window "special allowance should be made to accept
    // valid ACKs, URGs, and RSTs": a segment at exactly RCV.NXT passes for its control
    // fields; its text falls outside the window and is not taken (processText).
    if (wnd === 0) return seq === rn;
    const end = seqAdd(seq, len - 1);
    const right = seqAdd(rn, wnd);
    return (seqLeq(rn, seq) && seqLt(seq, right)) || (seqLeq(rn, end) && seqLt(end, right));
  }

  /**
   * The ACK that answers an unacceptable segment (RFC 9293 §3.10.7.4 first and fifth
   * steps, RFC 7323 §5.3, RFC 5961 §5.2). Two ends that disagree about the sequence space
   * (one was fed a forged segment) would answer each other's ACKs forever: an ACK storm.
   * So, as RFC 5961 §7 asks and as Linux does (tcp_invalid_ratelimit), the answer to a
   * segment without data is rate-limited; a data segment (a real retransmission whose
   * sender needs to hear) is always answered.
   */
  private outOfWindowAck(seg: TcpSegment): void {
    if (seg.payload.length > 0 && !(seg.flags & SYN)) {
      this.ackNow = true;
      return;
    }
    if (this.lastOowAckAt !== undefined && this.now - this.lastOowAckAt < this.o.invalidAckInterval) {
      this.counters.oowAcksSuppressed++;
      return;
    }
    this.lastOowAckAt = this.now;
    this.ackNow = true;
  }

  private lastOowAckAt: number | undefined;

  /** RFC 5961 §3.2, §4.2 and §7: an ACK for the peer to check, rate-limited. */
  private challengeAck(): void {
    if (this.now - this.challengeWindowStart >= 1000) {
      this.challengeWindowStart = this.now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.o.challengeAckLimit) {
      this.drop('challenge-ack-limited');
      return;
    }
    this.challengeCount++;
    this.counters.challengeAcks++;
    this.sendAck();
  }

  /**
   * The ACK field in the synchronized states (RFC 9293 §3.10.7.4 fifth, RFC 5961 §5.2,
   * RFC 5681, RFC 6582, RFC 6675). Returns false when the segment is to be dropped.
   */
  private processAck(seg: TcpSegment): boolean {
    const ack = seg.ack;
    // RFC 5961 §5.2: acceptable iff (SND.UNA - MAX.SND.WND) <= SEG.ACK <= SND.NXT.
    if (seqGt(ack, this.sndMax)) {
      this.outOfWindowAck(seg);
      this.drop('ack-unsent');
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -this.maxSndWnd))) {
      this.outOfWindowAck(seg);
      this.drop('ack-too-old');
      return false;
    }
    const window = this.segWindow(seg);
    const unaBefore = this.sndUna;
    const sackedBefore = this.scoreboard.sacked;
    const hasSack = this.sackOk && seg.options.sack !== undefined;
    let sackNews = false;
    if (hasSack && seqLt(this.sndUna, this.sndMax)) {
      sackNews = this.scoreboard.update(
        seg.options.sack!,
        seqGt(ack, this.sndUna) ? ack : this.sndUna,
        this.sndMax,
      );
    }

    if (seqGt(ack, this.sndUna)) {
      this.onNewAck(seg, ack);
    } else if (ack === this.sndUna && seqLt(this.sndUna, this.sndMax)) {
      // RFC 5681 §2 duplicate ACK (or RFC 6675 §2 "new SACK information")
      const dup = this.sackOk
        ? sackNews
        : seg.payload.length === 0 && !(seg.flags & (SYN | FIN)) && window === this.sndWnd;
      if (dup) this.onDupAck();
    }
    if (this.inRecovery && this.sackOk) {
      this.detectLostRetransmissions();
      // RFC 6937 §3: DeliveredData = change in SND.UNA + change in SACKed bytes.
      this.prrUpdate(seqDiff(this.sndUna, unaBefore) + this.scoreboard.sacked - sackedBefore);
    }

    // RFC 9293 §3.10.7.4: update the send window from the newest segment.
    if (
      seqLeq(this.sndUna, ack) &&
      (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, ack)))
    ) {
      const opened = this.sndWnd === 0 && window > 0;
      this.sndWnd = window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      if (opened) {
        this.persistAt = undefined;
        this.persistBackoff = 0;
      }
    }

    // FIN acknowledged? (state changes of RFC 9293 §3.10.7.4 fifth)
    const finAcked = this.finSent && this.sndUna === this.sndMax && seqGt(this.sndUna, this.finSeq());
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (finAcked) this.setState('FIN-WAIT-2', 'RFC 9293 §3.10.7.4');
        break;
      case 'CLOSING':
        if (finAcked) this.enterTimeWait();
        break;
      case 'LAST-ACK':
        if (finAcked) {
          this.toClosed('RFC 9293 §3.10.7.4');
          return false;
        }
        break;
      case 'TIME-WAIT':
        break;
    }
    return true;
  }

  /** The FIN's sequence number: just past the last queued byte. */
  /** SEG.WND in bytes: scaled, except in a SYN (RFC 7323 §2.2). */
  private segWindow(seg: TcpSegment): number {
    return seg.flags & SYN ? seg.window : seg.window * 2 ** this.sndShift;
  }

  private finSeq(): number {
    return seqAdd(this.sendBase, this.sendQueue.length);
  }

  /** SND.UNA moves to `ack`: drop acknowledged bytes, SYN and FIN. */
  private ackAdvance(ack: number): number {
    const dataEnd = seqAdd(this.sendBase, this.sendQueue.length);
    const upTo = seqLt(ack, dataEnd) ? ack : dataEnd;
    const acked = seqDiff(upTo, this.sendBase);
    if (acked > 0) {
      this.sendQueue.drop(acked);
      this.sendBase = upTo;
    }
    const prev = this.sndUna;
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    if (seqLt(this.highRxt, ack)) this.highRxt = ack;
    this.scoreboard.advance(ack);
    return seqDiff(ack, prev);
  }

  private onNewAck(seg: TcpSegment, ack: number): void {
    const prevUna = this.sndUna;
    const ackedBytes = this.ackAdvance(ack);
    this.progressAt = this.now;
    this.retries = 0;
    // RTT: RFC 7323 §4.1 with timestamps; else one timed segment at a time with Karn's
    // rule (RFC 6298 §3), the timing cancelled whenever anything is retransmitted.
    // Karn applies to timestamps too: when the first ACK of a segment is lost and the
    // segment is retransmitted, the receiver drops the copy as a duplicate without taking
    // its TSval (RFC 7323 §5.3 R2 before R3), so the echo is that of the original and the
    // sample would include the whole RTO.
    const ts = seg.options.timestamps;
    if (this.karnUntil !== undefined && seqLt(prevUna, this.karnUntil)) {
      this.rttSeq = undefined;
      if (seqGeq(this.sndUna, this.karnUntil)) this.karnUntil = undefined;
    } else if (this.tsOk && ts && ts.echo !== 0) {
      this.rtt.sample(Math.max(0, Math.floor(this.now) - ((ts.echo - this.tsOffset) >>> 0)));
    } else if (this.rttSeq !== undefined && seqGt(ack, this.rttSeq)) {
      this.rtt.sample(this.now - this.rttTime);
      this.rttSeq = undefined;
    }

    if (this.inRecovery) {
      if (seqGeq(ack, this.recover)) {
        // RFC 6582 §3.2 step 3 / RFC 6675 §5: full acknowledgment ends recovery.
        this.inRecovery = false;
        this.dupAcks = 0;
        this.rxtLog.length = 0;
        this.relost.length = 0;
        this.cc.onRecoveryExit(this.now, this.flightSize());
      } else if (!this.sackOk) {
        // RFC 6582 §3.2 step 4: partial acknowledgment: retransmit the next hole and
        // deflate the window by the amount acked, adding back one SMSS.
        this.retransmitRange(this.sndUna, Math.min(this.mss, seqDiff(this.sndMax, this.sndUna)));
        this.cc.cwnd = Math.max(
          this.mss,
          this.cc.cwnd - ackedBytes + (ackedBytes >= this.mss ? this.mss : 0),
        );
      }
    } else {
      this.dupAcks = 0;
      this.cc.onAck(ackedBytes, this.now, this.rtt.srtt);
    }

    // RFC 6298 §5.2 / §5.3 (RFC 6582 §3.2 step 4 resets it on the partial ACK as well)
    if (this.sndUna === this.sndMax) {
      this.rtxAt = undefined;
      this.persistBackoff = 0;
    } else {
      this.rtxAt = this.now + this.rtt.rto;
    }
    if (this.writableBlocked && this.unsentAndUnacked() <= this.o.sendLowWater) {
      this.writableBlocked = false;
      this.ev.push({ type: 'writable' });
    }
    if (!this.allAckedReported && this.sendQueue.length === 0 && this.sndUna === this.sndMax) {
      if (!this.finQueued || this.finSent) {
        this.allAckedReported = true;
        this.ev.push({ type: 'acked' });
      }
    }
  }

  private onDupAck(): void {
    this.dupAcks++;
    if (this.inRecovery) {
      if (!this.sackOk) this.cc.cwnd += this.mss; // RFC 6582 §3.2 step 3 (RFC 5681 step 4)
      return;
    }
    // RFC 6582 §3.2 step 2 / RFC 6675 §5.1: no new recovery for losses from the window
    // that an earlier recovery or RTO already dealt with (SND.UNA still below recover).
    if (seqLt(this.sndUna, this.recover)) return;
    const lost = this.sackOk
      ? this.dupAcks >= this.o.dupThresh ||
        this.scoreboard.lostBoundary(this.o.dupThresh, this.mss) !== undefined
      : this.dupAcks >= this.o.dupThresh;
    if (!lost) return; // limited transmit (RFC 3042) happens in sendNew

    // Enter fast recovery (RFC 5681 §3.2 steps 2-3, RFC 6582 §3.2 step 2, RFC 6675 §5 step 4).
    this.cc.onCongestionEvent(this.now, this.flightSize());
    this.inRecovery = true;
    this.recover = this.sndMax;
    this.highRxt = this.sndUna;
    this.rttSeq = undefined;
    this.counters.fastRetransmits++;
    if (this.sackOk) {
      // RFC 6937 §3: proportional rate reduction paces the recovery that follows.
      this.rescueRxt = undefined;
      this.rxtLog.length = 0;
      this.relost.length = 0;
      this.recoverFs = this.flightSize();
      this.prrDelivered = 0;
      this.prrOut = 0;
      // RFC 6675 §5 step 4.3: retransmit the first un-SACKed segment.
      const hole = this.scoreboard.nextHole(this.sndUna, this.sndMax);
      if (hole) this.retransmitRange(hole.start, Math.min(this.mss, seqDiff(hole.end, hole.start)));
    } else {
      this.retransmitRange(this.sndUna, Math.min(this.mss, seqDiff(this.sndMax, this.sndUna)));
      this.cc.cwnd = this.cc.ssthresh + 3 * this.mss;
    }
    this.rtxAt = this.now + this.rtt.rto;
  }

  // RFC 6937 state for the current SACK recovery.
  private recoverFs = 0;
  private prrDelivered = 0;
  private prrOut = 0;

  /**
   * RFC 6937 §3 on each ACK in recovery: while pipe is above ssthresh, send in proportion
   * to what the receiver got (PRR); below it, grow back toward ssthresh no faster than
   * slow start (PRR-SSRB). The result is this ACK's cwnd, pipe + sndcnt.
   */
  private prrUpdate(delivered: number): void {
    this.prrDelivered += delivered;
    const pipe = this.pipe();
    const ss = this.cc.ssthresh;
    let sndcnt: number;
    if (pipe > ss) {
      sndcnt = Math.ceil((this.prrDelivered * ss) / Math.max(1, this.recoverFs)) - this.prrOut;
    } else {
      const limit = Math.max(this.prrDelivered - this.prrOut, delivered) + this.mss;
      sndcnt = Math.min(ss - pipe, limit);
    }
    this.cc.cwnd = pipe + Math.max(0, sndcnt);
  }

  /** Seventh and eighth steps: segment text and FIN (RFC 9293 §3.10.7.4). */
  private processText(seg: TcpSegment, seq: number): void {
    const st = this.state;
    const payload = seg.payload;
    const segFin = (seg.flags & FIN) !== 0;
    // RFC 9293 §3.10.7.4 seventh: text is taken in ESTABLISHED and FIN-WAIT-1/2 only.
    if (
      payload.length &&
      (st === 'ESTABLISHED' || st === 'FIN-WAIT-1' || st === 'FIN-WAIT-2') &&
      !this.peerFinSeen
    ) {
      // Only the part inside the window is new (RFC 9293 §3.10.7.4 first).
      let data = payload;
      let start = seq;
      if (seqLt(start, this.rcvNxt)) {
        const skip = seqDiff(this.rcvNxt, start);
        data = skip >= data.length ? EMPTY : data.subarray(skip);
        start = this.rcvNxt;
      }
      const room = seqDiff(this.rcvAdvRight, start);
      const fits = data.length <= room;
      if (!fits) data = room > 0 ? data.subarray(0, room) : EMPTY;
      if (data.length === 0) {
        this.ackNow = true; // a duplicate: tell the sender where we are
        if (seqLt(seq, this.rcvNxt))
          this.noteDuplicate(seq, Math.min(payload.length, seqDiff(this.rcvNxt, seq)));
      } else if (start === this.rcvNxt) {
        this.appendInOrder(data);
      } else {
        // Out of order: hold it (up to the cap) and ACK at once (RFC 5681 §4.2).
        if (this.ooo.insert(start, data, this.rcvNxt)) {
          if (segFin && fits) this.oooFin = seqAdd(start, data.length);
          if (this.ooo.lastWasDuplicate) this.noteDuplicate(start, data.length);
        } else {
          this.counters.outOfOrderDropped++;
          this.drop('ooo-cap');
        }
        this.ackNow = true;
      }
    }
    // eighth: the FIN counts when everything before it has arrived.
    const finHere = segFin && seqAdd(seq, payload.length) === this.rcvNxt;
    const finQueued = this.oooFin !== undefined && this.oooFin === this.rcvNxt && this.ooo.isEmpty;
    if (!finHere && !finQueued) {
      if (segFin) this.ackNow = true;
      return;
    }
    this.oooFin = undefined;
    this.ackNow = true;
    switch (st) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.takeFin();
        this.setState('CLOSE-WAIT', 'RFC 9293 §3.10.7.4');
        break;
      case 'FIN-WAIT-1':
        this.takeFin();
        this.setState('CLOSING', 'RFC 9293 §3.10.7.4');
        break;
      case 'FIN-WAIT-2':
        this.takeFin();
        this.enterTimeWait();
        break;
      default:
        // CLOSE-WAIT, CLOSING, LAST-ACK: a repeated FIN, already counted; ACK it.
        break;
    }
  }

  /** Bytes at RCV.NXT: to the reader, then whatever out-of-order data they join. */
  private appendInOrder(data: Uint8Array): void {
    this.recvQueue.push(data, true);
    this.rcvNxt = seqAdd(this.rcvNxt, data.length);
    this.counters.bytesIn += data.length;
    if (!this.ooo.isEmpty) {
      this.ooo.prune(this.rcvNxt);
      let run = this.ooo.takeInOrder(this.rcvNxt);
      while (run) {
        for (const c of run) {
          this.recvQueue.push(c, true);
          this.rcvNxt = seqAdd(this.rcvNxt, c.length);
          this.counters.bytesIn += c.length;
        }
        run = this.ooo.takeInOrder(this.rcvNxt);
      }
      // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
      this.ackNow = true;
    }
    this.noteDataReceived();
    this.pushReadable();
  }

  private oooFin: number | undefined;
  /** A duplicate range to report first in the next SACK option (RFC 2883 D-SACK). */
  private dsack: SackBlock | undefined;

  private noteDuplicate(seq: number, len: number): void {
    if (this.sackOk && len > 0) this.dsack = { left: seq, right: seqAdd(seq, len) };
  }

  private takeFin(): void {
    if (this.peerFinSeen) return;
    this.peerFinSeen = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.rcvAdvRight = seqGt(this.rcvAdvRight, this.rcvNxt) ? this.rcvAdvRight : this.rcvNxt;
    this.ev.push({ type: 'peer-fin' });
  }

  private pushReadable(): void {
    for (const e of this.ev) {
      if (e.type === 'data-readable') {
        e.readable = this.recvQueue.length;
        return;
      }
    }
    this.ev.push({ type: 'data-readable', readable: this.recvQueue.length });
  }

  /** RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK every second segment, else within the delay. */
  private noteDataReceived(): void {
    this.unackedSegs++;
    if (this.o.delayedAck === 0 || this.unackedSegs >= 2) {
      this.ackNow = true;
    } else if (this.delAckAt === undefined) {
      this.delAckAt = this.now + this.o.delayedAck;
    }
  }

  private enterTimeWait(): void {
    this.setState('TIME-WAIT', 'RFC 9293 §3.10.7.4');
    this.rtxAt = undefined;
    this.persistAt = undefined;
    this.keepaliveAt = undefined;
    this.timeWaitAt = this.now + 2 * this.o.msl;
  }

  // -------------------------------------------------------------------------------------
  // Sending

  /** RFC 5681 FlightSize: data sent and not yet cumulatively acknowledged. */
  private flightSize(): number {
    return seqDiff(this.sndMax, this.sndUna);
  }

  /** What the congestion window is compared with: RFC 6675 pipe during SACK recovery. */
  private flight(): number {
    if (this.inRecovery && this.sackOk) return this.pipe();
    return seqDiff(this.sndNxt, this.sndUna);
  }

  /** RFC 6675 §4 SetPipe, computed from ranges rather than octet by octet. */
  private pipe(): number {
    const sb = this.scoreboard;
    const una = this.sndUna;
    const max = this.sndMax;
    const lost = sb.lostBoundary(this.o.dupThresh, this.mss);
    const lostEnd = lost === undefined || seqLt(lost, una) ? una : lost;
    const notLost = seqDiff(max, lostEnd) - sb.sackedBetween(lostEnd, max);
    const rxEnd = seqLt(this.highRxt, max) ? this.highRxt : max;
    const rexmitted = seqGt(rxEnd, una) ? seqDiff(rxEnd, una) - sb.sackedBetween(una, rxEnd) : 0;
    return notLost + rexmitted;
  }

  private unsentAndUnacked(): number {
    return this.sendQueue.length;
  }

  /** Bytes the peer's window still allows beyond SND.NXT. */
  private sendWindowAvailable(): number {
    return seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
  }

  /**
   * Send what the windows, Nagle and SWS avoidance allow (RFC 9293 §3.7.4, §3.8.6.2.1,
   * RFC 5681 §3.1, RFC 6675 §5). `force` is the override timeout (RTO or persist): send
   * at least one segment even if small or beyond the congestion window.
   */
  private transmit(force = false): void {
    if (!SEND_STATES.has(this.state)) return;
    // RFC 5681 §4.1: after an idle period longer than the RTO, restart from
    // min(IW, cwnd): the network may have changed while nothing probed it.
    if (
      this.sndUna === this.sndMax &&
      this.lastSendAt !== undefined &&
      this.now - this.lastSendAt > this.rtt.rto
    ) {
      const iw = initialWindow(this.mss);
      if (this.cc.cwnd > iw) this.cc.cwnd = iw;
      this.lastSendAt = undefined;
    }
    let forced = force;
    for (let guard = 0; guard < 100_000; guard++) {
      if (this.inRecovery && this.sackOk) {
        if (this.cc.cwnd - this.pipe() < this.mss && !forced) break;
        if (this.relost.length) {
          const start = this.relost[0]!;
          const end = this.relost[1]!;
          this.relost.splice(0, 2);
          if (seqGt(end, this.sndUna) && !this.scoreboard.isSacked(start)) {
            const from = seqLt(start, this.sndUna) ? this.sndUna : start;
            this.retransmitRange(from, Math.min(this.mss, seqDiff(end, from)));
            forced = false;
          }
          continue;
        }
        // RFC 6675 §4 NextSeg rules (1) and (3): retransmit a hole below the highest SACK.
        const hi = this.scoreboard.highest;
        if (hi !== undefined) {
          const from = seqGt(this.highRxt, this.sndUna) ? this.highRxt : this.sndUna;
          const hole = this.scoreboard.nextHole(from, hi);
          if (hole) {
            const lost = this.scoreboard.lostBoundary(this.o.dupThresh, this.mss);
            const isLost = lost !== undefined && seqLt(hole.start, lost);
            const canNew = this.newDataSendable() > 0;
            if (isLost || !canNew) {
              this.retransmitRange(hole.start, Math.min(this.mss, seqDiff(hole.end, hole.start)));
              forced = false;
              continue;
            }
          }
        }
      }
      if (!this.sendNew(forced)) {
        if (this.inRecovery && this.sackOk) this.rescueRetransmission();
        break;
      }
      forced = false;
    }
    this.armPersistIfBlocked();
  }

  /**
   * RFC 6675 §4 NextSeg rule (4), the rescue retransmission: once per recovery (per
   * window of data), when nothing else can go, resend the segment holding the highest
   * outstanding un-SACKed byte, so a loss at the tail of the window is repaired without
   * waiting for the RTO. HighRxt is not moved.
   */
  private rescueRetransmission(): void {
    if (this.rescueRxt !== undefined && !seqGt(this.sndUna, this.rescueRxt)) return;
    if (this.cc.cwnd - this.pipe() < this.mss) return;
    const hi = this.scoreboard.highest;
    if (hi !== undefined && !seqLt(hi, this.sndMax)) return; // the tail is SACKed
    const start = seqMax(seqMax(seqAdd(this.sndMax, -this.mss), hi ?? this.sndUna), this.sndUna);
    const len = seqDiff(this.sndMax, start);
    if (len <= 0) return;
    const highRxt = this.highRxt;
    this.retransmitRange(start, len);
    this.highRxt = highRxt;
    this.rescueRxt = this.recover;
  }

  private rescueRxt: number | undefined;

  /** Retransmissions of this recovery: [start, end, SND.MAX when sent] triples. */
  private rxtLog: number[] = [];
  /** Retransmissions found lost, to send again first: [start, end] pairs. */
  private relost: number[] = [];

  /**
   * A lost retransmission, detected from SACKs (as Linux did before RACK, and as RACK
   * does by time, RFC 8985 §6): when data sent after a retransmission is SACKed while
   * the retransmitted range is still missing, that retransmission was lost too. Without
   * this only the RTO would repair it (RFC 6675 marks each hole for one retransmission).
   */
  private detectLostRetransmissions(): void {
    const hi = this.scoreboard.highest;
    const log = this.rxtLog;
    let w = 0;
    for (let k = 0; k < log.length; k += 3) {
      const start = log[k]!;
      const end = log[k + 1]!;
      const sentAt = log[k + 2]!;
      if (!seqGt(end, this.sndUna)) continue; // acknowledged: forget it
      if (hi !== undefined && seqGt(hi, sentAt) && !this.scoreboard.isSacked(start)) {
        this.relost.push(seqLt(start, this.sndUna) ? this.sndUna : start, end);
        continue;
      }
      log[w++] = start;
      log[w++] = end;
      log[w++] = sentAt;
    }
    log.length = w;
  }

  /** How much unsent data the peer window and cwnd would let go now (ignoring Nagle). */
  private newDataSendable(): number {
    const dataEnd = seqAdd(this.sendBase, this.sendQueue.length);
    const unsent = seqDiff(dataEnd, this.sndNxt);
    if (unsent <= 0) return 0;
    const cwndRoom = this.cc.cwnd - this.flight();
    return Math.min(unsent, this.sendWindowAvailable(), cwndRoom);
  }

  /** One segment from SND.NXT (new data, or going back after an RTO). False when nothing went. */
  private sendNew(force: boolean): boolean {
    const dataEnd = seqAdd(this.sendBase, this.sendQueue.length);
    const unsent = seqDiff(dataEnd, this.sndNxt);
    const wantFin =
      this.finQueued &&
      (this.state === 'FIN-WAIT-1' || this.state === 'LAST-ACK' || this.state === 'CLOSING');
    const finPending = wantFin && seqLeq(this.sndNxt, this.finSeq());
    if (unsent <= 0) {
      if (finPending && unsent === 0) {
        // A FIN takes no window room but does wait for the congestion window.
        if (!force && this.cc.cwnd - this.flight() <= 0 && seqLt(this.sndUna, this.sndNxt)) return false;
        this.sendData(this.sndNxt, 0, true);
        return true;
      }
      return false;
    }
    const wndRoom = this.sendWindowAvailable();
    // RFC 3042 limited transmit: each of the first two duplicate ACKs lets one new
    // segment go beyond cwnd (FlightSize <= cwnd + 2*SMSS).
    const limited = !this.inRecovery && this.dupAcks > 0 ? Math.min(this.dupAcks, 2) * this.mss : 0;
    const cwndRoom = this.cc.cwnd + limited - this.flight();
    let len = Math.min(this.mss, unsent);
    const retransmission = seqLt(this.sndNxt, this.sndMax);
    if (!force) {
      if (wndRoom <= 0 || cwndRoom <= 0) return false;
      len = Math.min(len, wndRoom, cwndRoom);
      if (len < this.mss && !retransmission) {
        // Sender SWS avoidance (RFC 9293 §3.8.6.2.1) with Nagle (RFC 9293 §3.7.4):
        // a short segment goes only if it carries all that is queued and nothing is
        // unacknowledged (or Nagle is off), or it is at least half the largest window.
        const idle = this.sndUna === this.sndMax;
        const allOfIt = len === unsent;
        const limitedByWindow = len === wndRoom && wndRoom < unsent;
        const ok =
          (allOfIt && (idle || this.o.noDelay)) ||
          (limitedByWindow && len >= this.maxSndWnd / 2 && (idle || this.o.noDelay));
        if (!ok) return false;
      }
    } else {
      // The override: at least one byte, at most what the window allows, or one byte.
      len = Math.max(1, Math.min(len, Math.max(wndRoom, 1)));
    }
    const fin = finPending && len === unsent;
    this.sendData(this.sndNxt, len, fin);
    return true;
  }

  /** Emit bytes [seq, seq+len) from the send queue (and a FIN after them). */
  private sendData(seq: number, len: number, fin: boolean): void {
    const off = seqDiff(seq, this.sendBase);
    const payload = len ? this.sendQueue.slice(off, len) : EMPTY;
    let flags = ACK;
    if (fin) flags |= FIN;
    const dataEnd = seqAdd(this.sendBase, this.sendQueue.length);
    if (len && seqAdd(seq, len) === dataEnd) flags |= PSH;
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    const retransmission = seqLt(seq, this.sndMax);
    if (retransmission) {
      this.counters.retransmits++;
      this.rttSeq = undefined; // Karn (RFC 6298 §3)
      this.noteRetransmitted(end);
    } else if (this.rttSeq === undefined && !this.tsOk) {
      this.rttSeq = seq;
      this.rttTime = this.now;
    }
    if (fin) this.finSent = true;
    if (this.inRecovery) this.prrOut += len + (fin ? 1 : 0);
    if (this.sndUna === this.sndMax) this.progressAt = this.now; // the clock starts from idle
    this.lastSendAt = this.now;
    this.emit(seq, flags, payload, true);
    this.counters.bytesOut += len;
    this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    // RFC 6298 §5.1
    if (this.rtxAt === undefined) this.rtxAt = this.now + this.rtt.rto;
    this.persistAt = undefined;
  }

  /** When data was last sent, for the restart window (RFC 5681 §4.1). */
  private lastSendAt: number | undefined;

  /** End of the highest range ever retransmitted: ACKs below it give no RTT sample. */
  private karnUntil: number | undefined;

  private noteRetransmitted(end: number): void {
    if (this.karnUntil === undefined || seqGt(end, this.karnUntil)) this.karnUntil = end;
  }

  /** A retransmission that does not move SND.NXT (fast retransmit, SACK recovery). */
  private retransmitRange(seq: number, len: number): void {
    const dataEnd = seqAdd(this.sendBase, this.sendQueue.length);
    const dataLen = Math.max(0, Math.min(len, seqDiff(dataEnd, seq)));
    const fin = this.finSent && len > dataLen && seqAdd(seq, dataLen) === dataEnd;
    const off = seqDiff(seq, this.sendBase);
    const payload = dataLen ? this.sendQueue.slice(off, dataLen) : EMPTY;
    let flags = ACK;
    if (fin) flags |= FIN;
    this.counters.retransmits++;
    this.rttSeq = undefined;
    if (this.inRecovery) this.prrOut += dataLen + (fin ? 1 : 0);
    this.emit(seq, flags, payload, true);
    const end = seqAdd(seq, dataLen + (fin ? 1 : 0));
    if (this.inRecovery && this.sackOk && this.rxtLog.length < 3 * 256)
      this.rxtLog.push(seq, end, this.sndMax);
    this.noteRetransmitted(end);
    if (seqGt(end, this.highRxt)) this.highRxt = end;
    if (this.rtxAt === undefined) this.rtxAt = this.now + this.rtt.rto;
  }

  private armPersistIfBlocked(): void {
    if (!SEND_STATES.has(this.state)) return;
    const dataEnd = seqAdd(this.sendBase, this.sendQueue.length);
    const unsent = seqDiff(dataEnd, this.sndNxt);
    if (
      unsent > 0 &&
      this.sndUna === this.sndMax &&
      this.sendWindowAvailable() < Math.min(this.mss, unsent)
    ) {
      // RFC 9293 §3.8.6.1: nothing in flight to bring a window update; probe.
      if (this.persistAt === undefined) this.persistAt = this.now + this.persistInterval();
    } else if (this.sndUna !== this.sndMax) {
      this.persistAt = undefined;
    }
  }

  private sendSyn(synAck: boolean, retransmit = false, cookie?: Uint8Array): void {
    const o: TcpOptions = { mss: this.ourMss };
    const peerOffered = this.peerSynOptions;
    if (synAck) {
      if (this.sackOk) o.sackPermitted = true;
      if (this.tsOk) o.timestamps = { value: this.tsVal(), echo: this.tsRecent };
      if (peerOffered?.ws) o.windowScale = this.rcvShift;
      if (cookie) o.fastOpen = cookie;
    } else {
      if (this.offerSack) o.sackPermitted = true;
      if (this.offerTs) o.timestamps = { value: this.tsVal(), echo: 0 };
      if (this.offerWs) o.windowScale = this.rcvShift;
      if (!retransmit && this.tfoCookie) o.fastOpen = this.tfoCookie;
      else if (!retransmit && this.tfoRequest) o.fastOpen = EMPTY;
    }
    let payload: Uint8Array = EMPTY;
    if (!synAck && !retransmit && this.tfoCookie && this.sendQueue.length) {
      // RFC 7413 §3: data rides in the SYN with a cookie; as much as one MSS of the
      // default peer size allows (the peer's MSS is not known yet).
      payload = this.sendQueue.slice(0, Math.min(this.sendQueue.length, this.mss));
      this.tfoSynData = payload.length;
    }
    const flags = synAck ? SYN | ACK : SYN;
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    const window = Math.min(0xffff, this.freeSpace());
    const seg: TcpSegment = {
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq: this.iss,
      ack: synAck ? this.rcvNxt : 0,
      flags,
      window,
      urgentPointer: 0,
      options: o,
      payload,
    };
    if (synAck) {
      this.rcvAdvRight = seqAdd(this.rcvNxt, window);
      this.lastAckSent = this.rcvNxt;
      this.clearAckState();
    }
    this.push(seg);
    if (!retransmit) {
      const end = seqAdd(this.iss, 1 + payload.length);
      this.sndNxt = end;
      if (seqGt(end, this.sndMax)) this.sndMax = end;
      this.rttSeq = this.iss;
      this.rttTime = this.now;
    }
    this.rtxAt = this.now + this.rtt.rto;
  }

  private peerSynOptions: { ws: boolean } | undefined;

  /** Options from the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2, §3.2, RFC 2018 §2). */
  private negotiate(syn: TcpSegment): void {
    const o = syn.options;
    this.peerSynOptions = { ws: o.windowScale !== undefined };
    if (o.mss !== undefined && o.mss > 0) this.peerMss = o.mss;
    if (this.offerWs && o.windowScale !== undefined) {
      this.sndShift = Math.min(14, o.windowScale); // RFC 7323 §2.3: more than 14 is 14
    } else {
      this.sndShift = 0;
      this.rcvShift = 0;
    }
    this.sackOk = this.offerSack && o.sackPermitted === true;
    this.tsOk = this.offerTs && o.timestamps !== undefined;
    this.mss = Math.max(1, Math.min(this.ourMss, this.peerMss) - (this.tsOk ? 12 : 0));
    this.cc.setMss(this.mss);
  }

  private keepTimestamp(syn: TcpSegment): void {
    if (this.tsOk && syn.options.timestamps) {
      this.tsRecent = syn.options.timestamps.value;
      this.tsRecentAge = this.now;
    }
  }

  private sampleHandshakeRtt(seg: TcpSegment): void {
    const ts = seg.options.timestamps;
    if (this.tsOk && ts && ts.echo !== 0) {
      this.rtt.sample(Math.max(0, Math.floor(this.now) - ((ts.echo - this.tsOffset) >>> 0)));
    } else if (!this.synRetransmitted && this.rttSeq !== undefined) {
      this.rtt.sample(this.now - this.rttTime);
    }
    this.rttSeq = undefined;
  }

  private tsVal(): number {
    return (Math.floor(this.now) + this.tsOffset) >>> 0;
  }

  /** Receive buffer room: the window we can offer from RCV.NXT. */
  private freeSpace(): number {
    return Math.max(0, this.receiveBuffer - this.recvQueue.length);
  }

  /**
   * The window field for an outgoing segment (RFC 9293 §3.8.6.2.2 receiver SWS avoidance,
   * RFC 7323 §2.3 scaling). The right edge never moves left.
   */
  private windowField(): number {
    const candidate = seqAdd(this.rcvNxt, this.freeSpace());
    let right = this.rcvAdvRight;
    const grow = seqDiff(candidate, right);
    if (grow > 0 && grow >= Math.min(this.receiveBuffer / 2, this.ourMss)) {
      right = candidate;
    }
    if (this.peerFinSeen && seqLt(right, this.rcvNxt)) right = this.rcvNxt;
    let wnd = seqDiff(right, this.rcvNxt);
    if (wnd < 0) wnd = 0;
    const s = this.rcvShift;
    let field = Math.floor(wnd / 2 ** s);
    if (seqLt(seqAdd(this.rcvNxt, field * 2 ** s), this.rcvAdvRight)) field = Math.ceil(wnd / 2 ** s);
    if (field > 0xffff) field = 0xffff;
    const adv = seqAdd(this.rcvNxt, field * 2 ** s);
    if (seqGt(adv, this.rcvAdvRight)) this.rcvAdvRight = adv;
    return field;
  }

  private clearAckState(): void {
    this.ackNow = false;
    this.unackedSegs = 0;
    this.delAckAt = undefined;
  }

  private sendAck(): void {
    // SND.NXT in the RFC's sense: the highest sequence sent. After an RTO sndNxt goes
    // back to SND.UNA, and an ACK carrying that older number would fail the peer's
    // acceptability test (its RCV.NXT is past it) and be dropped with its news.
    this.emit(this.sndMax, ACK, EMPTY, true);
  }

  /**
   * Build a segment. `withState` adds the ACK, window, timestamps and SACK blocks that every
   * segment of a synchronized connection carries; RSTs and probes of a closed one do not.
   */
  private emit(seq: number, flags: number, payload: Uint8Array, withState: boolean): void {
    let options = NO_OPTIONS;
    let ack = 0;
    let window = 0;
    if (withState || flags & ACK) {
      ack = this.rcvNxt;
      window = this.windowField();
      const sacking = this.sackOk && (!this.ooo.isEmpty || this.dsack !== undefined);
      if (this.tsOk || sacking) {
        options = {};
        if (this.tsOk) options.timestamps = { value: this.tsVal(), echo: this.tsRecent };
        if (sacking) {
          // RFC 9293 §3.7.1: options must not push a segment past the MSS. `mss` already
          // leaves room for timestamps; SACK takes 4 + 8n bytes (two NOPs, kind, length,
          // n blocks), so a full-sized data segment carries fewer blocks (or none) — pure
          // ACKs still carry them all.
          const room = Math.max(0, this.mss - payload.length);
          const max = Math.min(this.tsOk ? 3 : 4, Math.max(0, Math.floor((room - 4) / 8)));
          if (max === 0) {
            // No room in this segment; the blocks go with the next one that has it.
          } else if (this.dsack) {
            // RFC 2883 §4: the duplicate range goes first, then the usual blocks.
            options.sack = [this.dsack, ...this.ooo.sackBlocks(max - 1)];
            this.dsack = undefined;
          } else {
            options.sack = this.ooo.sackBlocks(max);
          }
        }
      }
      this.lastAckSent = this.rcvNxt;
      this.clearAckState();
    }
    this.push({
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq,
      ack,
      flags,
      window,
      urgentPointer: 0,
      options,
      payload,
    });
  }

  private push(seg: TcpSegment): void {
    this.counters.segmentsOut++;
    if (this.trace.enabled) this.traceSegment('out', seg);
    this.out.push(seg);
  }

  // -------------------------------------------------------------------------------------
  // State changes, errors, bookkeeping

  private setState(to: TcpState, rfc: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    if (this.trace.enabled) {
      this.trace.emit({
        t: this.now,
        host: this.hostName,
        layer: 'tcp',
        dir: 'local',
        summary: `${from} -> ${to}`,
        state: { from, to },
        rfc,
        fields: {
          local: `${this.local.addr}:${this.local.port}`,
          remote: `${this.remote.addr}:${this.remote.port}`,
        },
      });
    }
  }

  private toClosed(rfc: string): void {
    if (this.state === 'CLOSED') return;
    this.setState('CLOSED', rfc);
    this.rtxAt = undefined;
    this.persistAt = undefined;
    this.delAckAt = undefined;
    this.keepaliveAt = undefined;
    this.timeWaitAt = undefined;
    this.ackNow = false;
    this.sendQueue.clear();
    this.ooo.clear();
    this.ev.push({ type: 'closed' });
  }

  private fail(code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT', rfc: string): void {
    this.ev.push({ type: 'error', code });
    this.toClosed(rfc);
  }

  private drop(reason: string): void {
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

  private traceSegment(dir: 'in' | 'out', seg: TcpSegment): void {
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
      },
    });
  }

  private begin(now: number): void {
    this.now = now;
  }

  private finish(): TcpOutput {
    if (this.ackNow && SYNCHRONIZED.has(this.state)) this.sendAck();
    this.ackNow = false;
    const out = { segments: this.out, events: this.ev };
    this.out = [];
    this.ev = [];
    return out;
  }
}
