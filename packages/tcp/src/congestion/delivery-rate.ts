import { seqGeq, seqGt, seqLt } from '@stepwire/wire';

/** Sends remembered at most (a flight's worth of transmit loops; older ones are merged away). */
const MAX_LOG = 4096;

/** One ACK's delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation §3.1.3). */
export interface RateSample {
  /** Bytes per ms, or undefined when the interval is too short to trust (§3.1.3, ACK compression). */
  deliveryRate: number | undefined;
  /** The sample's flight was sent while the application had too little to send (§3.4). */
  isAppLimited: boolean;
  /** C.delivered when the sample's packet was sent (BBR counts round trips by it). */
  priorDelivered: number;
  /** The RTT of the most recently sent packet this ACK delivered, unless it was retransmitted (Karn). */
  rtt: number | undefined;
}

/**
 * Delivery-rate estimation after draft-cheng-iccrg-delivery-rate-estimation (what Linux's
 * tcp_rate.c does): each send remembers how much had been delivered, and when, at the time
 * it left; the ACK that delivers it divides what was delivered since by the time since —
 * the longer of the send and ACK intervals, so neither a burst of sends nor a batch of ACKs
 * inflates the rate.
 *
 * The draft keeps this state per packet; here it is kept per transmit loop (the segments
 * one loop sends leave at one instant with the same C.delivered, so they would carry the
 * same values), and only for new data: a retransmission is found by the segment it repeats.
 * The packet an ACK delivers is the one holding the highest byte delivered: max(SND.UNA,
 * the highest SACKed byte) — the most recently sent of those it delivers.
 */
export class DeliveryRateEstimator {
  /** C.delivered, C.delivered_time, C.first_sent_time (§3.1.1). */
  delivered = 0;
  deliveredTime = 0;
  firstSentTime = 0;
  /** C.app_limited: 0, or the C.delivered mark past which samples are no longer app-limited (§3.4). */
  appLimited = 0;
  /** The least RTT sampled: a sample over a shorter interval is ACK compression (§3.1.3). */
  minRtt = Number.POSITIVE_INFINITY;

  // The log, by sequence: start of the range, and P.sent_time, P.delivered,
  // P.delivered_time, P.first_sent_time, P.is_app_limited of its segments (§3.1.2).
  private readonly start: number[] = [];
  private readonly sent: number[] = [];
  private readonly pDelivered: number[] = [];
  private readonly pDeliveredTime: number[] = [];
  private readonly pFirstSent: number[] = [];
  private readonly pAppLimited: boolean[] = [];

  /** New data from `start` left at `now` with `inflight` bytes already out before it (§3.1.2). */
  onSend(start: number, now: number, inflight: number): void {
    if (inflight <= 0) {
      // Nothing in flight: the send and ACK intervals start afresh.
      this.firstSentTime = now;
      this.deliveredTime = now;
    }
    const n = this.start.length;
    if (n > 0 && this.sent[n - 1] === now && this.pDelivered[n - 1] === this.delivered) return;
    if (n >= MAX_LOG) this.drop(1);
    this.start.push(start);
    this.sent.push(now);
    this.pDelivered.push(this.delivered);
    this.pDeliveredTime.push(this.deliveredTime);
    this.pFirstSent.push(this.firstSentTime);
    this.pAppLimited.push(this.appLimited !== 0);
  }

  /** §3.4: the sender has less to send than the window allows; mark the flight. */
  markAppLimited(inflight: number): void {
    this.appLimited = Math.max(this.delivered + inflight, 1);
  }

  /**
   * An ACK delivered `bytes` (RFC 6937 DeliveredData); `edge` is the highest byte now
   * delivered, `una` SND.UNA, `karnUntil` the end of the highest range ever retransmitted.
   */
  onAck(
    bytes: number,
    now: number,
    edge: number,
    una: number,
    karnUntil: number | undefined,
  ): RateSample | undefined {
    if (bytes <= 0) return undefined;
    this.delivered += bytes;
    this.deliveredTime = now;
    if (this.appLimited !== 0 && this.delivered > this.appLimited) this.appLimited = 0;
    // The last logged range that starts below the edge holds the newest byte delivered.
    // (Binary search: the log is in sequence order.)
    let lo = 0;
    let hi = this.start.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seqLt(this.start[mid]!, edge)) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    if (i < 0) return undefined;
    const sentTime = this.sent[i]!;
    const priorDelivered = this.pDelivered[i]!;
    const sendElapsed = sentTime - this.pFirstSent[i]!;
    const ackElapsed = this.deliveredTime - this.pDeliveredTime[i]!;
    // §3.1.3: the send of a later packet opens the next send interval.
    this.firstSentTime = sentTime;
    // Karn (RFC 6298 §3): a byte at or below the end of the highest retransmission may
    // have been delivered by the copy; its packet gives no RTT sample.
    const retransmitted = karnUntil !== undefined && !seqGt(edge, karnUntil);
    const rtt = retransmitted ? undefined : now - sentTime;
    if (rtt !== undefined && rtt < this.minRtt) this.minRtt = rtt;
    const interval = Math.max(sendElapsed, ackElapsed);
    const delivered = this.delivered - priorDelivered;
    const minRtt = Number.isFinite(this.minRtt) ? this.minRtt : 0;
    const deliveryRate = interval > 0 && interval >= minRtt ? delivered / interval : undefined;
    const sample: RateSample = { deliveryRate, isAppLimited: this.pAppLimited[i]!, priorDelivered, rtt };
    // Ranges wholly below SND.UNA are done with (the one just used may still be the newest).
    let k = 0;
    while (k < i && seqGeq(una, this.start[k + 1]!)) k++;
    if (k > 0) this.drop(k);
    return sample;
  }

  /** After an RTO every SACK is forgotten and the rest goes again: start the log afresh. */
  reset(): void {
    this.drop(this.start.length);
  }

  private drop(k: number): void {
    this.start.splice(0, k);
    this.sent.splice(0, k);
    this.pDelivered.splice(0, k);
    this.pDeliveredTime.splice(0, k);
    this.pFirstSent.splice(0, k);
    this.pAppLimited.splice(0, k);
  }
}
