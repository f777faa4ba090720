/**
 * Building segments (RFC 9293 §3.1 header, §3.7 what each segment carries): every segment
 * the connection sends is made here, with the ACK, window (§3.8.6.2.2 receiver SWS
 * avoidance, RFC 7323 §2.3 scaling), timestamps (RFC 7323 §3) and SACK blocks (RFC 2018,
 * RFC 2883 D-SACK) it owes. Deciding *when* to send is send.ts's and recovery.ts's job.
 */
import * as wire from '@stepwire/wire';
import type { TcpOptions } from '../options.ts';
import { ACK, FIN, PSH, RST, SYN, type TcpSegment, URG } from '../segment.ts';
import { type ControlBlock, EMPTY, NO_OPTIONS } from './control-block.ts';
import { ecnOutFlags, ecnSynFlags } from './ecn.ts';
import { rackRetransmitted, rackSent } from './rack.ts';

// Bound once to locals: on the per-segment path each access to an imported binding can
// cost a getter call under some module loaders (esbuild/tsx, vite-node).
const { seqAdd, seqDiff, seqGt, seqLt } = wire;

/**
 * Build a segment. `withState` adds the ACK, window, timestamps and SACK blocks that every
 * segment of a synchronized connection carries; RSTs and probes of a closed one do not.
 * `ect`: new data, sent ECN-capable when ECN is in use (RFC 3168 §6.1.1, §6.1.5).
 */
export function emit(
  tcb: ControlBlock,
  seq: number,
  flags: number,
  payload: Uint8Array,
  withState: boolean,
  ect = false,
): void {
  let options = NO_OPTIONS;
  let ack = 0;
  let window = 0;
  let urgentPointer = 0;
  if (flags & ACK && !(flags & RST)) {
    if (tcb.ecn.ok) flags |= ecnOutFlags(tcb, flags, ect);
    // RFC 9293 §3.8.5 (MUST-30, RFC 6093 §4): while SND.UP is ahead of a segment, the
    // segment carries URG and the offset from its sequence number to SND.UP; beyond the
    // 16-bit field's reach, 0xFFFF says "urgent data further on", as Linux sends it.
    const up = tcb.urg.sndUp;
    if (up !== undefined && seqGt(up, seq)) {
      flags |= URG;
      urgentPointer = Math.min(0xffff, seqDiff(up, seq));
    }
  }
  if (withState || flags & ACK) {
    ack = tcb.rcv.nxt;
    window = windowField(tcb);
    const sacking = tcb.sackOk && (!tcb.ooo.isEmpty || tcb.acks.dsack !== undefined);
    if (!sacking) {
      // Nearly every segment: timestamps alone, built whole (one shape, no property added
      // to an empty object per segment).
      if (tcb.ts.ok) options = { timestamps: { value: tcb.tsVal(), echo: tcb.ts.recent } };
    } else {
      options = {};
      if (tcb.ts.ok) options.timestamps = { value: tcb.tsVal(), echo: tcb.ts.recent };
      // RFC 9293 §3.7.1: options must not push a segment past the MSS. `mss` already
      // leaves room for timestamps; SACK takes 4 + 8n bytes (two NOPs, kind, length,
      // n blocks), so a full-sized data segment carries fewer blocks (or none) — pure
      // ACKs still carry them all.
      const room = Math.max(0, tcb.mss - payload.length);
      const max = Math.min(tcb.ts.ok ? 3 : 4, Math.max(0, Math.floor((room - 4) / 8)));
      if (max === 0) {
        // No room in this segment; the blocks go with the next one that has it.
      } else if (tcb.acks.dsack) {
        // RFC 2883 §4: the duplicate range goes first, then the usual blocks.
        options.sack = [tcb.acks.dsack, ...tcb.ooo.sackBlocks(max - 1)];
        tcb.acks.dsack = undefined;
      } else {
        options.sack = tcb.ooo.sackBlocks(max);
      }
    }
    tcb.ts.lastAckSent = tcb.rcv.nxt;
    tcb.clearAckState();
  }
  tcb.push(
    {
      srcPort: tcb.local.port,
      dstPort: tcb.remote.port,
      seq,
      ack,
      flags,
      window,
      urgentPointer,
      options,
      payload,
    },
    ect && tcb.ecn.ok,
  );
}

export function sendAck(tcb: ControlBlock): void {
  // SND.NXT in the RFC's sense: the highest sequence sent. After an RTO sndNxt goes
  // back to SND.UNA, and an ACK carrying that older number would fail the peer's
  // acceptability test (its RCV.NXT is past it) and be dropped with its news.
  emit(tcb, tcb.snd.max, ACK, EMPTY, true);
}

/**
 * The window field for an outgoing segment (RFC 9293 §3.8.6.2.2 receiver SWS avoidance,
 * RFC 7323 §2.3 scaling). The right edge never moves left.
 */
function windowField(tcb: ControlBlock): number {
  const candidate = seqAdd(tcb.rcv.nxt, tcb.freeSpace());
  let right = tcb.rcv.advRight;
  const grow = seqDiff(candidate, right);
  if (grow > 0 && grow >= Math.min(tcb.receiveBuffer / 2, tcb.ourMss)) {
    right = candidate;
  }
  if (tcb.peerFinSeen && seqLt(right, tcb.rcv.nxt)) right = tcb.rcv.nxt;
  let wnd = seqDiff(right, tcb.rcv.nxt);
  if (wnd < 0) wnd = 0;
  // RFC 7323 §2.3: the shift is at most 14, so 1 << shift is exact.
  const unit = 1 << tcb.rcv.shift;
  let field = Math.floor(wnd / unit);
  if (seqLt(seqAdd(tcb.rcv.nxt, field * unit), tcb.rcv.advRight)) field = Math.ceil(wnd / unit);
  if (field > 0xffff) field = 0xffff;
  const adv = seqAdd(tcb.rcv.nxt, field * unit);
  if (seqGt(adv, tcb.rcv.advRight)) tcb.rcv.advRight = adv;
  return field;
}

export function sendSyn(tcb: ControlBlock, synAck: boolean, retransmit = false, cookie?: Uint8Array): void {
  const o: TcpOptions = { mss: tcb.ourMss };

  if (synAck) {
    if (tcb.sackOk) o.sackPermitted = true;
    if (tcb.ts.ok) o.timestamps = { value: tcb.tsVal(), echo: tcb.ts.recent };
    if (tcb.peerOfferedWs) o.windowScale = tcb.rcv.shift;
    if (cookie) o.fastOpen = cookie;
  } else {
    if (tcb.offerSack) o.sackPermitted = true;
    if (tcb.offerTs) o.timestamps = { value: tcb.tsVal(), echo: 0 };
    if (tcb.offerWs) o.windowScale = tcb.rcv.shift;
    if (!retransmit && tcb.tfo.cookie) o.fastOpen = tcb.tfo.cookie;
    else if (!retransmit && tcb.tfo.request) o.fastOpen = EMPTY;
  }
  let payload: Uint8Array = EMPTY;
  if (!synAck && !retransmit && tcb.tfo.cookie && tcb.sendQueue.length) {
    // RFC 7413 §3: data rides in the SYN with a cookie; as much as one MSS of the
    // default peer size allows (the peer's MSS is not known yet).
    payload = tcb.sendQueue.slice(0, Math.min(tcb.sendQueue.length, tcb.mss));
    tcb.tfo.synData = payload.length;
  }
  const flags = (synAck ? SYN | ACK : SYN) | ecnSynFlags(tcb, synAck, retransmit);
  // RFC 7323 §2.2: the window field of a SYN is never scaled.
  const window = Math.min(0xffff, tcb.freeSpace());
  const seg: TcpSegment = {
    srcPort: tcb.local.port,
    dstPort: tcb.remote.port,
    seq: tcb.snd.iss,
    ack: synAck ? tcb.rcv.nxt : 0,
    flags,
    window,
    urgentPointer: 0,
    options: o,
    payload,
  };
  if (synAck) {
    tcb.rcv.advRight = seqAdd(tcb.rcv.nxt, window);
    tcb.ts.lastAckSent = tcb.rcv.nxt;
    tcb.clearAckState();
  }
  tcb.push(seg);
  if (!retransmit) {
    const end = seqAdd(tcb.snd.iss, 1 + payload.length);
    tcb.snd.nxt = end;
    if (seqGt(end, tcb.snd.max)) tcb.snd.max = end;
    tcb.rttProbe.seq = tcb.snd.iss;
    tcb.rttProbe.time = tcb.now;
  }
  tcb.timers.rtx = tcb.now + tcb.rtt.rto;
}

/** Emit bytes [seq, seq+len) from the send queue (and a FIN after them). */
export function sendData(tcb: ControlBlock, seq: number, len: number, fin: boolean): void {
  const off = seqDiff(seq, tcb.sendBase);
  const payload = len ? tcb.sendQueue.slice(off, len) : EMPTY;
  let flags = ACK;
  if (fin) flags |= FIN;
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  if (len && seqAdd(seq, len) === dataEnd) flags |= PSH;
  const end = seqAdd(seq, len + (fin ? 1 : 0));
  const retransmission = seqLt(seq, tcb.snd.max);
  if (retransmission) {
    tcb.counters.retransmits++;
    tcb.rttProbe.seq = undefined; // Karn (RFC 6298 §3)
    noteRetransmitted(tcb, end);
    if (tcb.undo.active) tcb.undo.retrans++;
    rackRetransmitted(tcb, seq, end);
  } else {
    if (tcb.rttProbe.seq === undefined && !tcb.ts.ok) {
      tcb.rttProbe.seq = seq;
      tcb.rttProbe.time = tcb.now;
    }
    rackSent(tcb, seq, end);
  }
  if (fin) tcb.finSent = true;
  // Nagle's "small segment" (a super-segment's short tail is one too).
  if (len > 0 && len % tcb.mss !== 0) tcb.sndSml = seqAdd(seq, len);
  if (tcb.recovery.inRecovery) tcb.recovery.prrOut += len + (fin ? 1 : 0);
  if (tcb.snd.una === tcb.snd.max) tcb.progressAt = tcb.now; // the clock starts from idle
  tcb.lastSendAt = tcb.now;
  emit(tcb, seq, flags, payload, true, len > 0 && !retransmission);
  tcb.counters.bytesOut += len;
  tcb.snd.nxt = end;
  if (seqGt(end, tcb.snd.max)) tcb.snd.max = end;
  // RFC 6298 §5.1
  if (tcb.timers.rtx === undefined) tcb.timers.rtx = tcb.now + tcb.rtt.rto;
  tcb.timers.persist = undefined;
}

/** A retransmission that does not move SND.NXT (fast retransmit, SACK recovery). */
export function retransmitRange(tcb: ControlBlock, seq: number, len: number): void {
  const dataEnd = seqAdd(tcb.sendBase, tcb.sendQueue.length);
  const dataLen = Math.max(0, Math.min(len, seqDiff(dataEnd, seq)));
  const fin = tcb.finSent && len > dataLen && seqAdd(seq, dataLen) === dataEnd;
  const off = seqDiff(seq, tcb.sendBase);
  const payload = dataLen ? tcb.sendQueue.slice(off, dataLen) : EMPTY;
  let flags = ACK;
  if (fin) flags |= FIN;
  tcb.counters.retransmits++;
  tcb.rttProbe.seq = undefined;
  if (tcb.undo.active) tcb.undo.retrans++;
  if (tcb.recovery.inRecovery) tcb.recovery.prrOut += dataLen + (fin ? 1 : 0);
  emit(tcb, seq, flags, payload, true);
  const end = seqAdd(seq, dataLen + (fin ? 1 : 0));
  if (tcb.recovery.inRecovery && tcb.sackOk && tcb.recovery.rxtLog.length < 3 * 256)
    tcb.recovery.rxtLog.push(seq, end, tcb.snd.max);
  rackRetransmitted(tcb, seq, end);
  noteRetransmitted(tcb, end);
  if (seqGt(end, tcb.recovery.highRxt)) tcb.recovery.highRxt = end;
  if (tcb.timers.rtx === undefined) tcb.timers.rtx = tcb.now + tcb.rtt.rto;
}

function noteRetransmitted(tcb: ControlBlock, end: number): void {
  if (tcb.rttProbe.karnUntil === undefined || seqGt(end, tcb.rttProbe.karnUntil))
    tcb.rttProbe.karnUntil = end;
}

/** The RST a host sends for a segment no connection wants (RFC 9293 §3.10.7.1). */
export function resetFor(seg: TcpSegment): TcpSegment | undefined {
  if (seg.flags & RST) return undefined;
  const base = {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    window: 0,
    urgentPointer: 0,
    options: NO_OPTIONS,
    payload: EMPTY,
  };
  if (seg.flags & ACK) return { ...base, seq: seg.ack, ack: 0, flags: RST };
  const len = seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
  return { ...base, seq: 0, ack: seqAdd(seg.seq, len), flags: RST | ACK };
}
