/**
 * Loss recovery: RFC 5681 fast retransmit and fast recovery, RFC 6582 NewReno without
 * SACK, RFC 6675 SACK-based recovery paced by RFC 6937 PRR (with detection of lost
 * retransmissions, and the rescue retransmission until RACK decides alone, rackDecides).
 * The window arithmetic itself sits behind the CongestionControl interface (src/congestion/).
 */
import * as wire from '@stepwire/wire';
import type { SackBlock } from '../options.ts';
import type { ControlBlock } from './control-block.ts';
import { ecnQueueCwr } from './ecn.ts';
import { rackDetect, rackForgetLost, rackOnDsack, rackOnRecoveryExit, rackOnRto } from './rack.ts';
import { retransmitRange } from './segments.ts';

const { seqAdd, seqDiff, seqGeq, seqGt, seqLeq, seqLt, seqMax } = wire;

/** What the congestion window is compared with: RFC 6675 pipe during SACK recovery. */
export function flight(tcb: ControlBlock): number {
  if (tcb.recovery.inRecovery && tcb.sackOk) return pipe(tcb);
  return seqDiff(tcb.snd.nxt, tcb.snd.una);
}

/** RFC 6675 §4 SetPipe, computed from ranges rather than octet by octet. */
export function pipe(tcb: ControlBlock): number {
  const sb = tcb.scoreboard;
  const una = tcb.snd.una;
  const max = tcb.snd.max;
  const lost = sb.lostBoundary(tcb.recovery.dupThresh, tcb.mss);
  let lostEnd = lost === undefined || seqLt(lost, una) ? una : lost;
  // RACK's losses (RFC 8985 §6.2) count as RFC 6675's IsLost does: once DupThresh has been
  // raised by reordering, the SACK count alone would keep a lost original "in flight" beside
  // its retransmission, and pipe would hold cwnd shut.
  const rackEnd = tcb.recovery.rackLostEnd;
  if (rackEnd !== undefined && seqGt(rackEnd, lostEnd)) lostEnd = seqLt(rackEnd, max) ? rackEnd : max;
  const notLost = seqDiff(max, lostEnd) - sb.sackedBetween(lostEnd, max);
  const rxEnd = seqLt(tcb.recovery.highRxt, max) ? tcb.recovery.highRxt : max;
  const rexmitted = seqGt(rxEnd, una) ? seqDiff(rxEnd, una) - sb.sackedBetween(una, rxEnd) : 0;
  // RFC 8985 §6: RACK may know of losses the DupThresh rule does not (DupThresh raised by
  // reordering): the ranges it marked lost, waiting in `relost`, are not in the network.
  // Counted in flight they can hold pipe above cwnd with nothing really out, so nothing is
  // sent, no ACK comes, and only the RTO ends the wait.
  let gone = 0;
  const relost = tcb.recovery.relost;
  for (let k = 0; k < relost.length; k += 2) {
    const s = seqMax(relost[k]!, una);
    const e = seqLt(relost[k + 1]!, max) ? relost[k + 1]! : max;
    if (!seqGt(e, s)) continue;
    const out = seqDiff(e, s) - sb.sackedBetween(s, e);
    // As the sums above count it: once above the DupThresh boundary, once more if sent again.
    gone += out * ((seqGeq(s, lostEnd) ? 1 : 0) + (seqLt(s, rxEnd) ? 1 : 0));
  }
  return Math.max(0, notLost + rexmitted - gone);
}

/**
 * RFC 8985 §6.2 step 4: once the path has been seen to reorder, RACK does not start fast
 * recovery by DupThresh, and (as Linux's tcp_xmit_retransmit_queue, which resends only
 * what its loss detection marked) no hole is resent that RACK has not found lost: counting
 * SACKed segments takes every reordered segment for lost, whatever RACK's window says.
 */
function rackDecides(tcb: ControlBlock): boolean {
  return tcb.sackOk && tcb.rack.enabled && tcb.rack.reorderingSeen;
}

export function onDupAck(tcb: ControlBlock): void {
  tcb.recovery.dupAcks++;
  if (tcb.recovery.inRecovery) {
    if (!tcb.sackOk) tcb.cc.cwnd += tcb.mss; // RFC 6582 §3.2 step 3 (RFC 5681 step 4)
    return;
  }
  // RFC 6582 §3.2 step 2 / RFC 6675 §5.1: no new recovery for losses from the window
  // that an earlier recovery or RTO already dealt with (SND.UNA still below recover).
  if (seqLt(tcb.snd.una, tcb.recovery.recover)) return;
  if (rackDecides(tcb)) return; // RACK (rackLoss, after this) starts it if anything is lost
  const lost = tcb.sackOk
    ? tcb.recovery.dupAcks >= tcb.recovery.dupThresh ||
      tcb.scoreboard.lostBoundary(tcb.recovery.dupThresh, tcb.mss) !== undefined
    : tcb.recovery.dupAcks >= tcb.recovery.dupThresh;
  if (!lost) return; // limited transmit (RFC 3042) happens in sendNew
  enterRecovery(tcb, true);
}

/**
 * Enter fast recovery (RFC 5681 §3.2 steps 2-3, RFC 6582 §3.2 step 2, RFC 6675 §5 step 4),
 * with the first retransmission unless RACK found the losses (they are queued instead).
 */
function enterRecovery(tcb: ControlBlock, retransmitFirst: boolean): void {
  beginUndo(tcb, true);
  tcb.rack.tlpEnd = undefined; // this recovery is the response to whatever the probe found
  tcb.cc.onCongestionEvent(tcb.now, tcb.flightSize());
  ecnQueueCwr(tcb); // RFC 3168 §6.1.2: the receiver learns the window was reduced
  tcb.recovery.inRecovery = true;
  tcb.recovery.recover = tcb.snd.max;
  tcb.recovery.highRxt = tcb.snd.una;
  tcb.rttProbe.seq = undefined;
  tcb.counters.fastRetransmits++;
  if (tcb.sackOk) {
    // RFC 6937 §3: proportional rate reduction paces the recovery that follows.
    tcb.recovery.rescueRxt = undefined;
    tcb.recovery.rxtLog.length = 0;
    tcb.recovery.relost.length = 0;
    tcb.recovery.rackLostEnd = undefined;
    tcb.recovery.recoverFs = tcb.flightSize();
    tcb.recovery.prrDelivered = 0;
    tcb.recovery.prrOut = 0;
    // RFC 6675 §5 step 4.3: retransmit the first un-SACKed segment.
    const hole = retransmitFirst ? tcb.scoreboard.nextHole(tcb.snd.una, tcb.snd.max) : undefined;
    if (hole) retransmitRange(tcb, hole.start, Math.min(tcb.mss, seqDiff(hole.end, hole.start)));
  } else {
    retransmitRange(tcb, tcb.snd.una, Math.min(tcb.mss, seqDiff(tcb.snd.max, tcb.snd.una)));
    tcb.cc.cwnd = tcb.cc.ssthresh + 3 * tcb.mss;
  }
  tcb.timers.rtx = tcb.now + tcb.rtt.rto;
}

/**
 * RFC 6937 §3 on each ACK in recovery: while pipe is above ssthresh, send in proportion
 * to what the receiver got (PRR); below it, grow back toward ssthresh no faster than
 * slow start (PRR-SSRB). The result is this ACK's cwnd, pipe + sndcnt.
 */
function prrUpdate(tcb: ControlBlock, delivered: number): void {
  tcb.recovery.prrDelivered += delivered;
  const inFlight = pipe(tcb);
  const ss = tcb.cc.ssthresh;
  let sndcnt: number;
  if (inFlight > ss) {
    sndcnt =
      Math.ceil((tcb.recovery.prrDelivered * ss) / Math.max(1, tcb.recovery.recoverFs)) - tcb.recovery.prrOut;
  } else {
    const limit = Math.max(tcb.recovery.prrDelivered - tcb.recovery.prrOut, delivered) + tcb.mss;
    sndcnt = Math.min(ss - inFlight, limit);
  }
  tcb.cc.cwnd = inFlight + Math.max(0, sndcnt);
}

/**
 * RFC 6675 §4 NextSeg rule (4), the rescue retransmission: once per recovery (per
 * window of data), when nothing else can go, resend the segment holding the highest
 * outstanding un-SACKed byte, so a loss at the tail of the window is repaired without
 * waiting for the RTO. HighRxt is not moved.
 */
export function rescueRetransmission(tcb: ControlBlock): void {
  // With RACK deciding (rackDecides) the tail of a recovery is probed by time instead (rack.ts
  // recoveryProbeAt, after a PTO): the rescue goes at the first ACK that leaves room, while
  // the tail is still in flight, and on the impaired TUN link 70-80% of rescues came back
  // as D-SACKs (15-21 of 22-25 per 20 MiB).
  if (rackDecides(tcb)) return;
  if (tcb.recovery.rescueRxt !== undefined && !seqGt(tcb.snd.una, tcb.recovery.rescueRxt)) return;
  if (tcb.cc.cwnd - pipe(tcb) < tcb.mss) return;
  const hi = tcb.scoreboard.highest;
  if (hi !== undefined && !seqLt(hi, tcb.snd.max)) return; // the tail is SACKed
  const start = seqMax(seqMax(seqAdd(tcb.snd.max, -tcb.mss), hi ?? tcb.snd.una), tcb.snd.una);
  const len = seqDiff(tcb.snd.max, start);
  if (len <= 0) return;
  const highRxt = tcb.recovery.highRxt;
  retransmitRange(tcb, start, len);
  tcb.recovery.highRxt = highRxt;
  tcb.recovery.rescueRxt = tcb.recovery.recover;
}

/**
 * A lost retransmission, detected from SACKs (as Linux did before RACK, and as RACK
 * does by time, RFC 8985 §6): when data sent after a retransmission is SACKed while
 * the retransmitted range is still missing, that retransmission was lost too. Without
 * this only the RTO would repair it (RFC 6675 marks each hole for one retransmission).
 */
function detectLostRetransmissions(tcb: ControlBlock): void {
  const hi = tcb.scoreboard.highest;
  const log = tcb.recovery.rxtLog;
  let w = 0;
  for (let k = 0; k < log.length; k += 3) {
    const start = log[k]!;
    const end = log[k + 1]!;
    const sentAt = log[k + 2]!;
    if (!seqGt(end, tcb.snd.una)) continue; // acknowledged: forget it
    if (hi !== undefined && seqGt(hi, sentAt) && !tcb.scoreboard.isSacked(start)) {
      tcb.recovery.relost.push(seqLt(start, tcb.snd.una) ? tcb.snd.una : start, end);
      continue;
    }
    log[w++] = start;
    log[w++] = end;
    log[w++] = sentAt;
  }
  log.length = w;
}

/**
 * The congestion response to an ACK of new data (RFC 5681 §3.1, RFC 6582 §3.2, RFC 6675 §5).
 * In recovery, a full acknowledgment ends it; without SACK a partial one retransmits the
 * next hole (NewReno). Outside recovery the controller grows the window.
 */
export function onNewAckCongestion(tcb: ControlBlock, ackedBytes: number): void {
  const r = tcb.recovery;
  if (!r.inRecovery) {
    r.dupAcks = 0;
    tcb.cc.onAck(ackedBytes, tcb.now, tcb.rtt.srtt);
    return;
  }
  if (seqGeq(tcb.snd.una, r.recover)) {
    // RFC 6582 §3.2 step 3 / RFC 6675 §5: full acknowledgment ends recovery.
    r.inRecovery = false;
    r.dupAcks = 0;
    r.rxtLog.length = 0;
    // Losses still queued (new data sent during the recovery, above `recover`) are found
    // again by RACK and start the next recovery, rather than waiting for the RTO.
    if (r.relost.length) rackForgetLost(tcb);
    r.relost.length = 0;
    r.rackLostEnd = undefined;
    tcb.cc.onRecoveryExit(tcb.now, tcb.flightSize());
    rackOnRecoveryExit(tcb);
  } else if (!tcb.sackOk) {
    // RFC 6582 §3.2 step 4: partial acknowledgment: retransmit the next hole and
    // deflate the window by the amount acked, adding back one SMSS.
    retransmitRange(tcb, tcb.snd.una, Math.min(tcb.mss, seqDiff(tcb.snd.max, tcb.snd.una)));
    tcb.cc.cwnd = Math.max(tcb.mss, tcb.cc.cwnd - ackedBytes + (ackedBytes >= tcb.mss ? tcb.mss : 0));
  }
}

/** Each ACK during SACK recovery: find lost retransmissions, then let PRR set cwnd. */
export function onSackRecoveryAck(tcb: ControlBlock, delivered: number): void {
  if (!tcb.rack.enabled) detectLostRetransmissions(tcb); // RACK finds them by time
  prrUpdate(tcb, delivered);
}

/**
 * The recovery side of a retransmission timeout (RFC 6298 §5.5-5.6, RFC 5681 §3.1 loss
 * window, RFC 6582 §3.2 / RFC 6675 §5.1): no new recovery until everything sent so far is
 * acknowledged, and sending goes back to SND.UNA.
 */
export function onRtoRecovery(tcb: ControlBlock): void {
  const r = tcb.recovery;
  // RFC 5682 §3 step 1 (frto.ts): no F-RTO for a timeout inside a recovery.
  tcb.frto.recoveryUnderway = r.inRecovery || seqLt(tcb.snd.una, r.recover);
  // An RTO inside an episode still undoes to the window before the episode (as Linux).
  if (!tcb.undo.active || tcb.undo.fast) beginUndo(tcb, false);
  tcb.cc.onRto(tcb.now, tcb.flightSize());
  ecnQueueCwr(tcb);
  tcb.rtt.backoff();
  tcb.rttProbe.seq = undefined;
  r.inRecovery = false;
  r.dupAcks = 0;
  r.recover = tcb.snd.max;
  // RFC 2018 §8: the receiver may have reneged; forget the SACK scoreboard.
  tcb.scoreboard.clear();
  rackOnRto(tcb);
  tcb.timers.rack = undefined;
  tcb.timers.tlp = undefined;
  tcb.rack.tlpEnd = undefined;
  r.rxtLog.length = 0;
  r.relost.length = 0;
  r.rackLostEnd = undefined;
  tcb.snd.nxt = tcb.snd.una;
  r.highRxt = tcb.snd.una;
}

/**
 * RFC 6675 §5 step (C) during SACK recovery: the next retransmission, if any. Lost
 * retransmissions go first; then NextSeg rules (1) and (3), a hole below the highest
 * SACKed byte. 'blocked' when the congestion window allows nothing, 'sent' when a segment
 * went, 'skip' when a stale entry was dropped, 'none' when new data may go instead.
 */
export function sackRecoverySend(
  tcb: ControlBlock,
  forced: boolean,
  canSendNew: (tcb: ControlBlock) => boolean,
): 'blocked' | 'sent' | 'skip' | 'none' {
  const r = tcb.recovery;
  const una = tcb.snd.una;
  if (tcb.cc.cwnd - pipe(tcb) < tcb.mss && !forced) return 'blocked';
  if (r.relost.length) {
    let start = r.relost[0]!;
    const end = r.relost[1]!;
    const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
    const dataStop = seqLt(end, dataEnd) ? end : dataEnd;
    if (seqGt(seqDiff(dataStop, start), tcb.mss) && tcb.scoreboard.isSacked(start)) {
      // Several pieces of data (a super-segment's), the first SACKed since (reordered, or
      // the SACK came after RACK's verdict): resend from the next hole among them.
      const hole = tcb.scoreboard.nextHole(seqLt(start, una) ? una : start, dataStop);
      if (hole) start = hole.start;
    }
    if (seqGt(end, una) && !tcb.scoreboard.isSacked(start)) {
      const from = seqLt(start, una) ? una : start;
      const len = Math.min(tcb.mss, seqDiff(end, from));
      // A lost range of several pieces (contiguous lost pieces of a super-segment) goes
      // one MSS at a time: the rest stays queued while it holds data (a FIN alone rides
      // with the last piece's retransmission, as before).
      const rest = seqAdd(from, len);
      if (seqLt(rest, dataStop)) r.relost[0] = rest;
      else r.relost.splice(0, 2);
      retransmitRange(tcb, from, len);
      return 'sent';
    }
    r.relost.splice(0, 2);
    return 'skip';
  }
  const hi = tcb.scoreboard.highest;
  if (hi === undefined) return 'none';
  const from = seqGt(r.highRxt, una) ? r.highRxt : una;
  const hole = tcb.scoreboard.nextHole(from, hi);
  if (!hole) return 'none';
  // With RACK deciding (rackDecides) its losses came from `relost` above; a hole it has not
  // marked is not resent by DupThresh (rule 1) nor to use the window (rule 3).
  if (rackDecides(tcb)) return 'none';
  const lost = tcb.scoreboard.lostBoundary(tcb.recovery.dupThresh, tcb.mss);
  const isLost = lost !== undefined && seqLt(hole.start, lost);
  if (!isLost && canSendNew(tcb)) return 'none';
  retransmitRange(tcb, hole.start, Math.min(tcb.mss, seqDiff(hole.end, hole.start)));
  return 'sent';
}

// -------------------------------------------------------------------------------------
// Spurious retransmissions: RFC 3708 detection by D-SACK, RFC 4015 response

/**
 * Most segments of reordering an undo may teach DupThresh to wait for, without RACK.
 * Counting SACKed segments alone, a high DupThresh
 * leaves a real loss in a small window to the RTO. Measured on a seeded impaired link
 * (8 MiB, 5 ms each way, CUBIC): caps of 5-6 help both pure reordering and reordering with
 * loss; 10 and more lose to the RTOs they cause.
 */
const MAX_DUPTHRESH = 6;
/**
 * With RACK (rack.ts) a real loss is found by time whatever DupThresh says, so reordering
 * can be waited for much longer (Linux: up to 300). Same measurement: 64 gives 2-4 times
 * the goodput of no undo on reordering links, and no RTOs with 1% loss.
 */
const MAX_DUPTHRESH_RACK = 64;

/** A recovery episode begins: remember the window it is about to reduce. */
function beginUndo(tcb: ControlBlock, fast: boolean): void {
  const u = tcb.undo;
  if (!tcb.sackOk) {
    u.active = false; // D-SACK is the only evidence this sender uses
    return;
  }
  // An RTO while a fast recovery is in progress keeps the window from before it.
  const keepPrior = !fast && u.active && u.fast && tcb.recovery.inRecovery;
  u.active = true;
  u.fast = fast;
  u.end = tcb.snd.max;
  if (keepPrior) return; // and the retransmissions counted so far still count
  u.priorCwnd = tcb.cc.cwnd;
  u.priorSsthresh = tcb.cc.ssthresh;
  u.start = tcb.snd.una;
  u.retrans = 0;
  u.dsacks = 0;
  const hi = tcb.scoreboard.highest;
  u.reorderSegs = hi === undefined ? 0 : Math.ceil(seqDiff(hi, tcb.snd.una) / tcb.mss);
}

/**
 * The D-SACK block of an ACK, if it has one (RFC 2883 §4): the first block, when it lies
 * below the cumulative ACK or inside the second block.
 */
export function dsackBlock(blocks: readonly SackBlock[], ack: number): SackBlock | undefined {
  const first = blocks[0];
  if (!first || !seqLt(first.left, first.right)) return undefined;
  if (seqLt(first.left, ack)) return first;
  const second = blocks[1];
  if (second && seqGeq(first.left, second.left) && seqLeq(first.right, second.right)) return first;
  return undefined;
}

/** A D-SACK arrived: one of the episode's retransmissions was not needed (RFC 3708 §3). */
export function onDsack(tcb: ControlBlock, d: SackBlock): void {
  tcb.counters.dsacksReceived++;
  rackOnDsack(tcb);
  const u = tcb.undo;
  if (!u.active || seqLt(d.left, u.start) || seqGt(d.right, u.end)) return;
  u.dsacks++;
  u.retrans -= Math.max(1, Math.ceil(seqDiff(d.right, d.left) / tcb.mss));
}

/**
 * After each ACK: once the episode is over and every one of its retransmissions came back
 * in a D-SACK, the loss was spurious (RFC 3708 §3.2). Restore cwnd and ssthresh (RFC 4015
 * §3, as Linux's tcp_undo_cwnd_reduction) and, after a fast recovery, raise DupThresh to
 * the reordering just seen so the same reordering is not taken for loss again.
 */
export function tryUndo(tcb: ControlBlock): void {
  const u = tcb.undo;
  if (!u.active || u.dsacks === 0 || u.retrans > 0 || tcb.recovery.inRecovery) return;
  u.active = false;
  tcb.cc.cwnd = Math.max(tcb.cc.cwnd, u.priorCwnd);
  tcb.cc.ssthresh = Math.max(tcb.cc.ssthresh, u.priorSsthresh);
  tcb.counters.spuriousRecoveries++;
  const r = tcb.recovery;
  const cap = tcb.rack.enabled ? MAX_DUPTHRESH_RACK : MAX_DUPTHRESH;
  if (u.fast) r.dupThresh = Math.min(cap, Math.max(r.dupThresh, u.reorderSegs + 1));
  if (tcb.trace.enabled) {
    tcb.trace.emit({
      t: tcb.now,
      host: tcb.hostName,
      layer: 'tcp',
      dir: 'local',
      summary: `spurious ${u.fast ? 'fast retransmit' : 'RTO'} undone: cwnd=${tcb.cc.cwnd} dupthresh=${r.dupThresh}`,
      rfc: 'RFC 3708 §3, RFC 4015 §3',
    });
  }
}

/**
 * RACK's verdict (RFC 8985 §6.2 step 5, rack.ts): segments found lost are retransmitted
 * first; finding one starts a fast recovery unless one is on, or the window an earlier
 * recovery or RTO dealt with is not yet acknowledged (RFC 6675 §5.1), where go-back-N or
 * the recovery in progress resends them anyway.
 */
export function rackLoss(tcb: ControlBlock): void {
  const lost = rackDetect(tcb);
  if (lost.length === 0) return;
  const r = tcb.recovery;
  let entered = false;
  if (!r.inRecovery) {
    if (seqLt(tcb.snd.una, r.recover)) {
      rackForgetLost(tcb); // found again once the earlier window is acknowledged
      return;
    }
    enterRecovery(tcb, false);
    entered = true;
  }
  for (let k = 0; k < lost.length; k += 2) {
    r.relost.push(lost[k]!, lost[k + 1]!);
    if (r.rackLostEnd === undefined || seqGt(lost[k + 1]!, r.rackLostEnd)) r.rackLostEnd = lost[k + 1]!;
  }
  // RFC 5681 §3.2 step 4 / RFC 6675 §5 step 4.3: the recovery's first retransmission goes
  // at once, whatever the reduced window says. Queued behind cwnd, it could wait on ACKs
  // that never come when the rest of the flight is lost too (a small window's tail).
  if (entered && tcb.sackOk) sackRecoverySend(tcb, true, () => false);
}
