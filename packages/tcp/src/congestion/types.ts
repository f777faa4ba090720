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
}

export type CongestionFactory = (mss: number) => CongestionControl;

/** RFC 5681 §3.1: IW = min(4*SMSS, max(2*SMSS, 4380)). */
export function initialWindow(mss: number): number {
  return Math.min(4 * mss, Math.max(2 * mss, 4380));
}
