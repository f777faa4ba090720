/** The connection machine's public types: options, events, outputs and statistics. */

import type { TraceBus } from '@stepwire/wire';
import type { CongestionFactory } from '../congestion/types.ts';
import type { IsnGenerator } from '../isn.ts';
import type { SackBlock } from '../options.ts';
import type { RtoOptions } from '../rto.ts';
import type { TcpSegment } from '../segment.ts';
import type { TcpState } from './state.ts';

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
 * - fastopen-rejected: the server acknowledged only our SYN and gave no new cookie: the
 *   cached cookie is no good (RFC 7413 §4.1.3), for the client to forget.
 * - urgent: the peer's urgent pointer arrived or advanced (RFC 9293 §3.8.5, MUST-32). The
 *   urgent bytes stay in the stream (RFC 6093 §6 "inline"); `offset` is how many bytes
 *   from the next read to just past the last urgent byte (some may not have arrived yet).
 */
export type TcpEvent =
  | { type: 'connected' }
  | { type: 'data-readable'; readable: number }
  | { type: 'peer-fin' }
  | { type: 'writable' }
  | { type: 'acked' }
  | { type: 'error'; code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' }
  | { type: 'closed' }
  | { type: 'fastopen-cookie'; cookie: Uint8Array }
  | { type: 'fastopen-rejected' }
  | { type: 'urgent'; offset: number };

export interface TcpOutput {
  segments: TcpSegment[];
  events: TcpEvent[];
  /**
   * The IP ECN codepoint for each segment (RFC 3168 §5: 2 = ECT(0), 0 = Not-ECT), by
   * index; absent when ECN is not in use on the connection (all Not-ECT).
   */
  ecn?: number[];
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
  /**
   * Largest IP packet of a TCP super-segment the link cuts itself (TSO, LinkOffloads.tsoMax);
   * 0 or absent: every segment is at most one MSS. The driver fills it in from the route.
   */
  tsoMax?: number;
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
  /**
   * Lower bound on the retransmission timeout in ms (RFC 6298 §2.4: 1 s, the default; Linux
   * uses 200 ms, as the TUN sessions do). Takes precedence over `rto.min`.
   */
  minRto?: number;
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
  /**
   * Congestion control: 'newreno' (RFC 5681/6582, the default), 'cubic' (RFC 9438) or
   * 'bbr' (BBR v1 with pacing, draft-cardwell-iccrg-bbr-congestion-control-00: see
   * congestion/bbr.ts).
   */
  congestion?: 'newreno' | 'cubic' | 'bbr' | CongestionFactory;
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
  /** RACK-TLP: loss detection by time and tail loss probes (RFC 8985), with SACK. Default true. */
  rack?: boolean;
  /** F-RTO detection of spurious retransmission timeouts (RFC 5682 §3), with SACK. Default true. */
  frto?: boolean;
  /** Duplicate-ACK threshold (RFC 5681 §3.2). Default 3. */
  dupThresh?: number;
  /**
   * Classic ECN (RFC 3168): true asks for it in our SYN and accepts it; false refuses it.
   * Default (undefined): accept when the peer's SYN asks, never ask, as Linux's default
   * net.ipv4.tcp_ecn = 2.
   */
  ecn?: boolean;
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
  /** Duplicate ACKs that failed PAWS only by reordering and were kept (receive.ts disorderedAck). */
  pawsDisorderedAcks: number;
  dropped: number;
  zeroWindowProbes: number;
  keepalivesSent: number;
  oowAcksSuppressed: number;
  /** D-SACK blocks received (RFC 2883). */
  dsacksReceived: number;
  /** Recoveries undone as spurious (RFC 3708, RFC 4015). */
  spuriousRecoveries: number;
  /** Tail loss probes sent, and those that repaired a loss (RFC 8985 §7). */
  tailLossProbes: number;
  tlpRepairs: number;
  /** DupThresh in force (raised by proven reordering). */
  dupThresh: number;
  /** ECN agreed in the handshake (RFC 3168 §6.1.1). */
  ecn: boolean;
  /** Data segments received with CE (§6.1.3), ACKs received with ECE, window reductions for ECE (§6.1.2), CWRs sent. */
  ecnCeReceived: number;
  ecnEceReceived: number;
  ecnReductions: number;
  ecnCwrSent: number;
  /** Urgent pointers that advanced on receive (RFC 9293 §3.8.5). */
  urgentReceived: number;
  sackRanges: SackBlock[];
}
