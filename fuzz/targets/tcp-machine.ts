/**
 * The TCP connection machine (RFC 9293 §3.10) fed arbitrary segment sequences in every state.
 *
 * Input layout: byte 0 picks the state the victim is driven into by a real exchange with a
 * peer (LISTEN ... TIME-WAIT); then a list of operations, each an opcode byte and its fields:
 * a segment built around the victim's own sequence variables (so most land in or near the
 * window, where the interesting rules live) or with raw 32-bit numbers, time passing (timers
 * fire), or a user call (send, close, read, abort). receive() and onTimeout() must never
 * throw; user calls are only made where the API allows them. After every step the send
 * sequence variables stay ordered (SND.UNA ≤ SND.NXT ≤ SND.MAX, RFC 9293 §3.3.1) and the
 * receive and out-of-order buffers stay within their limits.
 */
import { TcpConnection, type TcpOutput } from '../../packages/tcp/src/connection.ts';
import { decodeOptions } from '../../packages/tcp/src/options.ts';
import { ACK, FIN, type TcpSegment } from '../../packages/tcp/src/segment.ts';
import { ParseError } from '../../packages/wire/src/errors.ts';

const A = { addr: '198.18.0.1', port: 40000 };
const B = { addr: '198.18.0.2', port: 80 };
const BUFFER = 16 * 1024;
const OPTS = { delayedAck: 0, receiveBuffer: BUFFER, sendHighWater: BUFFER, maxOutOfOrder: BUFFER };

const STATES = [
  'LISTEN',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
  'CLOSED',
] as const;

/** Segments in flight between the two ends, delivered by hand so the test picks the order. */
interface World {
  a: TcpConnection;
  b: TcpConnection;
  toA: TcpSegment[];
  toB: TcpSegment[];
  now: number;
}

function take(w: World, from: 'a' | 'b', out: TcpOutput): void {
  (from === 'a' ? w.toB : w.toA).push(...out.segments);
}

/** Deliver everything queued, both ways, until quiet (bounded). */
function settle(w: World): void {
  for (let i = 0; i < 20 && (w.toA.length || w.toB.length); i++) {
    const toB = w.toB.splice(0);
    const toA = w.toA.splice(0);
    for (const s of toB) take(w, 'b', w.b.receive(s, w.now));
    for (const s of toA) take(w, 'a', w.a.receive(s, w.now));
  }
}

/** Drive a fresh pair so that the returned victim is in STATES[pick]. */
function prelude(pick: number): { w: World; victim: TcpConnection; peer: TcpConnection } {
  const w: World = {
    a: new TcpConnection({ local: A, remote: B, iss: 1000, ...OPTS }),
    b: new TcpConnection({ local: B, remote: A, iss: 5000, ...OPTS }),
    toA: [],
    toB: [],
    now: 0,
  };
  const state = STATES[pick % STATES.length]!;
  const establish = (): void => {
    take(w, 'b', w.b.listen(w.now));
    take(w, 'a', w.a.open(w.now));
    settle(w);
  };
  switch (state) {
    case 'LISTEN':
      take(w, 'b', w.b.listen(w.now));
      return { w, victim: w.b, peer: w.a };
    case 'SYN-SENT':
      take(w, 'a', w.a.open(w.now));
      w.toB.length = 0;
      return { w, victim: w.a, peer: w.b };
    case 'SYN-RECEIVED':
      take(w, 'b', w.b.listen(w.now));
      take(w, 'a', w.a.open(w.now));
      for (const s of w.toB.splice(0)) take(w, 'b', w.b.receive(s, w.now));
      w.toA.length = 0;
      return { w, victim: w.b, peer: w.a };
    case 'ESTABLISHED':
      establish();
      take(w, 'a', w.a.send(Uint8Array.of(1, 2, 3), w.now));
      settle(w);
      return { w, victim: w.a, peer: w.b };
    case 'FIN-WAIT-1':
      establish();
      take(w, 'a', w.a.close(w.now));
      w.toB.length = 0;
      return { w, victim: w.a, peer: w.b };
    case 'FIN-WAIT-2':
      establish();
      take(w, 'a', w.a.close(w.now));
      settle(w);
      return { w, victim: w.a, peer: w.b };
    case 'CLOSE-WAIT':
      establish();
      take(w, 'a', w.a.close(w.now));
      settle(w);
      return { w, victim: w.b, peer: w.a };
    case 'CLOSING':
      establish();
      take(w, 'a', w.a.close(w.now));
      take(w, 'b', w.b.close(w.now));
      // Each FIN reaches the other end before that end has seen its own FIN acknowledged.
      for (const s of w.toB.splice(0)) w.b.receive(s, w.now);
      for (const s of w.toA.splice(0)) w.a.receive(s, w.now);
      return { w, victim: w.a, peer: w.b };
    case 'LAST-ACK':
      establish();
      take(w, 'a', w.a.close(w.now));
      settle(w);
      take(w, 'b', w.b.close(w.now));
      w.toA.length = 0;
      return { w, victim: w.b, peer: w.a };
    case 'TIME-WAIT':
      establish();
      take(w, 'a', w.a.close(w.now));
      settle(w);
      take(w, 'b', w.b.close(w.now));
      settle(w);
      return { w, victim: w.a, peer: w.b };
    case 'CLOSED':
      return { w, victim: w.a, peer: w.b };
  }
}

class Input {
  at = 0;
  constructor(readonly d: Uint8Array) {}
  get more(): boolean {
    return this.at < this.d.length;
  }
  u8(): number {
    return this.d[this.at++] ?? 0;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u32(): number {
    return ((this.u16() << 16) | this.u16()) >>> 0;
  }
  /** A small signed offset, mostly near zero. */
  delta(): number {
    return ((this.u16() << 16) >> 16) >> (this.u8() & 7);
  }
  bytes(n: number): Uint8Array {
    const out = this.d.subarray(this.at, this.at + n);
    this.at += out.length;
    return out;
  }
}

const before = (a: number, b: number): boolean => ((a - b) | 0) <= 0;

function check(c: TcpConnection, where: string): void {
  if (!before(c.sndUna, c.sndNxt) || !before(c.sndNxt, c.sndMax)) {
    throw new Error(
      `${where}: SND.UNA ${c.sndUna} ≤ SND.NXT ${c.sndNxt} ≤ SND.MAX ${c.sndMax} broken in ${c.state}`,
    );
  }
  if (c.readable > BUFFER)
    throw new Error(`${where}: ${c.readable} readable bytes past the ${BUFFER}-byte buffer`);
  const t = c.nextTimeout();
  if (t !== undefined && !Number.isFinite(t)) throw new Error(`${where}: nextTimeout ${t}`);
}

export function fuzz(data: Uint8Array): void {
  const inp = new Input(data);
  const { w, victim, peer } = prelude(inp.u8());
  check(victim, 'prelude');
  let closed =
    victim.state !== 'ESTABLISHED' &&
    victim.state !== 'CLOSE-WAIT' &&
    victim.state !== 'SYN-SENT' &&
    victim.state !== 'SYN-RECEIVED';
  for (let op = 0; op < 64 && inp.more; op++) {
    const code = inp.u8();
    switch (code % 8) {
      case 0:
      case 1:
      case 2:
      case 3: {
        // A segment from the peer, relative to the victim's variables (RFC 9293 §3.10.7.4's tests).
        const flags = inp.u8() | (code & 0x80 ? 0 : ACK);
        const raw = code & 0x40;
        const seq = raw ? inp.u32() : (victim.rcvNxt + inp.delta()) >>> 0;
        const ack = raw ? inp.u32() : (victim.sndUna + inp.delta()) >>> 0;
        const window = inp.u16();
        const payload = inp.bytes(inp.u8() & 0x7f);
        let options = {};
        const optLen = inp.u8() & 0x0f;
        if (optLen) {
          try {
            options = decodeOptions(inp.bytes(Math.min(40, optLen * 4)));
          } catch (e) {
            if (!(e instanceof ParseError)) throw e;
          }
        }
        const seg: TcpSegment = {
          srcPort: peer.local.port,
          dstPort: victim.local.port,
          seq,
          ack,
          flags,
          window,
          urgentPointer: code & 0x20 ? inp.u16() : 0,
          options,
          payload,
        };
        victim.receive(seg, w.now);
        break;
      }
      case 4: {
        // Time passes; a due timer fires (retransmission, persist, keepalive, TIME-WAIT, ...).
        w.now += inp.u16() * (code & 0x80 ? 100 : 1);
        const t = victim.nextTimeout();
        if (t !== undefined && t <= w.now) victim.onTimeout(w.now);
        break;
      }
      case 5: {
        const n = inp.u8();
        if (
          !closed &&
          (victim.state === 'ESTABLISHED' ||
            victim.state === 'CLOSE-WAIT' ||
            victim.state === 'SYN-SENT' ||
            victim.state === 'SYN-RECEIVED')
        ) {
          victim.send(new Uint8Array(n * 16), w.now);
        }
        break;
      }
      case 6:
        if (code & 0x80) victim.abort(w.now);
        else {
          victim.close(w.now);
          closed = true;
        }
        break;
      case 7:
        victim.read(w.now, inp.u16());
        break;
    }
    check(victim, `op ${op}`);
  }
  // A well-formed FIN from the peer at the right place is also always safe.
  victim.receive(
    {
      srcPort: peer.local.port,
      dstPort: victim.local.port,
      seq: victim.rcvNxt,
      ack: victim.sndNxt,
      flags: ACK | FIN,
      window: 65535,
      urgentPointer: 0,
      options: {},
      payload: new Uint8Array(0),
    },
    w.now,
  );
  check(victim, 'final FIN');
}

/** For the seed corpus: which state each first byte reaches (checked by the seed script). */
export const states = STATES;
export function reach(pick: number): string {
  return prelude(pick).victim.state;
}
