/**
 * F-RTO (RFC 5682 §3, the SACK-enhanced algorithm): after a retransmission timeout, tell a
 * spurious timeout (the ACKs were only late) from a real one before resending the whole
 * window. Only the first unacknowledged segment goes again; if the next ACK advances
 * SND.UNA, two new segments go instead of retransmissions, and if the ACK after that
 * acknowledges data that was never retransmitted, the originals arrived: the timeout was
 * spurious, and cwnd and ssthresh come back (the RFC 4015 response, as RFC 3708 undo
 * does). Anything else falls back to the conventional go-back-N recovery.
 */
import * as wire from '@stepwire/wire';
import type { ControlBlock } from './control-block.ts';
import { retransmitRange } from './segments.ts';
import { sendNew } from './send.ts';

const { seqAdd, seqDiff, seqGeq, seqLt } = wire;

/** On an RTO (after the recovery state was reset): take the F-RTO path? Then resend one segment. */
export function frtoStart(tcb: ControlBlock): boolean {
  const f = tcb.frto;
  f.state = 0;
  // Not for a timeout of a retransmission (the second RTO in a row), nor without SACK, nor
  // with one segment out (nothing to tell apart), nor with no new data to probe with.
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  if (!f.enabled || !tcb.sackOk || tcb.retries !== 1) return false;
  if (seqDiff(tcb.snd.max, tcb.snd.una) <= tcb.mss || !seqLt(tcb.snd.max, dataEnd)) return false;
  f.state = 1;
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
    // Step 2: a duplicate ACK, or one for the whole window, decides nothing: conventional.
    if (!advanced || seqGeq(tcb.snd.una, tcb.recovery.recover)) {
      fallBack(tcb);
      return;
    }
    // Step 2b: up to two new segments, whatever cwnd says.
    const before = tcb.snd.max;
    // Never past the peer's window (sendNew's override would send a byte beyond it).
    if (tcb.sendWindowAvailable() > 0 && sendNew(tcb, true) && tcb.sendWindowAvailable() > 0)
      sendNew(tcb, true);
    if (tcb.snd.max === before) fallBack(tcb);
    else f.state = 2;
    return;
  }
  if (f.state !== 2) return;
  if (!advanced) {
    fallBack(tcb); // step 3a: the segments sent before the RTO are missing
    return;
  }
  // Step 3b: data never retransmitted was acknowledged: the timeout was spurious.
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
      rfc: 'RFC 5682 §3',
    });
  }
}
