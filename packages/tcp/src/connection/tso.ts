/**
 * TCP segmentation offload (TSO) on the send side: how much new data one super-segment
 * may carry when the link cuts it into MSS-sized segments itself. Everything else (Nagle,
 * the windows, RACK and SACK bookkeeping) works in bytes and sequence ranges, so a
 * super-segment counts as the full-sized segments it stands for.
 *
 * Linux's tcp_tso_autosize is the model: about a millisecond's worth of the pacing rate
 * (2·cwnd/SRTT, its default in slow start), at least two segments, at most what the link
 * takes — so a fast path gets large super-segments and a slow one is not sent a whole
 * window in one burst.
 */
import * as wire from '@stepwire/wire';
import type { ControlBlock } from './control-block.ts';

const { seqLeq } = wire;

/** Bytes of IP and TCP header (timestamps included) in front of each cut segment. */
function headerOverhead(tcb: ControlBlock): number {
  return (tcb.remote.addr.includes(':') ? 40 : 20) + 20 + (tcb.ts.ok ? 12 : 0);
}

/** The most new data one segment may carry now: the MSS, or a super-segment's worth with TSO. */
export function tsoSendLimit(tcb: ControlBlock): number {
  const mss = tcb.mss;
  if (tcb.tsoMax <= 0) return mss;
  const maxSegs = Math.floor((tcb.tsoMax - headerOverhead(tcb)) / mss);
  if (maxSegs < 2) return mss;
  const srtt = tcb.rtt.srtt;
  // 2·cwnd per SRTT, for one millisecond (tcp_tso_autosize with sk_pacing_shift 10).
  const perMs = srtt === undefined || srtt <= 0 ? Number.POSITIVE_INFINITY : (2 * tcb.cc.cwnd) / srtt;
  const segs = Math.max(2, Math.min(maxSegs, Math.floor(perMs / mss)));
  return segs * mss;
}

/**
 * A super-segment ends on a full segment unless its short tail is all that is queued and
 * Nagle (RFC 9293 §3.7.4, Minshall's form as in send.ts) would let that tail go alone.
 */
export function trimSuperSegment(tcb: ControlBlock, len: number, unsent: number): number {
  const tail = len % tcb.mss;
  if (tail === 0) return len;
  const idle = tcb.sndSml === undefined || seqLeq(tcb.sndSml, tcb.snd.una);
  if (len === unsent && (idle || tcb.o.noDelay || tcb.urg.sndUp !== undefined)) return len;
  return len - tail;
}
