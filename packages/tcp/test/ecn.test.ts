/**
 * Classic ECN (RFC 3168 §6.1) on the sans-I/O connection, then on two stacks joined by a
 * link that marks CE where it would otherwise drop (@stepwire/link's impair ceMark).
 */
import { decodeIpv4, decodeIpv6, Host } from '@stepwire/ip';
import { ipDelivery } from '@stepwire/ip/testing';
import { impair, MemoryLink, markCe } from '@stepwire/link';
import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { TcpConnection } from '../src/connection.ts';
import { CWR, ECE, encodeSegment, SYN, type TcpSegment } from '../src/segment.ts';
import { Tcp } from '../src/tcp.ts';
import { collect, tcpSim } from './net.ts';
import { bytes, client, deliver, established, server } from './scenario.ts';
import { oneWay } from './support/bulk-path.ts';

const CE = 3;
const ECT0 = 2;

describe('ECN negotiation (RFC 3168 §6.1.1)', () => {
  it('ecn:true sends an ECN-setup SYN; a default (accepting) server answers ECE without CWR', () => {
    const a = client({ ecn: true });
    const b = server();
    b.listen(0);
    const syn = a.open(0);
    expect(syn.segments[0]!.flags & (ECE | CWR)).toBe(ECE | CWR);
    const synAck = deliver(b, syn, 0);
    expect(synAck.segments[0]!.flags & (SYN | ECE | CWR)).toBe(SYN | ECE);
    // SYNs and SYN-ACKs are never ECN-capable (§6.1.1).
    expect(synAck.ecn ?? [0]).toEqual([0]);
    expect(syn.ecn).toBeUndefined();
    deliver(b, deliver(a, synAck, 0), 0);
    expect([a.ecn, b.ecn]).toEqual([true, true]);
    expect(a.stats.ecn).toBe(true);
  });

  it('the default does not ask (Linux tcp_ecn=2), and ecn:false refuses when asked', () => {
    const quiet = client();
    expect(quiet.open(0).segments[0]!.flags & (ECE | CWR)).toBe(0);

    const a = client({ ecn: true });
    const b = server({ ecn: false });
    b.listen(0);
    const synAck = deliver(b, a.open(0), 0);
    expect(synAck.segments[0]!.flags & (ECE | CWR)).toBe(0);
    deliver(b, deliver(a, synAck, 0), 0);
    expect([a.ecn, b.ecn]).toEqual([false, false]);
    const out = a.send(bytes(1000), 0);
    expect(out.ecn).toBeUndefined(); // no ECN: everything Not-ECT
  });

  it('a SYN-ACK with both ECE and CWR is not agreement; a retransmitted SYN drops the ECN bits (§6.1.1.1)', () => {
    const a = client({ ecn: true });
    const b = server();
    b.listen(0);
    const syn = a.open(0);
    const synAck = deliver(b, syn, 0);
    const s = synAck.segments[0]!;
    const confused: TcpSegment = { ...s, flags: s.flags | CWR };
    a.receive(confused, 0);
    expect(a.ecn).toBe(false);

    const c = client({ ecn: true });
    c.open(0);
    const again = c.onTimeout(c.nextTimeout()!);
    expect(again.segments[0]!.flags & SYN).toBe(SYN);
    expect(again.segments[0]!.flags & (ECE | CWR)).toBe(0);
  });
});

describe('ECN on data (RFC 3168 §6.1.2, §6.1.3, §6.1.5)', () => {
  it('new data goes ECT(0); pure ACKs and retransmissions go Not-ECT', () => {
    const { a, b } = established({ ecn: true }, {});
    const out = a.send(bytes(2920), 0);
    expect(out.segments.length).toBe(2);
    expect(out.ecn).toEqual([ECT0, ECT0]);
    const acks = deliver(b, out, 1);
    expect(acks.segments.every((s) => s.payload.length === 0)).toBe(true);
    expect((acks.ecn ?? []).every((x) => x === 0)).toBe(true);
    deliver(a, acks, 1);
    // Lose the next segment: its retransmission by RTO is Not-ECT (§6.1.5).
    a.send(bytes(1000), 2);
    const rto = a.onTimeout(a.nextTimeout()!);
    expect(rto.segments.length).toBe(1);
    expect(rto.segments[0]!.payload.length).toBe(1000);
    expect(rto.ecn).toEqual([0]);
  });

  it('the receiver echoes CE with ECE on every ACK until a CWR arrives, and acks a first mark at once', () => {
    const { a, b } = established({ ecn: true, noDelay: true }, {});
    const d1 = a.send(bytes(1000), 0).segments[0]!;
    // One segment would wait for the delayed ACK; a CE mark is answered at once.
    const r1 = b.receive(d1, 1, CE);
    expect(r1.segments.length).toBe(1);
    expect(r1.segments[0]!.flags & ECE).toBe(ECE);
    expect(b.stats.ecnCeReceived).toBe(1);
    deliver(a, r1, 2);
    // The sender reduced and marks its next new data with CWR.
    const d2 = a.send(bytes(1000), 3).segments;
    expect(d2[0]!.flags & CWR).toBe(CWR);
    // An ACK sent before the CWR arrives still carries ECE ...
    const d3 = a.send(bytes(1000), 3).segments;
    expect(d3[0]!.flags & CWR).toBe(0);
    const r3 = b.receive(d3[0]!, 4, ECT0);
    expect(r3.segments.every((s) => (s.flags & ECE) === ECE)).toBe(true);
    // ... and after the CWR, no more.
    const r2 = b.receive(d2[0]!, 5, ECT0);
    expect(r2.segments.length).toBeGreaterThan(0);
    expect(r2.segments.every((s) => (s.flags & ECE) === 0)).toBe(true);
  });

  it('the sender halves cwnd once per window for ECE, retransmits nothing, and sets CWR once', () => {
    const { a, b } = established({ ecn: true, congestion: 'newreno' }, { delayedAck: 0 });
    // Grow the window a little first: exchange until everything is acknowledged.
    let t = 0;
    let out = a.send(bytes(30_000), t);
    while (out.segments.length > 0 && t < 100) {
      t++;
      out = deliver(a, deliver(b, out, t), t);
    }
    const before = a.stats;
    expect(before.bytesInFlight).toBe(0);
    // More than the window takes, so new data is left to carry the CWR after the ACKs.
    const flight = a.send(bytes(200_000), 100);
    const inFlight = a.stats.bytesInFlight;
    expect(inFlight).toBeGreaterThan(8000);
    // The first segment arrives marked; the rest do not.
    const segs = flight.segments;
    const acks: TcpSegment[] = [];
    segs.forEach((s, i) => {
      acks.push(...b.receive(s, 101, i === 0 ? CE : ECT0).segments);
    });
    expect(acks.every((s) => (s.flags & ECE) === ECE)).toBe(true);
    out = deliver(a, acks, 102);
    const st = a.stats;
    expect(st.ecnEceReceived).toBe(acks.length);
    expect(st.ecnReductions).toBe(1);
    // Halved from the flight when the first ECE came (one segment fewer than sent).
    expect(st.ssthresh).toBe(Math.floor((inFlight - st.mss) / 2));
    expect(st.retransmits).toBe(before.retransmits);
    expect(st.inRecovery).toBe(false);
    const cwrs = out.segments.filter((s) => s.flags & CWR);
    expect(cwrs.length).toBe(1);
    expect(cwrs[0]!.payload.length).toBeGreaterThan(0);
    expect(st.ecnCwrSent).toBe(1);
  });
});

describe('impair ceMark marks ECN-capable packets (RFC 3168 §5)', () => {
  const v4 = (ecn: number) =>
    new Uint8Array([
      0x45,
      ecn,
      0,
      28,
      0,
      1,
      0x40,
      0,
      64,
      17,
      0,
      0,
      198,
      18,
      0,
      1,
      198,
      18,
      0,
      2,
      0,
      1,
      0,
      2,
      0,
      8,
      0,
      0,
    ]);
  function withChecksum(p: Uint8Array): Uint8Array {
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    const c = ~sum & 0xffff;
    p[10] = c >> 8;
    p[11] = c & 0xff;
    return p;
  }

  it('IPv4: ECT(0) and ECT(1) become CE with a header checksum that still verifies; Not-ECT is not markable', () => {
    for (const ecn of [1, 2]) {
      const p = withChecksum(v4(ecn));
      const m = markCe(p)!;
      expect(decodeIpv4(m).ecn).toBe(CE);
      expect(p[1]).toBe(ecn); // the caller's buffer is untouched
    }
    expect(markCe(withChecksum(v4(0)))).toBeUndefined();
  });

  it('IPv6: the ECN bits of the Traffic Class become CE', () => {
    const p = new Uint8Array(40);
    p[0] = 0x60;
    p[1] = 0x20; // traffic class 0x02: ECT(0)
    p[6] = 59; // no next header
    p[7] = 64;
    p[23] = 1;
    p[39] = 2;
    expect(decodeIpv6(markCe(p)!).trafficClass & 3).toBe(CE);
    p[1] = 0;
    expect(markCe(p)).toBeUndefined();
  });
});

/** Two stacks over a MemoryLink; A's sending side marks ECN-capable packets with probability `ceMark`. */
function marked(ecn: boolean, ceMark: number) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock });
  const ha = new Host({ name: 'A', clock });
  const link = impair(la, { ceMark, delay: 5, seed: 7 }, clock);
  ha.addInterface({ link, ipv4: '198.18.0.1/24' });
  const hb = new Host({ name: 'B', clock });
  hb.addInterface({ link: impair(lb, { delay: 5, seed: 8 }, clock), ipv4: '198.18.0.2/24' });
  const a = new Tcp(ha, { connection: { ecn } });
  const b = new Tcp(hb, { connection: { ecn } });
  return { clock, a, b, link };
}

async function bulk(ecn: boolean, ceMark: number, size: number) {
  const { clock, a, b, link } = marked(ecn, ceMark);
  const t = oneWay(clock, a, b, size);
  const turn = () => new Promise((r) => setImmediate(r));
  await turn(); // connect() begins on the next turn
  for (let i = 0; i < 200_000 && t.got < size; i++) {
    const at = clock.nextTimerAt();
    if (at === undefined) break;
    clock.advanceTo(at);
    await turn();
  }
  if (!t.conn) throw new Error('never connected');
  const st = t.conn.stats;
  const got = t.got;
  t.close();
  return { got, st, marks: link.counters.get('ce-marked') };
}

describe('ECN end to end through a CE-marking link', () => {
  it('with ECN the sender reduces on marks and retransmits nothing; without, nothing is marked', async () => {
    const size = 2_000_000;
    const withEcn = await bulk(true, 0.01, size);
    expect(withEcn.got).toBe(size);
    expect(withEcn.st.ecn).toBe(true);
    expect(withEcn.marks).toBeGreaterThan(5);
    expect(withEcn.st.ecnReductions).toBeGreaterThan(0);
    expect(withEcn.st.ecnReductions).toBeLessThanOrEqual(withEcn.marks);
    expect(withEcn.st.retransmits).toBe(0);
    expect(withEcn.st.ssthresh).toBeLessThan(0x7fffffff);

    // Not-ECT packets pass a marking link untouched: no marks, no reductions.
    const without = await bulk(false, 0.01, size);
    expect(without.got).toBe(size);
    expect(without.st.ecn).toBe(false);
    expect(without.marks).toBe(0);
    expect(without.st.ecnReductions).toBe(0);
    expect(without.st.ssthresh).toBe(0x7fffffff);
  });
});

describe('ECN through a SYN cookie (RFC 3168 §6.1.1, kept in the TSval as Linux does)', () => {
  it('a client whose ECN-setup SYN meets a full SYN queue still gets ECN on both sides', async () => {
    const { a, b, run } = tcpSim({}, { connection: { ecn: true } });
    let serverConn: TcpConnection | undefined;
    const server = b.createServer((s) => {
      serverConn = s.connection;
      s.pipe(s);
    });
    server.listen(80, '198.18.0.2', 1);
    // A half-open connection from an address that never answers fills the SYN queue.
    const spoofed = encodeSegment(
      {
        srcPort: 999,
        dstPort: 80,
        seq: 1,
        ack: 0,
        flags: SYN,
        window: 65535,
        urgentPointer: 0,
        options: { mss: 1460 },
        payload: new Uint8Array(0),
      },
      { src: '198.18.0.77', dst: '198.18.0.2' },
    );
    b.receive(
      ipDelivery({
        version: 4,
        src: '198.18.0.77',
        dst: '198.18.0.2',
        protocol: 6,
        ttl: 64,
        payload: spoofed,
        original: spoofed,
      }),
    );
    const c = a.connect({ host: '198.18.0.2', port: 80 });
    const got = collect(c);
    c.end('through a cookie, with ECN');
    expect((await run(got)).toString()).toBe('through a cookie, with ECN');
    expect(server.queues).toMatchObject({ synCookiesSent: 1, synCookiesValidated: 1 });
    expect(c.connection?.ecn ?? a.connections()[0]?.ecn).toBe(true);
    expect(serverConn?.ecn).toBe(true);
  });
});
