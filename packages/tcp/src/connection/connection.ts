import * as wire from '@stepwire/wire';
import { RST, type TcpSegment } from '../segment.ts';
import { ControlBlock, EMPTY, keepaliveOptions, type TcpCounters } from './control-block.ts';
import { segmentArrives } from './receive.ts';
import { flight } from './recovery.ts';
import { emit, sendAck, sendSyn } from './segments.ts';
import { transmit } from './send.ts';
import { KEEPALIVE_STATES, SEND_STATES, SYNCHRONIZED, type TcpState } from './state.ts';
import { nextDeadline, timersFire } from './timers.ts';
import type {
  KeepaliveOptions,
  TcpConnectionOptions,
  TcpEndpoint,
  TcpEvent,
  TcpOutput,
  TcpReadResult,
  TcpStats,
} from './types.ts';

const { seqAdd, seqDiff, seqLeq, seqLt } = wire;

/** The lists of an output with nothing in them (see finish): shared, so frozen. */
const NO_SEGMENTS: readonly TcpSegment[] = Object.freeze([]);
const NO_EVENTS: readonly TcpEvent[] = Object.freeze([]);

/**
 * The TCP connection machine of RFC 9293 §3.10, sans I/O.
 *
 * Every method takes `now` (milliseconds) and returns a TcpOutput: segments to send (with
 * ports but no IP information; the driver encodes them with its pseudo-header) and events
 * for the user. The connection never reads a clock and never arms a timer: the driver asks
 * `nextTimeout()` after every call and calls `onTimeout(now)` when that time comes.
 *
 *     const c = new TcpConnection({ local, remote, mss: 1460 });
 *     out(c.open(now));                         // SYN
 *     out(c.receive(decodeSegment(bytes, pseudo), now));
 *     out(c.send(utf8('hello'), now));
 *     const { data, ...o } = c.read(now); out(o);
 *     out(c.close(now));                        // FIN after the queued data
 *     // whenever c.nextTimeout() passes: out(c.onTimeout(now))
 *
 * A listener creates the server side with `TcpConnection.accept(syn, options, now)`, which
 * returns the connection in SYN-RECEIVED and its SYN-ACK.
 *
 * What lives where (this folder): the user calls of RFC 9293 §3.10.1-§3.10.6 are here;
 * the connection's variables are the Transmission Control Block (control-block.ts); the
 * state diagram is a table (state.ts); SEGMENT ARRIVES follows §3.10.7 step by step
 * (receive.ts); when to send (send.ts), what each segment carries (segments.ts), loss
 * recovery (recovery.ts: RFC 6675 SACK with RFC 6937 PRR, RFC 6582 NewReno without, and
 * the RFC 3708 / RFC 4015 undo of spurious ones; rack.ts: RFC 8985 RACK-TLP; frto.ts:
 * RFC 5682 F-RTO) and the timers (timers.ts: RTO, RACK reordering, tail loss probe,
 * persist, delayed ACK, keepalive, TIME-WAIT).
 */
export class TcpConnection {
  /** The Transmission Control Block; the functions of this folder act on it. */
  private readonly tcb: ControlBlock;

  constructor(opts: TcpConnectionOptions) {
    this.tcb = new ControlBlock(opts);
  }

  get state(): TcpState {
    return this.tcb.state;
  }
  get local(): TcpEndpoint {
    return this.tcb.local;
  }
  get remote(): TcpEndpoint {
    return this.tcb.remote;
  }
  /** RFC 9293 §3.3.1 send sequence variables (sndMax: the highest sequence sent). */
  get iss(): number {
    return this.tcb.snd.iss;
  }
  get sndUna(): number {
    return this.tcb.snd.una;
  }
  get sndNxt(): number {
    return this.tcb.snd.nxt;
  }
  get sndMax(): number {
    return this.tcb.snd.max;
  }
  get sndWnd(): number {
    return this.tcb.snd.wnd;
  }
  get sndWl1(): number {
    return this.tcb.snd.wl1;
  }
  get sndWl2(): number {
    return this.tcb.snd.wl2;
  }
  /** Receive sequence variables. */
  get irs(): number {
    return this.tcb.rcv.irs;
  }
  get rcvNxt(): number {
    return this.tcb.rcv.nxt;
  }
  /** Payload bytes per full-sized segment (RFC 9293 §3.7.1 Eff.snd.MSS). */
  get mss(): number {
    return this.tcb.mss;
  }
  get counters(): TcpCounters {
    return this.tcb.counters;
  }

  // -------------------------------------------------------------------------------------
  // User calls (RFC 9293 §3.10.1 - §3.10.6)

  /** Active OPEN (RFC 9293 §3.10.1): send a SYN, optionally with TFO data (RFC 7413). */
  open(now: number, data?: Uint8Array): TcpOutput {
    const tcb = this.begin(now);
    if (tcb.state !== 'CLOSED') throw new Error(`tcp: open in state ${tcb.state}`);
    tcb.chooseIss(now);
    if (data) tcb.sendQueue.push(data);
    sendSyn(tcb, false);
    tcb.transition('active-open');
    return this.finish();
  }

  /** Passive OPEN bound to this remote (RFC 9293 §3.10.1): wait in LISTEN for its SYN. */
  listen(now: number): TcpOutput {
    const tcb = this.begin(now);
    if (tcb.state !== 'CLOSED') throw new Error(`tcp: listen in state ${tcb.state}`);
    tcb.chooseIss(now);
    tcb.passive = true;
    tcb.transition('passive-open');
    return this.finish();
  }

  /**
   * A listener's passive open: a new connection for a received SYN (RFC 9293 §3.10.7.2),
   * returned in SYN-RECEIVED with its SYN-ACK in `output` (or CLOSED with a RST when the
   * segment was not an acceptable SYN).
   */
  static accept(
    syn: TcpSegment,
    opts: TcpConnectionOptions,
    now: number,
  ): { conn: TcpConnection; output: TcpOutput } {
    const conn = new TcpConnection(opts);
    conn.listen(now);
    const output = conn.receive(syn, now);
    return { conn, output };
  }

  /**
   * SEND (RFC 9293 §3.10.2): queue bytes. The connection keeps a reference to `data`
   * until it is acknowledged, so the caller must not modify it afterwards. `urgent` is the
   * call's URGENT flag (§3.8.5): SND.UP moves to just past these bytes, and every segment
   * sent until they are acknowledged carries URG and the pointer to there.
   */
  send(data: Uint8Array, now: number, urgent = false): TcpOutput {
    const tcb = this.begin(now);
    switch (tcb.state) {
      case 'CLOSED':
      case 'LISTEN':
        throw new Error(`tcp: send in state ${tcb.state}`);
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSING':
      case 'LAST-ACK':
      case 'TIME-WAIT':
        throw new Error('tcp: send after close');
    }
    if (tcb.finQueued) throw new Error('tcp: send after close');
    tcb.sendQueue.push(data);
    if (data.length) tcb.allAckedReported = false;
    if (urgent && data.length) tcb.urg.sndUp = seqAdd(tcb.sendBase, tcb.sendQueue.length);
    if (tcb.unsentAndUnacked() > tcb.o.sendHighWater) tcb.writableBlocked = true;
    transmit(tcb);
    return this.finish();
  }

  /** CLOSE (RFC 9293 §3.10.4): no more data from this side; a FIN follows the queued data. */
  close(now: number): TcpOutput {
    const tcb = this.begin(now);
    switch (tcb.state) {
      case 'LISTEN':
        tcb.toClosed('close');
        break;
      case 'SYN-SENT':
      case 'SYN-RECEIVED':
        // RFC 9293 §3.10.4: queue the FIN; it goes out once ESTABLISHED. (For SYN-SENT the
        // RFC deletes the connection; this is a half-close, so like Linux's shutdown(SHUT_WR)
        // the data queued so far still goes, then the FIN. abort() is the RFC's delete.)
        tcb.finQueued = true;
        tcb.allAckedReported = false;
        break;
      case 'ESTABLISHED':
      case 'CLOSE-WAIT':
        tcb.finQueued = true;
        tcb.allAckedReported = false;
        tcb.transition('close');
        transmit(tcb);
        break;
      default:
        break;
    }
    return this.finish();
  }

  /** ABORT (RFC 9293 §3.10.5): send a RST where the peer is synchronized, then CLOSED. */
  abort(now: number): TcpOutput {
    const tcb = this.begin(now);
    switch (tcb.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        emit(tcb, tcb.snd.max, RST, EMPTY, false);
        tcb.toClosed('abort');
        break;
      case 'CLOSED':
        break;
      default:
        tcb.toClosed('abort');
    }
    return this.finish();
  }

  /** Turn Nagle's algorithm off (true) or on; held data goes with the next call that sends. */
  setNoDelay(on: boolean): void {
    this.tcb.o.noDelay = on;
  }

  /** Keepalive on with these timings, or off (RFC 1122 §4.2.3.6). */
  setKeepalive(opts: KeepaliveOptions | false, now: number): void {
    const tcb = this.tcb;
    tcb.keepalive = opts ? keepaliveOptions(opts) : undefined;
    tcb.timers.keepaliveProbes = 0;
    const running = KEEPALIVE_STATES.has(tcb.state);
    tcb.timers.keepalive = tcb.keepalive && running ? now + tcb.keepalive.idle : undefined;
  }

  /**
   * Lower the payload bytes per segment (a smaller path MTU was learned, RFC 8201 §4 /
   * RFC 1191 §6.4); never raises it. With `now`, segments already sent at the old size are
   * sent again at once (they were dropped for being too big), without a congestion
   * response: the output carries them.
   */
  setMss(mss: number, now?: number): TcpOutput {
    const tcb = this.tcb;
    if (now !== undefined) this.begin(now);
    const m = Math.max(64, Math.floor(mss));
    if (m < tcb.mss) {
      tcb.mss = m;
      const cwnd = tcb.cc.cwnd;
      tcb.cc.setMss(m);
      tcb.cc.cwnd = Math.max(tcb.cc.cwnd, cwnd);
      if (now !== undefined && SEND_STATES.has(tcb.state) && seqLt(tcb.snd.una, tcb.snd.max)) {
        tcb.snd.nxt = tcb.snd.una;
        transmit(tcb, true);
      }
    }
    return this.finish();
  }

  /** Bytes ready for read(). */
  get readable(): number {
    return this.tcb.recvQueue.length;
  }

  /** True when the peer's FIN has been processed and every byte before it was read. */
  get readEnded(): boolean {
    return this.tcb.peerFinSeen && this.tcb.recvQueue.length === 0;
  }

  /**
   * Bytes from the next read to just past the peer's urgent data (RFC 9293 §3.8.5 MUST-33:
   * how much urgent data remains to be read), or undefined when none is pending. The last
   * urgent byte is at `urgentOffset - 1`, in the stream (RFC 6093 §6, inline).
   */
  get urgentOffset(): number | undefined {
    const up = this.tcb.urg.rcvUp;
    if (up === undefined) return undefined;
    const left = seqDiff(up, this.tcb.readSeq());
    return left > 0 ? left : undefined;
  }

  /** Classic ECN was agreed in the handshake (RFC 3168 §6.1.1). */
  get ecn(): boolean {
    return this.tcb.ecn.ok;
  }

  /** Bytes written but not yet acknowledged (queued or in flight). */
  get sendQueued(): number {
    return this.tcb.sendQueue.length;
  }

  /**
   * RECEIVE (RFC 9293 §3.10.3): take up to `max` bytes. Freeing buffer space may reopen the
   * window: the output then carries a window update, sent per receiver SWS avoidance.
   */
  read(now: number, max = Number.POSITIVE_INFINITY): TcpReadResult {
    const tcb = this.begin(now);
    const data = tcb.recvQueue.take(max);
    // Urgent data read: urgent mode on receive ends (RFC 9293 §3.8.5).
    if (tcb.urg.rcvUp !== undefined && seqLeq(tcb.urg.rcvUp, tcb.readSeq())) tcb.urg.rcvUp = undefined;
    if (data.length && SYNCHRONIZED.has(tcb.state) && !tcb.peerFinSeen) {
      // RFC 9293 §3.8.6.2.2: the right edge moves only by min(BUFF/2, MSS) or more. An
      // update is worth a segment of its own only when the window now offered is small
      // (at most half the buffer) and reading at least doubles it, as Linux judges
      // (tcp_cleanup_rbuf); otherwise the next ACK carries the larger window anyway.
      const grow = seqDiff(seqAdd(tcb.rcv.nxt, tcb.freeSpace()), tcb.rcv.advRight);
      const offered = seqDiff(tcb.rcv.advRight, tcb.rcv.nxt);
      if (
        grow >= Math.min(tcb.receiveBuffer / 2, tcb.ourMss) &&
        offered <= tcb.receiveBuffer / 2 &&
        offered + grow >= 2 * offered
      ) {
        tcb.acks.now = true;
      }
    }
    const o = this.finish() as TcpReadResult;
    o.data = data;
    return o;
  }

  /**
   * SEGMENT ARRIVES (RFC 9293 §3.10.7): see receive.ts. `ecn`: the IP packet's ECN field
   * (RFC 3168 §5), for ECN's congestion echo.
   */
  receive(seg: TcpSegment, now: number, ecn?: number): TcpOutput {
    segmentArrives(this.begin(now), seg, ecn);
    return this.finish();
  }

  /** The next time onTimeout must be called, or undefined when no timer is armed. */
  nextTimeout(): number | undefined {
    return nextDeadline(this.tcb);
  }

  /** Whatever timers have expired by `now` (see timers.ts). */
  onTimeout(now: number): TcpOutput {
    timersFire(this.begin(now));
    return this.finish();
  }

  get stats(): TcpStats {
    const tcb = this.tcb;
    return {
      state: tcb.state,
      sndUna: tcb.snd.una,
      sndNxt: tcb.snd.nxt,
      sndMax: tcb.snd.max,
      sndWnd: tcb.snd.wnd,
      rcvNxt: tcb.rcv.nxt,
      rcvWnd: seqDiff(tcb.rcv.advRight, tcb.rcv.nxt),
      iss: tcb.snd.iss,
      irs: tcb.rcv.irs,
      srtt: tcb.rtt.srtt,
      rttvar: tcb.rtt.rttvar,
      rto: tcb.rtt.rto,
      cwnd: tcb.cc.cwnd,
      ssthresh: tcb.cc.ssthresh,
      bytesInFlight: flight(tcb),
      sendQueued: tcb.sendQueue.length,
      readable: tcb.recvQueue.length,
      mss: tcb.mss,
      ...tcb.counters,
      dupAcks: tcb.recovery.dupAcks,
      inRecovery: tcb.recovery.inRecovery,
      dupThresh: tcb.recovery.dupThresh,
      ecn: tcb.ecn.ok,
      outOfOrderBytes: tcb.ooo.bytes,
      outOfOrderBlocks: tcb.ooo.blockCount,
      sackRanges: tcb.scoreboard.ranges(),
    };
  }

  /** The congestion controller's name ('newreno', 'cubic', ...). */
  get congestionControl(): string {
    return this.tcb.cc.name;
  }

  private begin(now: number): ControlBlock {
    this.tcb.now = now;
    return this.tcb;
  }

  /** The call's output; an ACK owed goes with it. */
  private finish(): TcpOutput {
    const tcb = this.tcb;
    if (tcb.acks.now && SYNCHRONIZED.has(tcb.state)) sendAck(tcb);
    tcb.acks.now = false;
    // The connection keeps its two lists: the output gets an exact-size copy of what a call
    // put in one, or a shared, frozen empty list (most calls fill only one of the two: a
    // data segment in gives an event, an ACK in gives segments out). A fresh list per call
    // instead cost a 17-slot backing store on its first push, per call, for one or two items.
    const out: TcpOutput = {
      segments: handOver(tcb.out, NO_SEGMENTS as TcpSegment[]),
      events: handOver(tcb.ev, NO_EVENTS as TcpEvent[]),
    };
    if (tcb.outEcn !== undefined) out.ecn = tcb.outEcn;
    tcb.outEcn = undefined;
    return out;
  }
}

/** What `list` holds, as a new array of its own (or `none` when empty); `list` is emptied for reuse. */
function handOver<T>(list: T[], none: T[]): T[] {
  if (list.length === 0) return none;
  const copy = list.slice();
  while (list.length > 0) list.pop();
  return copy;
}
