/**
 * Loss recovery over TSO super-segments (issue 13): the sender hands one segment of up to
 * 64 KB to a link that cuts it into MSS-sized pieces, and the pieces are lost, reordered and
 * SACKed one by one. RACK's log (RFC 8985 §6.1, per-segment state) must split a sent entry
 * where a SACK edge falls inside it, so one lost piece in the middle of a super-segment is
 * the one range marked lost and resent — not the whole entry, whose other pieces arrived.
 *
 * The channel here is the Pair harness with a cutter in front: each super-segment A sends
 * is cut as Linux's tcp_gso_segment cuts one (seq advanced by each piece's length, FIN and
 * PSH on the last piece only), and the pieces go through the seeded channel.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ControlBlock } from '../src/connection/control-block.ts';
import {
  DELIVERED,
  LOST,
  RETRANSMITTED,
  rackDetect,
  rackRetransmitted,
  rackSent,
} from '../src/connection/rack.ts';
import type { TcpConnection } from '../src/connection.ts';
import { FIN, PSH, type TcpSegment } from '../src/segment.ts';
import { A, B, Pair } from './harness.ts';

const TSO_MAX = 65535;
const WARM_UP = 1 << 20;

function tcbOf(c: TcpConnection): ControlBlock {
  return (c as unknown as { tcb: ControlBlock }).tcb;
}

/** The MSS-sized pieces a TSO link sends for one super-segment. */
function cut(seg: TcpSegment, mss: number): TcpSegment[] {
  const n = Math.ceil(seg.payload.length / mss);
  const out: TcpSegment[] = [];
  for (let k = 0; k < n; k++) {
    const last = k === n - 1;
    out.push({
      ...seg,
      seq: (seg.seq + k * mss) >>> 0,
      flags: last ? seg.flags : seg.flags & ~(FIN | PSH),
      payload: seg.payload.subarray(k * mss, Math.min(seg.payload.length, (k + 1) * mss)),
    });
  }
  return out;
}

interface Run {
  p: Pair;
  mss: number;
  /** A's data segments as put on the wire (after the cut): [seq, len]. */
  sent: Array<[number, number]>;
  /** Super-segments A handed to the "link": their payload lengths. */
  superLens: number[];
  /** The piece that was dropped, once: [seq, len]. */
  dropped: [number, number] | undefined;
  /** Most RACK log entries seen, and the most MSS-sized pieces in flight at that moment. */
  maxEntries: number;
  piecesAtMax: number;
  /** RACK log entries seen marked lost or retransmitted, "start-end". */
  foundLost: Set<string>;
}

interface Loss {
  /** A sends super-segments (TSO, tsoMax 64 KB) or one segment per MSS. */
  tso: boolean;
  /** Which piece is lost once: this sequence number, or piece `lostPiece` of the first super-segment of `minPieces` or more. */
  dropSeq?: number;
  minPieces?: number;
  lostPiece?: number;
  /** …of the `nth` such super-segment (0: the first). */
  nth?: number;
  /** The piece after the lost one is held back and delivered after the one after it (reordered, not lost). */
  reorderNext?: boolean;
  /** DupThresh from the start of the measured part. */
  dupThresh?: number;
}

/** A sends a warm-up, then `size` bytes at once; one piece of those is lost as `loss` says. */
function run(size: number, loss: Loss): Run {
  const p = new Pair(
    { iss: 1000, tsoMax: loss.tso ? TSO_MAX : 0, minRto: 1000 },
    { receiveBuffer: 8 << 20 },
    3,
    {
      delay: 0.1,
    },
  );
  p.open();
  p.run(10);
  const a = p.conns.a;
  const mss = a.stats.mss;
  const r: Run = {
    p,
    mss,
    sent: [],
    superLens: [],
    dropped: undefined,
    maxEntries: 0,
    piecesAtMax: 0,
    foundLost: new Set(),
  };
  let held: TcpSegment | undefined;
  let armed = false;
  let cutting = false;
  let bigOnes = 0;
  p.dropFilter = (from, seg) => {
    if (from !== 'a' || seg.payload.length === 0 || cutting) return false;
    if (seg.payload.length > mss) r.superLens.push(seg.payload.length);
    const pieces = seg.payload.length > mss ? cut(seg, mss) : [seg];
    cutting = true;
    for (let k = 0; k < pieces.length; k++) {
      const piece = pieces[k] as TcpSegment;
      r.sent.push([piece.seq, piece.payload.length]);
      const lose =
        armed &&
        r.dropped === undefined &&
        (loss.dropSeq !== undefined
          ? piece.seq === loss.dropSeq
          : bigOnes === (loss.nth ?? 0) && pieces.length >= (loss.minPieces ?? 2) && k === loss.lostPiece);
      if (lose) {
        r.dropped = [piece.seq, piece.payload.length];
        continue;
      }
      if (
        loss.reorderNext &&
        r.dropped !== undefined &&
        held === undefined &&
        piece.seq === r.dropped[0] + mss
      ) {
        held = piece;
        continue;
      }
      p.transmit(from, piece);
      if (held !== undefined && r.dropped !== undefined && piece.seq === r.dropped[0] + 2 * mss) {
        p.transmit(from, held);
      }
    }
    cutting = false;
    if (armed && pieces.length >= (loss.minPieces ?? 2)) bigOnes++;
    return true;
  };
  // The log's size after each delivery to A: checked against the pieces in flight.
  const handle = p.handle.bind(p);
  p.handle = (side, out) => {
    handle(side, out);
    if (side !== 'a') return;
    const tcb = tcbOf(a);
    // The log entries RACK marked lost or that were resent (RFC 8985 §6.2 step 5), as seen.
    const log = tcb.rack;
    // (Parts already below SND.UNA leave the log on the next ACK and do not count.)
    for (let i = log.head; i < log.end.length; i++) {
      const end = log.end[i] ?? 0;
      if ((log.flags[i] ?? 0) & (LOST | RETRANSMITTED) && ((end - tcb.snd.una) | 0) > 0) {
        r.foundLost.add(`${log.start[i]}-${end}`);
      }
    }
    const entries = tcb.rack.end.length - tcb.rack.head;
    if (entries <= r.maxEntries) return;
    r.maxEntries = entries;
    // The distinct pieces that went on the wire and are not cumulatively acknowledged.
    const una = tcb.snd.una;
    const flight = (tcb.snd.max - una) >>> 0;
    const pieces = new Set<number>();
    for (const [seq, len] of r.sent) {
      const off = (seq - una) | 0;
      if (off + len > 0 && off < flight) pieces.add(seq);
    }
    r.piecesAtMax = pieces.size;
  };
  // Warm-up: a window grown by slow start, all acknowledged. Then `size` bytes at once:
  // the window's worth goes as super-segments of up to 64 KB (tso.ts: 2·cwnd per SRTT for
  // a millisecond), where ACK-clocked sending would make small ones.
  p.send('a', new Uint8Array(WARM_UP).fill(1));
  p.run(1000);
  armed = true;
  // As after an undo of reordering (recovery.ts tryUndo): losses are RACK's to find by time,
  // counting SACKed segments (RFC 6675 IsLost) would wait for 64 of them.
  if (loss.dupThresh !== undefined) tcbOf(a).recovery.dupThresh = loss.dupThresh;
  p.send('a', new Uint8Array(size).fill(2));
  p.run(2000);
  return r;
}

/** A's retransmissions: data segments that start below the highest byte sent before them. */
function retransmissions(sent: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let max: number | undefined;
  for (const [seq, len] of sent) {
    if (max !== undefined && ((seq - max) | 0) < 0) out.push([seq, len]);
    else max = (seq + len) >>> 0;
  }
  return out;
}

const SIZE = 256 << 10;

/** The same loss without TSO: the same sequence number lost once, one segment per MSS. */
function withoutTso(r: Run, reorderNext = false): Run {
  const dropSeq = r.dropped?.[0];
  if (dropSeq === undefined) throw new Error('nothing was dropped');
  return run(SIZE, { tso: false, dropSeq, reorderNext, dupThresh: 64 });
}

describe('RACK over TSO super-segments (RFC 8985 §6.1 per-segment state)', () => {
  it('a lost piece in the middle of a 64 KB super-segment: exactly that range is resent', () => {
    const r = run(SIZE, { tso: true, minPieces: 40, lostPiece: 20, nth: 3, dupThresh: 64 });
    expect(Math.max(...r.superLens)).toBeGreaterThanOrEqual(40 * r.mss); // really ~64 KB entries
    expect(r.dropped).toBeDefined();
    expect(r.p.receivedBytes.b).toBe(WARM_UP + SIZE);
    const st = r.p.conns.a.stats;
    // RACK found the one lost piece, not the 64 KB entry it was cut from.
    const [lostSeq = 0, lostLen = 0] = r.dropped ?? [];
    expect([...r.foundLost]).toEqual([`${lostSeq}-${lostSeq + lostLen}`]);
    expect(st.timeouts).toBe(0);
    const rx = retransmissions(r.sent);
    // The lost MSS goes first and once; none of the SACKed pieces around it goes again.
    expect(rx[0]).toEqual(r.dropped);
    expect(rx.filter(([seq]) => seq === r.dropped?.[0])).toHaveLength(1);
    // As without TSO, segment for segment (what else goes is RFC 6675's rescue
    // retransmission of the tail, sent before the tail's SACK came back).
    const plain = withoutTso(r);
    expect(plain.p.receivedBytes.b).toBe(WARM_UP + SIZE);
    expect(rx).toEqual(retransmissions(plain.sent));
    expect(st.retransmits).toBe(plain.p.conns.a.stats.retransmits);
    expect(st.dsacksReceived).toBe(plain.p.conns.a.stats.dsacksReceived);
    // Bounded: splitting never makes more log entries than pieces in flight.
    expect(r.maxEntries).toBeGreaterThan(1);
    expect(r.maxEntries).toBeLessThanOrEqual(r.piecesAtMax);
  });

  it('a piece only reordered inside a super-segment is not resent', () => {
    // Piece 10 is lost; piece 11 arrives after piece 12, so a SACK edge falls inside the
    // entry at several places before its pieces are all in. Only piece 10 goes again.
    const r = run(SIZE, {
      tso: true,
      minPieces: 40,
      lostPiece: 10,
      nth: 3,
      reorderNext: true,
      dupThresh: 64,
    });
    expect(r.dropped).toBeDefined();
    expect(r.p.receivedBytes.b).toBe(WARM_UP + SIZE);
    expect(r.p.conns.a.stats.timeouts).toBe(0);
    const rx = retransmissions(r.sent);
    expect(rx[0]).toEqual(r.dropped);
    const [lostSeq = 0, lostLen = 0] = r.dropped ?? [];
    expect([...r.foundLost]).toEqual([`${lostSeq}-${lostSeq + lostLen}`]);
    const reordered = lostSeq + r.mss;
    expect(rx.filter(([seq]) => seq === reordered)).toEqual([]);
    const plain = withoutTso(r, true);
    expect(rx).toEqual(retransmissions(plain.sent));
    expect(r.p.conns.a.stats.dsacksReceived).toBe(plain.p.conns.a.stats.dsacksReceived);
  });
});

/**
 * The log under any SACK blocks and retransmissions a peer and the recovery can produce:
 * entries stay sorted and contiguous, every cut lies on the MSS grid of the super-segment it
 * came from (so there are never more entries than MSS-sized pieces sent), and an entry
 * counted delivered by SACK lies inside one SACKed range.
 */
describe('RACK log splitting, any SACK edges (property)', () => {
  const grid = fc.record({
    sends: fc.array(fc.integer({ min: 1, max: 45 * 1448 }), { minLength: 1, maxLength: 12 }),
    steps: fc.array(
      fc.oneof(
        fc.record({ sack: fc.tuple(fc.nat(), fc.nat({ max: 70_000 })) }),
        fc.record({ rxt: fc.tuple(fc.nat(), fc.integer({ min: 1, max: 1448 })) }),
        fc.record({ una: fc.nat() }),
      ),
      { maxLength: 40 },
    ),
  });
  test.prop([grid])('sorted, contiguous, on the grid, bounded', ({ sends, steps }) => {
    const mss = 1448;
    const iss = 0xfffff000; // sequence numbers wrap inside the run
    const tcb = new ControlBlock({ local: A, remote: B, iss });
    tcb.sackOk = true;
    tcb.mss = mss;
    tcb.snd.una = tcb.snd.max = tcb.snd.nxt = (iss + 1) >>> 0;
    const cuts = new Set<number>();
    let pieces = 0;
    for (const len of sends) {
      const start = tcb.snd.max;
      const end = (start + len) >>> 0;
      for (let off = 0; off < len; off += mss) cuts.add((start + off) >>> 0);
      cuts.add(end);
      pieces += Math.ceil(len / mss);
      tcb.now += 1;
      rackSent(tcb, start, end);
      tcb.snd.max = tcb.snd.nxt = end;
    }
    const span = (tcb.snd.max - tcb.snd.una) >>> 0;
    for (const step of steps) {
      tcb.now += 1;
      const una = tcb.snd.una;
      const inFlight = (tcb.snd.max - una) >>> 0;
      if ('sack' in step) {
        const left = (una + (step.sack[0] % span)) >>> 0;
        tcb.scoreboard.update([{ left, right: (left + step.sack[1] + 1) >>> 0 }], una, tcb.snd.max);
      } else if ('rxt' in step) {
        if (inFlight === 0) continue;
        const start = (una + (step.rxt[0] % inFlight)) >>> 0;
        rackRetransmitted(tcb, start, (start + Math.min(step.rxt[1], inFlight)) >>> 0);
      } else {
        tcb.snd.una = (una + (step.una % (inFlight + 1))) >>> 0;
        tcb.scoreboard.advance(tcb.snd.una);
      }
      rackDetect(tcb);
      const r = tcb.rack;
      const ranges = tcb.scoreboard.ranges();
      for (let i = r.head; i < r.end.length; i++) {
        const s = r.start[i] ?? 0;
        const e = r.end[i] ?? 0;
        expect(((e - s) | 0) > 0).toBe(true);
        expect(cuts.has(s) && cuts.has(e)).toBe(true);
        if (i + 1 < r.end.length) expect(r.start[i + 1]).toBe(e);
      }
      expect(r.end.length - r.head).toBeLessThanOrEqual(pieces);
      // Delivered by SACK (not yet cumulatively acknowledged): inside one SACKed range.
      for (let i = r.head; i < r.end.length; i++) {
        const s = r.start[i] ?? 0;
        const e = r.end[i] ?? 0;
        if (!((r.flags[i] ?? 0) & DELIVERED) || ((s - tcb.snd.una) | 0) < 0) continue;
        expect(ranges.some((g) => ((s - g.left) | 0) >= 0 && ((g.right - e) | 0) >= 0)).toBe(true);
      }
    }
  });
});
