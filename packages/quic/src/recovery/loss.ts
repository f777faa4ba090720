import type { EcnCounts, PacketRange } from '../frames/frame.ts';
import { kPersistentCongestionThreshold, NewReno } from './congestion.ts';
import { type CongestionController, QuicCubic } from './cubic.ts';
import { kGranularity, RttEstimator } from './rtt.ts';

/**
 * Loss detection and PTO (RFC 9002 §6), shaped like Appendix A: one function per
 * pseudocode routine, the same variables, per packet-number-space state in one record.
 * Sans-I/O: every entry point takes `now` (ms); `lossDetectionTimer` is the deadline the
 * driver must wake the connection at (undefined when the timer is cancelled).
 *
 * The payload `T` of a sent packet is the connection's own record of what the packet
 * carried (frames to retransmit); recovery only hands it back when the packet is acked or lost.
 */

/** A.2: kPacketThreshold (§6.1.1). */
export const kPacketThreshold = 3;
/** A.2: kTimeThreshold (§6.1.2). */
export const kTimeThreshold = 9 / 8;

export type PacketNumberSpace = 'Initial' | 'Handshake' | 'ApplicationData';
export const PACKET_NUMBER_SPACES: readonly PacketNumberSpace[] = ['Initial', 'Handshake', 'ApplicationData'];

/** A.1.1: the fields recorded for each sent packet. */
export interface SentPacket<T = unknown> {
  packetNumber: number;
  ackEliciting: boolean;
  inFlight: boolean;
  sentBytes: number;
  timeSent: number;
  frames: T;
  /** Sent with ECT(0) in the IP header (RFC 9000 §13.4.2), for ECN validation. */
  ecnMarked?: boolean;
  /** A path MTU probe: its loss is no congestion signal (RFC 9000 §14.4). */
  pmtuProbe?: boolean;
}

/** A.3's per-space variables. */
interface SpaceState<T> {
  /** Unacknowledged packets by packet number, in sending order. */
  sentPackets: Map<number, SentPacket<T>>;
  largestAckedPacket: number | undefined;
  timeOfLastAckElicitingPacket: number | undefined;
  lossTime: number | undefined;
  /** B.2 ecn_ce_counters. */
  ecnCeCounter: number;
  /** The largest packet number sent, to refuse ACKs for packets never sent (RFC 9000 §13.1). */
  largestSent: number;
  ackElicitingInFlight: number;
}

/** The ACK frame as recovery needs it: ranges (largest first) and the decoded delay. */
export interface ReceivedAck {
  ranges: readonly PacketRange[];
  /** Milliseconds: the frame's Ack Delay scaled by 2^ack_delay_exponent µs (RFC 9000 §19.3). */
  ackDelay: number;
  ecnCounts?: EcnCounts | undefined;
  /**
   * ECN validation (RFC 9000 §13.4.2.1, ecn.ts): given the newly acknowledged packets and
   * whether the largest acknowledged went up, the counts to trust, or undefined. Without
   * it `ecnCounts` is used as it is.
   */
  ecnCheck?:
    | ((newlyAcked: readonly SentPacket<unknown>[], newLargest: boolean) => EcnCounts | undefined)
    | undefined;
}

export interface AckOutcome<T> {
  /** Set when the ACK acknowledges a packet number never sent: PROTOCOL_VIOLATION (RFC 9000 §13.1). */
  error?: 'acknowledged unsent packet';
  newlyAcked: SentPacket<T>[];
  lost: SentPacket<T>[];
  rttSampled: boolean;
  persistentCongestion: boolean;
}

/** What the connection must do when the loss detection timer fires (A.9). */
export type TimeoutAction<T> =
  | { kind: 'none' }
  | { kind: 'lost'; space: PacketNumberSpace; lost: SentPacket<T>[]; persistentCongestion: boolean }
  /** §6.2.4: send one or two ack-eliciting packets in `space` (new data, retransmissions or PING). */
  | { kind: 'pto'; space: PacketNumberSpace; packets: 1 | 2 }
  /** §6.2.2.1: the client's anti-deadlock probe: a padded Initial, or a Handshake packet when it has Handshake keys. */
  | { kind: 'anti-deadlock'; space: 'Initial' | 'Handshake' };

export interface RecoveryOptions {
  isServer: boolean;
  maxDatagramSize?: number;
  /** The peer's max_ack_delay transport parameter, ms (RFC 9000 §18.2; 25 by default). */
  maxAckDelay?: number;
  /** The congestion controller (RFC 9002 §7 NewReno, or RFC 9438 CUBIC); NewReno by default. */
  congestion?: 'newreno' | 'cubic';
}

export class Recovery<T = unknown> {
  readonly rtt = new RttEstimator();
  readonly cc: CongestionController;
  readonly isServer: boolean;
  /** A.3 max_ack_delay; 0 until the handshake is confirmed is not required, the caller sets it once known. */
  maxAckDelay: number;
  /** A.3 pto_count. */
  ptoCount = 0;
  /** A.3 loss_detection_timer: the absolute deadline, or undefined when cancelled. */
  lossDetectionTimer: number | undefined = undefined;

  /** Conditions the pseudocode reads from the connection. */
  handshakeConfirmed = false;
  hasHandshakeKeys = false;
  /** Client only: whether a Handshake packet of ours has been acknowledged (A.6). */
  receivedHandshakeAck = false;
  /** Server only: whether the anti-amplification limit blocks sending (RFC 9000 §8.1, A.8). */
  atAntiAmplificationLimit = false;

  private readonly spaces: Record<PacketNumberSpace, SpaceState<T>>;
  private readonly discarded = new Set<PacketNumberSpace>();

  constructor(opts: RecoveryOptions) {
    this.isServer = opts.isServer;
    const mds = opts.maxDatagramSize ?? 1200;
    this.cc = opts.congestion === 'cubic' ? new QuicCubic(mds) : new NewReno(mds);
    this.maxAckDelay = opts.maxAckDelay ?? 25;
    const space = (): SpaceState<T> => ({
      sentPackets: new Map(),
      largestAckedPacket: undefined,
      timeOfLastAckElicitingPacket: undefined,
      lossTime: undefined,
      ecnCeCounter: 0,
      largestSent: -1,
      ackElicitingInFlight: 0,
    });
    this.spaces = { Initial: space(), Handshake: space(), ApplicationData: space() };
  }

  /** Unacknowledged packets of a space, in sending order (for tests and traces). */
  unacked(space: PacketNumberSpace): SentPacket<T>[] {
    return [...this.spaces[space].sentPackets.values()];
  }
  largestAcked(space: PacketNumberSpace): number | undefined {
    return this.spaces[space].largestAckedPacket;
  }
  get bytesInFlight(): number {
    return this.cc.bytesInFlight;
  }

  private ackElicitingInFlight(): boolean {
    return PACKET_NUMBER_SPACES.some((s) => this.spaces[s].ackElicitingInFlight > 0);
  }

  /** A.5 OnPacketSent. */
  onPacketSent(space: PacketNumberSpace, packet: SentPacket<T>, now: number): void {
    if (this.discarded.has(space)) throw new Error(`packet sent in discarded space ${space}`);
    const s = this.spaces[space];
    if (packet.packetNumber <= s.largestSent)
      throw new RangeError('packet numbers increase (RFC 9000 §12.3)');
    s.largestSent = packet.packetNumber;
    s.sentPackets.set(packet.packetNumber, packet);
    if (packet.inFlight) {
      if (packet.ackEliciting) {
        s.timeOfLastAckElicitingPacket = packet.timeSent;
        s.ackElicitingInFlight++;
      }
      this.cc.onPacketSent(packet.sentBytes);
      this.setLossDetectionTimer(now);
    }
  }

  /** A.6 PeerCompletedAddressValidation. */
  peerCompletedAddressValidation(): boolean {
    // "Assume clients validate the server's address implicitly."
    if (this.isServer) return true;
    // "Servers complete address validation when a protected packet is received."
    return this.receivedHandshakeAck || this.handshakeConfirmed;
  }

  /** A.7 OnAckReceived. */
  onAckReceived(space: PacketNumberSpace, ack: ReceivedAck, now: number): AckOutcome<T> {
    const s = this.spaces[space];
    const outcome: AckOutcome<T> = {
      newlyAcked: [],
      lost: [],
      rttSampled: false,
      persistentCongestion: false,
    };
    const largest = ack.ranges[0]?.largest;
    if (largest === undefined) return outcome;
    if (largest > s.largestSent) return { ...outcome, error: 'acknowledged unsent packet' };
    const newLargest = s.largestAckedPacket === undefined || largest > s.largestAckedPacket;
    s.largestAckedPacket =
      s.largestAckedPacket === undefined ? largest : Math.max(s.largestAckedPacket, largest);

    // DetectAndRemoveAckedPackets.
    const newlyAcked = this.detectAndRemoveAckedPackets(s, ack.ranges);
    outcome.newlyAcked = newlyAcked;
    // "Nothing to do if there are no newly acked packets."
    if (newlyAcked.length === 0) {
      // ECN validation still sees the frame (its counts may be invalid on their own).
      ack.ecnCheck?.(newlyAcked, newLargest);
      return outcome;
    }
    if (space === 'Handshake' && !this.isServer) this.receivedHandshakeAck = true;

    // §5.1: an RTT sample is taken only when the largest acknowledged is newly acknowledged
    // and at least one newly acknowledged packet was ack-eliciting.
    const largestNewly = newlyAcked[newlyAcked.length - 1]!;
    if (largestNewly.packetNumber === largest && newlyAcked.some((p) => p.ackEliciting)) {
      // §5.3: the ack delay is ignored for Initial packets (it is 0 there, as the peer sends at once).
      const ackDelay = space === 'Initial' ? 0 : ack.ackDelay;
      this.rtt.update(now - largestNewly.timeSent, ackDelay, now, this.handshakeConfirmed, this.maxAckDelay);
      outcome.rttSampled = true;
    }
    // B.7 ProcessECN: an increase of ECN-CE is a congestion signal (RFC 9002 §7.1), once
    // the counts pass validation (RFC 9000 §13.4.2.1).
    const ecnCounts = ack.ecnCheck ? ack.ecnCheck(newlyAcked, newLargest) : ack.ecnCounts;
    if (ecnCounts && ecnCounts.ecnCe > s.ecnCeCounter) {
      s.ecnCeCounter = ecnCounts.ecnCe;
      if (largestNewly.packetNumber === largest) this.cc.onCongestionEvent(largestNewly.timeSent, now);
    }
    const { lost, persistentCongestion } = this.detectAndRemoveLostPackets(space, now);
    outcome.lost = lost;
    outcome.persistentCongestion = persistentCongestion;
    this.congestionOnLoss(lost, persistentCongestion, now);
    // CUBIC's growth is a function of time and RTT (RFC 9438 §4.2); NewReno ignores both.
    this.cc.onPacketsAcked(newlyAcked, now, this.rtt.smoothedRtt);
    // A.7: "Reset pto_count unless the client is unsure if the server has validated the client's address."
    if (this.peerCompletedAddressValidation()) this.ptoCount = 0;
    this.setLossDetectionTimer(now);
    return outcome;
  }

  /**
   * B.8 OnPacketsLost, less the path MTU probes: "loss of a QUIC packet that is carried in a
   * PMTU probe is therefore not a reliable indication of congestion and SHOULD NOT trigger a
   * congestion control reaction" (RFC 9000 §14.4); their bytes still leave the flight.
   */
  private congestionOnLoss(lost: SentPacket<T>[], persistentCongestion: boolean, now: number): void {
    if (lost.length === 0) return;
    if (!lost.some((p) => p.pmtuProbe)) {
      this.cc.onPacketsLost(lost, persistentCongestion, now);
      return;
    }
    const probes = lost.filter((p) => p.pmtuProbe);
    this.cc.removeFromBytesInFlight(probes);
    const rest = lost.filter((p) => !p.pmtuProbe);
    if (rest.length > 0) this.cc.onPacketsLost(rest, persistentCongestion, now);
  }

  private forget(s: SpaceState<T>, p: SentPacket<T>): void {
    s.sentPackets.delete(p.packetNumber);
    if (p.inFlight && p.ackEliciting) s.ackElicitingInFlight--;
  }

  /** Removes and returns the packets the ranges acknowledge, in packet number order. */
  private detectAndRemoveAckedPackets(s: SpaceState<T>, ranges: readonly PacketRange[]): SentPacket<T>[] {
    const out: SentPacket<T>[] = [];
    // Iterate the smaller side: the unacked packets (bounded by the window), testing each against the ranges.
    for (const p of s.sentPackets.values()) {
      if (ranges.some((r) => p.packetNumber >= r.smallest && p.packetNumber <= r.largest)) out.push(p);
    }
    for (const p of out) this.forget(s, p);
    return out;
  }

  /** A.8 GetLossTimeAndSpace. */
  private getLossTimeAndSpace(): { time: number | undefined; space: PacketNumberSpace } {
    let time: number | undefined;
    let space: PacketNumberSpace = 'Initial';
    for (const sp of PACKET_NUMBER_SPACES) {
      const t = this.spaces[sp].lossTime;
      if (t !== undefined && (time === undefined || t < time)) {
        time = t;
        space = sp;
      }
    }
    return { time, space };
  }

  /** A.8 GetPtoTimeAndSpace. */
  getPtoTimeAndSpace(now: number): { time: number; space: PacketNumberSpace } {
    let duration = this.rtt.ptoBase() * 2 ** this.ptoCount;
    // "Anti-deadlock PTO starts from the current time."
    if (!this.ackElicitingInFlight()) {
      return { time: now + duration, space: this.hasHandshakeKeys ? 'Handshake' : 'Initial' };
    }
    let ptoTimeout = Number.POSITIVE_INFINITY;
    let ptoSpace: PacketNumberSpace = 'Initial';
    for (const sp of PACKET_NUMBER_SPACES) {
      const s = this.spaces[sp];
      if (s.ackElicitingInFlight === 0) continue;
      if (sp === 'ApplicationData') {
        // §6.2.1: "Skip Application Data until handshake confirmed."
        if (!this.handshakeConfirmed) return { time: ptoTimeout, space: ptoSpace };
        // "Include max_ack_delay and backoff for Application Data."
        duration += this.maxAckDelay * 2 ** this.ptoCount;
      }
      const t = (s.timeOfLastAckElicitingPacket ?? now) + duration;
      if (t < ptoTimeout) {
        ptoTimeout = t;
        ptoSpace = sp;
      }
    }
    return { time: ptoTimeout, space: ptoSpace };
  }

  /** A.8 SetLossDetectionTimer. */
  setLossDetectionTimer(now: number): void {
    const { time: earliestLossTime } = this.getLossTimeAndSpace();
    if (earliestLossTime !== undefined) {
      // Time threshold loss detection.
      this.lossDetectionTimer = earliestLossTime;
      return;
    }
    if (this.atAntiAmplificationLimit) {
      // §6.2.2.1: "The server's timer is not set if nothing can be sent."
      this.lossDetectionTimer = undefined;
      return;
    }
    if (!this.ackElicitingInFlight() && this.peerCompletedAddressValidation()) {
      // "There is nothing to detect lost, so no timer is set."
      this.lossDetectionTimer = undefined;
      return;
    }
    const { time } = this.getPtoTimeAndSpace(now);
    this.lossDetectionTimer = Number.isFinite(time) ? time : undefined;
  }

  /** A.9 OnLossDetectionTimeout. Call when now reaches lossDetectionTimer. */
  onLossDetectionTimeout(now: number): TimeoutAction<T> {
    const { time: earliestLossTime, space } = this.getLossTimeAndSpace();
    if (earliestLossTime !== undefined) {
      // Time threshold loss detection.
      const { lost, persistentCongestion } = this.detectAndRemoveLostPackets(space, now);
      this.congestionOnLoss(lost, persistentCongestion, now);
      this.setLossDetectionTimer(now);
      return { kind: 'lost', space, lost, persistentCongestion };
    }
    let action: TimeoutAction<T>;
    if (!this.ackElicitingInFlight()) {
      // §6.2.2.1: the client sends an anti-deadlock packet: a padded Initial earns more
      // anti-amplification credit, a Handshake packet proves address ownership.
      action = { kind: 'anti-deadlock', space: this.hasHandshakeKeys ? 'Handshake' : 'Initial' };
    } else {
      // §6.2.4: "Send new data if available, else retransmit old data. If neither is
      // available, send a single PING frame." Sending two packets makes a single loss
      // less costly.
      const { space: ptoSpace } = this.getPtoTimeAndSpace(now);
      action = { kind: 'pto', space: ptoSpace, packets: 2 };
    }
    this.ptoCount++;
    this.setLossDetectionTimer(now);
    return action;
  }

  /**
   * A.10 DetectAndRemoveLostPackets, plus the persistent congestion test of §7.6 over the
   * packets it declares lost.
   */
  private detectAndRemoveLostPackets(
    space: PacketNumberSpace,
    now: number,
  ): { lost: SentPacket<T>[]; persistentCongestion: boolean } {
    const s = this.spaces[space];
    const largestAcked = s.largestAckedPacket;
    s.lossTime = undefined;
    if (largestAcked === undefined) return { lost: [], persistentCongestion: false };
    // §6.1.2: loss_delay = kTimeThreshold * max(latest_rtt, smoothed_rtt), at least kGranularity.
    const lossDelay = Math.max(
      kTimeThreshold * Math.max(this.rtt.latestRtt, this.rtt.smoothedRtt),
      kGranularity,
    );
    const lost: SentPacket<T>[] = [];
    // For persistent congestion: runs of consecutive unacknowledged packets (packet numbers
    // are sent without gaps, so a missing number below largest acked is an acknowledged packet).
    const runs: SentPacket<T>[][] = [];
    let run: SentPacket<T>[] = [];
    let previous: number | undefined;
    for (const unacked of s.sentPackets.values()) {
      if (unacked.packetNumber > largestAcked) continue;
      if (previous !== undefined && unacked.packetNumber !== previous + 1) {
        runs.push(run);
        run = [];
      }
      previous = unacked.packetNumber;
      // §6.1: lost by time threshold (§6.1.2) or packet threshold (§6.1.1).
      // Written as time_sent + loss_delay <= now, the same sum as loss_time below: with
      // fractional times, now - loss_delay could round the other way and leave a loss_time
      // at or before now that never fires as lost (a timer that re-arms at the same instant).
      if (unacked.timeSent + lossDelay <= now || largestAcked >= unacked.packetNumber + kPacketThreshold) {
        lost.push(unacked);
        run.push(unacked);
      } else {
        // Not yet lost: the earliest time it will be (drives the timer).
        const t = unacked.timeSent + lossDelay;
        s.lossTime = s.lossTime === undefined ? t : Math.min(s.lossTime, t);
      }
    }
    runs.push(run);
    for (const p of lost) this.forget(s, p);
    return { lost, persistentCongestion: this.inPersistentCongestion(runs) };
  }

  /**
   * §7.6: persistent congestion when two ack-eliciting packets, with nothing acknowledged
   * between them, are both lost and were sent more than the persistent congestion duration
   * apart. §7.6.2: only with an RTT sample, and only packets sent after that first sample.
   */
  private inPersistentCongestion(runs: SentPacket<T>[][]): boolean {
    const first = this.rtt.firstRttSample;
    if (first === undefined) return false;
    // §7.6.1: (smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay) * kPersistentCongestionThreshold.
    const duration = (this.rtt.ptoBase() + this.maxAckDelay) * kPersistentCongestionThreshold;
    for (const r of runs) {
      const eligible = r.filter((p) => p.ackEliciting && p.timeSent > first);
      const a = eligible[0];
      const b = eligible[eligible.length - 1];
      if (a && b && b.timeSent - a.timeSent > duration) return true;
    }
    return false;
  }

  /** A.11 OnPacketNumberSpaceDiscarded (§6.4): Initial and Handshake keys are dropped. */
  onPacketNumberSpaceDiscarded(space: 'Initial' | 'Handshake', now: number): void {
    const s = this.spaces[space];
    this.cc.removeFromBytesInFlight([...s.sentPackets.values()]);
    s.sentPackets.clear();
    s.ackElicitingInFlight = 0;
    s.timeOfLastAckElicitingPacket = undefined;
    s.lossTime = undefined;
    this.discarded.add(space);
    this.ptoCount = 0;
    this.setLossDetectionTimer(now);
  }
}
