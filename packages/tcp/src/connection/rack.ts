/**
 * RACK (RFC 8985 §6): loss detection by time rather than by counting. Each sent segment
 * keeps when it was (last) sent; when a segment sent later has been delivered (ACKed or
 * SACKed) and an RTT plus a reordering window has passed since this one went, this one is
 * lost. Reordering shorter than the window costs nothing, and a lost retransmission is
 * found like any other loss. The reordering window starts at min_RTT/4 and grows with
 * D-SACKs (§6.2 step 4); a D-SACK also shows the path reorders, and from then on RACK alone
 * decides what is lost, DupThresh no longer (recovery.ts rackDecides). The window is bounded
 * by SRTT (§6.2 step 4, as Linux): a segment reordered by more than about RTT + SRTT is
 * resent, comes back as a D-SACK, and the window reduction is undone (RFC 3708).
 *
 * With TSO one sent entry is a super-segment that the link cuts into MSS-sized pieces, and
 * the pieces are SACKed, reordered and lost one by one. §6.1 keeps state per segment, so an
 * entry is split where a SACK edge or a retransmission's edge falls inside it (as Linux's
 * tcp_sacktag_walk / tcp_fragment split a TSO skb): both halves keep the send time and
 * flags, and only the pieces not delivered are marked lost and resent. Cuts fall on the
 * entry's MSS grid (start + k·MSS), rounded so a SACKed piece is one SACKed in full, so the
 * log never holds more entries than MSS-sized pieces sent. Without TSO no entry spans more
 * than one MSS and nothing is ever split.
 *
 * Lost ranges go to RecoveryState.relost, which the SACK recovery sends first
 * (recovery.ts sackRecoverySend); RACK only runs with SACK.
 *
 * TLP (§7): when the tail of a flight is lost no later segment is delivered, so RACK has
 * nothing to compare with and only the RTO would notice. A probe timeout of about two
 * RTTs (the PTO, armed here, fired in timers.ts) sends one segment (new data, or the last
 * one again) to draw an ACK whose SACK lets RACK find the loss, at a fraction of the RTO.
 */
import * as wire from '@stepwire/wire';
import type { SackBlock } from '../options.ts';
import type { ControlBlock } from './control-block.ts';

const { seqAdd, seqDiff, seqGeq, seqGt, seqLeq, seqLt } = wire;

const NONE: number[] = [];
/** Flags of a log entry (exported for tests that look at the log). */
export const RETRANSMITTED = 1;
export const DELIVERED = 2;
export const LOST = 4;

/** RFC 8985 state, with the per-segment log its §6.1 asks for. */
export interface RackState {
  enabled: boolean;
  /** Sent segments by sequence: start, end, last transmission time, flags. Entries below `head` are gone. */
  start: number[];
  end: number[];
  xmit: number[];
  flags: number[];
  head: number;
  /** RACK.xmit_ts, RACK.end_seq, RACK.rtt: the most recently sent delivered segment. */
  xmitTs: number;
  endSeq: number;
  rtt: number;
  /** RACK.min_RTT (from the segments' own delivery times). */
  minRtt: number;
  /**
   * The RTT of the latest never-retransmitted segment delivered (0 before the first): what
   * the path gives a segment now, queue included, against which an ambiguous delivery of a
   * retransmission is judged (delivered()).
   */
  originalRtt: number;
  /** RACK.fack: the highest end delivered. */
  fack: number;
  reorderingSeen: boolean;
  reoWndMult: number;
  reoWndPersist: number;
  dsackRound: number | undefined;
  /** TLP.end_seq and TLP.is_retrans (§7.3): the probe outstanding, if any. */
  tlpEnd: number | undefined;
  tlpRetrans: boolean;
  /** SND.UNA when the probe of a recovery's tail went (rackDetect), until SND.UNA moves. */
  recoveryProbeUna: number | undefined;
  /** When SND.UNA last moved (an ACK of new data restarts the PTO, §7.2). */
  unaMovedAt: number;
  /** The TSecr of the ACK being processed (RFC 7323), or undefined (no timestamps, or a timer). */
  ackEcr: number | undefined;
}

export function newRackState(enabled: boolean): RackState {
  return {
    enabled,
    start: [],
    end: [],
    xmit: [],
    flags: [],
    head: 0,
    xmitTs: Number.NEGATIVE_INFINITY,
    endSeq: 0,
    rtt: 0,
    minRtt: Number.POSITIVE_INFINITY,
    originalRtt: 0,
    fack: 0,
    reorderingSeen: false,
    reoWndMult: 1,
    reoWndPersist: 0,
    dsackRound: undefined,
    tlpEnd: undefined,
    tlpRetrans: false,
    recoveryProbeUna: undefined,
    unaMovedAt: Number.NEGATIVE_INFINITY,
    ackEcr: undefined,
  };
}

/** New data [start, end) went out at `now`. */
export function rackSent(tcb: ControlBlock, start: number, end: number): void {
  const r = tcb.rack;
  if (!r.enabled || !tcb.sackOk) return;
  const n = r.end.length;
  if (n > r.head && seqGt(r.end[n - 1]!, start)) {
    rackRetransmitted(tcb, start, end);
    return;
  }
  r.start.push(start);
  r.end.push(end);
  r.xmit.push(tcb.now);
  r.flags.push(0);
}

/** [start, end) went again at `now`: the entries it overlaps take the new time. */
export function rackRetransmitted(tcb: ControlBlock, start: number, end: number): void {
  const r = tcb.rack;
  if (!r.enabled || !tcb.sackOk) return;
  const mss = tcb.mss;
  for (let i = r.head; i < r.end.length; i++) {
    if (!seqGt(r.end[i]!, start)) continue;
    if (!seqLt(r.start[i]!, end)) break;
    // Only the pieces this retransmission carried take its time: the rest of a
    // super-segment keeps its own (cut on the MSS grid, rounded outward).
    const s0 = r.start[i]!;
    const e0 = dataEnd(tcb, r.end[i]!, s0);
    if (seqGt(start, s0)) {
      const cut = gridFloor(s0, start, mss);
      if (seqGt(cut, s0) && seqLt(cut, e0)) {
        splitEntry(r, i, cut);
        continue; // the right half is looked at next
      }
    }
    if (seqLt(end, e0)) {
      const cut = gridCeil(s0, end, mss);
      if (seqGt(cut, s0) && seqLt(cut, e0)) splitEntry(r, i, cut);
    }
    r.xmit[i] = tcb.now;
    r.flags[i] = (r.flags[i]! | RETRANSMITTED) & ~LOST;
  }
}

/**
 * Losses RACK marked that will not be retransmitted from `relost` after all (the queue was
 * dropped with the recovery that held it, or no recovery could start): unmarked, so the
 * next look finds them again. A segment marked lost is never looked at again; left marked
 * and unsent it would wait for the RTO.
 */
export function rackForgetLost(tcb: ControlBlock): void {
  const r = tcb.rack;
  for (let i = r.head; i < r.flags.length; i++) r.flags[i] = r.flags[i]! & ~LOST;
}

/** After an RTO every SACK is forgotten (RFC 2018 §8): so are the deliveries it reported. */
export function rackOnRto(tcb: ControlBlock): void {
  const r = tcb.rack;
  r.recoveryProbeUna = undefined;
  for (let i = r.head; i < r.flags.length; i++) r.flags[i] = r.flags[i]! & ~(DELIVERED | LOST);
}

/**
 * Split entry `i` at `seq` (strictly inside it): both halves keep the transmit time and
 * flags (RFC 8985 §6.1's per-segment state, for a super-segment's pieces).
 */
function splitEntry(r: RackState, i: number, seq: number): void {
  r.start.splice(i + 1, 0, seq);
  r.end.splice(i, 0, seq);
  r.xmit.splice(i + 1, 0, r.xmit[i]!);
  r.flags.splice(i + 1, 0, r.flags[i]!);
}

/** The end of an entry's data: a FIN it carried is not a piece of its own (never split off). */
function dataEnd(tcb: ControlBlock, end: number, start: number): number {
  return tcb.finSent && end === seqAdd(tcb.finSeq(), 1) && seqGt(seqAdd(end, -1), start)
    ? seqAdd(end, -1)
    : end;
}

/** The MSS grid of an entry starting at `s0`: the last cut at or below `seq`, the first at or above. */
function gridFloor(s0: number, seq: number, mss: number): number {
  return seqAdd(s0, Math.floor(seqDiff(seq, s0) / mss) * mss);
}
function gridCeil(s0: number, seq: number, mss: number): number {
  return seqAdd(s0, Math.ceil(seqDiff(seq, s0) / mss) * mss);
}

/**
 * The first place to split entry [s0, e0) so its SACKed pieces stand alone, or undefined.
 * Ranges from `k` on are looked at (sorted, disjoint). A SACKed part is rounded inward to
 * the MSS grid (as Linux's tcp_match_skb_to_sack), except at the entry's end, where a short
 * last piece is whole: a piece counts as delivered only when SACKed in full.
 */
function sackCut(
  ranges: readonly SackBlock[],
  k: number,
  s0: number,
  e0: number,
  mss: number,
): number | undefined {
  for (let j = k; j < ranges.length; j++) {
    const range = ranges[j]!;
    if (!seqLt(range.left, e0)) return undefined;
    const lo = seqGt(range.left, s0) ? gridCeil(s0, range.left, mss) : s0;
    const hi = seqLt(range.right, e0) ? gridFloor(s0, range.right, mss) : e0;
    if (!seqLt(lo, hi)) continue;
    if (seqGt(lo, s0)) return lo;
    if (seqLt(hi, e0)) return hi;
    return undefined; // covers the whole entry
  }
  return undefined;
}

/** RFC 8985 §6.2 step 2: a segment was delivered (`cumulative`: by SND.UNA passing it). */
function delivered(tcb: ControlBlock, i: number, cumulative = false): void {
  const r = tcb.rack;
  const xmit = r.xmit[i]!;
  const end = r.end[i]!;
  const rtt = tcb.now - xmit;
  const retransmitted = (r.flags[i]! & RETRANSMITTED) !== 0;
  r.flags[i] = r.flags[i]! | DELIVERED;
  // Step 3: delivered below the highest delivered, never retransmitted: reordering.
  if (!retransmitted && seqLt(end, r.fack)) r.reorderingSeen = true;
  if (seqGt(end, r.fack)) r.fack = end;
  // The ACK of a retransmitted segment may be for the original: too quick to be the copy.
  if (retransmitted && rtt < r.minRtt) return;
  // The same ambiguity, resolved by the timestamps (RFC 7323 §4.3, as Eifel, RFC 3522, does):
  // the cumulative ACK for a filled hole echoes the TSval of the copy that filled it. Older
  // than the retransmission's, the first copy was delivered — queued or reordered, not lost —
  // and the retransmission's send time says nothing: taken as RACK.xmit_ts it would mark
  // everything sent before it lost. min_RTT alone cannot tell once a queue (BBR's Startup,
  // slow start's overshoot) holds the first copy longer than min_RTT.
  if (retransmitted && cumulative && r.ackEcr !== undefined && seqLt(r.ackEcr, tsValAt(tcb, xmit))) return;
  // A SACK cannot be told apart that way: its TSecr echoes the segment that last advanced
  // RCV.NXT (RFC 7323 §4.3), not the one SACKed. The copy that went again went through the
  // same queue as the originals, so it cannot be delivered quicker than the latest original
  // was; quicker, it is the first copy arriving late (reordered by more than RACK waited),
  // and taking the retransmission's send time as RACK.xmit_ts would mark lost every
  // original sent before it and still queued (seen: BBR's Startup queue, 100-200 segments
  // marked at once, each coming back as a D-SACK). Linux's tcp_rack_advance has the same
  // doubt and settles it with min_RTT only, which a queue longer than min_RTT defeats.
  // Ignoring a real delivery costs little: a lost retransmission is still found from the
  // delivery of any original sent after it.
  if (retransmitted && !(cumulative && r.ackEcr !== undefined) && rtt < r.originalRtt) return;
  if (!retransmitted) r.originalRtt = rtt;
  if (!retransmitted && rtt < r.minRtt) r.minRtt = rtt;
  if (xmit > r.xmitTs || (xmit === r.xmitTs && seqGt(end, r.endSeq))) {
    r.xmitTs = xmit;
    r.endSeq = end;
    r.rtt = rtt;
  }
}

/** The TSval a segment sent at `t` carried (ControlBlock.tsVal at that time). */
function tsValAt(tcb: ControlBlock, t: number): number {
  return (Math.floor(t) + tcb.ts.offset) >>> 0;
}

/** RFC 8985 §6.2 step 4, RACK_update_reo_wnd, on a D-SACK. */
export function rackOnDsack(tcb: ControlBlock): void {
  const r = tcb.rack;
  if (!r.enabled) return;
  // A D-SACK says a first copy arrived after all, after we gave up on it: the path reorders
  // (RFC 2883 §4.2; Linux's tcp_sacktag_one counts a D-SACKed retransmission as reordering).
  // Step 3 alone never sees it when the late original is retransmitted before it arrives
  // (step 3 skips retransmitted segments): reo_wnd would stay 0 in every recovery and each
  // reordered segment would be taken for lost, however many D-SACKs said otherwise.
  r.reorderingSeen = true;
  if (r.dsackRound === undefined || seqGeq(tcb.snd.una, r.dsackRound)) {
    r.dsackRound = tcb.snd.max;
    r.reoWndMult++;
    r.reoWndPersist = 16;
  }
}

/** A recovery ended: after 16 without a D-SACK the reordering window shrinks back. */
export function rackOnRecoveryExit(tcb: ControlBlock): void {
  const r = tcb.rack;
  if (r.reoWndPersist > 0 && --r.reoWndPersist === 0) r.reoWndMult = 1;
}

/** RACK.reo_wnd (§6.2 step 4). */
function reoWnd(tcb: ControlBlock, sackedSegs: number): number {
  const r = tcb.rack;
  if (!r.reorderingSeen && (tcb.recovery.inRecovery || sackedSegs >= tcb.recovery.dupThresh)) return 0;
  const srtt = tcb.rtt.srtt ?? r.minRtt;
  const min = Number.isFinite(r.minRtt) ? r.minRtt : srtt;
  return Math.min((r.reoWndMult * min) / 4, srtt);
}

/**
 * On each ACK (and when the reordering timer fires): take the deliveries this ACK reports,
 * then mark lost what RACK says is (§6.2 step 5). Returns the ranges newly found lost, as
 * [start, end] pairs. Arms or clears the reordering timer.
 */
export function rackDetect(tcb: ControlBlock): number[] {
  const r = tcb.rack;
  if (!r.enabled || !tcb.sackOk) return NONE;
  const una = tcb.snd.una;
  const sb = tcb.scoreboard;
  // Deliveries: cumulatively acknowledged entries leave the log; SACKed ones are marked.
  while (r.head < r.end.length && seqLeq(r.end[r.head]!, una)) {
    if (!(r.flags[r.head]! & DELIVERED)) delivered(tcb, r.head, true);
    r.head++;
    r.unaMovedAt = tcb.now;
  }
  if (r.head > 1024 && r.head * 2 > r.end.length) {
    r.start.splice(0, r.head);
    r.end.splice(0, r.head);
    r.xmit.splice(0, r.head);
    r.flags.splice(0, r.head);
    r.head = 0;
  }
  if (r.head === r.end.length) {
    tcb.timers.rack = undefined;
    return NONE;
  }
  if (!sb.isEmpty) {
    // Both sorted by sequence: walk the SACKed ranges and the entries together.
    const ranges = sb.ranges();
    let k = 0;
    for (let i = r.head; i < r.end.length && k < ranges.length; i++) {
      const s0 = r.start[i]!;
      while (k < ranges.length && seqLeq(ranges[k]!.right, s0)) k++;
      const range = ranges[k];
      if (!range || r.flags[i]! & DELIVERED) continue;
      // A SACK block covers data, never our FIN (RFC 2018 §3 blocks are of data received):
      // the segment that carried the FIN is delivered once its data is. Else a loss just
      // before the FIN would never be found by RACK and would wait for the RTO.
      const end = dataEnd(tcb, r.end[i]!, s0);
      if (seqLeq(range.left, s0) && seqLeq(end, range.right)) {
        delivered(tcb, i);
        continue;
      }
      // A SACK edge inside a super-segment: split off the SACKed pieces; the halves are
      // looked at again (the right one next, this one now).
      if (seqGt(seqDiff(end, s0), tcb.mss)) {
        const cut = sackCut(ranges, k, s0, end, tcb.mss);
        if (cut !== undefined) {
          splitEntry(r, i, cut);
          i--;
        }
      }
    }
  }
  if (!Number.isFinite(r.xmitTs)) return NONE;
  // Without SACKed data above it, no undelivered segment was sent before a delivered one
  // (cumulative ACKs deliver in order): nothing to look for.
  if (sb.isEmpty && tcb.timers.rack === undefined) return NONE;
  const wnd = reoWnd(tcb, Math.floor(sb.sacked / tcb.mss));
  let timeout = 0;
  let lost = NONE;
  let tail = -1; // the last sent of the segments sent after RACK.xmit_ts (none judged yet)
  for (let i = r.head; i < r.end.length; i++) {
    const f = r.flags[i]!;
    if (f & (DELIVERED | LOST)) continue;
    const xmit = r.xmit[i]!;
    if (!(xmit < r.xmitTs || (xmit === r.xmitTs && seqLt(r.end[i]!, r.endSeq)))) {
      // A FIN alone is no probe: no SACK block can report it (RFC 2018 §3), so its arrival
      // above a hole would tell RACK nothing.
      if ((tail < 0 || xmit >= r.xmit[tail]!) && !finAlone(tcb, r.start[i]!, r.end[i]!)) tail = i;
      continue;
    }
    const remaining = xmit + r.rtt + wnd - tcb.now;
    if (remaining <= 0) {
      r.flags[i] = f | LOST;
      if (lost === NONE) lost = [];
      lost.push(seqLt(r.start[i]!, una) ? una : r.start[i]!, r.end[i]!);
    } else if (remaining > timeout) {
      timeout = remaining;
    }
  }
  let at = timeout > 0 ? tcb.now + timeout : undefined;
  const probeAt = tail >= 0 ? recoveryProbeAt(tcb, Math.max(r.xmit[tail]!, r.unaMovedAt), wnd) : undefined;
  if (probeAt !== undefined && probeAt <= tcb.now) {
    // The probe: the tail segment is taken for lost and resent (rackLoss queues it).
    r.flags[tail] = r.flags[tail]! | LOST;
    if (lost === NONE) lost = [];
    lost.push(seqLt(r.start[tail]!, una) ? una : r.start[tail]!, r.end[tail]!);
    r.recoveryProbeUna = una;
    tcb.counters.tailLossProbes++;
  } else if (probeAt !== undefined && (at === undefined || probeAt < at)) {
    at = probeAt;
  }
  tcb.timers.rack = at;
  return lost;
}

/** An entry that is our FIN and nothing else. */
function finAlone(tcb: ControlBlock, start: number, end: number): boolean {
  return tcb.finSent && end === seqAdd(start, 1) && start === tcb.finSeq();
}

/**
 * A tail probe inside a recovery: when, if at all. TLP (§7.2) is not armed in recovery,
 * where RACK's timer is to find losses — but RACK judges a segment only by a later one
 * delivered, and the last segment sent has none: a lost retransmission at the tail of the
 * recovery (the send buffer full behind the hole it fills, nothing new to send) would wait
 * for the RTO, 200 ms on TUN where the round trip is a few (seen: 2-4 per 20 MiB, each an
 * idle fifth of a second). So, as TLP does for the tail of a flight (§7.3: resend the last
 * segment), the last segment sent, undelivered a PTO (2·SRTT, and no less than RACK would
 * wait) after it went and after SND.UNA last moved (`since`), is taken for lost and resent
 * once; its ACK lets RACK judge the rest. One probe while SND.UNA stays where it was (as
 * TLP's one probe per flight); once it moves, the new tail may be probed in its turn — a
 * probe lost in its turn, or one that repaired only the hole below, would otherwise leave
 * the rest to the RTO (seen on TUN). None after the RTO took over.
 */
function recoveryProbeAt(tcb: ControlBlock, since: number, wnd: number): number | undefined {
  const r = tcb.rack;
  if (r.recoveryProbeUna !== undefined && r.recoveryProbeUna !== tcb.snd.una) r.recoveryProbeUna = undefined;
  const srtt = tcb.rtt.srtt;
  if (!tcb.recovery.inRecovery || r.recoveryProbeUna !== undefined || srtt === undefined) return undefined;
  return since + Math.max(2 * srtt, r.rtt + wnd, 1);
}

/** RFC 8985 §7.2: the worst-case delayed ACK, added when one segment is in flight. */
const WC_DEL_ACK_T = 200;

/**
 * RFC 8985 §7.2: (re)arm the probe timeout after sending or on an ACK, when a tail probe
 * may help: SACK on, no probe out, data unacknowledged, and not "in fast recovery, RTO
 * recovery, or segments have been SACKed (i.e., RACK.segs_sacked is not zero)" — those
 * cases have their own repair (fast recovery; go-back-N or F-RTO; RACK's reordering timer
 * for a hole below SACKed data, which needs no probe to be found). PTO = 2*SRTT (+
 * WCDelAckT for a single segment), never past the RTO.
 */
export function tlpArm(tcb: ControlBlock): void {
  const r = tcb.rack;
  const t = tcb.timers;
  const srtt = tcb.rtt.srtt;
  if (
    !r.enabled ||
    !tcb.sackOk ||
    tcb.recovery.inRecovery ||
    r.tlpEnd !== undefined ||
    tcb.snd.una === tcb.snd.max ||
    tcb.snd.wnd === 0 || // a closed window is the persist timer's (RFC 9293 §3.8.6.1)
    seqLt(tcb.snd.una, tcb.recovery.recover) ||
    tcb.scoreboard.sacked > 0 ||
    srtt === undefined
  ) {
    t.tlp = undefined;
    return;
  }
  let pto = 2 * srtt;
  if (tcb.flightSize() <= tcb.mss) pto += WC_DEL_ACK_T;
  const at = tcb.now + Math.max(1, pto);
  t.tlp = t.rtx !== undefined && at >= t.rtx ? undefined : at;
}

/**
 * RFC 8985 §7.3: what a probe that carries no new data resends — "the highest-sequence
 * segment sent so far", up to one MSS, but never bytes already SACKed: the segment below
 * the SACKed ranges at the top of the flight, cut where the next SACKed range ends. (§7.2
 * arms no probe while anything is SACKed; a SACK can still come between the arming and
 * the timer.) Undefined when everything above SND.UNA is SACKed: nothing to probe with.
 */
export function tlpProbeRange(tcb: ControlBlock): { start: number; end: number } | undefined {
  const una = tcb.snd.una;
  let end = tcb.snd.max;
  const ranges = tcb.scoreboard.isEmpty ? NO_RANGES : tcb.scoreboard.ranges();
  let k = ranges.length - 1;
  for (; k >= 0; k--) {
    const range = ranges[k]!;
    if (seqGeq(range.left, end)) continue;
    if (!seqGeq(range.right, end)) break; // the highest SACKed range below `end`
    end = range.left; // the top of the flight is SACKed: look below it
  }
  if (!seqGt(end, una)) return undefined;
  let start = seqAdd(end, -tcb.mss);
  if (seqLt(start, una)) start = una;
  const below = ranges[k];
  if (below && seqGt(below.right, start)) start = below.right;
  return { start, end };
}

const NO_RANGES: readonly SackBlock[] = [];

/**
 * RFC 8985 §7.4 on each ACK: was the probe needed? A D-SACK for a retransmitted probe says
 * no; an ACK of it without one says the probe repaired a loss, and the sender responds to
 * that loss as fast recovery would have (one window reduction).
 */
export function tlpOnAck(tcb: ControlBlock, dsack: boolean): void {
  const r = tcb.rack;
  if (r.tlpEnd === undefined) return;
  if (dsack && r.tlpRetrans) {
    r.tlpEnd = undefined;
    return;
  }
  if (!seqGeq(tcb.snd.una, r.tlpEnd)) return;
  if (r.tlpRetrans && !tcb.recovery.inRecovery) {
    tcb.cc.onCongestionEvent(tcb.now, tcb.flightSize());
    tcb.cc.onRecoveryExit(tcb.now, tcb.flightSize());
    tcb.counters.tlpRepairs++;
  }
  r.tlpEnd = undefined;
}
