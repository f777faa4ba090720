import type { TraceBus } from '@stepwire/wire';
import type { Pacer } from './pacer.ts';

/**
 * The seam between loss detection (the connection) and the congestion response (RFC 5681
 * and its successors). Windows are in bytes; `mss` is the sender's SMSS.
 */
export interface CongestionControl {
  readonly name: string;
  cwnd: number;
  ssthresh: number;
  /** New data was cumulatively acknowledged outside loss recovery. */
  onAck(ackedBytes: number, now: number, srtt: number | undefined): void;
  /** Loss detected by duplicate ACKs or SACK: set ssthresh and cwnd for fast recovery. */
  onCongestionEvent(now: number, flightSize: number): void;
  /** Loss recovery ended with a full ACK. */
  onRecoveryExit(now: number, flightSize: number): void;
  /** The retransmission timer expired (RFC 5681 §3.1 eq. 4 and the loss window). */
  onRto(now: number, flightSize: number): void;
  /** The handshake settled SMSS: adopt it (and the initial window it implies). */
  setMss(mss: number): void;
  /**
   * Every ACK, in recovery or not: the bytes it newly delivered (RFC 6937 DeliveredData:
   * the change in SND.UNA plus the change in SACKed bytes), the RTT sample last taken
   * and the smoothed RTT. For model-based controllers (BBR's delivery rate); optional.
   */
  onDelivered?(bytes: number, now: number, rtt: number | undefined, srtt: number | undefined): void;
  /**
   * A controller that paces (BBR, draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.1)
   * owns a pacer: the send path asks it how much may go now, and the connection's timers
   * wake the send path at its deadline.
   */
  readonly pacer?: Pacer;
}

export type CongestionFactory = (mss: number) => CongestionControl;

/**
 * What a pacing controller may read of the sender it serves: a read-only slice of the
 * connection's control block (which has these fields under these names), handed over by
 * the send path the first time it consults the pacer. Sequence numbers are 32-bit serial.
 */
export interface SenderView {
  readonly now: number;
  readonly mss: number;
  /** SND.UNA, SND.NXT and the highest sequence number sent. */
  readonly snd: { readonly una: number; readonly nxt: number; readonly max: number };
  /** Bytes SACKed above SND.UNA, and the right edge of the highest SACK block. */
  readonly scoreboard: { readonly sacked: number; readonly highest: number | undefined };
  /** The end of the highest range ever retransmitted (Karn: no RTT sample below it). */
  readonly rttProbe: { readonly karnUntil: number | undefined };
  readonly recovery: { readonly inRecovery: boolean };
  /** Payload bytes sent so far, retransmissions included. */
  readonly counters: { readonly bytesOut: number };
  /** Sequence number of the send queue's first byte, and the queue's length. */
  readonly sendBase: number;
  readonly sendQueue: { readonly length: number };
  /** Where the controller's state changes are traced, and as which host. */
  readonly trace: TraceBus;
  readonly hostName: string;
}

/** RFC 5681 §3.1: IW = min(4*SMSS, max(2*SMSS, 4380)). */
export function initialWindow(mss: number): number {
  return Math.min(4 * mss, Math.max(2 * mss, 4380));
}
