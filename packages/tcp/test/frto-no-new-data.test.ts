/**
 * F-RTO (RFC 5682 §3) when the whole send buffer is already in flight: a delay spike holds
 * the last flight of a transfer (and its FIN) longer than the RTO, then delivers all of it.
 * The timeout is spurious; with no new data to probe with, step 2b's window-limited
 * alternative probes with the flight's last segment, and the ACKs of the late originals
 * undo the timeout (step 3b) — no go-back-N resend of the window, whose every copy would
 * come back as a D-SACK.
 *
 * Seeded links, fixed ISN secrets, a virtual clock: every run is the same.
 */
import { Host } from '@stepwire/ip';
import { impair, type Link, MemoryLink, type PacketHandler, type PacketInfo } from '@stepwire/link';
import { type Clock, VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { TcpConnection } from '../src/connection.ts';
import { Tcp } from '../src/tcp.ts';
import { ackFromB, bytes, established, lines, sack } from './scenario.ts';
import { oneWay } from './support/bulk-path.ts';
import { ThroughLink, tcpPayloadLength4 } from './support/through-link.ts';

/** A's side: notes when A has sent `size` bytes of data (IPv4, one segment per packet). */
class LastDataWatch extends ThroughLink {
  lastAt: number | undefined;
  private sent = 0;
  constructor(
    inner: Link,
    private readonly clock: Clock,
    private readonly size: number,
  ) {
    super(inner);
  }
  override send(packet: Uint8Array, info?: PacketInfo): void {
    if (this.lastAt === undefined) {
      this.sent += Math.max(0, tcpPayloadLength4(packet) ?? 0);
      if (this.sent >= this.size) this.lastAt = this.clock.now();
    }
    this.inner.send(packet, info);
  }
}

/**
 * B's side: from a moment near the end of the transfer (A has 40 segments left to send), every packet reaching B is held for `hold` ms
 * and then delivered, in order (a delay spike: nothing is lost).
 */
class DelaySpike extends ThroughLink {
  held = 0;
  private until: number | undefined;
  private readonly queue: Uint8Array[] = [];
  constructor(
    inner: Link,
    private readonly clock: Clock,
    private readonly from: () => number | undefined,
    private readonly hold: number,
  ) {
    super(inner);
  }
  override onPacket(handler: PacketHandler): void {
    this.inner.onPacket((p, info, more) => {
      const from = this.from();
      if (this.until === undefined && from !== undefined) {
        this.until = from + this.hold;
        this.clock.setTimer(this.until, () => {
          for (const q of this.queue.splice(0)) handler(q);
        });
      }
      if (this.until !== undefined && this.clock.now() < this.until) {
        this.held++;
        this.queue.push(p.slice()); // the link may reuse its buffer once the handler returns
        return;
      }
      handler(p, info, more);
    });
  }
}

type Stats = TcpConnection['stats'];

/**
 * A (198.18.0.1) writes `size` bytes and its FIN to B over a seeded 100 Mbit/s, 10 ms path
 * whose far end has the delay spike. Runs until A has everything acknowledged (as
 * support/bulk-path.ts does, but on past B's last byte: the undo happens at A after it),
 * and returns A's stats then and just before the RTO.
 */
async function spikeRun(cc: 'cubic' | 'newreno' | 'bbr', size: number) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock });
  const watch = new LastDataWatch(la, clock, size - 40 * 1448);
  const spike = new DelaySpike(lb, clock, () => watch.lastAt, 400);
  const ha = new Host({ name: 'A', clock });
  ha.addInterface({
    link: impair(watch, { rateBps: 100e6, delay: 10, seed: 3 }, clock),
    ipv4: '198.18.0.1/24',
  });
  const hb = new Host({ name: 'B', clock });
  hb.addInterface({ link: impair(spike, { delay: 10, seed: 4 }, clock), ipv4: '198.18.0.2/24' });
  const a = new Tcp(ha, {
    isnSecret: new Uint8Array(16).fill(1),
    connection: { congestion: cc, minRto: 200 },
  });
  const b = new Tcp(hb, { isnSecret: new Uint8Array(16).fill(2), connection: { receiveBuffer: 4 << 20 } });
  const t = oneWay(clock, a, b, size);
  const turn = () => new Promise((r) => setImmediate(r));
  await turn();
  let before: Stats | undefined;
  for (let i = 0; i < 100_000; i++) {
    const at = clock.nextTimerAt();
    if (at === undefined) break;
    // The window before the RTO: once the ACKs sent before the spike are in, before any
    // timer past them (the tail probe's, then the RTO's) fires.
    if (before === undefined && t.conn && watch.lastAt !== undefined && at > watch.lastAt + 30)
      before = t.conn.stats;
    clock.advanceTo(at);
    await turn();
    if (t.conn && t.got === size && t.conn.stats.sndUna === t.conn.stats.sndMax) break;
  }
  t.close();
  if (!t.conn || !before) throw new Error('the transfer never reached the spike');
  return { got: t.got, before, after: t.conn.stats, held: spike.held };
}

describe('F-RTO with the whole send buffer in flight (RFC 5682 §3 step 2b)', () => {
  for (const cc of ['cubic', 'newreno', 'bbr'] as const) {
    it(`${cc}: a delayed last flight makes the RTO spurious; it is undone without resending the window`, async () => {
      const size = 200_000;
      const { got, before, after: st, held } = await spikeRun(cc, size);
      console.log(
        `${cc}: held ${held} packets; before the RTO cwnd ${before.cwnd}, timeouts ${before.timeouts}; after: cwnd ${st.cwnd}, ssthresh ${st.ssthresh}, timeouts ${st.timeouts}, retransmits ${st.retransmits}, D-SACKs ${st.dsacksReceived}, undone ${st.spuriousRecoveries}`,
      );
      expect(got).toBe(size);
      expect(before.timeouts).toBe(0);
      // A real flight was held, more than a few segments, and the RTO fired during it.
      expect(held).toBeGreaterThan(10);
      expect(st.timeouts).toBe(1);
      // Undone (step 3b) and the window back to what it was before the RTO.
      expect(st.spuriousRecoveries).toBeGreaterThanOrEqual(1);
      expect(st.cwnd).toBeGreaterThanOrEqual(before.cwnd);
      // No go-back-N: the tail probe (RFC 8985 §7.3), the RTO's one retransmission (step 1)
      // and F-RTO's probe of step 2b. Before, the fallback resent the held window: 41
      // retransmissions with cubic and newreno, 9 with bbr (paced), none undone.
      expect(st.retransmits).toBeLessThanOrEqual(3);
    });
  }
});

describe('F-RTO step 2b without new data, segment by segment', () => {
  // Four segments, all the data there is, in flight (after a first write that grew cwnd);
  // RACK-TLP off so the RTO fires first.
  function timedOut() {
    const { a } = established({ rack: false });
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const seg = (i: number) => 15601 + i * 1460;
    expect(a.send(bytes(4 * 1460), 20).segments.length).toBe(4);
    const cwnd = a.stats.cwnd;
    // Step 1: only the first segment again.
    const rto = a.nextTimeout()!;
    expect(lines(a.onTimeout(rto))).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    // Step 2b: its ACK, no new data to send: the last segment goes again as the probe.
    expect(lines(a.receive(ackFromB(seg(1)), rto + 10))).toEqual([
      `ACK seq=${seg(3)} ack=5001 win=65535 len=1460`,
    ]);
    return { a, seg, cwnd };
  }

  it('an ACK of a segment sent only before the timeout: spurious, undone, nothing resent', () => {
    const { a, seg, cwnd } = timedOut();
    expect(lines(a.receive(ackFromB(seg(2)), 2000))).toEqual([]);
    expect(a.stats).toMatchObject({ spuriousRecoveries: 1, retransmits: 2, cwnd });
  });

  it('a SACK of one: spurious as well (step 3b counts SACKed data)', () => {
    const { a, seg, cwnd } = timedOut();
    a.receive(ackFromB(seg(1), sack([seg(2), seg(3)])), 2000);
    expect(a.stats).toMatchObject({ spuriousRecoveries: 1, cwnd });
  });

  it('a duplicate ACK that SACKs only the probe: the rest is lost, go-back-N (step 3a)', () => {
    const { a, seg } = timedOut();
    const out = a.receive(ackFromB(seg(1), sack([seg(3), seg(4)])), 2000);
    expect(lines(out)[0]).toBe(`ACK seq=${seg(1)} ack=5001 win=65535 len=1460`);
    expect(a.stats.spuriousRecoveries).toBe(0);
    expect(a.stats.cwnd).toBeLessThan(4 * 1460);
  });
});

describe('no F-RTO for a timeout inside a recovery (RFC 5682 §3 step 1)', () => {
  it('an RTO during a fast recovery goes back to SND.UNA: its retransmissions are not taken for originals', () => {
    const { a } = established({ rack: false });
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const seg = (i: number) => 15601 + i * 1460;
    const n = a.send(bytes(20 * 1460), 20).segments.length; // cwnd's worth; the rest waits
    expect(n).toBeGreaterThan(6);
    // Segment 0 lost: three duplicate ACKs SACKing 1-3 start a fast recovery (RFC 6675).
    for (let i = 2; i <= 4; i++) a.receive(ackFromB(seg(0), sack([seg(1), seg(i)])), 30 + i);
    expect(a.stats.inRecovery).toBe(true);
    // Its retransmission is lost too: the RTO, which resends segment 0 once more.
    const rto = a.nextTimeout()!;
    expect(lines(a.onTimeout(rto))[0]).toBe(`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`);
    // That copy arrives: the receiver had 1-3, so the ACK covers them. With F-RTO this would
    // be step 2 and new data would go; inside a recovery it is go-back-N from segment 4.
    const out = a.receive(ackFromB(seg(4)), rto + 10);
    expect(lines(out)[0]).toBe(`ACK seq=${seg(4)} ack=5001 win=65535 len=1460`);
    a.receive(ackFromB(seg(6)), rto + 11);
    expect(a.stats.spuriousRecoveries).toBe(0);
  });
});

describe('F-RTO step 2: duplicate ACKs before the ACK of the retransmission (RFC 5682 §3)', () => {
  it('feed the scoreboard and wait: the first segment is not sent a second time', () => {
    const { a } = established({ rack: false });
    a.send(bytes(14600), 0);
    for (let ack = 1001 + 1460; ack <= 1001 + 14600; ack += 1460) a.receive(ackFromB(ack), 10);
    const seg = (i: number) => 15601 + i * 1460;
    const n = a.send(bytes(20 * 1460), 20).segments.length;
    const rto = a.nextTimeout()!;
    expect(lines(a.onTimeout(rto))).toEqual([`ACK seq=${seg(0)} ack=5001 win=65535 len=1460`]);
    // Late SACKs of the old flight (segment 0 itself lost): nothing goes.
    expect(lines(a.receive(ackFromB(seg(0), sack([seg(1), seg(2)])), rto + 5))).toEqual([]);
    expect(lines(a.receive(ackFromB(seg(0), sack([seg(1), seg(3)])), rto + 6))).toEqual([]);
    // The step 1 copy arrives: its ACK covers 0-2, and step 2b sends two new segments.
    expect(lines(a.receive(ackFromB(seg(3)), rto + 10))).toEqual([
      `ACK seq=${seg(n)} ack=5001 win=65535 len=1460`,
      `ACK seq=${seg(n + 1)} ack=5001 win=65535 len=1460`,
    ]);
    expect(a.stats.retransmits).toBe(1);
  });
});
