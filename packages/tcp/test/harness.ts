import { Prng, type Timer, VirtualClock } from '@stepwire/wire';
import {
  TcpConnection,
  type TcpConnectionOptions,
  type TcpEvent,
  type TcpOutput,
} from '../src/connection.ts';
import { decodeSegment, describeSegment, encodeSegment, type TcpSegment } from '../src/segment.ts';

export const A = { addr: '198.18.0.1', port: 40000 };
export const B = { addr: '198.18.0.2', port: 80 };

export interface Impairments {
  loss?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  /** One-way delay in ms, plus up to `jitter` more. */
  delay?: number;
  jitter?: number;
}

export type Side = 'a' | 'b';

/**
 * Two connections joined by a simulated channel on a VirtualClock. Segments are passed as
 * objects (the codec has its own tests); a corrupted segment is dropped, as the checksum
 * would have it. Each side's timer follows its nextTimeout().
 */
export class Pair {
  readonly clock = new VirtualClock();
  readonly conns: Record<Side, TcpConnection>;
  readonly events: Record<Side, TcpEvent[]> = { a: [], b: [] };
  readonly received: Record<Side, Uint8Array[]> = { a: [], b: [] };
  receivedBytes: Record<Side, number> = { a: 0, b: 0 };
  /** Every segment put on the wire, in order, as 'a>' or 'b>' plus its description. */
  readonly wire: string[] = [];
  keepWire = false;
  readonly prng: Prng;
  impair: Impairments;
  /** When false, a side does not read its receive buffer (a paused reader). */
  reading: Record<Side, boolean> = { a: true, b: true };
  readMax = Number.POSITIVE_INFINITY;
  onData?: (side: Side, data: Uint8Array) => void;
  private timers: Record<Side, { at: number; t: Timer } | undefined> = { a: undefined, b: undefined };
  dropFilter?: (from: Side, seg: TcpSegment) => boolean;
  delivered = 0;
  /** Pass every segment through encodeSegment/decodeSegment, corrupting real bytes. */
  useCodec = false;
  checksumDrops = 0;

  constructor(
    aOpts: Partial<TcpConnectionOptions>,
    bOpts: Partial<TcpConnectionOptions>,
    seed = 1,
    impair: Impairments = {},
  ) {
    this.prng = new Prng(seed);
    this.impair = impair;
    this.conns = {
      a: new TcpConnection({ local: A, remote: B, iss: 1000, ...aOpts }),
      b: new TcpConnection({ local: B, remote: A, iss: 5000, ...bOpts }),
    };
  }

  other(s: Side): Side {
    return s === 'a' ? 'b' : 'a';
  }

  handle(side: Side, out: TcpOutput): void {
    for (const e of out.events) this.events[side].push(e);
    for (const seg of out.segments) this.transmit(side, seg);
    if (out.events.some((e) => e.type === 'data-readable')) this.drain(side);
    this.arm(side);
  }

  drain(side: Side): void {
    const c = this.conns[side];
    if (!this.reading[side] || c.readable === 0) return;
    // Read in pieces of at most readMax until the buffer is empty.
    for (let guard = 0; guard < 1_000_000 && c.readable > 0; guard++) {
      const r = c.read(this.clock.now(), this.readMax);
      if (r.data.length) {
        this.received[side].push(this.onData ? r.data : r.data.slice());
        this.receivedBytes[side] += r.data.length;
        this.onData?.(side, r.data);
      }
      for (const e of r.events) this.events[side].push(e);
      for (const seg of r.segments) this.transmit(side, seg);
    }
    this.arm(side);
  }

  arm(side: Side): void {
    const at = this.conns[side].nextTimeout();
    const cur = this.timers[side];
    if (cur && cur.at === at) return;
    cur?.t.cancel();
    this.timers[side] = undefined;
    if (at === undefined) return;
    const t = this.clock.setTimer(at, () => {
      this.timers[side] = undefined;
      this.handle(side, this.conns[side].onTimeout(this.clock.now()));
    });
    this.timers[side] = { at, t };
  }

  transmit(from: Side, seg: TcpSegment): void {
    if (this.keepWire) this.wire.push(`${from}> ${describeSegment(seg)}`);
    if (this.dropFilter?.(from, seg)) return;
    const p = this.prng;
    const im = this.impair;
    if (p.chance(im.loss ?? 0)) return;
    const to = this.other(from);
    if (this.useCodec) {
      const pseudo = { src: from === 'a' ? A.addr : B.addr, dst: from === 'a' ? B.addr : A.addr };
      const wire = encodeSegment(seg, pseudo);
      if (p.chance(im.corrupt ?? 0)) {
        const bit = p.int(0, wire.length * 8 - 1);
        wire[bit >> 3] = wire[bit >> 3]! ^ (1 << (bit & 7));
      }
      try {
        seg = decodeSegment(wire, { src: pseudo.src, dst: pseudo.dst });
      } catch {
        this.checksumDrops++; // RFC 9293 §3.1: a bad checksum is dropped
        return;
      }
    } else if (p.chance(im.corrupt ?? 0)) {
      return; // as a bad checksum would have it
    }
    const copies = p.chance(im.duplicate ?? 0) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = (im.delay ?? 1) + (im.jitter ? p.float() * im.jitter : 0);
      if (p.chance(im.reorder ?? 0)) delay += (im.delay ?? 1) * 2 + p.float() * 5;
      this.clock.setTimer(this.clock.now() + delay, () => {
        this.delivered++;
        this.handle(to, this.conns[to].receive(seg, this.clock.now()));
      });
    }
  }

  open(data?: Uint8Array): void {
    this.handle('b', this.conns.b.listen(this.clock.now()));
    this.handle('a', this.conns.a.open(this.clock.now(), data));
  }

  send(side: Side, data: Uint8Array): void {
    this.handle(side, this.conns[side].send(data, this.clock.now()));
  }

  close(side: Side): void {
    this.handle(side, this.conns[side].close(this.clock.now()));
  }

  run(limit = 600_000): void {
    this.clock.runUntilIdle(this.clock.now() + limit);
  }

  concat(side: Side): Uint8Array {
    const out = new Uint8Array(this.receivedBytes[side]);
    let at = 0;
    for (const c of this.received[side]) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
