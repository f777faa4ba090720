/**
 * The connection's timers as absolute deadlines (the driver owns the clock): retransmission
 * (RFC 6298), persist (RFC 9293 §3.8.6.1), delayed ACK (§3.8.6.3), keepalive (§3.8.4,
 * RFC 1122 §4.2.3.6), TIME-WAIT (§3.10.8), RACK and TLP (RFC 8985), and a pacing
 * controller's next send time.
 */
import * as wire from '@stepwire/wire';
import { ACK } from '../segment.ts';
import { type ControlBlock, EMPTY } from './control-block.ts';
import { frtoStart } from './frto.ts';
import { tlpProbeRange } from './rack.ts';
import { onRtoRecovery, rackLoss } from './recovery.ts';
import { emit, retransmitRange, sendSyn } from './segments.ts';
import { sendNew, transmit } from './send.ts';
import { KEEPALIVE_STATES, SEND_STATES, SYNCHRONIZED } from './state.ts';

const { seqAdd, seqDiff } = wire;

/** The next time onTimeout must be called, or undefined when no timer is armed. */
export function nextDeadline(tcb: ControlBlock): number | undefined {
  const tm = tcb.timers;
  // One by one, not a loop over an array of them: this runs after every call that
  // produced output (each segment received), and the array was garbage each time.
  let t = earlier(tm.rtx, tm.persist);
  t = earlier(t, tm.delAck);
  t = earlier(t, tm.keepalive);
  t = earlier(t, tm.timeWait);
  t = earlier(t, tm.rack);
  t = earlier(t, tm.tlp);
  // The pacer held a segment back (congestion/pacer.ts): the send path runs again then.
  const pace = tcb.cc.pacer?.deadline;
  if (pace !== undefined && SEND_STATES.has(tcb.state) && (t === undefined || pace < t)) t = pace;
  return t;
}

/** The earlier of two deadlines, either of which may be unset. */
function earlier(a: number | undefined, b: number | undefined): number | undefined {
  return b !== undefined && (a === undefined || b < a) ? b : a;
}

/** Whatever timers are due at `now`; TIME-WAIT's expiry ends the connection. */
export function timersFire(tcb: ControlBlock): void {
  const now = tcb.now;
  if (tcb.timers.timeWait !== undefined && now >= tcb.timers.timeWait) {
    tcb.timers.timeWait = undefined;
    tcb.toClosed('time-wait-timeout');
    return;
  }
  if (tcb.timers.rtx !== undefined && now >= tcb.timers.rtx) {
    tcb.timers.rtx = undefined;
    onRetransmissionTimeout(tcb);
  }
  if (tcb.timers.rack !== undefined && now >= tcb.timers.rack) {
    // RFC 8985 §6.3: the reordering window of a segment passed; look again.
    tcb.timers.rack = undefined;
    if (SEND_STATES.has(tcb.state)) {
      rackLoss(tcb);
      transmit(tcb);
    }
  }
  const pacer = tcb.cc.pacer;
  if (pacer?.deadline !== undefined && now >= pacer.deadline) {
    // The pacer's next send time (draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.1).
    // The deadline is left for the pacer's begin() to read: a wake-up later than it (a
    // millisecond timer) then sends what was due since, instead of one quantum per timer.
    if (SEND_STATES.has(tcb.state)) transmit(tcb);
    else pacer.deadline = undefined;
  }
  if (tcb.timers.tlp !== undefined && now >= tcb.timers.tlp) {
    tcb.timers.tlp = undefined;
    onProbeTimeout(tcb);
  }
  if (tcb.timers.persist !== undefined && now >= tcb.timers.persist) {
    tcb.timers.persist = undefined;
    onPersistTimeout(tcb);
  }
  if (tcb.timers.delAck !== undefined && now >= tcb.timers.delAck) {
    tcb.timers.delAck = undefined;
    if (tcb.acks.unackedSegs > 0 || tcb.acks.now) tcb.acks.now = true;
  }
  if (tcb.timers.keepalive !== undefined && now >= tcb.timers.keepalive) {
    tcb.timers.keepalive = undefined;
    onKeepaliveTimeout(tcb);
  }
}

function onRetransmissionTimeout(tcb: ControlBlock): void {
  const st = tcb.state;
  if (st === 'SYN-SENT' || st === 'SYN-RECEIVED') {
    if (tcb.retries >= tcb.o.synRetries) {
      tcb.fail('ETIMEDOUT', 'retransmission-timeout');
      return;
    }
    tcb.retries++;
    tcb.counters.timeouts++;
    tcb.counters.retransmits++;
    tcb.synRetransmitted = true;
    tcb.rtt.backoff();
    tcb.rttProbe.seq = undefined;
    // RFC 7413 §4.2.2: a retransmitted SYN carries no data.
    sendSyn(tcb, st === 'SYN-RECEIVED', true);
    return;
  }
  if (!SYNCHRONIZED.has(st) || tcb.snd.max === tcb.snd.una) return;
  if (tcb.retries >= tcb.o.maxRetries) {
    tcb.fail('ETIMEDOUT', 'retransmission-timeout');
    return;
  }
  if (tcb.userTimeout !== undefined && tcb.now - tcb.progressAt >= tcb.userTimeout) {
    tcb.fail('ETIMEDOUT', 'user-timeout');
    return;
  }
  tcb.retries++;
  tcb.counters.timeouts++;
  onRtoRecovery(tcb);
  // F-RTO resends one segment and waits for two ACKs; else go-back-N from SND.UNA.
  if (!frtoStart(tcb)) transmit(tcb, true);
  if (tcb.timers.rtx === undefined) tcb.timers.rtx = tcb.now + tcb.rtt.rto;
}

function onPersistTimeout(tcb: ControlBlock): void {
  if (!SEND_STATES.has(tcb.state)) return;
  if (tcb.sendWindowAvailable() <= 0) {
    // RFC 9293 §3.8.6.1 zero-window probe. It carries the sequence number SND.UNA-1 and
    // no data, so the receiver answers with an ACK stating its current window whatever
    // it is (an unacceptable segment is answered with an ACK, §3.10.7.4) and sequence
    // state never moves for a probe. Probes back off exponentially up to RTO max.
    tcb.counters.zeroWindowProbes++;
    emit(tcb, seqAdd(tcb.snd.una, -1), ACK, EMPTY, false);
    tcb.timers.persistBackoff++;
    tcb.timers.persist = tcb.now + tcb.persistInterval();
    return;
  }
  // RFC 9293 §3.8.6.2.1: the override timeout, send what the window allows.
  transmit(tcb, true);
}

function onKeepaliveTimeout(tcb: ControlBlock): void {
  const ka = tcb.keepalive;
  if (!ka || !KEEPALIVE_STATES.has(tcb.state)) return;
  if (tcb.snd.max !== tcb.snd.una) {
    tcb.timers.keepalive = tcb.now + ka.idle;
    return;
  }
  if (tcb.timers.keepaliveProbes >= ka.count) {
    tcb.fail('ETIMEDOUT', 'keepalive-timeout');
    return;
  }
  // RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6: <SEQ=SND.NXT-1>, no data, elicits an ACK.
  tcb.timers.keepaliveProbes++;
  tcb.counters.keepalivesSent++;
  emit(tcb, seqAdd(tcb.snd.una, -1), ACK, EMPTY, false);
  tcb.timers.keepalive = tcb.now + ka.interval;
}

/**
 * RFC 8985 §7.3: the probe. New data if the peer's window lets one segment go (whatever
 * cwnd says), else the last segment sent, again; then the RTO runs from now.
 */
function onProbeTimeout(tcb: ControlBlock): void {
  const r = tcb.rack;
  if (!SEND_STATES.has(tcb.state) || tcb.snd.una === tcb.snd.max || tcb.recovery.inRecovery) return;
  if (tcb.snd.wnd === 0) return; // the persist timer probes a closed window
  const before = tcb.snd.max;
  // New data only inside the peer's window (sendNew's override would send a byte past it).
  if (tcb.sendWindowAvailable() <= 0 || !sendNew(tcb, true) || tcb.snd.max === before) {
    // The highest segment not SACKed (rack.ts tlpProbeRange); none: no probe, the RTO runs.
    const probe = tlpProbeRange(tcb);
    if (!probe) return;
    retransmitRange(tcb, probe.start, seqDiff(probe.end, probe.start));
    r.tlpRetrans = true;
  } else {
    r.tlpRetrans = false;
  }
  r.tlpEnd = tcb.snd.max;
  tcb.counters.tailLossProbes++;
  tcb.timers.rtx = tcb.now + tcb.rtt.rto;
}
