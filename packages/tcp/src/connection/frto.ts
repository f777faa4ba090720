/**
 * F-RTO (RFC 5682 §3, the SACK-enhanced algorithm): after a retransmission timeout, tell a
 * spurious timeout (the ACKs were only late) from a real one before resending the whole
 * window. Only the first unacknowledged segment goes again (step 1); if the next ACK that
 * advances SND.UNA (duplicate ACKs before it only feed the scoreboard) stops short of the
 * window's end, two new segments go instead of retransmissions (step 2b), and if the
 * ACK after that acknowledges, cumulatively or by SACK, data that was sent before the
 * timeout and never since, the originals arrived: the timeout was spurious (step 3b), and
 * cwnd and ssthresh come back (the RFC 4015 response, as RFC 3708 undo does). Anything
 * else falls back to the conventional go-back-N recovery (steps 2a, 3a).
 *
 * With no new data to send (the whole send buffer already in flight, or the peer's window
 * full), step 2b "recommends" the conventional recovery but allows the alternatives of the
 * RFC's appendix for such window-limited cases. Falling back there resends the whole
 * window whenever a spurious timeout comes at the end of a transfer or of a request, and
 * every copy comes back as a D-SACK. So instead the probe of step 2b is the last segment
 * below RecoveryPoint, sent again (as a tail loss probe, RFC 8985 §7.3, picks it): what
 * lies between SND.UNA and it still went only before the timeout, so step 3's test is
 * unchanged — an ACK or SACK of that data means the flight was delayed, not lost (Linux's
 * tcp_process_loss undoes the same way on FLAG_ORIG_SACK_ACKED), while an ACK that reports
 * only the probe says the rest is missing and go-back-N follows. Either way the probe
 * draws the ACK step 3 waits for, as the two new segments would have.
 */
import * as wire from '@stepwire/wire';
import type { ControlBlock } from './control-block.ts';
import { retransmitRange } from './segments.ts';
import { sendNew } from './send.ts';

const { seqAdd, seqDiff, seqGeq, seqGt, seqLt, seqMax } = wire;

/** RFC 5682 §3 state. */
export interface FrtoState {
  enabled: boolean;
  /** 0 idle; 1 step 2 (the RTO's one retransmission out); 2 step 3 (the probe out). */
  state: 0 | 1 | 2;
  /** RFC 5682 §3 "RecoveryPoint": the highest sequence number sent before step 2b. */
  recoveryPoint: number;
  /**
   * Step 2: the end of the step 1 retransmission. Step 3: the end of the data sent before
   * the timeout and never since (RecoveryPoint, or where a tail probe of old data starts).
   */
  origEnd: number;
  /** Step 3: bytes of [SND.UNA, origEnd) SACKed when it began (newly SACKed ones count). */
  sackedOrig: number;
  /**
   * A loss recovery was underway when the RTO fired (a fast recovery, or the window of an
   * earlier RTO not yet acknowledged): set by onRtoRecovery (recovery.ts) before it resets them.
   */
  recoveryUnderway: boolean;
}

/** On an RTO (after the recovery state was reset): take the F-RTO path? Then resend one segment. */
export function frtoStart(tcb: ControlBlock): boolean {
  const f = tcb.frto;
  f.state = 0;
  // Not for a timeout of a retransmission (the second RTO in a row), nor without SACK, nor
  // with one segment out (nothing to tell apart). Nor inside a recovery (step 1: "If
  // RecoveryPoint is larger than or equal to SND.UNA, do not enter step 2"): its
  // retransmissions, once acknowledged, would pass for data sent only before the timeout.
  if (!f.enabled || !tcb.sackOk || tcb.retries !== 1 || f.recoveryUnderway) return false;
  if (seqDiff(tcb.snd.max, tcb.snd.una) <= tcb.mss) return false;
  f.state = 1;
  f.recoveryPoint = tcb.snd.max;
  f.origEnd = seqAdd(tcb.snd.una, tcb.mss);
  tcb.snd.nxt = tcb.snd.max; // no go-back-N yet
  retransmitRange(tcb, tcb.snd.una, tcb.mss);
  return true;
}

/** Conventional RTO recovery after all (RFC 5682 §3 step 2a / 3a): go back to SND.UNA. */
function fallBack(tcb: ControlBlock): void {
  tcb.frto.state = 0;
  tcb.snd.nxt = tcb.snd.una;
  tcb.recovery.highRxt = tcb.snd.una;
}

/** Each ACK while F-RTO decides; `advanced`: this ACK moved SND.UNA. */
export function frtoOnAck(tcb: ControlBlock, advanced: boolean): void {
  const f = tcb.frto;
  if (f.state === 1) {
    // Step 2: duplicate ACKs before the one for the retransmitted data only feed the
    // scoreboard; F-RTO stays in step 2 (going back to SND.UNA there would send the first
    // segment a second time while its step 1 copy is still on its way).
    if (!advanced) return;
    // Step 2a: an ACK for the whole window, or one that does not cover the step 1
    // retransmission (RFC 5682 §2 step 2a), decides nothing: conventional.
    const una = tcb.snd.una;
    if (seqGeq(una, f.recoveryPoint) || seqLt(una, f.origEnd)) {
      fallBack(tcb);
      return;
    }
    // Step 2b: up to two new segments, whatever cwnd says.
    const before = tcb.snd.max;
    // Never past the peer's window (sendNew's override would send a byte beyond it).
    if (tcb.sendWindowAvailable() > 0 && sendNew(tcb, true) && tcb.sendWindowAvailable() > 0)
      sendNew(tcb, true);
    if (tcb.snd.max !== before) {
      enterStep3(tcb, f.recoveryPoint);
      return;
    }
    // No new data can go: probe with the last segment below RecoveryPoint instead (the
    // window-limited alternative step 2b allows, module comment). With nothing left
    // between SND.UNA and it, or that tail already SACKed, there is nothing to tell apart.
    const start = seqMax(seqAdd(f.recoveryPoint, -tcb.mss), una);
    if (!seqGt(start, una) || tcb.scoreboard.isSacked(start)) {
      fallBack(tcb);
      return;
    }
    retransmitRange(tcb, start, seqDiff(f.recoveryPoint, start));
    enterStep3(tcb, start);
    return;
  }
  if (f.state !== 2) return;
  // Step 3b: SND.UNA moved over data below origEnd (it stood below it), or a SACK newly
  // covers some: data that went only before the timeout arrived, so the timeout was spurious.
  const origSacked = tcb.scoreboard.sackedBetween(tcb.snd.una, f.origEnd);
  if (!advanced && !(origSacked > f.sackedOrig)) {
    fallBack(tcb); // step 3a: the segments sent before the RTO are missing
    return;
  }
  f.state = 0;
  const u = tcb.undo;
  if (u.active && !u.fast) {
    tcb.cc.cwnd = Math.max(tcb.cc.cwnd, u.priorCwnd);
    tcb.cc.ssthresh = Math.max(tcb.cc.ssthresh, u.priorSsthresh);
    u.active = false;
  }
  tcb.counters.spuriousRecoveries++;
  tcb.recovery.recover = tcb.snd.una; // new losses may start a fast recovery again
  if (tcb.trace.enabled) {
    tcb.trace.emit({
      t: tcb.now,
      host: tcb.hostName,
      layer: 'tcp',
      dir: 'local',
      summary: `spurious RTO (F-RTO): cwnd=${tcb.cc.cwnd}`,
      rfc: 'RFC 5682 §3 step 3b',
    });
  }
}

/** Step 3 begins: watch [SND.UNA, origEnd), data sent before the timeout and not since. */
function enterStep3(tcb: ControlBlock, origEnd: number): void {
  const f = tcb.frto;
  f.state = 2;
  f.origEnd = origEnd;
  f.sackedOrig = tcb.scoreboard.sackedBetween(tcb.snd.una, origEnd);
}
