/**
 * SEGMENT ARRIVES (RFC 9293 §3.10.7), step by step and in the RFC's order: CLOSED
 * (§3.10.7.1), LISTEN (§3.10.7.2), SYN-SENT (§3.10.7.3), then the other states (§3.10.7.4):
 * PAWS (RFC 7323 §5) before the first step, sequence number, RST, SYN (with RFC 5961's
 * checks), ACK, text and FIN.
 */
import * as wire from '@stepwire/wire';
import { ACK, FIN, RST, SYN, type TcpSegment, URG } from '../segment.ts';
import { type ControlBlock, EMPTY } from './control-block.ts';
import { ecnOnAck, ecnOnReceive, ecnOnSyn, ecnOnSynAck } from './ecn.ts';
import { frtoOnAck } from './frto.ts';
import { tlpOnAck } from './rack.ts';
import {
  dsackBlock,
  onDsack,
  onDupAck,
  onNewAckCongestion,
  onSackRecoveryAck,
  rackLoss,
  tryUndo,
} from './recovery.ts';
import { emit, resetFor, sendAck, sendSyn } from './segments.ts';
import { transmit } from './send.ts';
import { SEND_STATES, type TcpState, TEXT_STATES } from './state.ts';

const { seqAdd, seqDiff, seqGeq, seqGt, seqLeq, seqLt } = wire;

/** RFC 7323 §5.5: TS.Recent is invalid after 24 days idle. */
const PAWS_IDLE = 24 * 24 * 3600 * 1000;

/**
 * A segment for this connection (RFC 9293 §3.10.7), dispatched on the state. `ipEcn` is
 * the ECN field of the IP packet it came in (RFC 3168 §5), when the driver knows it.
 */
export function segmentArrives(tcb: ControlBlock, seg: TcpSegment, ipEcn?: number): void {
  tcb.counters.segmentsIn++;
  if (tcb.trace.enabled) tcb.traceSegment('in', seg);
  switch (tcb.state) {
    case 'CLOSED':
      inClosed(tcb, seg);
      break;
    case 'LISTEN':
      inListen(tcb, seg);
      break;
    case 'SYN-SENT':
      inSynSent(tcb, seg);
      break;
    default:
      inSynchronized(tcb, seg, ipEcn);
  }
  if (SEND_STATES.has(tcb.state)) transmit(tcb);
}

/** RFC 9293 §3.10.7.1 */
function inClosed(tcb: ControlBlock, seg: TcpSegment): void {
  const rst = resetFor(seg);
  if (rst) tcb.push(rst);
}

/** RFC 9293 §3.10.7.2 */
function inListen(tcb: ControlBlock, seg: TcpSegment): void {
  if (seg.flags & RST) {
    tcb.drop('listen-rst');
    return;
  }
  if (seg.flags & ACK) {
    emit(tcb, seg.ack, RST, EMPTY, false);
    tcb.drop('listen-ack');
    return;
  }
  if (!(seg.flags & SYN)) {
    tcb.drop('listen-no-syn');
    return;
  }
  tcb.rcv.irs = seg.seq;
  tcb.rcv.nxt = seqAdd(seg.seq, 1);
  tcb.rcv.advRight = tcb.rcv.nxt;
  negotiate(tcb, seg);
  keepTimestamp(tcb, seg);
  ecnOnSyn(tcb, seg);
  tcb.snd.wnd = seg.window; // RFC 7323 §2.2: the SYN's window is never scaled
  tcb.snd.maxWnd = tcb.snd.wnd;
  tcb.snd.wl1 = seg.seq;
  tcb.snd.wl2 = tcb.snd.iss;
  tcb.transition('rcv-syn');
  // RFC 7413 §4.1.2: data in the SYN is accepted only with a valid cookie.
  const cookie = seg.options.fastOpen;
  let cookieToSend: Uint8Array | undefined;
  if (cookie !== undefined && tcb.fastOpenServer) {
    if (cookie.length > 0 && tcb.fastOpenServer.validate(cookie)) {
      if (seg.payload.length) {
        const n = Math.min(seg.payload.length, tcb.freeSpace());
        tcb.recvQueue.push(seg.payload.subarray(0, n));
        tcb.rcv.nxt = seqAdd(tcb.rcv.nxt, n);
        tcb.counters.bytesIn += n;
        tcb.ev.push({ type: 'data-readable', readable: tcb.recvQueue.length });
      }
    } else {
      cookieToSend = tcb.fastOpenServer.generate();
    }
  }
  // A FIN in the SYN is not taken here (RFC 9293 §3.10.7.2 leaves other control for
  // later); the peer retransmits it once synchronized.
  sendSyn(tcb, true, false, cookieToSend);
}

/** RFC 9293 §3.10.7.3 */
function inSynSent(tcb: ControlBlock, seg: TcpSegment): void {
  const f = seg.flags;
  let ackOk = false;
  if (f & ACK) {
    // first: check the ACK bit
    if (seqLeq(seg.ack, tcb.snd.iss) || seqGt(seg.ack, tcb.snd.max)) {
      if (!(f & RST)) emit(tcb, seg.ack, RST, EMPTY, false);
      tcb.drop('synsent-bad-ack');
      return;
    }
    ackOk = seqLeq(tcb.snd.una, seg.ack) && seqLeq(seg.ack, tcb.snd.max);
  }
  // second: check the RST bit (RFC 5961 §3.2 asks the ACK to acknowledge the SYN)
  if (f & RST) {
    if (ackOk) {
      tcb.fail('ECONNREFUSED', 'rcv-rst');
      return;
    }
    tcb.drop('synsent-rst-no-ack');
    return;
  }
  // fourth: check the SYN bit
  if (!(f & SYN)) {
    tcb.drop('synsent-no-syn');
    return;
  }
  tcb.rcv.irs = seg.seq;
  tcb.rcv.nxt = seqAdd(seg.seq, 1);
  // The window our SYN offered (unscaled, RFC 7323 §2.2) holds for data in their SYN.
  tcb.rcv.advRight = seqAdd(tcb.rcv.nxt, Math.min(0xffff, tcb.freeSpace()));
  negotiate(tcb, seg);
  keepTimestamp(tcb, seg);
  const offered = seg.options.fastOpen;
  const newCookie = offered !== undefined && offered.length > 0;
  if (newCookie && (tcb.tfo.request || tcb.tfo.cookie)) {
    tcb.ev.push({ type: 'fastopen-cookie', cookie: offered });
  }
  if (ackOk) {
    ecnOnSynAck(tcb, seg);
    sampleHandshakeRtt(tcb, seg);
    tcb.snd.wnd = tcb.segWindow(seg);
    tcb.snd.maxWnd = tcb.snd.wnd;
    tcb.snd.wl1 = seg.seq;
    tcb.snd.wl2 = seg.ack;
    ackAdvance(tcb, seg.ack);
    if (tcb.tfo.synData && seqLt(tcb.snd.una, tcb.snd.max)) {
      // RFC 7413 §4.2.2: the server acked only the SYN; send the data again, normally.
      tcb.snd.nxt = tcb.snd.una;
      tcb.snd.max = tcb.snd.una;
      tcb.timers.rtx = undefined;
      // RFC 7413 §4.1.3: the cookie went with the data and the server neither took the data
      // nor gave a fresh cookie: it rejected the cookie (or no longer does TFO). Tell the
      // driver to forget it, so the next connection asks again rather than sending data
      // that is sent twice every time. (A retransmitted SYN carried no cookie: no verdict.)
      if (tcb.tfo.cookie && !newCookie && !tcb.synRetransmitted) tcb.ev.push({ type: 'fastopen-rejected' });
    }
    tcb.retries = 0;
    if (tcb.synRetransmitted) tcb.rtt.resetAfterSynTimeout();
    tcb.transition('rcv-syn-ack');
    tcb.ev.push({ type: 'connected' });
    tcb.acks.now = true;
    afterHandshake(tcb);
    if (tcb.finQueued) tcb.transition('close');
    // RFC 9293 §3.10.7.3: continue at the sixth step (data and FIN in the SYN-ACK).
    processText(tcb, seg, seqAdd(seg.seq, 1));
    return;
  }
  // Simultaneous open (RFC 9293 §3.5 Figure 8).
  tcb.snd.wnd = seg.window;
  tcb.snd.maxWnd = tcb.snd.wnd;
  tcb.snd.wl1 = seg.seq;
  tcb.snd.wl2 = tcb.snd.iss;
  tcb.transition('rcv-syn');
  tcb.snd.nxt = tcb.snd.iss;
  tcb.snd.max = tcb.snd.iss;
  sendSyn(tcb, true);
}

function afterHandshake(tcb: ControlBlock): void {
  if (tcb.keepalive) tcb.timers.keepalive = tcb.now + tcb.keepalive.idle;
  if (tcb.sendQueue.length === 0 && !tcb.finQueued) tcb.timers.rtx = undefined;
}

/** Options from the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2, §3.2, RFC 2018 §2). */
function negotiate(tcb: ControlBlock, syn: TcpSegment): void {
  const o = syn.options;
  tcb.peerOfferedWs = o.windowScale !== undefined;
  if (o.mss !== undefined && o.mss > 0) tcb.peerMss = o.mss;
  if (tcb.offerWs && o.windowScale !== undefined) {
    tcb.snd.shift = Math.min(14, o.windowScale); // RFC 7323 §2.3: more than 14 is 14
  } else {
    tcb.snd.shift = 0;
    tcb.rcv.shift = 0;
  }
  tcb.sackOk = tcb.offerSack && o.sackPermitted === true;
  tcb.ts.ok = tcb.offerTs && o.timestamps !== undefined;
  tcb.mss = Math.max(1, Math.min(tcb.ourMss, tcb.peerMss) - (tcb.ts.ok ? 12 : 0));
  tcb.cc.setMss(tcb.mss);
}

function keepTimestamp(tcb: ControlBlock, syn: TcpSegment): void {
  if (tcb.ts.ok && syn.options.timestamps) {
    tcb.ts.recent = syn.options.timestamps.value;
    tcb.ts.recentAge = tcb.now;
  }
}

function sampleHandshakeRtt(tcb: ControlBlock, seg: TcpSegment): void {
  const ts = seg.options.timestamps;
  if (tcb.ts.ok && ts && ts.echo !== 0) {
    tcb.rtt.sample(Math.max(0, Math.floor(tcb.now) - ((ts.echo - tcb.ts.offset) >>> 0)));
  } else if (!tcb.synRetransmitted && tcb.rttProbe.seq !== undefined) {
    tcb.rtt.sample(tcb.now - tcb.rttProbe.time);
  }
  tcb.rttProbe.seq = undefined;
}

/** RFC 9293 §3.10.7.4, for SYN-RECEIVED and the synchronized states. */
function inSynchronized(tcb: ControlBlock, seg: TcpSegment, ipEcn: number | undefined): void {
  const f = seg.flags;
  let seq = seg.seq;

  // Simultaneous open: our SYN-ACK crossed theirs (RFC 9293 §3.5 Figure 8, line 6).
  // Their SYN-ACK repeats the SYN we already took; accept its ACK.
  if (tcb.state === 'SYN-RECEIVED' && f & SYN && !(f & RST) && seq === tcb.rcv.irs) {
    if (!(f & ACK)) {
      // A retransmitted SYN: our SYN-ACK was lost, send it again.
      sendSyn(tcb, true, true);
      return;
    }
    seq = seqAdd(seq, 1);
    if (ackInSynReceived(tcb, seg) && (tcb.state as TcpState) !== 'CLOSED') processText(tcb, seg, seq);
    return;
  }

  // TIME-WAIT (RFC 9293 §3.10.7.4): a retransmitted FIN is ACKed and restarts 2 MSL.
  if (
    tcb.state === 'TIME-WAIT' &&
    f & FIN &&
    !(f & RST) &&
    seqAdd(seq, seg.payload.length + 1) === tcb.rcv.nxt
  ) {
    tcb.timers.timeWait = tcb.now + 2 * tcb.o.msl;
    tcb.acks.now = true;
    return;
  }

  // RFC 7323 §5.3 PAWS, before the sequence number check.
  if (tcb.ts.ok) {
    const ts = seg.options.timestamps;
    if (!ts) {
      if (!(f & RST)) {
        tcb.drop('no-timestamp');
        return;
      } // RFC 7323 §3.2
    } else if (!(f & RST) && seqLt(ts.value, tcb.ts.recent)) {
      if (tcb.now - tcb.ts.recentAge > PAWS_IDLE) {
        tcb.ts.recent = ts.value; // RFC 7323 §5.5
      } else if (disorderedAck(tcb, seg, f, ts.value)) {
        tcb.counters.pawsDisorderedAcks++;
      } else {
        tcb.counters.pawsDropped++;
        // The old TSval of a data segment below RCV.NXT marks the first copy of something
        // already received (a reordered original behind its retransmission): reported as a
        // D-SACK (RFC 2883 §4, as Linux's tcp_send_dupack), or its sender never learns the
        // retransmission was spurious (RFC 3708) nor that the path reorders (RFC 8985 §6.2).
        if (seg.payload.length && seqLt(seq, tcb.rcv.nxt)) {
          const end = seqAdd(seq, seg.payload.length);
          tcb.noteDuplicate(seq, seqDiff(seqLt(end, tcb.rcv.nxt) ? end : tcb.rcv.nxt, seq));
        }
        outOfWindowAck(tcb, seg);
        tcb.drop('paws');
        return;
      }
    }
  }

  // first: check the sequence number (RFC 9293 §3.10.7.4 acceptability test)
  const len = seg.payload.length + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
  const wnd = seqDiff(tcb.rcv.advRight, tcb.rcv.nxt);
  if (!acceptable(tcb, seq, len, wnd)) {
    if (!(f & RST)) outOfWindowAck(tcb, seg);
    if (seg.payload.length && seqLeq(seqAdd(seq, seg.payload.length), tcb.rcv.nxt)) {
      tcb.noteDuplicate(seq, seg.payload.length);
    }
    tcb.drop('unacceptable-seq');
    return;
  }

  // second: check the RST bit (RFC 5961 §3.2)
  if (f & RST) {
    if (seq !== tcb.rcv.nxt) {
      challengeAck(tcb);
      tcb.drop('rst-not-exact');
      return;
    }
    if (tcb.state === 'SYN-RECEIVED' && tcb.passive) {
      // RFC 9293 §3.10.7.4: a passive open returns to LISTEN; this connection object
      // belongs to that one SYN, so it closes and the listener keeps listening.
      tcb.toClosed('rcv-rst');
      return;
    }
    if (tcb.state === 'SYN-RECEIVED') {
      tcb.fail('ECONNREFUSED', 'rcv-rst');
      return;
    }
    if (tcb.state === 'CLOSING' || tcb.state === 'LAST-ACK' || tcb.state === 'TIME-WAIT') {
      tcb.toClosed('rcv-rst');
      return;
    }
    tcb.fail('ECONNRESET', 'rcv-rst');
    return;
  }

  // fourth: check the SYN bit (RFC 5961 §4.2: challenge ACK whatever the sequence number)
  if (f & SYN) {
    challengeAck(tcb);
    tcb.drop('syn-in-window');
    return;
  }

  // RFC 7323 §4.3: TS.Recent follows the segment that covers Last.ACK.sent, never backwards
  // (a disordered ACK let through PAWS above carries an older TSval).
  if (
    tcb.ts.ok &&
    seg.options.timestamps &&
    seqLeq(seq, tcb.ts.lastAckSent) &&
    seqGeq(seg.options.timestamps.value, tcb.ts.recent)
  ) {
    tcb.ts.recent = seg.options.timestamps.value;
    tcb.ts.recentAge = tcb.now;
  }
  if (tcb.keepalive) {
    tcb.timers.keepaliveProbes = 0;
    tcb.timers.keepalive = tcb.now + tcb.keepalive.idle;
  }

  // fifth: check the ACK field
  if (!(f & ACK)) {
    tcb.drop('no-ack');
    return;
  }
  if (tcb.state === 'SYN-RECEIVED') {
    if (!ackInSynReceived(tcb, seg)) return;
  } else if (!processAck(tcb, seg)) {
    return;
  }
  if (tcb.state === 'CLOSED') return;

  // RFC 3168 §6.1.3: a CE mark is echoed with ECE until the sender answers with CWR.
  if (tcb.ecn.ok) ecnOnReceive(tcb, seg, ipEcn);

  // sixth: check the URG bit
  if (f & URG) urgentArrives(tcb, seg, seq);

  // seventh and eighth: text and FIN.
  processText(tcb, seg, seq);
}

/**
 * RFC 9293 §3.10.7.4 sixth step and §3.8.5: in ESTABLISHED and FIN-WAIT-1/2, RCV.UP
 * becomes max(RCV.UP, SEG.UP) and the user is told when it advances (MUST-32). The pointer
 * is read as RFC 6093 §4 and RFC 9293 (MUST-30) define it, the octet after the urgent data,
 * which is what BSD and Linux send. The urgent bytes stay in the stream, delivered in order
 * (RFC 6093 §6 recommends this SO_OOBINLINE behaviour): nothing is taken out of band, so
 * a hostile pointer moves one number and buffers nothing.
 */
function urgentArrives(tcb: ControlBlock, seg: TcpSegment, seq: number): void {
  if (!TEXT_STATES.has(tcb.state) || tcb.peerFinSeen || seg.urgentPointer === 0) return;
  const up = seqAdd(seq, seg.urgentPointer);
  const readSeq = tcb.readSeq();
  if (seqLeq(up, readSeq)) return; // urgent data the reader already has
  const prev = tcb.urg.rcvUp;
  if (prev !== undefined && seqLeq(up, prev)) return; // no advance
  tcb.urg.rcvUp = up;
  tcb.counters.urgentReceived++;
  tcb.ev.push({ type: 'urgent', offset: seqDiff(up, readSeq) });
}

function acceptable(tcb: ControlBlock, seq: number, len: number, wnd: number): boolean {
  const rn = tcb.rcv.nxt;
  if (len === 0) {
    if (wnd === 0) return seq === rn;
    return seqLeq(rn, seq) && seqLt(seq, seqAdd(rn, wnd));
  }
  // RFC 9293 §3.10.7.4: with a zero window "special allowance should be made to accept
  // valid ACKs, URGs, and RSTs": a segment at exactly RCV.NXT passes for its control
  // fields; its text falls outside the window and is not taken (processText).
  if (wnd === 0) return seq === rn;
  const end = seqAdd(seq, len - 1);
  const right = seqAdd(rn, wnd);
  return (seqLeq(rn, seq) && seqLt(seq, right)) || (seqLeq(rn, end) && seqLt(end, right));
}

/**
 * The ACK that answers an unacceptable segment (RFC 9293 §3.10.7.4 first and fifth
 * steps, RFC 7323 §5.3, RFC 5961 §5.2). Two ends that disagree about the sequence space
 * (one was fed a forged segment) would answer each other's ACKs forever: an ACK storm.
 * So, as RFC 5961 §7 asks and as Linux does (tcp_invalid_ratelimit), the answer to a
 * segment without data is rate-limited; a data segment (a real retransmission whose
 * sender needs to hear) is always answered.
 */
function outOfWindowAck(tcb: ControlBlock, seg: TcpSegment): void {
  if (seg.payload.length > 0 && !(seg.flags & SYN)) {
    tcb.acks.now = true;
    return;
  }
  if (tcb.acks.lastOowAt !== undefined && tcb.now - tcb.acks.lastOowAt < tcb.o.invalidAckInterval) {
    tcb.counters.oowAcksSuppressed++;
    return;
  }
  tcb.acks.lastOowAt = tcb.now;
  tcb.acks.now = true;
}

/** RFC 5961 §3.2, §4.2 and §7: an ACK for the peer to check, rate-limited. */
function challengeAck(tcb: ControlBlock): void {
  if (tcb.now - tcb.acks.challengeWindowStart >= 1000) {
    tcb.acks.challengeWindowStart = tcb.now;
    tcb.acks.challengeCount = 0;
  }
  if (tcb.acks.challengeCount >= tcb.o.challengeAckLimit) {
    tcb.drop('challenge-ack-limited');
    return;
  }
  tcb.acks.challengeCount++;
  tcb.counters.challengeAcks++;
  sendAck(tcb);
}

/** ACK processing in SYN-RECEIVED (RFC 9293 §3.10.7.4, fifth, SYN-RECEIVED). */
function ackInSynReceived(tcb: ControlBlock, seg: TcpSegment): boolean {
  if (!(seqLt(tcb.snd.una, seg.ack) && seqLeq(seg.ack, tcb.snd.max))) {
    emit(tcb, seg.ack, RST, EMPTY, false);
    tcb.drop('synrcvd-bad-ack');
    return false;
  }
  sampleHandshakeRtt(tcb, seg);
  tcb.snd.wnd = tcb.segWindow(seg);
  tcb.snd.maxWnd = tcb.snd.wnd;
  tcb.snd.wl1 = seg.seq;
  tcb.snd.wl2 = seg.ack;
  ackAdvance(tcb, seg.ack);
  tcb.retries = 0;
  if (tcb.synRetransmitted) tcb.rtt.resetAfterSynTimeout();
  tcb.transition('rcv-ack-of-syn');
  tcb.ev.push({ type: 'connected' });
  afterHandshake(tcb);
  if (tcb.finQueued) {
    tcb.transition('close');
  }
  // continue with the rest of the ACK processing in ESTABLISHED
  return processAck(tcb, seg);
}

/**
 * The ACK field in the synchronized states (RFC 9293 §3.10.7.4 fifth, RFC 5961 §5.2,
 * RFC 5681, RFC 6582, RFC 6675). Returns false when the segment is to be dropped.
 */
function processAck(tcb: ControlBlock, seg: TcpSegment): boolean {
  const ack = seg.ack;
  // RFC 5961 §5.2: acceptable iff (SND.UNA - MAX.SND.WND) <= SEG.ACK <= SND.NXT.
  if (seqGt(ack, tcb.snd.max)) {
    outOfWindowAck(tcb, seg);
    tcb.drop('ack-unsent');
    return false;
  }
  if (seqLt(ack, seqAdd(tcb.snd.una, -tcb.snd.maxWnd))) {
    outOfWindowAck(tcb, seg);
    tcb.drop('ack-too-old');
    return false;
  }
  const window = tcb.segWindow(seg);
  const unaBefore = tcb.snd.una;
  const sackedBefore = tcb.scoreboard.sacked;
  const hasSack = tcb.sackOk && seg.options.sack !== undefined;
  let sackNews = false;
  let dsack = false;
  if (hasSack) {
    // RFC 2883 §4: a D-SACK reports a segment received twice (RFC 3708 uses it below).
    const d = dsackBlock(seg.options.sack!, ack);
    if (d) onDsack(tcb, d);
    dsack = d !== undefined;
  }
  if (hasSack && seqLt(tcb.snd.una, tcb.snd.max)) {
    sackNews = tcb.scoreboard.update(
      seg.options.sack!,
      seqGt(ack, tcb.snd.una) ? ack : tcb.snd.una,
      tcb.snd.max,
    );
  }

  if (seqGt(ack, tcb.snd.una)) {
    onNewAck(tcb, seg, ack);
  } else if (ack === tcb.snd.una && seqLt(tcb.snd.una, tcb.snd.max)) {
    // RFC 5681 §2 duplicate ACK (or RFC 6675 §2 "new SACK information")
    const dup = tcb.sackOk
      ? sackNews
      : seg.payload.length === 0 && !(seg.flags & (SYN | FIN)) && window === tcb.snd.wnd;
    if (dup) onDupAck(tcb);
  }
  if (tcb.frto.state !== 0) frtoOnAck(tcb, seqGt(tcb.snd.una, unaBefore));
  if (tcb.rack.enabled && tcb.sackOk) {
    tlpOnAck(tcb, dsack);
    tcb.rack.ackEcr = tcb.ts.ok ? seg.options.timestamps?.echo : undefined;
    rackLoss(tcb);
    tcb.rack.ackEcr = undefined;
  }
  // RFC 3168 §6.1.2: ECE is a congestion signal without a loss.
  if (tcb.ecn.ok) ecnOnAck(tcb, seg);
  // RFC 6937 §3: DeliveredData = change in SND.UNA + change in SACKed bytes.
  const delivered = seqDiff(tcb.snd.una, unaBefore) + tcb.scoreboard.sacked - sackedBefore;
  if (tcb.cc.onDelivered) tcb.cc.onDelivered(delivered, tcb.now, tcb.rtt.latest, tcb.rtt.srtt);
  if (tcb.recovery.inRecovery && tcb.sackOk) onSackRecoveryAck(tcb, delivered);

  // RFC 9293 §3.10.7.4: update the send window from the newest segment.
  if (
    seqLeq(tcb.snd.una, ack) &&
    (seqLt(tcb.snd.wl1, seg.seq) || (tcb.snd.wl1 === seg.seq && seqLeq(tcb.snd.wl2, ack)))
  ) {
    const opened = tcb.snd.wnd === 0 && window > 0;
    tcb.snd.wnd = window;
    tcb.snd.wl1 = seg.seq;
    tcb.snd.wl2 = ack;
    if (window > tcb.snd.maxWnd) tcb.snd.maxWnd = window;
    if (opened) {
      tcb.timers.persist = undefined;
      tcb.timers.persistBackoff = 0;
    }
  }

  // RFC 3708 / RFC 4015: was the last recovery for nothing?
  if (tcb.undo.active) tryUndo(tcb);

  // FIN acknowledged? (state changes of RFC 9293 §3.10.7.4 fifth)
  const finAcked = tcb.finSent && tcb.snd.una === tcb.snd.max && seqGt(tcb.snd.una, tcb.finSeq());
  switch (tcb.state) {
    case 'FIN-WAIT-1':
      if (finAcked) tcb.transition('rcv-ack-of-fin');
      break;
    case 'CLOSING':
      if (finAcked) tcb.enterTimeWait('rcv-ack-of-fin');
      break;
    case 'LAST-ACK':
      if (finAcked) {
        tcb.toClosed('rcv-ack-of-fin');
        return false;
      }
      break;
    case 'TIME-WAIT':
      break;
  }
  return true;
}

/** SND.UNA moves to `ack`: drop acknowledged bytes, SYN and FIN. */
function ackAdvance(tcb: ControlBlock, ack: number): number {
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  const upTo = seqLt(ack, dataEnd) ? ack : dataEnd;
  const acked = seqDiff(upTo, tcb.sendBase);
  if (acked > 0) {
    tcb.sendQueue.drop(acked);
    tcb.sendBase = upTo;
  }
  const prev = tcb.snd.una;
  tcb.snd.una = ack;
  if (seqLt(tcb.snd.nxt, ack)) tcb.snd.nxt = ack;
  if (seqLt(tcb.recovery.highRxt, ack)) tcb.recovery.highRxt = ack;
  tcb.scoreboard.advance(ack);
  // RFC 9293 §3.8.5: urgent mode ends once the urgent data is acknowledged.
  if (tcb.urg.sndUp !== undefined && seqGeq(ack, tcb.urg.sndUp)) tcb.urg.sndUp = undefined;
  return seqDiff(ack, prev);
}

function onNewAck(tcb: ControlBlock, seg: TcpSegment, ack: number): void {
  const prevUna = tcb.snd.una;
  const ackedBytes = ackAdvance(tcb, ack);
  tcb.progressAt = tcb.now;
  tcb.retries = 0;
  // RTT: RFC 7323 §4.1 with timestamps; else one timed segment at a time with Karn's
  // rule (RFC 6298 §3), the timing cancelled whenever anything is retransmitted.
  // Karn applies to timestamps too: when the first ACK of a segment is lost and the
  // segment is retransmitted, the receiver drops the copy as a duplicate without taking
  // its TSval (RFC 7323 §5.3 R2 before R3), so the echo is that of the original and the
  // sample would include the whole RTO.
  const ts = seg.options.timestamps;
  if (tcb.rttProbe.karnUntil !== undefined && seqLt(prevUna, tcb.rttProbe.karnUntil)) {
    tcb.rttProbe.seq = undefined;
    if (seqGeq(tcb.snd.una, tcb.rttProbe.karnUntil)) tcb.rttProbe.karnUntil = undefined;
  } else if (tcb.ts.ok && ts && ts.echo !== 0) {
    tcb.rtt.sample(Math.max(0, Math.floor(tcb.now) - ((ts.echo - tcb.ts.offset) >>> 0)));
  } else if (tcb.rttProbe.seq !== undefined && seqGt(ack, tcb.rttProbe.seq)) {
    tcb.rtt.sample(tcb.now - tcb.rttProbe.time);
    tcb.rttProbe.seq = undefined;
  }

  onNewAckCongestion(tcb, ackedBytes);

  // RFC 6298 §5.2 / §5.3 (RFC 6582 §3.2 step 4 resets it on the partial ACK as well)
  if (tcb.snd.una === tcb.snd.max) {
    tcb.timers.rtx = undefined;
    tcb.timers.persistBackoff = 0;
  } else {
    tcb.timers.rtx = tcb.now + tcb.rtt.rto;
  }
  if (tcb.writableBlocked && tcb.unsentAndUnacked() <= tcb.o.sendLowWater) {
    tcb.writableBlocked = false;
    tcb.ev.push({ type: 'writable' });
  }
  if (!tcb.allAckedReported && tcb.sendQueue.length === 0 && tcb.snd.una === tcb.snd.max) {
    if (!tcb.finQueued || tcb.finSent) {
      tcb.allAckedReported = true;
      tcb.ev.push({ type: 'acked' });
    }
  }
}

/** Seventh and eighth steps: segment text and FIN (RFC 9293 §3.10.7.4). */
function processText(tcb: ControlBlock, seg: TcpSegment, seq: number): void {
  const st = tcb.state;
  const payload = seg.payload;
  const segFin = (seg.flags & FIN) !== 0;
  // RFC 9293 §3.10.7.4 seventh: text is taken in ESTABLISHED and FIN-WAIT-1/2 only.
  if (payload.length && TEXT_STATES.has(st) && !tcb.peerFinSeen) {
    // Only the part inside the window is new (RFC 9293 §3.10.7.4 first).
    let data = payload;
    let start = seq;
    if (seqLt(start, tcb.rcv.nxt)) {
      const skip = seqDiff(tcb.rcv.nxt, start);
      data = skip >= data.length ? EMPTY : data.subarray(skip);
      start = tcb.rcv.nxt;
    }
    const room = seqDiff(tcb.rcv.advRight, start);
    const fits = data.length <= room;
    if (!fits) data = room > 0 ? data.subarray(0, room) : EMPTY;
    if (data.length === 0) {
      tcb.acks.now = true; // a duplicate: tell the sender where we are
      if (seqLt(seq, tcb.rcv.nxt))
        tcb.noteDuplicate(seq, Math.min(payload.length, seqDiff(tcb.rcv.nxt, seq)));
    } else if (start === tcb.rcv.nxt) {
      appendInOrder(tcb, data);
    } else {
      // Out of order: hold it (up to the cap) and ACK at once (RFC 5681 §4.2).
      if (tcb.ooo.insert(start, data, tcb.rcv.nxt)) {
        if (segFin && fits) tcb.oooFin = seqAdd(start, data.length);
        if (tcb.ooo.lastWasDuplicate) tcb.noteDuplicate(start, data.length);
      } else {
        tcb.counters.outOfOrderDropped++;
        tcb.drop('ooo-cap');
      }
      tcb.acks.now = true;
    }
  }
  // eighth: the FIN counts when everything before it has arrived.
  const finHere = segFin && seqAdd(seq, payload.length) === tcb.rcv.nxt;
  const finQueued = tcb.oooFin !== undefined && tcb.oooFin === tcb.rcv.nxt && tcb.ooo.isEmpty;
  if (!finHere && !finQueued) {
    if (segFin) tcb.acks.now = true;
    return;
  }
  tcb.oooFin = undefined;
  tcb.acks.now = true;
  switch (st) {
    case 'SYN-RECEIVED':
    case 'ESTABLISHED':
      takeFin(tcb);
      tcb.transition('rcv-fin');
      break;
    case 'FIN-WAIT-1':
      takeFin(tcb);
      tcb.transition('rcv-fin');
      break;
    case 'FIN-WAIT-2':
      takeFin(tcb);
      tcb.enterTimeWait('rcv-fin');
      break;
    default:
      // CLOSE-WAIT, CLOSING, LAST-ACK: a repeated FIN, already counted; ACK it.
      break;
  }
}

/** Bytes at RCV.NXT: to the reader, then whatever out-of-order data they join. */
function appendInOrder(tcb: ControlBlock, data: Uint8Array): void {
  tcb.recvQueue.push(data, true);
  tcb.rcv.nxt = seqAdd(tcb.rcv.nxt, data.length);
  tcb.counters.bytesIn += data.length;
  if (!tcb.ooo.isEmpty) {
    tcb.ooo.prune(tcb.rcv.nxt);
    let run = tcb.ooo.takeInOrder(tcb.rcv.nxt);
    while (run) {
      for (const c of run) {
        tcb.recvQueue.push(c, true);
        tcb.rcv.nxt = seqAdd(tcb.rcv.nxt, c.length);
        tcb.counters.bytesIn += c.length;
      }
      run = tcb.ooo.takeInOrder(tcb.rcv.nxt);
    }
    // RFC 5681 §4.2: ACK at once when a segment fills (part of) a hole.
    tcb.acks.now = true;
  }
  noteDataReceived(tcb, data.length);
  tcb.pushReadable();
}

function takeFin(tcb: ControlBlock): void {
  if (tcb.peerFinSeen) return;
  tcb.peerFinSeen = true;
  tcb.rcv.nxt = seqAdd(tcb.rcv.nxt, 1);
  tcb.rcv.advRight = seqGt(tcb.rcv.advRight, tcb.rcv.nxt) ? tcb.rcv.advRight : tcb.rcv.nxt;
  tcb.ev.push({ type: 'peer-fin' });
}

/**
 * RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK every second segment, else within the delay. A
 * coalesced super-segment (GRO) counts as the full-sized segments it was cut from.
 */
function noteDataReceived(tcb: ControlBlock, length: number): void {
  tcb.acks.unackedSegs += length > tcb.mss ? Math.ceil(length / tcb.mss) : 1;
  if (tcb.o.delayedAck === 0 || tcb.acks.unackedSegs >= 2) {
    tcb.acks.now = true;
  } else if (tcb.timers.delAck === undefined) {
    tcb.timers.delAck = tcb.now + tcb.o.delayedAck;
  }
}

/**
 * A pure duplicate ACK that lost a race with a newer segment fails PAWS by a little; dropping
 * it would lose the SACK blocks it carries. As Linux's tcp_disordered_ack, it is let through
 * when it carries no data and no SYN/FIN/RST, sits at RCV.NXT, acknowledges exactly SND.UNA,
 * leaves the window as it is, and its TSval is less than one RTO older than TS.Recent
 * (RFC 7323 §5.3's PAWS guards against old duplicates of data, which this cannot be).
 */
function disorderedAck(tcb: ControlBlock, seg: TcpSegment, f: number, tsValue: number): boolean {
  return (
    (f & (SYN | FIN | RST)) === 0 &&
    (f & ACK) !== 0 &&
    seg.payload.length === 0 &&
    seg.seq === tcb.rcv.nxt &&
    seg.ack === tcb.snd.una &&
    tcb.segWindow(seg) === tcb.snd.wnd &&
    seqDiff(tcb.ts.recent, tsValue) <= tcb.rtt.rto
  );
}
