import { type CongestionControl, initialWindow } from './types.ts';

/** BBR's cwnd_gain: twice the estimated bandwidth-delay product (draft-cardwell-iccrg-bbr §4.6.4.2). */
const CWND_GAIN = 2;
/** Startup's growth test: the bandwidth must grow by 25% per round (draft §4.3.1.2). */
const FULL_BW_GROWTH = 1.25;
const FULL_BW_ROUNDS = 3;
/** The bandwidth max filter spans about ten round trips (draft §4.5.2.2, BBR.BtlBwFilterLen). */
const BW_WINDOW_ROUNDS = 10;
/** MinRTT expires after ten seconds (draft §4.5.3.2). */
const MIN_RTT_WINDOW = 10_000;
/** Delivery samples kept to measure a rate over a round trip (bounded: one per ACK). */
const MAX_SAMPLES = 512;
/** A cwnd never below four segments (draft §4.6.4.1, BBR.MinPipeCwnd). */
const MIN_PIPE_SEGMENTS = 4;
/** A smoothed RTT this many times MinRTT means a standing queue (see target()). */
const QUEUE_FACTOR = 3;

/**
 * A model-based congestion controller after BBR (draft-cardwell-iccrg-bbr-congestion-control,
 * Linux's tcp_bbr.c, v1), cut to what a sender without pacing can use: it estimates the
 * bottleneck bandwidth (a windowed maximum of the delivery rate) and the path's minimum RTT,
 * and keeps cwnd at CWND_GAIN times their product. Startup grows cwnd as slow start does
 * until the bandwidth stops growing for three rounds.
 *
 * Loss is not the congestion signal here: a fast recovery keeps its window (ssthresh is the
 * model's cwnd, so PRR, RFC 6937, conserves packets and then refills to it), as Linux's BBR
 * does. So random loss (a lossy radio link, or the 2% of the impaired TUN benchmark) does
 * not collapse the window the way it does for Reno or CUBIC (RFC 5681 halves per loss).
 *
 * What is left out: pacing (this stack has none), ProbeBW's gain cycling and ProbeRTT
 * (both need pacing to mean anything); so a queue of up to one BDP can build at a
 * bottleneck. The delivery rate is measured per ACK over about one smoothed RTT of
 * cumulative delivery (bytes acknowledged or SACKed), not per packet as the
 * draft-cheng-iccrg-delivery-rate-estimation does.
 */
export class Bbr implements CongestionControl {
  readonly name = 'bbr';
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** Bytes delivered so far (C.delivered). */
  private delivered = 0;
  /** [time, delivered] pairs, oldest first, for the rate over the last round trip. */
  private readonly samples: number[] = [];
  /** Windowed max of the delivery rate, in bytes per ms: [time, rate] pairs, rates decreasing. */
  private readonly bwFilter: number[] = [];
  private minRtt = Number.POSITIVE_INFINITY;
  private minRttAt = 0;
  /** Startup: has the pipe filled (the bandwidth stopped growing)? */
  private filledPipe = false;
  private fullBw = 0;
  private fullBwCount = 0;
  private roundEnd = 0;
  /** The latest delivery-rate sample and smoothed RTT, for the queue guard. */
  private lastRate = 0;
  private srtt: number | undefined;

  constructor(private mss: number) {
    this.cwnd = initialWindow(mss);
  }

  setMss(mss: number): void {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
  }

  /** BBR.BtlBw in bytes per ms (0 before any sample). */
  get bandwidth(): number {
    return this.bwFilter.length ? this.bwFilter[1]! : 0;
  }

  /**
   * The model's window: CWND_GAIN x BtlBw x MinRTT, at least MinPipeCwnd. When the RTT has
   * grown past QUEUE_FACTOR x MinRTT a queue is building, which a paced BBR would drain
   * (its Drain and ProbeRTT states) and which here, without pacing, would keep growing:
   * the window then follows the latest delivery rate instead of the maximum, so what is
   * in flight falls back toward what the path delivers and the queue empties. (ACKs read
   * in batches also make single rate samples run high; the max filter would keep them.)
   */
  private target(): number {
    const minRtt = Number.isFinite(this.minRtt) ? this.minRtt : 0;
    const queued = this.srtt !== undefined && this.srtt > QUEUE_FACTOR * minRtt;
    const bw = queued ? Math.min(this.lastRate, this.bandwidth) : this.bandwidth;
    return Math.max(MIN_PIPE_SEGMENTS * this.mss, Math.ceil(CWND_GAIN * bw * minRtt));
  }

  onDelivered(bytes: number, now: number, _rtt: number | undefined, srtt: number | undefined): void {
    // MinRTT from the smoothed RTT rather than single samples: without pacing a window goes
    // out in a burst and its ACKs are read in batches, so one sample can be far below the
    // round trip the window actually sees (a window sized from it starves itself), and
    // timestamps measure whole milliseconds (RFC 7323), often 0 on a fast path.
    if (srtt !== undefined && (srtt <= this.minRtt || now - this.minRttAt > MIN_RTT_WINDOW)) {
      this.minRtt = Math.max(srtt, 0.05);
      this.minRttAt = now;
    }
    this.srtt = srtt;
    if (bytes <= 0) return;
    this.delivered += bytes;
    const s = this.samples;
    s.push(now, this.delivered);
    // The rate over about one round trip: from the newest sample at least that old.
    const span = Math.max(srtt ?? this.minRtt, 1);
    let i = -1;
    for (let k = s.length - 4; k >= 0; k -= 2) {
      if (now - s[k]! >= span) {
        i = k;
        break;
      }
    }
    if (i > 0) s.splice(0, i);
    if (s.length > 2 * MAX_SAMPLES) s.splice(0, s.length - 2 * MAX_SAMPLES);
    if (i < 0) return;
    const rate = (this.delivered - s[1]!) / Math.max(now - s[0]!, 0.001);
    this.lastRate = rate;
    this.updateBw(now, rate, span);
    if (!this.filledPipe && now >= this.roundEnd) {
      // draft §4.3.1.2: one check per round trip.
      this.roundEnd = now + span;
      if (this.bandwidth >= this.fullBw * FULL_BW_GROWTH) {
        this.fullBw = this.bandwidth;
        this.fullBwCount = 0;
      } else if (++this.fullBwCount >= FULL_BW_ROUNDS) {
        this.filledPipe = true;
      }
    }
  }

  /** A max filter over BW_WINDOW_ROUNDS round trips (a monotonic deque). */
  private updateBw(now: number, rate: number, span: number): void {
    const f = this.bwFilter;
    const horizon = now - BW_WINDOW_ROUNDS * span;
    while (f.length && f[0]! < horizon) f.splice(0, 2);
    while (f.length && f[f.length - 1]! <= rate) f.length -= 2;
    f.push(now, rate);
  }

  onAck(acked: number, _now: number, _srtt: number | undefined): void {
    // draft §4.6.4.6: grow toward the model, by what was delivered; in Startup as slow start
    // (until a queue shows: then Startup is over, as BBR's exits when bandwidth stops growing).
    const t = this.target();
    if (!this.filledPipe && this.srtt !== undefined && this.srtt > QUEUE_FACTOR * this.minRtt) {
      this.filledPipe = true;
    }
    if (!this.filledPipe) this.cwnd += acked;
    else if (this.cwnd < t) this.cwnd = Math.min(this.cwnd + acked, t);
    else this.cwnd = t;
  }

  onCongestionEvent(_now: number, flightSize: number): void {
    // draft §4.6.4.4: on loss BBR keeps its model, not a fraction of the flight: recovery
    // (PRR, RFC 6937) steers what is in flight to the model's window, ssthresh here; it
    // conserves packets while more than that is out and refills when less is.
    this.ssthresh = this.target();
    this.cwnd = Math.max(Math.min(this.cwnd, flightSize), MIN_PIPE_SEGMENTS * this.mss);
  }

  onRecoveryExit(_now: number, _flightSize: number): void {
    // draft §4.6.4.5: back to the window the model allows.
    this.cwnd = this.target();
    this.ssthresh = 0x7fffffff;
  }

  onRto(_now: number, _flightSize: number): void {
    // Linux's BBR after an RTO: one segment, then back to the model within round trips
    // (onAck grows by what is delivered). The bandwidth estimate is kept.
    this.cwnd = this.mss;
    this.ssthresh = Math.max(this.target(), MIN_PIPE_SEGMENTS * this.mss);
    this.filledPipe = this.filledPipe && this.bandwidth > 0;
  }
}

export const bbr = (mss: number): CongestionControl => new Bbr(mss);
