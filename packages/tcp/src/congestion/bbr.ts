import { seqDiff, seqGt } from '@stepwire/wire';
import { DeliveryRateEstimator, type RateSample } from './delivery-rate.ts';
import { Pacer } from './pacer.ts';
import { type CongestionControl, initialWindow, type SenderView } from './types.ts';

/*
 * BBR v1 as draft-cardwell-iccrg-bbr-congestion-control-00 specifies it (Linux's
 * tcp_bbr.c is the same algorithm). Section numbers below are that draft's.
 */
const DRAFT = 'draft-cardwell-iccrg-bbr-congestion-control-00';

/** §4.3.2: BBRHighGain = 2/ln(2), the smallest gain that doubles the rate each round. */
export const BBR_HIGH_GAIN = 2 / Math.LN2;
/** §4.3.3: Drain paces at the inverse of Startup's gain. */
const BBR_DRAIN_GAIN = 1 / BBR_HIGH_GAIN;
/** §4.3.4: ProbeBW keeps cwnd at twice the estimated BDP. */
const PROBE_BW_CWND_GAIN = 2;
/** §4.3.4.3: the eight phases of ProbeBW's pacing gain: probe, drain, then cruise. */
export const BBR_GAIN_CYCLE: readonly number[] = [5 / 4, 3 / 4, 1, 1, 1, 1, 1, 1];
/** §4.1.1.3 BtlBwFilterLen: the bandwidth max filter spans ten round trips. */
const BTLBW_FILTER_LEN = 10;
/** §4.1.2.3 RTpropFilterLen: a min RTT older than ten seconds is stale. */
export const BBR_RTPROP_FILTER_LEN = 10_000;
/** §4.3.5 ProbeRTTDuration: cwnd stays at MinPipeCwnd at least this long (ms). */
export const BBR_PROBE_RTT_DURATION = 200;
/** §4.2.3.1 BBRMinPipeCwnd: four segments. */
const MIN_PIPE_SEGMENTS = 4;
/** §4.3.2.2: Startup is over when the bandwidth grew less than 25% for three rounds. */
const FULL_BW_THRESH = 1.25;
const FULL_BW_COUNT = 3;
/**
 * ACK aggregation (Linux tcp_bbr.c since 4.19, bbr_update_ack_aggregation; BBRv2's
 * draft §4.6.4.x extra_acked): the most data ACKed beyond what BtlBw predicts for the time
 * since an epoch began, kept as a max over two windows of EXTRA_ACKED_WIN_RTTS rounds, is
 * added to cwnd once the pipe is full, capped at EXTRA_ACKED_MAX_MS of BtlBw. Without it a
 * receiver or a driver that ACKs in bursts (GRO'd stretch ACKs over TUN, a busy event
 * loop) leaves cwnd at 2·BtlBw·RTprop, which the burst delay exceeds, and the sender idles.
 */
const EXTRA_ACKED_WIN_RTTS = 5;
const EXTRA_ACKED_MAX_MS = 100;
/** Linux's bbr_ack_epoch_acked_reset_thresh (2^20 packets), in segments. */
const ACK_EPOCH_RESET_SEGMENTS = 1 << 20;
/** Transitions remembered in `history` (ProbeRTT alone adds two every ten seconds). */
const MAX_HISTORY = 64;

export type BbrState = 'Startup' | 'Drain' | 'ProbeBW' | 'ProbeRTT';
type BbrInput = 'full-pipe' | 'drained' | 'rtprop-expired' | 'probe-rtt-done' | 'probe-rtt-done-unfilled';

/** BBR's legal transitions (§4.3, the state diagram), each with the section that takes it. */
export const BBR_TRANSITIONS: readonly { from: BbrState; on: BbrInput; to: BbrState; rfc: string }[] = [
  { from: 'Startup', on: 'full-pipe', to: 'Drain', rfc: `${DRAFT} §4.3.2.2, §4.3.3` },
  { from: 'Drain', on: 'drained', to: 'ProbeBW', rfc: `${DRAFT} §4.3.3` },
  { from: 'Startup', on: 'rtprop-expired', to: 'ProbeRTT', rfc: `${DRAFT} §4.3.5` },
  { from: 'Drain', on: 'rtprop-expired', to: 'ProbeRTT', rfc: `${DRAFT} §4.3.5` },
  { from: 'ProbeBW', on: 'rtprop-expired', to: 'ProbeRTT', rfc: `${DRAFT} §4.3.5` },
  { from: 'ProbeRTT', on: 'probe-rtt-done', to: 'ProbeBW', rfc: `${DRAFT} §4.3.5` },
  { from: 'ProbeRTT', on: 'probe-rtt-done-unfilled', to: 'Startup', rfc: `${DRAFT} §4.3.5` },
];

/**
 * BBR v1 (§4): a model of the path — the bottleneck bandwidth BtlBw (a windowed maximum of
 * delivery-rate samples over ten round trips, §4.1.1) and the round-trip propagation time
 * RTprop (a windowed minimum over ten seconds, §4.1.2) — and three controls derived from
 * it: the pacing rate (pacing_gain × BtlBw, §4.2.1) the send path's pacer enforces, the
 * send quantum (the pacer's burst, §4.2.2), and cwnd (cwnd_gain × BDP plus room for
 * quanta, §4.2.3). The state machine (§4.3) moves the gains: Startup doubles the rate each
 * round until three rounds pass without 25% more bandwidth, Drain empties the queue that
 * built, ProbeBW cycles through eight phases of gain (probe at 5/4, drain at 3/4, six at
 * 1), and ProbeRTT drops cwnd to four segments for 200 ms and a round when ten seconds
 * pass without a new minimum RTT, so the flows on a path see its empty-queue RTT.
 *
 * Loss is not the congestion signal: fast recovery conserves packets through the
 * connection's PRR (RFC 6937) toward the model's window, which is ssthresh here, and
 * cwnd goes back to what it was when recovery ends (§4.2.3.4). So random loss (a lossy
 * radio link, or the 2% of the impaired TUN benchmark) does not collapse the window the
 * way it does for Reno or CUBIC. BBR v1 ignores ECN.
 *
 * The delivery-rate samples come from congestion/delivery-rate.ts; the controller learns
 * of sends from its pacer, which the send path consults before every segment.
 */
export class Bbr implements CongestionControl {
  readonly name = 'bbr';
  cwnd: number;
  ssthresh = 0x7fffffff;
  readonly pacer = new Pacer();
  readonly rate = new DeliveryRateEstimator();

  state: BbrState = 'Startup';
  pacingGain = BBR_HIGH_GAIN;
  cwndGain = BBR_HIGH_GAIN;
  /** BBR.filled_pipe (§4.3.2.2). */
  filledPipe = false;
  /** BBR.round_count (§4.1.1.2): packet-timed round trips. */
  roundCount = 0;
  /** BBR.RTprop in ms, and when it was last set (BBR.rtprop_stamp). */
  rtProp = Number.POSITIVE_INFINITY;
  private rtPropStamp = 0;
  /** ProbeBW's phase (BBR.cycle_index) and when it began. */
  cycleIndex = 0;
  private cycleStamp = 0;
  /** The last MAX_HISTORY transitions taken, oldest first (for tests and stats). */
  readonly history: { t: number; from: BbrState; to: BbrState }[] = [];

  private mss: number;
  private roundStart = false;
  private nextRoundDelivered = 0;
  /** The BtlBw max filter: [round, bytes per ms] pairs, rates decreasing, within BTLBW_FILTER_LEN rounds. */
  private readonly bwFilter: number[] = [];
  private fullBw = 0;
  private fullBwCount = 0;
  private probeRttDoneStamp: number | undefined = undefined;
  private probeRttRoundDone = false;
  private priorCwnd = 0;
  /** A loss was found since the current ProbeBW phase began (the draft's rs.losses > 0). */
  private lossInPhase = false;
  /** Seeded choice of ProbeBW's first phase (§4.3.4.2), so runs are deterministic. */
  private seed: number;
  private seeded = false;
  private sentAny = false;
  /** ACK aggregation: the two windows' maxima of extra data ACKed, the current window, its age in rounds. */
  private readonly extraAcked = [0, 0];
  private extraAckedIdx = 0;
  private extraAckedWinRtts = 0;
  /** When the current aggregation epoch began, and the bytes ACKed since. */
  private ackEpochStamp = 0;
  private ackEpochAcked = 0;

  constructor(mss: number, seed = 1) {
    this.mss = mss;
    this.seed = seed >>> 0 || 1;
    this.cwnd = initialWindow(mss);
    this.pacer.onTransmitted = (view, maxBefore) => this.onTransmitted(view, maxBefore);
    this.initPacing(undefined);
  }

  setMss(mss: number): void {
    this.mss = mss;
    if (!this.sentAny) this.cwnd = initialWindow(mss);
    this.initPacing(undefined);
  }

  /** BBR.BtlBw in bytes per ms (0 before any sample). */
  get bandwidth(): number {
    return this.bwFilter.length ? (this.bwFilter[1] as number) : 0;
  }

  /** The pacing rate in bytes per ms. */
  get pacingRate(): number {
    return this.pacer.rate;
  }

  /** §4.2.3.2 BBRInflight(gain): gain × BDP plus three send quanta (for batching and ACK aggregation). */
  inflightFor(gain: number): number {
    if (!Number.isFinite(this.rtProp)) return initialWindow(this.mss);
    return Math.floor(gain * this.bandwidth * this.rtProp) + 3 * this.pacer.quantum;
  }

  onAck(_acked: number, _now: number, _srtt: number | undefined): void {
    // The window is set per ACK in onDelivered (§4.2.3.6), in recovery or not.
  }

  onDelivered(bytes: number, now: number, _rtt: number | undefined, srtt: number | undefined): void {
    const view = this.pacer.view;
    if (!view) return; // nothing sent through the pacer yet
    const una = view.snd.una;
    const high = view.scoreboard.highest;
    const edge = high !== undefined && seqGt(high, una) ? high : una;
    const rs = this.rate.onAck(bytes, now, edge, una, view.rttProbe.karnUntil);
    const inflight = inflightOf(view);
    if (!this.filledPipe && this.bandwidth === 0) this.initPacing(srtt);
    this.updateModelAndState(view, rs, inflight, inflight + bytes, now);
    this.updateAckAggregation(bytes, now);
    this.updateControlParameters(view, bytes);
  }

  // -------------------------------------------------------------------------------------
  // §4.1 the model, and §4.3 the state machine, on every ACK

  private updateModelAndState(
    view: SenderView,
    rs: RateSample | undefined,
    inflight: number,
    priorInflight: number,
    now: number,
  ): void {
    this.updateBtlBw(rs);
    this.checkCyclePhase(now, priorInflight, view);
    this.checkFullPipe(rs, view);
    this.checkDrain(inflight, now, view);
    const expired = this.updateRtProp(rs, now);
    this.checkProbeRtt(expired, inflight, now, view);
  }

  /** §4.1.1.2 round counting, §4.1.1.3 the BtlBw max filter. */
  private updateBtlBw(rs: RateSample | undefined): void {
    this.roundStart = false;
    if (!rs) return;
    if (rs.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = this.rate.delivered;
      this.roundCount++;
      this.roundStart = true;
    }
    const r = rs.deliveryRate;
    if (r === undefined || (rs.isAppLimited && r < this.bandwidth)) return;
    const f = this.bwFilter;
    while (f.length && (f[0] as number) <= this.roundCount - BTLBW_FILTER_LEN) f.splice(0, 2);
    while (f.length && (f[f.length - 1] as number) <= r) f.length -= 2;
    // A smaller sample of a round already in the filter expires with it and can never be the
    // maximum: at most one entry per round, so the filter holds at most BTLBW_FILTER_LEN.
    if (f.length && f[f.length - 2] === this.roundCount) return;
    f.push(this.roundCount, r);
  }

  /** Linux's bbr_update_ack_aggregation: the largest excess of ACKed data over BtlBw's prediction. */
  private updateAckAggregation(acked: number, now: number): void {
    if (acked <= 0) return;
    if (this.roundStart && ++this.extraAckedWinRtts >= EXTRA_ACKED_WIN_RTTS) {
      this.extraAckedWinRtts = 0;
      this.extraAckedIdx ^= 1;
      this.extraAcked[this.extraAckedIdx] = 0;
    }
    let expected = this.bandwidth * (now - this.ackEpochStamp);
    // ACKs slower than the model's rate (or a very old epoch) start a new epoch.
    if (this.ackEpochAcked <= expected || this.ackEpochAcked + acked >= ACK_EPOCH_RESET_SEGMENTS * this.mss) {
      this.ackEpochAcked = 0;
      this.ackEpochStamp = now;
      expected = 0;
    }
    this.ackEpochAcked += acked;
    const extra = Math.min(this.ackEpochAcked - expected, this.cwnd);
    if (extra > (this.extraAcked[this.extraAckedIdx] as number)) this.extraAcked[this.extraAckedIdx] = extra;
  }

  /** Linux's bbr_ack_aggregation_cwnd: room for ACK bursts, once the pipe is full. */
  private ackAggregationCwnd(): number {
    if (!this.filledPipe) return 0;
    const extra = Math.max(this.extraAcked[0] as number, this.extraAcked[1] as number);
    return Math.floor(Math.min(extra, this.bandwidth * EXTRA_ACKED_MAX_MS));
  }

  /** §4.3.4.3 BBRCheckCyclePhase / BBRIsNextCyclePhase. */
  private checkCyclePhase(now: number, priorInflight: number, view: SenderView): void {
    if (this.state !== 'ProbeBW') return;
    if (view.recovery.inRecovery) this.lossInPhase = true;
    const fullLength = now - this.cycleStamp > this.rtProp;
    let next: boolean;
    if (this.pacingGain === 1) next = fullLength;
    else if (this.pacingGain > 1)
      next = fullLength && (this.lossInPhase || priorInflight >= this.inflightFor(this.pacingGain));
    else next = fullLength || priorInflight <= this.inflightFor(1);
    if (next) this.advanceCyclePhase(now);
  }

  private advanceCyclePhase(now: number): void {
    this.cycleStamp = now;
    this.cycleIndex = (this.cycleIndex + 1) % BBR_GAIN_CYCLE.length;
    this.pacingGain = BBR_GAIN_CYCLE[this.cycleIndex] as number;
    this.lossInPhase = false;
  }

  /** §4.3.2.2 BBRCheckFullPipe: three rounds without 25% more bandwidth. */
  private checkFullPipe(rs: RateSample | undefined, view: SenderView): void {
    if (this.filledPipe || !this.roundStart || !rs || rs.isAppLimited) return;
    if (this.bandwidth >= this.fullBw * FULL_BW_THRESH) {
      this.fullBw = this.bandwidth;
      this.fullBwCount = 0;
      return;
    }
    if (++this.fullBwCount >= FULL_BW_COUNT) {
      this.filledPipe = true;
      this.trace(view, `bbr: pipe full after ${this.roundCount} rounds, bw ${mbit(this.bandwidth)}`);
    }
  }

  /** §4.3.3 BBRCheckDrain. */
  private checkDrain(inflight: number, now: number, view: SenderView): void {
    if (this.state === 'Startup' && this.filledPipe) {
      this.transition('full-pipe', now, view);
      this.pacingGain = BBR_DRAIN_GAIN;
      this.cwndGain = BBR_HIGH_GAIN;
    }
    if (this.state === 'Drain' && inflight <= this.inflightFor(1)) this.enterProbeBw(now, view, 'drained');
  }

  /** §4.3.4.3 BBREnterProbeBW: a random phase other than the draining one (seeded here). */
  private enterProbeBw(now: number, view: SenderView, on: BbrInput): void {
    this.transition(on, now, view);
    this.pacingGain = 1;
    this.cwndGain = PROBE_BW_CWND_GAIN;
    // Flows sharing a host start at different phases (so their probes do not line up): the
    // draw is seeded by the connection's sequence space, which is random per connection and
    // deterministic on the simulated network.
    if (!this.seeded) {
      this.seed = (this.seed ^ view.snd.una) >>> 0 || 1;
      this.seeded = true;
    }
    this.cycleIndex = BBR_GAIN_CYCLE.length - 1 - (this.random() % (BBR_GAIN_CYCLE.length - 1));
    this.advanceCyclePhase(now);
  }

  /** §4.1.2.3 BBRUpdateRTprop; returns BBR.rtprop_expired. */
  private updateRtProp(rs: RateSample | undefined, now: number): boolean {
    const expired = now > this.rtPropStamp + BBR_RTPROP_FILTER_LEN;
    const rtt = rs?.rtt;
    if (rtt !== undefined && rtt >= 0 && (rtt <= this.rtProp || expired)) {
      this.rtProp = rtt;
      this.rtPropStamp = now;
    }
    return expired;
  }

  /** §4.3.5 BBRCheckProbeRTT and BBRHandleProbeRTT. */
  private checkProbeRtt(expired: boolean, inflight: number, now: number, view: SenderView): void {
    if (this.state !== 'ProbeRTT' && expired && Number.isFinite(this.rtProp)) {
      this.transition('rtprop-expired', now, view);
      this.pacingGain = 1;
      this.cwndGain = 1;
      this.saveCwnd(view);
      this.probeRttDoneStamp = undefined;
    }
    if (this.state !== 'ProbeRTT') return;
    // Samples taken at four segments say nothing of the bandwidth: app-limited.
    this.rate.markAppLimited(inflight);
    const minPipe = MIN_PIPE_SEGMENTS * this.mss;
    if (this.probeRttDoneStamp === undefined && inflight <= minPipe) {
      this.probeRttDoneStamp = now + BBR_PROBE_RTT_DURATION;
      this.probeRttRoundDone = false;
      this.nextRoundDelivered = this.rate.delivered;
    } else if (this.probeRttDoneStamp !== undefined) {
      if (this.roundStart) this.probeRttRoundDone = true;
      if (this.probeRttRoundDone && now > this.probeRttDoneStamp) {
        this.rtPropStamp = now;
        this.cwnd = Math.max(this.cwnd, this.priorCwnd);
        if (this.filledPipe) this.enterProbeBw(now, view, 'probe-rtt-done');
        else {
          this.transition('probe-rtt-done-unfilled', now, view);
          this.pacingGain = BBR_HIGH_GAIN;
          this.cwndGain = BBR_HIGH_GAIN;
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // §4.2 the control parameters

  private updateControlParameters(view: SenderView, delivered: number): void {
    // §4.2.1 BBRSetPacingRate: never below what Startup reached until the pipe is full.
    const rate = this.pacingGain * this.bandwidth;
    if (rate > 0 && (this.filledPipe || rate > this.pacer.rate)) this.pacer.rate = rate;
    // §4.2.2 BBRSetSendQuantum.
    const mbps = (this.pacer.rate * 8) / 1000;
    this.pacer.quantum =
      mbps < 1.2 ? this.mss : mbps < 24 ? 2 * this.mss : Math.min(Math.floor(this.pacer.rate), 64 * 1024);
    // §4.2.3 BBRSetCwnd.
    const minPipe = MIN_PIPE_SEGMENTS * this.mss;
    const target = Math.max(this.inflightFor(this.cwndGain) + this.ackAggregationCwnd(), minPipe);
    if (view.recovery.inRecovery) {
      // §4.2.3.4: in recovery the connection's PRR (RFC 6937) conserves packets toward
      // ssthresh; BBR's window there is its model's.
      this.ssthresh = target;
    } else if (this.filledPipe) {
      this.cwnd = Math.min(this.cwnd + delivered, target);
    } else if (this.cwnd < target || this.rate.delivered < initialWindow(this.mss)) {
      this.cwnd += delivered;
    }
    this.cwnd = Math.max(this.cwnd, minPipe);
    // §4.2.3.5: ProbeRTT holds at most MinPipeCwnd in flight.
    if (this.state === 'ProbeRTT') this.cwnd = Math.min(this.cwnd, minPipe);
  }

  /** §4.2.1 BBRInitPacingRate: high_gain × IW over the RTT (1 ms until one is known). */
  private initPacing(srtt: number | undefined): void {
    const rtt = srtt !== undefined && srtt > 0 ? srtt : 1;
    this.pacer.rate = (BBR_HIGH_GAIN * initialWindow(this.mss)) / rtt;
    this.pacer.quantum = 2 * this.mss;
  }

  /** §4.2.3.4 BBRSaveCwnd: what to return to after recovery or ProbeRTT. */
  private saveCwnd(view: SenderView | undefined): void {
    const keepMax = view?.recovery.inRecovery || this.state === 'ProbeRTT';
    this.priorCwnd = keepMax ? Math.max(this.priorCwnd, this.cwnd) : this.cwnd;
  }

  // -------------------------------------------------------------------------------------
  // Loss (§4.2.3.4): the connection's recovery calls these.

  onCongestionEvent(_now: number, flightSize: number): void {
    this.saveCwnd(undefined);
    this.lossInPhase = true;
    this.ssthresh = Math.max(
      this.inflightFor(this.cwndGain) + this.ackAggregationCwnd(),
      MIN_PIPE_SEGMENTS * this.mss,
    );
    this.cwnd = Math.max(Math.min(this.cwnd, flightSize), MIN_PIPE_SEGMENTS * this.mss);
  }

  onRecoveryExit(_now: number, _flightSize: number): void {
    // BBRRestoreCwnd: back to the window from before recovery.
    this.cwnd = Math.max(this.cwnd, this.priorCwnd);
    this.ssthresh = 0x7fffffff;
  }

  onRto(_now: number, _flightSize: number): void {
    // §4.2.3.4: one segment after an RTO, then growth by what is delivered (the model is kept).
    this.saveCwnd(undefined);
    this.lossInPhase = true;
    this.cwnd = this.mss;
    this.ssthresh = 0x7fffffff;
    this.rate.reset();
  }

  // -------------------------------------------------------------------------------------

  /** The pacer reports each transmit loop: log new data for the delivery-rate samples. */
  private onTransmitted(view: SenderView, maxBefore: number): void {
    const inflight = inflightOf(view);
    const sent = seqDiff(view.snd.max, maxBefore);
    if (sent > 0) {
      this.sentAny = true;
      this.rate.onSend(maxBefore, view.now, inflight - sent);
    }
    // draft-cheng-iccrg-delivery-rate-estimation §3.4: all queued data is out and the
    // window had room, so what follows measures the application, not the path.
    const unsent = seqDiff(view.sendBase, view.snd.nxt) + view.sendQueue.length;
    if (unsent <= 0 && inflight < this.cwnd && this.pacer.deadline === undefined)
      this.rate.markAppLimited(inflight);
  }

  private transition(on: BbrInput, now: number, view: SenderView): void {
    const from = this.state;
    const row = BBR_TRANSITIONS.find((r) => r.from === from && r.on === on);
    if (!row) throw new Error(`bbr: no transition from ${from} on ${on}`);
    this.state = row.to;
    this.history.push({ t: now, from, to: row.to });
    if (this.history.length > MAX_HISTORY) this.history.shift();
    if (view.trace.enabled) {
      view.trace.emit({
        t: now,
        host: view.hostName,
        layer: 'tcp',
        dir: 'local',
        summary: `bbr ${from} -> ${row.to} (bw ${mbit(this.bandwidth)}, rtprop ${this.rtProp.toFixed(2)} ms, cwnd ${this.cwnd})`,
        state: { from, to: row.to },
        rfc: row.rfc,
        fields: { btlBw: this.bandwidth, rtProp: this.rtProp, cwnd: this.cwnd, pacingRate: this.pacer.rate },
      });
    }
  }

  private trace(view: SenderView, summary: string): void {
    if (!view.trace.enabled) return;
    view.trace.emit({
      t: view.now,
      host: view.hostName,
      layer: 'tcp',
      dir: 'local',
      summary,
      rfc: `${DRAFT} §4.3.2.2`,
    });
  }

  /** xorshift32: a seeded phase choice. */
  private random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }
}

/** Bytes in flight: sent and neither cumulatively nor selectively acknowledged. */
function inflightOf(view: SenderView): number {
  return Math.max(0, seqDiff(view.snd.nxt, view.snd.una) - view.scoreboard.sacked);
}

const mbit = (bytesPerMs: number): string => `${((bytesPerMs * 8) / 1000).toFixed(1)} Mbit/s`;

export const bbr = (mss: number): CongestionControl => new Bbr(mss);
