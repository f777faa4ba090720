/**
 * Classic Explicit Congestion Notification (RFC 3168 §6.1): the handshake that agrees on
 * it, the receiver echoing a Congestion Experienced mark with ECE until the sender says
 * CWR, and the sender treating an echo as a loss that needs no retransmission.
 *
 * The IP layer carries the two-bit ECN field (RFC 3168 §5); the connection sees it as a
 * number with each received segment and gives one back with each segment it sends
 * (`TcpOutput.ecn`).
 */
import * as wire from '@stepwire/wire';
import { CWR, ECE, SYN, type TcpSegment } from '../segment.ts';
import type { ControlBlock } from './control-block.ts';

const { seqLeq } = wire;

/** RFC 3168 §5 codepoints of the IP ECN field. */
export const NOT_ECT = 0;
export const ECT_1 = 1;
export const ECT_0 = 2;
export const CE = 3;

/**
 * Whether a connection uses ECN (the `ecn` option):
 * - 'on': ask for it in our SYN and accept it in a peer's (Linux tcp_ecn=1);
 * - 'accept': never ask, accept when a peer's SYN asks (Linux's default tcp_ecn=2);
 * - 'off': neither (tcp_ecn=0).
 */
export type EcnMode = 'on' | 'accept' | 'off';

export interface EcnState {
  mode: EcnMode;
  /** Our last SYN was an ECN-setup SYN (ECE and CWR set, §6.1.1). */
  offered: boolean;
  /** Both ends agreed: data goes ECT(0), marks are echoed (§6.1.1). */
  ok: boolean;
  /** Receiver: a CE mark arrived; every ACK carries ECE until a CWR comes (§6.1.3). */
  eceOwed: boolean;
  /** Sender: the window was reduced; the next new data segment carries CWR (§6.1.2). */
  cwrOwed: boolean;
  /** Sender: SND.MAX at the last reduction; ECE for data sent before it is the same event (§6.1.2). */
  recover: number | undefined;
}

export function newEcnState(option: boolean | undefined): EcnState {
  const mode: EcnMode = option === true ? 'on' : option === false ? 'off' : 'accept';
  return { mode, offered: false, ok: false, eceOwed: false, cwrOwed: false, recover: undefined };
}

/**
 * The ECN bits of our SYN or SYN-ACK (RFC 3168 §6.1.1): an ECN-setup SYN has ECE and CWR;
 * an ECN-setup SYN-ACK has ECE only. A retransmitted SYN drops them (§6.1.1.1: a host
 * whose ECN-setup SYN goes unanswered MAY resend it without, in case a middlebox drops
 * such SYNs), as Linux does with tcp_ecn_fallback.
 */
export function ecnSynFlags(tcb: ControlBlock, synAck: boolean, retransmit: boolean): number {
  const e = tcb.ecn;
  if (synAck) return e.ok ? ECE : 0;
  e.offered = e.mode === 'on' && !retransmit;
  return e.offered ? ECE | CWR : 0;
}

/** A peer's SYN (passive side): did it ask, and do we agree? (RFC 3168 §6.1.1) */
export function ecnOnSyn(tcb: ControlBlock, syn: TcpSegment): void {
  tcb.ecn.ok = tcb.ecn.mode !== 'off' && (syn.flags & (ECE | CWR)) === (ECE | CWR);
}

/**
 * The peer's SYN-ACK (active side): ECE without CWR agrees to our ECN-setup SYN (RFC 3168
 * §6.1.1); a SYN-ACK with both set, or with ECE answering a SYN that did not ask, is a
 * confused peer and gets no ECN.
 */
export function ecnOnSynAck(tcb: ControlBlock, synAck: TcpSegment): void {
  tcb.ecn.ok = tcb.ecn.offered && (synAck.flags & (ECE | CWR)) === ECE;
}

/**
 * The receiver's half (RFC 3168 §6.1.3), for an acceptable segment in a synchronized
 * state: CWR ends the echo (the sender has reduced), then a CE mark on data starts it
 * again. The first mark is acknowledged at once, so the sender hears of it within an RTT.
 */
export function ecnOnReceive(tcb: ControlBlock, seg: TcpSegment, ipEcn: number | undefined): void {
  const e = tcb.ecn;
  if (!e.ok) return;
  if (seg.flags & CWR) e.eceOwed = false;
  if (ipEcn === CE && seg.payload.length > 0) {
    tcb.counters.ecnCeReceived++;
    if (!e.eceOwed) tcb.acks.now = true;
    e.eceOwed = true;
  }
}

/**
 * The sender's half (RFC 3168 §6.1.2): an ACK with ECE (not a SYN-ACK) means a packet of
 * ours was marked. React once per window of data, as to a loss but without retransmitting
 * anything: ssthresh and cwnd halve, and CWR goes with the next new data. An ECE for data
 * sent before the last reduction (ECN's or a loss recovery's) is the same congestion.
 */
export function ecnOnAck(tcb: ControlBlock, seg: TcpSegment): void {
  const e = tcb.ecn;
  if (!e.ok || !(seg.flags & ECE) || seg.flags & SYN) return;
  tcb.counters.ecnEceReceived++;
  // Only an ACK of data sent after the last reduction reports new congestion.
  if (tcb.recovery.inRecovery || seqLeq(tcb.snd.una, tcb.recovery.recover)) return;
  if (e.recover !== undefined && seqLeq(tcb.snd.una, e.recover)) return;
  tcb.counters.ecnReductions++;
  tcb.cc.onCongestionEvent(tcb.now, tcb.flightSize());
  // A reduction the network asked for is never undone by a later D-SACK (RFC 3708 undoes
  // responses to losses that were not; this one was real).
  tcb.undo.active = false;
  ecnQueueCwr(tcb);
}

/**
 * Any reduction of the window (ECE, fast recovery, RTO) is announced with CWR, so the
 * receiver stops echoing marks for the window already answered (RFC 3168 §6.1.2; Linux's
 * tcp_ecn_queue_cwr on every entry to CWR, recovery or loss).
 */
export function ecnQueueCwr(tcb: ControlBlock): void {
  const e = tcb.ecn;
  if (!e.ok) return;
  e.cwrOwed = true;
  e.recover = tcb.snd.max;
}

/**
 * The ECN flags of an outgoing segment and the IP codepoint it goes with. `ect`: the
 * segment carries new data (RFC 3168 §6.1.5: retransmissions are not ECN-capable;
 * §6.1.1: nor SYNs and pure ACKs; §6.1.6: nor window probes). Returns the flags to add.
 */
export function ecnOutFlags(tcb: ControlBlock, flags: number, ect: boolean): number {
  const e = tcb.ecn;
  let add = 0;
  if (ect && e.cwrOwed) {
    add |= CWR;
    e.cwrOwed = false;
    tcb.counters.ecnCwrSent++;
  }
  // §6.1.3: every ACK while the echo is owed (CWR may come on a segment that is lost).
  if (e.eceOwed && !(flags & SYN)) add |= ECE;
  return add;
}
