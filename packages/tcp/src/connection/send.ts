/**
 * When to send (RFC 9293 §3.7.4 Nagle, §3.8.6.2.1 sender SWS avoidance, §3.8.6.1 persist,
 * RFC 5681 §3.1 and §4.1 congestion window and restart, RFC 3042 limited transmit): what
 * the peer's window, the congestion window and the recovery in progress allow.
 */
import * as wire from '@stepwire/wire';
import { initialWindow } from '../congestion/types.ts';
import type { ControlBlock } from './control-block.ts';
import { tlpArm } from './rack.ts';
import { flight, rescueRetransmission, sackRecoverySend } from './recovery.ts';
import { sendData } from './segments.ts';
import { SEND_STATES } from './state.ts';
import { trimSuperSegment, tsoSendLimit } from './tso.ts';

const { seqAdd, seqDiff, seqLeq, seqLt } = wire;

/**
 * Send what the windows, Nagle and SWS avoidance allow (RFC 9293 §3.7.4, §3.8.6.2.1,
 * RFC 5681 §3.1, RFC 6675 §5). `force` is the override timeout (RTO or persist): send
 * at least one segment even if small or beyond the congestion window.
 */
export function transmit(tcb: ControlBlock, force = false): void {
  if (!SEND_STATES.has(tcb.state)) return;
  // RFC 5681 §4.1: after an idle period longer than the RTO, restart from
  // min(IW, cwnd): the network may have changed while nothing probed it.
  if (tcb.snd.una === tcb.snd.max && tcb.lastSendAt !== undefined && tcb.now - tcb.lastSendAt > tcb.rtt.rto) {
    const iw = initialWindow(tcb.mss);
    if (tcb.cc.cwnd > iw) tcb.cc.cwnd = iw;
    tcb.lastSendAt = undefined;
  }
  // A pacing controller's pacer (congestion/pacer.ts, BBR) lets segments go at its rate.
  const pacer = tcb.cc.pacer;
  pacer?.begin(tcb);
  let forced = force;
  for (let guard = 0; guard < 100_000; guard++) {
    if (pacer && !pacer.allows(tcb, forced)) break;
    if (tcb.recovery.inRecovery && tcb.sackOk) {
      const r = sackRecoverySend(tcb, forced, canSendNew);
      if (r === 'blocked') break;
      if (r === 'sent') forced = false;
      if (r !== 'none') continue;
    }
    if (!sendNew(tcb, forced)) {
      if (tcb.recovery.inRecovery && tcb.sackOk) rescueRetransmission(tcb);
      break;
    }
    forced = false;
  }
  pacer?.end(tcb);
  armPersistIfBlocked(tcb);
  tlpArm(tcb);
}

const canSendNew = (tcb: ControlBlock): boolean => newDataSendable(tcb) > 0;

/** How much unsent data the peer window and cwnd would let go now (ignoring Nagle). */
function newDataSendable(tcb: ControlBlock): number {
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  const unsent = seqDiff(dataEnd, tcb.snd.nxt);
  if (unsent <= 0) return 0;
  const cwndRoom = tcb.cc.cwnd - flight(tcb);
  return Math.min(unsent, tcb.sendWindowAvailable(), cwndRoom);
}

/** One segment from SND.NXT (new data, or going back after an RTO). False when nothing went. */
export function sendNew(tcb: ControlBlock, force: boolean): boolean {
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  const unsent = seqDiff(dataEnd, tcb.snd.nxt);
  const wantFin =
    tcb.finQueued && (tcb.state === 'FIN-WAIT-1' || tcb.state === 'LAST-ACK' || tcb.state === 'CLOSING');
  const finPending = wantFin && seqLeq(tcb.snd.nxt, tcb.finSeq());
  if (unsent <= 0) {
    if (finPending && unsent === 0) {
      // A FIN takes no window room but does wait for the congestion window.
      if (!force && tcb.cc.cwnd - flight(tcb) <= 0 && seqLt(tcb.snd.una, tcb.snd.nxt)) return false;
      sendData(tcb, tcb.snd.nxt, 0, true);
      return true;
    }
    return false;
  }
  const wndRoom = tcb.sendWindowAvailable();
  // RFC 3042 limited transmit: each of the first two duplicate ACKs lets one new
  // segment go beyond cwnd (FlightSize <= cwnd + 2*SMSS).
  const limited =
    !tcb.recovery.inRecovery && tcb.recovery.dupAcks > 0 ? Math.min(tcb.recovery.dupAcks, 2) * tcb.mss : 0;
  const cwndRoom = tcb.cc.cwnd + limited - flight(tcb);
  const retransmission = seqLt(tcb.snd.nxt, tcb.snd.max);
  // New data may go as a super-segment the link cuts (TSO, tso.ts); going back goes by MSS.
  let len = Math.min(retransmission || force ? tcb.mss : tsoSendLimit(tcb), unsent);
  if (!force) {
    if (wndRoom <= 0 || cwndRoom <= 0) return false;
    len = Math.min(len, wndRoom, cwndRoom);
    if (len < tcb.mss && !retransmission) {
      // Sender SWS avoidance (RFC 9293 §3.8.6.2.1) with Nagle (RFC 9293 §3.7.4):
      // a short segment goes only if it carries all that is queued and no short segment
      // is unacknowledged (or Nagle is off), or it is at least half the largest window.
      // Minshall's variant, as Linux: full-sized segments in flight do not hold back the
      // tail of a write, so a TLS flight of MSS, MSS, tail leaves at once (no extra RTT).
      const idle = tcb.sndSml === undefined || seqLeq(tcb.sndSml, tcb.snd.una);
      const allOfIt = len === unsent;
      const limitedByWindow = len === wndRoom && wndRoom < unsent;
      const ok =
        // In urgent mode Nagle holds nothing back (as Linux's tcp_nagle_test).
        (allOfIt && (idle || tcb.o.noDelay || tcb.urg.sndUp !== undefined)) ||
        (limitedByWindow && len >= tcb.snd.maxWnd / 2 && (idle || tcb.o.noDelay));
      if (!ok) return false;
    }
    if (len > tcb.mss) len = trimSuperSegment(tcb, len, unsent);
  } else {
    // The override: at least one byte, at most what the window allows, or one byte.
    len = Math.max(1, Math.min(len, Math.max(wndRoom, 1)));
  }
  const fin = finPending && len === unsent;
  sendData(tcb, tcb.snd.nxt, len, fin);
  return true;
}

function armPersistIfBlocked(tcb: ControlBlock): void {
  if (!SEND_STATES.has(tcb.state)) return;
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  const unsent = seqDiff(dataEnd, tcb.snd.nxt);
  if (unsent > 0 && tcb.snd.una === tcb.snd.max && tcb.sendWindowAvailable() < Math.min(tcb.mss, unsent)) {
    // RFC 9293 §3.8.6.1: nothing in flight to bring a window update; probe.
    if (tcb.timers.persist === undefined) tcb.timers.persist = tcb.now + tcb.persistInterval();
  } else if (tcb.snd.una !== tcb.snd.max) {
    tcb.timers.persist = undefined;
  }
}
